#!/bin/bash
# make demo-cluster: Clampify across three simulated hosts, host2, host3 and host4.
#
# Brings up the simulated cluster (lab/cluster-up.sh 4), starts one agent per host inside the
# host's network namespace, and runs on every host a `demo` container (no label, so the
# agent's default network demo-net) and a `tenant-b` container (label
# clampify.networks=tenant-b-net). It then shows that the demo containers reach each other
# across every pair of hosts with ping, a full-MTU ping with DF set and 200 kB over TCP. It shows
# that the tenant-b containers reach each other but none of the demo ones, and it shows
# `clampify list` on each host. At the end it removes the containers while the agents run, so that the agents delete
# their ports, and takes the cluster down; KEEP=1 keeps everything running.
# No agent runs on host1, the root network namespace, where other agents may be at work.
# Exits non-zero when a step fails, and then prints the agents' logs.
set -uo pipefail
cd "$(dirname "$0")/.."
LAB_SCRIPT=demo-cluster
# shellcheck source=lab/lib.sh
. lab/lib.sh

HOSTS=(host2 host3 host4)
KEEP=${KEEP:-0}
CLAMPIFY=${CLAMPIFY:-${CARGO_TARGET_DIR:-target}/debug/clampify}
TRANSFER_BYTES=200000
# The remote chassis can install its flows after the local one has reported the port ACTIVE,
# so the first packets of a new path may be lost.
TRAFFIC_RETRY_MS=2000
# A demo and the cluster end-to-end tests both use host2 and up, so this lock keeps them apart.
LOCK_FILE=$LAB_DIR/cluster.lock
WORK_LOG=$LAB_DIR/logs/demo-cluster.log

declare -A CONTAINER_ID CONTAINER_PID PORT_ID IPV4 IPV6
CONTAINERS=()
STARTED_AGENTS=()

fail() {
  echo "demo-cluster: FAILED: $*" >&2
  exit 1
}

# Runs a command with its output in WORK_LOG. On failure it prints the last lines and fails.
quietly() {
  echo "\$ $*" >> "$WORK_LOG"
  if ! "$@" >> "$WORK_LOG" 2>&1; then
    tail -n 15 "$WORK_LOG" | sed 's/^/  | /' >&2
    fail "$* failed, see $WORK_LOG"
  fi
}

docker_on() {
  local host=$1
  shift
  docker -H "unix://$LAB_SOCK_DIR/docker-$host.sock" "$@"
}

# Runs a program of this machine inside a container's network namespace.
in_container() {
  local container=$1
  shift
  nsenter -t "${CONTAINER_PID[$container]}" -n -- "$@"
}

now_ms() { date +%s%3N; }

check_prerequisites() {
  [ "$(id -u)" = 0 ] || fail "the demo needs root: it creates namespaces, OVS ports and containers"
  [ -f "$LAB_DIR/agent-openrc" ] || fail "the lab is not up ($LAB_DIR/agent-openrc is missing): run 'make lab' first"
  mkdir -p "$LAB_DIR/logs"
  : > "$WORK_LOG"
  # shellcheck disable=SC1091
  LAB_TOKEN=$( . "$LAB_DIR/openrc" && keystone_token "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME")
  [ -n "$LAB_TOKEN" ] || fail "Keystone at $KEYSTONE_URL issued no token: check 'make lab-status'"
  exec 9> "$LOCK_FILE"
  flock -w 600 9 || fail "$LOCK_FILE is still locked after 10 minutes by another demo or test"
}

build_clampify() {
  if command -v cargo > /dev/null; then
    lab_log "building clampify"
    quietly cargo build --bin clampify
  fi
  [ -x "$CLAMPIFY" ] || fail "$CLAMPIFY not found: run 'cargo build' or set CLAMPIFY"
}

start_cluster() {
  if compgen -G "$LAB_CLUSTER/host*.env" > /dev/null; then
    lab_log "removing the simulated cluster that is already up"
    quietly lab/cluster-down.sh
  fi
  quietly lab/cluster-up.sh 4
  lab_log "cluster up: ${HOSTS[*]} as OVN chassis, geneve tunnels over 203.0.113.0/24"
  trap teardown EXIT
}

# Starts the agents one after the other. The lab's Keystone keeps its data in SQLite, and
# concurrent password logins there can fail with "database is locked" (HTTP 500), which makes
# an agent exit at its start.
start_agents() {
  local host pids=()
  for host in "${HOSTS[@]}"; do
    quietly lab/cluster-agent.sh start "$host" "$CLAMPIFY" demo-net
    STARTED_AGENTS+=("$host")
    pids+=("$host pid $(cat "$LAB_CLUSTER/$host/run/clampify-agent.pid")")
  done
  lab_log "agents running inside each host's netns: $(IFS=,; echo "${pids[*]}" | sed 's/,/, /g')"
}

run_containers() {
  local host name
  for host in "${HOSTS[@]}"; do
    name=cfy-demo-$host
    CONTAINER_ID[$name]=$(docker_on "$host" run -d --name "$name" --network none "$LAB_IMAGE" sleep 3600) \
      || fail "docker run $name on $host failed"
    CONTAINERS+=("$host/$name")
    name=cfy-tenant-b-$host
    CONTAINER_ID[$name]=$(docker_on "$host" run -d --name "$name" --network none \
      --label clampify.networks=tenant-b-net "$LAB_IMAGE" sleep 3600) \
      || fail "docker run $name on $host failed"
    CONTAINERS+=("$host/$name")
  done
}

# Waits until Neutron has an ACTIVE port bound to HOST whose device_id is the container, then
# records the port and its addresses.
wait_attached() {
  local host=$1 name=$2 id=${CONTAINER_ID[$2]} port status=none
  for _ in $(seq 1 300); do
    port=$(neutron_api GET "/ports?device_id=$id" | jq -c '.ports[0] // empty')
    [ -n "$port" ] && status=$(jq -r .status <<< "$port")
    [ "$status" = ACTIVE ] && break
    sleep 0.1
  done
  [ "$status" = ACTIVE ] || fail "$name on $host: no ACTIVE port after 30 s (status $status)"
  [ "$(jq -r '.["binding:host_id"]' <<< "$port")" = "$host" ] \
    || fail "$name: port bound to $(jq -r '.["binding:host_id"]' <<< "$port"), expected $host"
  PORT_ID[$name]=$(jq -r .id <<< "$port")
  IPV4[$name]=$(jq -r '[.fixed_ips[].ip_address | select(contains(":") | not)][0] // "-"' <<< "$port")
  IPV6[$name]=$(jq -r '[.fixed_ips[].ip_address | select(contains(":"))][0] // "-"' <<< "$port")
  CONTAINER_PID[$name]=$(docker_on "$host" inspect -f '{{.State.Pid}}' "$name")
}

show_containers() {
  local entry host name network
  for entry in "${CONTAINERS[@]}"; do
    wait_attached "${entry%%/*}" "${entry#*/}"
  done
  lab_log "every container has an ACTIVE port bound to its host:"
  printf '  %-6s %-18s %-13s %-9s %-15s %s\n' HOST CONTAINER NETWORK PORT IPV4 IPV6
  for entry in "${CONTAINERS[@]}"; do
    host=${entry%%/*}
    name=${entry#*/}
    network=demo-net
    [[ "$name" == cfy-tenant-b-* ]] && network=tenant-b-net
    printf '  %-6s %-18s %-13s %-9s %-15s %s\n' "$host" "$name" "$network" \
      "${PORT_ID[$name]:0:8}" "${IPV4[$name]}" "${IPV6[$name]}"
  done
}

# Pings DESTINATION from the container until a reply comes or TRAFFIC_RETRY_MS passes, and
# prints the round-trip time.
ping_reply() {
  local container=$1 destination=$2 deadline output
  shift 2
  deadline=$(( $(now_ms) + TRAFFIC_RETRY_MS ))
  while :; do
    if output=$(in_container "$container" ping -c 1 -W 0.3 "$@" "$destination" 2>&1); then
      sed -nE 's/.*time=([0-9.]+ ms).*/\1/p' <<< "$output"
      return 0
    fi
    [ "$(now_ms)" -lt "$deadline" ] || return 1
  done
}

TCP_SERVER='
import hashlib, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())
'
TCP_CLIENT='
import hashlib, os, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
data = os.urandom(int(sys.argv[2]))
for _ in range(50):
    try:
        s = socket.create_connection((sys.argv[1], 5001), timeout=10); break
    except OSError:
        time.sleep(0.1)
s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())
'

# Sends TRANSFER_BYTES random bytes from CLIENT to SERVER's IPv4 address. Both sides print
# "count sha256", and the transfer passes when the two lines are equal.
tcp_transfer() {
  local client=$1 server=$2 server_ip=${IPV4[$2]} received sent server_pid
  in_container "$server" python3 -c "$TCP_SERVER" "$server_ip" > "$WORK_LOG.server" 2>&1 &
  server_pid=$!
  sent=$(in_container "$client" python3 -c "$TCP_CLIENT" "$server_ip" "$TRANSFER_BYTES" 2>> "$WORK_LOG")
  wait "$server_pid"
  received=$(cat "$WORK_LOG.server")
  rm -f "$WORK_LOG.server"
  [ -n "$sent" ] && [ "$sent" = "$received" ] \
    || fail "TCP $client -> $server ($server_ip): sent '$sent', received '$received'"
}

show_demo_net() {
  local a b rtt4 rtt6 i j
  lab_log "demo-net across hosts:"
  for a in "${HOSTS[@]}"; do
    for b in "${HOSTS[@]}"; do
      [ "$a" = "$b" ] && continue
      rtt4=$(ping_reply "cfy-demo-$a" "${IPV4[cfy-demo-$b]}") \
        || fail "demo $a -> demo $b: no reply to ping ${IPV4[cfy-demo-$b]}"
      rtt6=$(ping_reply "cfy-demo-$a" "${IPV6[cfy-demo-$b]}" -6) \
        || fail "demo $a -> demo $b: no reply to ping ${IPV6[cfy-demo-$b]}"
      # 1414 bytes of ICMP payload + 8 (ICMP) + 20 (IPv4) = 1442, the geneve network's MTU.
      ping_reply "cfy-demo-$a" "${IPV4[cfy-demo-$b]}" -M do -s 1414 > /dev/null \
        || fail "demo $a -> demo $b: no reply to a 1442-byte ping with DF set"
      printf '  %s -> %s  ping %s %s, ping %s %s, 1442-byte DF ping ok\n' "$a" "$b" \
        "${IPV4[cfy-demo-$b]}" "$rtt4" "${IPV6[cfy-demo-$b]}" "$rtt6"
    done
  done
  for i in "${!HOSTS[@]}"; do
    for j in "${!HOSTS[@]}"; do
      [ "$i" -lt "$j" ] || continue
      a=${HOSTS[$i]}
      b=${HOSTS[$j]}
      tcp_transfer "cfy-demo-$a" "cfy-demo-$b"
      printf '  %s -> %s  TCP %d bytes arrived intact (SHA-256 equal)\n' "$a" "$b" "$TRANSFER_BYTES"
    done
  done
}

# Succeeds when ADDRESS belongs to a port on tenant-b-net, where a reply would be legitimate.
on_tenant_b_net() {
  local network
  network=$(neutron_api GET "/networks?name=tenant-b-net" | jq -r '.networks[0].id')
  [ -n "$(neutron_api GET "/ports?network_id=$network&fixed_ips=ip_address=$1" | jq -r '.ports[].id')" ]
}

show_isolation() {
  local a b rtt checks=() check pid results=() skipped=()
  lab_log "tenant-b-net across hosts (the positive control):"
  for a in "${HOSTS[@]}"; do
    for b in "${HOSTS[@]}"; do
      [ "$a" = "$b" ] && continue
      rtt=$(ping_reply "cfy-tenant-b-$a" "${IPV4[cfy-tenant-b-$b]}") \
        || fail "tenant-b $a -> tenant-b $b: no reply to ping ${IPV4[cfy-tenant-b-$b]}"
      printf '  %s -> %s  ping %s %s\n' "$a" "$b" "${IPV4[cfy-tenant-b-$b]}" "$rtt"
    done
  done

  # Each check waits the full retry window for a reply that must not come, so they run at once.
  lab_log "tenant-b cut off from demo-net (the same 198.51.100.0/24 range):"
  for a in "${HOSTS[@]}"; do
    for b in "${HOSTS[@]}"; do
      if on_tenant_b_net "${IPV4[cfy-demo-$b]}"; then
        skipped+=("$a->$b")
        continue
      fi
      ping_reply "cfy-tenant-b-$a" "${IPV4[cfy-demo-$b]}" > /dev/null &
      checks+=("$a $b")
      results+=($!)
    done
  done
  for check in "${!checks[@]}"; do
    a=${checks[$check]% *}
    b=${checks[$check]#* }
    pid=${results[$check]}
    wait "$pid" && fail "tenant-b $a reached demo $b at ${IPV4[cfy-demo-$b]}"
  done
  printf '  no tenant-b container got a reply from a demo container (%d checks, %d ms each)\n' \
    "${#checks[@]}" "$TRAFFIC_RETRY_MS"
  # Both networks allocate from 198.51.100.0/24, so a demo address can also be a tenant-b one,
  # and then a reply from tenant-b's own port proves nothing.
  [ ${#skipped[@]} = 0 ] \
    || printf '  skipped %s: the demo address is also in use on tenant-b-net\n' "${skipped[*]}"
}

show_lists() {
  local host
  for host in "${HOSTS[@]}"; do
    lab_log "clampify list on $host:"
    # shellcheck disable=SC1090
    ( . "$LAB_CLUSTER/$host.env"
      nsenter --net="/run/netns/$NETNS" -- "$CLAMPIFY" --config /dev/null \
        --openrc "$LAB_DIR/agent-openrc" --host "$CLAMPIFY_HOST" --ovsdb "$CLAMPIFY_OVSDB" \
        --docker-host "$DOCKER_HOST" list ) | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" = 0 ] || fail "clampify list on $host failed"
  done
}

print_agent_logs() {
  local host
  for host in "${HOSTS[@]}"; do
    [ -f "$LAB_CLUSTER/$host/log/clampify-agent.log" ] || continue
    echo "--- last lines of the $host agent log:" >&2
    tail -n 15 "$LAB_CLUSTER/$host/log/clampify-agent.log" >&2
  done
}

# Removes the containers while the agents run and waits for their ports to go.
remove_containers() {
  local entry name left=()
  for entry in "${CONTAINERS[@]}"; do
    docker_on "${entry%%/*}" rm -f "${entry#*/}" > /dev/null 2>&1
  done
  for _ in $(seq 1 150); do
    left=()
    for entry in "${CONTAINERS[@]}"; do
      name=${entry#*/}
      [ -n "$(neutron_api GET "/ports?device_id=${CONTAINER_ID[$name]}" | jq -r '.ports[].id')" ] \
        && left+=("$name")
    done
    [ ${#left[@]} = 0 ] && break
    sleep 0.1
  done
  [ ${#left[@]} = 0 ] || return 1
  lab_log "removed ${#CONTAINERS[@]} containers; their agents deleted their ports"
}

teardown() {
  local status=$? host
  trap - EXIT
  [ "$status" = 0 ] || print_agent_logs
  if [ "$KEEP" = 1 ]; then
    lab_log "KEEP=1: the cluster, agents and containers stay; remove them with 'make cluster-down'"
    exit "$status"
  fi
  if [ ${#CONTAINERS[@]} -gt 0 ] && ! remove_containers; then
    echo "demo-cluster: FAILED: the agents left ports of removed containers after 15 s" >&2
    status=1
  fi
  for host in "${STARTED_AGENTS[@]}"; do
    lab/cluster-agent.sh stop "$host" >> "$WORK_LOG" 2>&1
  done
  lab/cluster-down.sh >> "$WORK_LOG" 2>&1 || status=1
  lab_log "agents stopped, cluster down"
  if [ "$status" = 0 ]; then
    echo "demo-cluster: all steps passed"
  fi
  exit "$status"
}

main() {
  check_prerequisites
  build_clampify
  start_cluster
  start_agents
  run_containers
  show_containers
  show_demo_net
  show_isolation
  show_lists
}

main
