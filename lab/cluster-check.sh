#!/bin/bash
# Check cross-host traffic on the simulated cluster, with ports plugged the way a Clampify
# agent would plug them. For every host in LAB_DIR/cluster/hostN.env it creates a Neutron port
# on demo-net bound to that host and plugs it as a veth into the host's br-int from a new
# netns. Once the ports are ACTIVE it pings host1's port from every other host and back, plus
# one full-MTU packet. It logs in as the agent's service user and deletes all it created on
# exit.
set -Eeuo pipefail
LAB_SCRIPT=cluster-check
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

CREATED_PORTS=()
CREATED_NETNS=()
declare -A PORT_IP PORT_TAP PORT_OVSDB

fail() {
  echo "cluster-check: FAIL: $*" >&2
  exit 1
}

cleanup() {
  local host
  for host in "${!PORT_TAP[@]}"; do
    ovs-vsctl --db="${PORT_OVSDB[$host]}" --timeout=5 --if-exists del-port br-int "${PORT_TAP[$host]}" || true
  done
  for port in "${CREATED_PORTS[@]}"; do
    neutron_api DELETE "/ports/$port" > /dev/null || true
  done
  # Deleting a netns deletes the veth pair in it.
  for netns in "${CREATED_NETNS[@]}"; do
    ip netns del "$netns" 2>/dev/null || true
  done
  lab_log "cleaned up ${#CREATED_PORTS[@]} ports and ${#CREATED_NETNS[@]} netns"
}

# Arguments: host env file, network id, MTU. Creates and plugs one port for that host.
plug_port() {
  local env_file=$1 network_id=$2 mtu=$3 port port_id mac ip tap netns host_netns
  # shellcheck disable=SC1090
  . "$env_file"
  port=$(neutron_api POST /ports "$(jq -nc --arg n "$network_id" --arg h "$CLAMPIFY_HOST" \
    '{port: {network_id: $n, "binding:host_id": $h, name: "cluster-check",
             device_owner: "compute:clampify-check"}}')")
  port_id=$(jq -r .port.id <<< "$port")
  CREATED_PORTS+=("$port_id")
  [ "$(jq -r '.port["binding:vif_type"]' <<< "$port")" = ovs ] \
    || fail "port $port_id for $CLAMPIFY_HOST was not bound: $(jq -c '.port["binding:vif_type"]' <<< "$port")"
  mac=$(jq -r .port.mac_address <<< "$port")
  ip=$(jq -r '.port.fixed_ips[] | .ip_address | select(contains(".") )' <<< "$port" | head -n 1)
  # Nova and Neutron name the host end "tap" plus the first 11 characters of the port id.
  tap=tap${port_id:0:11}
  netns=ck-$CLAMPIFY_HOST
  host_netns=()
  [ -z "$NETNS" ] || host_netns=(-n "$NETNS")

  ip netns add "$netns"
  CREATED_NETNS+=("$netns")
  ip -n "$netns" link set lo up
  ip "${host_netns[@]}" link add "$tap" type veth peer name eth0 netns "$netns"
  ip "${host_netns[@]}" link set "$tap" up
  PORT_TAP[$CLAMPIFY_HOST]=$tap
  PORT_OVSDB[$CLAMPIFY_HOST]=$CLAMPIFY_OVSDB
  ovs-vsctl --db="$CLAMPIFY_OVSDB" --timeout=10 add-port br-int "$tap" -- set Interface "$tap" \
    external_ids:iface-id="$port_id" external_ids:attached-mac="$mac" external_ids:iface-status=active
  ip -n "$netns" link set eth0 address "$mac" mtu "$mtu"
  ip -n "$netns" addr add "$ip/24" dev eth0
  ip -n "$netns" link set eth0 up
  # The userspace datapath forwards partial checksums unfinished, which breaks TCP and UDP.
  ip netns exec "$netns" ethtool -K eth0 tx off > /dev/null
  PORT_IP[$CLAMPIFY_HOST]=$ip
  wait_active "$port_id" "$CLAMPIFY_HOST"
}

wait_active() {
  local port_id=$1 host=$2 started status
  started=$(date +%s%3N)
  for _ in $(seq 1 200); do
    status=$(neutron_api GET "/ports/$port_id" | jq -r .port.status)
    if [ "$status" = ACTIVE ]; then
      lab_log "$host: port $port_id ${PORT_IP[$host]} ACTIVE after $(( $(date +%s%3N) - started )) ms"
      return 0
    fi
    sleep 0.05
  done
  fail "port $port_id on $host is still $status after 10 s"
}

# ACTIVE only means that the local chassis has its flows. The remote one can lag, so retry.
ping_until_reply() {
  local from=$1 to=$2 started
  started=$(date +%s%3N)
  for _ in $(seq 1 40); do
    if ip netns exec "ck-$from" ping -c1 -W0.25 "${PORT_IP[$to]}" > /dev/null 2>&1; then
      lab_log "ping $from -> $to (${PORT_IP[$to]}) replied after $(( $(date +%s%3N) - started )) ms"
      return 0
    fi
  done
  fail "ping $from -> $to (${PORT_IP[$to]}) got no reply in 10 s"
}

main() {
  local env_files=() network_id mtu first host underlay_before underlay_bytes
  env_files=("$LAB_CLUSTER"/host*.env)
  [ -f "${env_files[0]}" ] || fail "no $LAB_CLUSTER/host*.env: run 'make cluster' first"
  [ ${#env_files[@]} -ge 2 ] || fail "the cluster has fewer than two hosts"
  # shellcheck disable=SC1091
  . "$LAB_DIR/agent-openrc"
  LAB_TOKEN=$(keystone_token "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME")
  [ -n "$LAB_TOKEN" ] || fail "Keystone issued no token for user $OS_USERNAME"
  trap cleanup EXIT

  network_id=$(neutron_api GET "/networks?name=demo-net" | jq -r '.networks[0].id // empty')
  [ -n "$network_id" ] || fail "network demo-net not found"
  mtu=$(neutron_api GET "/networks/$network_id" | jq -r .network.mtu)
  for env_file in "${env_files[@]}"; do
    plug_port "$env_file" "$network_id" "$mtu"
  done

  first=$LAB_HOST
  for host in "${!PORT_IP[@]}"; do
    [ "$host" = "$first" ] && continue
    underlay_before=$(cat "/sys/class/net/ul-$host/statistics/rx_bytes")
    ping_until_reply "$host" "$first"
    ping_until_reply "$first" "$host"
    # The largest ICMP payload that fits the MTU without fragmentation: MTU - 20 (IP) - 8 (ICMP).
    ip netns exec "ck-$host" ping -c1 -W2 -M do -s $((mtu - 28)) "${PORT_IP[$first]}" > /dev/null \
      || fail "$host -> $first: a ${mtu}-byte packet with DF set got no reply"
    lab_log "ping $host -> $first with a full ${mtu}-byte packet got a reply"
    # Proof that the packets crossed the geneve tunnel rather than some other path.
    underlay_bytes=$(( $(cat "/sys/class/net/ul-$host/statistics/rx_bytes") - underlay_before ))
    [ "$underlay_bytes" -gt "$mtu" ] || fail "$host: only $underlay_bytes bytes crossed its underlay veth"
    lab_log "$host: $underlay_bytes bytes crossed its underlay veth ul-$host"
  done
  lab_log "cross-host traffic works between ${#PORT_IP[@]} hosts"
}

main
