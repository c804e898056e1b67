#!/bin/bash
# Simulate a cluster of HOSTS hypervisors on this machine, on top of a running lab.
#   usage: cluster-up.sh [HOSTS]     (default 3: this machine as host1, plus host2 and host3)
#
# host1 is the root network namespace with the lab's own Open vSwitch, ovn-controller and
# dockerd; its chassis name stays $(hostname). Each other host hostN is a network namespace
# with its own ovsdb-server, ovs-vswitchd (userspace datapath), ovn-controller (chassis hostN)
# and dockerd, all connected to the lab's central OVN southbound database over its unix
# socket. Geneve tunnels run over an underlay in 203.0.113.0/24: a veth pair per host, whose
# root end is a port of the root bridge br-ul. A relay (cluster-relay.py) gives each host's
# loopback the lab's Keystone and Neutron ports, the way a management network gives a real
# host its controller.
#
# For every host it writes LAB_DIR/cluster/hostN.env with the settings a Clampify agent for
# that host needs. A script that starts such an agent (cluster-agent.sh does) writes its PID to
# LAB_DIR/cluster/hostN/run/clampify-agent.pid, so that cluster-down.sh can stop it.
# Hosts above HOSTS left from an earlier run are removed. Idempotent.
set -Eeuo pipefail
LAB_SCRIPT=cluster-up
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

HOSTS=${1:-3}
UNDERLAY_PREFIX=203.0.113
HOST1_UNDERLAY_IP=$UNDERLAY_PREFIX.1
# The relay runs on the distribution's Python: it needs only the standard library.
RELAY_PYTHON=/usr/bin/python3
trap 'echo "cluster-up: error: command failed at cluster-up.sh line $LINENO (exit status $?)" >&2' ERR

check_lab() {
  [[ "$HOSTS" =~ ^[0-9]+$ ]] && [ "$HOSTS" -ge 2 ] && [ "$HOSTS" -le 254 ] \
    || lab_die "HOSTS must be a number from 2 to 254, got '$HOSTS'"
  ovs-vsctl --timeout=3 show > /dev/null 2>&1 \
    || lab_die "the lab's Open vSwitch is not running; run 'make lab' first"
  ovn-sbctl --db="$OVN_SB" --timeout=3 show > /dev/null 2>&1 \
    || lab_die "the OVN southbound database at $OVN_SB does not respond; run 'make lab' first"
  case "$LAB_HOST" in
    host[0-9]*) lab_die "this machine's hostname '$LAB_HOST' collides with the simulated host names" ;;
  esac
  mkdir -p "$LAB_CLUSTER" "$LAB_SOCK_DIR"
}

# Gives host1 an underlay address and moves its tunnel endpoint there. Userspace tunnels are
# routed by OVS's own table, which only uses addresses on OVS internal ports: with the address
# on a plain veth the ports still turn ACTIVE, but no packet crosses the tunnel.
setup_host1() {
  ovs-vsctl --may-exist add-br br-ul -- set bridge br-ul datapath_type=netdev
  ip link set br-ul up
  ip -4 addr show dev br-ul | grep -q "inet $HOST1_UNDERLAY_IP/" \
    || ip addr add "$HOST1_UNDERLAY_IP/24" dev br-ul
  if [ ! -f "$LAB_CLUSTER/host1.encap-ip.orig" ]; then
    ovs-vsctl get Open_vSwitch . external_ids:ovn-encap-ip | tr -d '"' > "$LAB_CLUSTER/host1.encap-ip.orig"
  fi
  ovs-vsctl set Open_vSwitch . external_ids:ovn-encap-ip="$HOST1_UNDERLAY_IP"
  write_host_env host1 "unix:$OVS_RUN/db.sock" "$HOST_DOCKER_SOCK" "$LAB_HOST" ""
  lab_log "host1: chassis $LAB_HOST, underlay $HOST1_UNDERLAY_IP on br-ul"
}

# Arguments: file name, OVSDB socket, Docker socket, chassis name, netns ("" for the root).
write_host_env() {
  cat > "$LAB_CLUSTER/$1.env" <<EOF
CLAMPIFY_OVSDB=$2
DOCKER_HOST=$3
CLAMPIFY_HOST=$4
NETNS=$5
EOF
}

# Creates netns HOST and its underlay veth: "ul-HOST" in the root netns, "ul0" inside.
create_netns() {
  local host=$1
  ip netns list | grep -qw "^$host" || ip netns add "$host"
  ip -n "$host" link set lo up
  if ! ip link show "ul-$host" > /dev/null 2>&1; then
    ip link add "ul-$host" type veth peer name ul0 netns "$host"
  fi
  ip link set "ul-$host" up
  ip -n "$host" link set ul0 up
  # OVS builds and checksums the encapsulated frames in userspace, so the veth must not
  # expect the other end to finish the checksum.
  ethtool -K "ul-$host" tx off > /dev/null 2>&1 || true
  ip netns exec "$host" ethtool -K ul0 tx off > /dev/null 2>&1 || true
  ovs-vsctl --may-exist add-port br-ul "ul-$host"
}

# Starts the host's ovsdb-server and ovs-vswitchd inside its netns, with their own run
# directory: ovs-vswitchd creates <rundir>/br-int.mgmt, and a shared one would take over
# host1's.
start_host_ovs() {
  local host=$1 index=$2 dir=$LAB_CLUSTER/$1
  local db="unix:$dir/run/db.sock"
  local vsctl=(ovs-vsctl --db="$db" --timeout=10)
  mkdir -p "$dir/run" "$dir/db" "$dir/log"
  [ -f "$dir/db/conf.db" ] || ovsdb-tool create "$dir/db/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  if ! pidfile_running "$dir/run/ovsdb-server.pid"; then
    ip netns exec "$host" env OVS_RUNDIR="$dir/run" ovsdb-server "$dir/db/conf.db" \
      --remote="punix:$dir/run/db.sock" --pidfile="$dir/run/ovsdb-server.pid" \
      --unixctl="$dir/run/ovsdb-server.ctl" --log-file="$dir/log/ovsdb-server.log" \
      -vconsole:off -vfile:info --no-chdir --detach 2>> "$dir/log/startup.log"
  fi
  "${vsctl[@]}" --no-wait init
  "${vsctl[@]}" --no-wait set Open_vSwitch . \
    external_ids:system-id="$host" external_ids:hostname="$host" \
    external_ids:ovn-remote="$OVN_SB" external_ids:ovn-encap-type=geneve \
    external_ids:ovn-encap-ip="$UNDERLAY_PREFIX.$index" \
    external_ids:ovn-bridge-datapath-type=netdev
  if ! pidfile_running "$dir/run/ovs-vswitchd.pid"; then
    ip netns exec "$host" env OVS_RUNDIR="$dir/run" ovs-vswitchd "$db" \
      --pidfile="$dir/run/ovs-vswitchd.pid" --unixctl="$dir/run/ovs-vswitchd.ctl" \
      --log-file="$dir/log/ovs-vswitchd.log" -vconsole:off -vfile:info --no-chdir --detach \
      2>> "$dir/log/startup.log"
  fi

  "${vsctl[@]}" --may-exist add-br br-ul -- set bridge br-ul datapath_type=netdev
  "${vsctl[@]}" --may-exist add-port br-ul ul0
  for _ in $(seq 1 50); do
    ip -n "$host" link show br-ul > /dev/null 2>&1 && break
    sleep 0.1
  done
  ip -n "$host" link set br-ul up
  ip -n "$host" -4 addr show dev br-ul | grep -q "inet $UNDERLAY_PREFIX.$index/" \
    || ip -n "$host" addr add "$UNDERLAY_PREFIX.$index/24" dev br-ul
  # The first pings fill both ends' neighbour tables, which OVS learns tunnel next hops from.
  for _ in $(seq 1 30); do
    ip netns exec "$host" ping -c1 -W1 "$HOST1_UNDERLAY_IP" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  lab_die "$host: underlay $UNDERLAY_PREFIX.$index cannot reach $HOST1_UNDERLAY_IP, see $dir/log/ovs-vswitchd.log"
}

start_host_ovn_controller() {
  local host=$1 dir=$LAB_CLUSTER/$1
  # ovn-controller 23.03 lists no --unixctl option, so its control socket is
  # $OVN_RUNDIR/ovn-controller.<pid>.ctl.
  if ! pidfile_running "$dir/run/ovn-controller.pid"; then
    ip netns exec "$host" env OVS_RUNDIR="$dir/run" OVN_RUNDIR="$dir/run" \
      ovn-controller "unix:$dir/run/db.sock" --pidfile="$dir/run/ovn-controller.pid" \
      --log-file="$dir/log/ovn-controller.log" -vconsole:off -vfile:info --no-chdir --detach \
      2>> "$dir/log/startup.log"
  fi
  for _ in $(seq 1 150); do
    if [ -n "$(ovn-sbctl --db="$OVN_SB" --timeout=2 --bare --columns=name \
                 find Chassis name="$host" 2>/dev/null)" ]; then
      ovs-vsctl --db="unix:$dir/run/db.sock" --timeout=10 wait-until bridge br-int datapath_type=netdev
      return 0
    fi
    sleep 0.1
  done
  lab_die "$host: chassis did not appear in the OVN SB within 15 s, see $dir/log/ovn-controller.log"
}

# Starts the host's dockerd in its netns with nsenter. "ip netns exec" would remount /sys,
# which hides the cgroup mounts and makes dockerd fail.
start_host_dockerd() {
  local host=$1 dir=$LAB_CLUSTER/$1
  local sock="unix://$LAB_SOCK_DIR/docker-$host.sock"
  if ! pidfile_running "$dir/run/dockerd.pid"; then
    mkdir -p "$dir/docker" "$dir/etc"
    # An empty configuration file keeps /etc/docker/daemon.json of host1 out.
    echo '{}' > "$dir/etc/docker-daemon.json"
    nsenter --net="/run/netns/$host" -- setsid dockerd \
      --config-file "$dir/etc/docker-daemon.json" --data-root "$dir/docker" \
      --exec-root "$LAB_SOCK_DIR/docker-$host" --pidfile "$dir/run/dockerd.pid" -H "$sock" \
      --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
      --cgroup-parent="clampify-lab-$host" > "$dir/log/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 300); do
      timeout 5 docker -H "$sock" version > /dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  timeout 10 docker -H "$sock" version > /dev/null 2>&1 \
    || lab_die "$host: dockerd did not respond on $sock, see $dir/log/dockerd.log"
  if ! docker -H "$sock" image inspect "$LAB_IMAGE" > /dev/null 2>&1; then
    docker -H "$HOST_DOCKER_SOCK" save "$LAB_IMAGE" | docker -H "$sock" load -q > /dev/null
  fi
}

# Prints the TCP port of an http:// URL such as http://127.0.0.1:5000/v3.
url_port() {
  local authority=${1#*://}
  authority=${authority%%/*}
  echo "${authority##*:}"
}

# Keystone and Neutron listen on the root namespace's loopback only, and the Keystone catalog
# names 127.0.0.1:9696 for Neutron. The relay listens on those ports on the host's own
# loopback and forwards every connection to the root namespace, so an agent inside the host
# uses the lab's openrc unchanged.
start_host_api_relay() {
  local host=$1 dir=$LAB_CLUSTER/$1 url code
  if ! pidfile_running "$dir/run/api-relay.pid"; then
    setsid "$RELAY_PYTHON" "$LAB_SRC/cluster-relay.py" "/run/netns/$host" \
      "$(url_port "$KEYSTONE_URL")" "$(url_port "$NEUTRON_URL")" \
      >> "$dir/log/api-relay.log" 2>&1 < /dev/null &
    echo $! > "$dir/run/api-relay.pid"
  fi
  for url in "$KEYSTONE_URL" "${NEUTRON_URL%/v2.0}/"; do
    for _ in $(seq 1 50); do
      code=$(nsenter --net="/run/netns/$host" -- curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null) || true
      [ "$code" = 200 ] && break
      sleep 0.1
    done
    [ "$code" = 200 ] \
      || lab_die "$host: $url returned HTTP ${code:-000} from inside the netns, expected 200; see $dir/log/api-relay.log"
  done
}

setup_host() {
  local host=$1 index=$2 dir=$LAB_CLUSTER/$1
  create_netns "$host"
  start_host_ovs "$host" "$index"
  start_host_ovn_controller "$host"
  start_host_dockerd "$host"
  start_host_api_relay "$host"
  write_host_env "$host" "unix:$dir/run/db.sock" "unix://$LAB_SOCK_DIR/docker-$host.sock" "$host" "$host"
  lab_log "$host: chassis $host, underlay $UNDERLAY_PREFIX.$index, ovs-vswitchd pid $(cat "$dir/run/ovs-vswitchd.pid"), ovn-controller pid $(cat "$dir/run/ovn-controller.pid"), dockerd pid $(cat "$dir/run/dockerd.pid"), API relay pid $(cat "$dir/run/api-relay.pid")"
}

remove_extra_hosts() {
  local dir host extra=()
  for dir in "$LAB_CLUSTER"/host*/; do
    [ -d "$dir" ] || continue
    host=$(basename "$dir")
    [ "${host#host}" -gt "$HOSTS" ] && extra+=("$host")
  done
  [ ${#extra[@]} -eq 0 ] || "$LAB_SRC/cluster-down.sh" "${extra[@]}"
}

print_hosts() {
  local index env_file
  for index in $(seq 1 "$HOSTS"); do
    env_file=$LAB_CLUSTER/host$index.env
    # shellcheck disable=SC1090
    ( . "$env_file"
      printf 'host%-3s CLAMPIFY_HOST=%-8s NETNS=%-7s CLAMPIFY_OVSDB=%s DOCKER_HOST=%s\n' \
        "$index" "$CLAMPIFY_HOST" "${NETNS:--}" "$CLAMPIFY_OVSDB" "$DOCKER_HOST" )
  done
  echo "Settings per host: $LAB_CLUSTER/hostN.env (source with 'set -a')."
}

main() {
  check_lab
  remove_extra_hosts
  setup_host1
  for index in $(seq 2 "$HOSTS"); do
    setup_host "host$index" "$index"
  done
  print_hosts
}

main
