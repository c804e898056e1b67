#!/bin/bash
# `make demo`: Clampify's main job, shown on the local lab (see lab/NOTES.md). Run as root.
#   1. Brings the lab up, builds Clampify and starts `clampify watch demo-net` in the background.
#   2. Starts cfy-demo-a and cfy-demo-b with `--network none`. The agent gives each a Neutron
#      port on demo-net, and the script shows the addresses, pings both ways over IPv4 and
#      IPv6 and sends 1 MiB over TCP, comparing md5sum on both ends.
#   3. Starts cfy-demo-tenant-b on tenant-b-net, which has the same 198.51.100.0/24, with the
#      IPv4 address of cfy-demo-a, and shows that it cannot reach cfy-demo-b.
#   4. Removes the containers (the agent deletes their ports), stops the agent and checks that
#      no port of theirs is left.
# KEEP=1 keeps the containers and the agent running and prints how to remove them.
# DEMO_WAIT (seconds, default 600) bounds the wait for other Clampify runs on this host.
# Logs go to target/demo/ (under CARGO_TARGET_DIR when it is set). Exits 1 when a check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/lib.sh
. lab/lib.sh

OPENRC=$LAB_DIR/agent-openrc
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
DEMO_DIR=$TARGET_DIR/demo
CLAMPIFY=$TARGET_DIR/release/clampify
AGENT_LOG=$DEMO_DIR/agent.log
AGENT_PIDFILE=$DEMO_DIR/agent.pid
KEEP=${KEEP:-0}
DEMO_WAIT=${DEMO_WAIT:-600}
# Seconds to wait for the agent to plug a container, and for it to delete removed ports.
ATTACH_TIMEOUT=30
DETACH_TIMEOUT=30
TCP_PORT=5001
TRANSFER_BYTES=1048576
# Container name -> Docker ID, `docker run` time (ms), Neutron port ID, IPv4 and IPv6 address.
declare -A CONTAINER_ID RUN_AT PORT_ID IPV4 IPV6
# Names of the containers this run started, in start order. The clean-up removes them and
# the leftovers of an earlier run.
STARTED_NAMES=()
LEFTOVER_IDS=()
AGENT_PID=
FAILURES=0
INTERRUPTED=0
T0=$(date +%s%3N)

# ---------------------------------------------------------------- output

# Prints the seconds since MS (milliseconds since the epoch), with one decimal.
seconds_since() {
  local ms=$(( $(date +%s%3N) - $1 ))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

elapsed() { echo "$(seconds_since "$T0")s"; }

step() { echo "== $* ($(elapsed))"; }
info() { echo "   $*"; }
pass() { echo "   ✓ $*"; }

fail() {
  echo "   ✗ $*"
  FAILURES=$((FAILURES + 1))
}

# Reports a failed step and exits, so that the EXIT trap cleans up.
abort() {
  fail "$*"
  exit 1
}

# Prints FILE's last 30 lines, indented, without terminal color codes.
show_tail() {
  tail -n 30 "$1" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/   | /'
}

# ---------------------------------------------------------------- lab, build and agent

check_prerequisites() {
  step "prerequisites"
  [ "$(id -u)" = 0 ] || abort "make demo must run as root, because the lab, OVS and the agent change namespaces and bridges"
  command -v cargo > /dev/null ||
    abort "cargo not found in PATH: install Rust with rustup (https://rustup.rs), then run make demo again"
  mkdir -p "$DEMO_DIR"
  pass "root, $(cargo --version)"
}

start_lab() {
  step "lab (lab/up.sh; log $DEMO_DIR/lab.log)"
  # Only the slow steps of a first run and the summary line are shown.
  lab/up.sh 2>&1 | tee "$DEMO_DIR/lab.log" |
    grep --line-buffered -E 'apt-get install|pip install|lab is up' |
    sed -u -E 's/^\[lab-up [0-9.]+s\] /   /'
  local status=${PIPESTATUS[0]}
  if [ "$status" != 0 ]; then
    show_tail "$DEMO_DIR/lab.log"
    abort "lab/up.sh failed with exit status $status"
  fi
}

build() {
  step "build (cargo build --release; log $DEMO_DIR/build.log)"
  # cargo prints one "Compiling" line per crate. The 50th, 100th, ... and Clampify's own are
  # shown, and so is the line cargo prints while it waits for another build's lock.
  cargo build --release --color never 2>&1 | tee "$DEMO_DIR/build.log" |
    awk '/^ *Compiling / { n++; if ($2 == "clampify" || n % 50 == 0) { printf "   compiling %s (crate %d)\n", $2, n; fflush() } }
         /^ *(Finished|Blocking) / { sub(/^ +/, ""); print "   " $0; fflush() }'
  local status=${PIPESTATUS[0]}
  if [ "$status" != 0 ]; then
    show_tail "$DEMO_DIR/build.log"
    abort "cargo build --release failed with exit status $status"
  fi
  [ -x "$CLAMPIFY" ] || abort "the build succeeded but $CLAMPIFY is missing"
}

# Returns success when PID is a running `clampify ... watch` process.
is_clampify_agent() {
  local pid=$1
  pid_running "$pid" &&
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = clampify ] &&
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qw watch
}

# Sends SIGTERM to the agent PID and waits up to 15 s, then sends SIGKILL.
stop_agent_pid() {
  local pid=$1
  kill -TERM "$pid" 2> /dev/null || return 0
  for _ in $(seq 1 150); do
    pid_running "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null || true
  fail "agent (pid $pid) was still running 15 s after SIGTERM; sent SIGKILL"
}

# Prints the `--json list` entries whose device_id is one of the given container IDs.
ports_of_containers() {
  local ids
  ids=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
  "$CLAMPIFY" --openrc "$OPENRC" --json list |
    jq -c --argjson ids "$ids" '.[] | select(.device_id as $d | $ids | index($d))'
}

# Waits up to DETACH_TIMEOUT seconds until no Clampify port of the given containers is left.
wait_ports_deleted() {
  local deadline=$(( $(date +%s) + DETACH_TIMEOUT )) left
  while [ "$(date +%s)" -lt "$deadline" ]; do
    left=$(ports_of_containers "$@") || left=error
    [ -n "$left" ] || return 0
    sleep 0.5
  done
  return 1
}

# Removes what an interrupted run left: its agent (by the PID file) and cfy-demo-* containers.
# While that agent still runs it deletes the ports of the removed containers. Otherwise the
# new agent deletes them when it reconciles at start.
clean_previous_run() {
  local old_pid="" names
  if [ -f "$AGENT_PIDFILE" ] && is_clampify_agent "$(cat "$AGENT_PIDFILE")"; then
    old_pid=$(cat "$AGENT_PIDFILE")
  fi
  mapfile -t LEFTOVER_IDS < <(docker ps -aq --no-trunc --filter 'name=^/cfy-demo-')
  [ -n "$old_pid" ] || [ ${#LEFTOVER_IDS[@]} -gt 0 ] || return 0

  step "clean up the previous run"
  if [ ${#LEFTOVER_IDS[@]} -gt 0 ]; then
    names=$(docker inspect --format '{{.Name}}' "${LEFTOVER_IDS[@]}" | tr -d / | paste -sd' ')
    docker rm -f "${LEFTOVER_IDS[@]}" > /dev/null || abort "docker rm -f $names failed"
    pass "removed containers $names"
  fi
  if [ -n "$old_pid" ]; then
    if [ ${#LEFTOVER_IDS[@]} -gt 0 ]; then
      wait_ports_deleted "${LEFTOVER_IDS[@]}" ||
        info "the previous agent did not delete every port in ${DETACH_TIMEOUT}s; the new agent deletes the rest"
    fi
    stop_agent_pid "$old_pid"
    pass "stopped the previous agent (pid $old_pid)"
  fi
  rm -f "$AGENT_PIDFILE"
}

# Prints one line per other Clampify run on this machine: a `clampify watch` in this network
# namespace, or a running container named cfy-* that is not the demo's. Agents of simulated
# hosts run in their own namespaces, and the end-to-end tests name their containers cfy-*.
other_clampify_runs() {
  local own_netns pid stat comm args
  own_netns=$(readlink /proc/self/ns/net)
  while read -r pid stat comm args; do
    [ "$comm" = clampify ] || continue
    case " $args " in *" watch "*) ;; *) continue ;; esac
    case $stat in Z*) continue ;; esac
    [ "$pid" != "$AGENT_PID" ] || continue
    [ "$(readlink "/proc/$pid/ns/net" 2> /dev/null)" = "$own_netns" ] || continue
    # An agent of another dockerd leaves this dockerd's ports alone: each port records the
    # data root of the dockerd it was made for.
    case " $args " in
      *" --docker-host "*|*" --docker-host="*)
        case " $args " in *"unix:///var/run/docker.sock"*|*"unix:///run/docker.sock"*) ;; *) continue ;; esac ;;
    esac
    echo "clampify watch (pid $pid)"
  done < <(ps -eo pid=,stat=,comm=,args=)
  docker ps --filter 'name=^/cfy-' --format '{{.Names}}' | grep -v '^cfy-demo-' |
    sed 's/^/container /'
}

# Prints the other Clampify runs on one line: the first 4 and the count of the rest.
summarize_other_runs() {
  other_clampify_runs | awk '{ if (NR <= 4) line = line (NR > 1 ? ", " : "") $0 }
    END { if (NR > 4) line = line ", and " NR - 4 " more"; print line }'
}

# Two agents with the same host ID fight, because each attaches the containers of its
# dockerd and deletes the ports of containers that its dockerd lacks. So the demo waits.
wait_for_other_runs() {
  local others waited=0
  others=$(summarize_other_runs)
  [ -n "$others" ] || return 0
  step "wait for other Clampify runs on this host (up to ${DEMO_WAIT}s)"
  while [ -n "$others" ]; do
    if [ $((waited % 60)) = 0 ]; then
      info "running: $others"
    fi
    [ "$waited" -lt "$DEMO_WAIT" ] ||
      abort "other Clampify runs are still active on this host after ${DEMO_WAIT}s: $others. Stop them or raise DEMO_WAIT (seconds)"
    sleep 5
    waited=$((waited + 5))
    others=$(summarize_other_runs)
  done
  pass "none left after ${waited}s"
}

start_agent() {
  step "agent (clampify watch demo-net; log $AGENT_LOG)"
  local others
  others=$(docker ps --format '{{.Names}}' | grep -v '^cfy-demo-' | paste -sd' ')
  if [ -n "$others" ]; then
    info "note: the agent also gives these running containers a port on demo-net: $others"
  fi
  # setsid keeps a Ctrl-C in the terminal from reaching the agent, which must outlive the
  # containers so that it deletes their ports. NO_COLOR keeps color codes out of the log.
  NO_COLOR=1 setsid "$CLAMPIFY" --openrc "$OPENRC" watch demo-net > "$AGENT_LOG" 2>&1 &
  AGENT_PID=$!
  # disown keeps bash from printing a "Killed" line when the agent dies. The clean-up stops
  # the agent by its PID.
  disown "$AGENT_PID"
  echo "$AGENT_PID" > "$AGENT_PIDFILE"
  # The agent logs "reconciled" once it follows Docker's events and has reconciled this host.
  local deadline=$(( $(date +%s) + 30 ))
  until grep -q ' reconciled ' "$AGENT_LOG"; do
    pid_running "$AGENT_PID" || abort "the agent exited at start"
    [ "$(date +%s)" -lt "$deadline" ] || abort "timed out after 30 s waiting for the agent's first 'reconciled' log line"
    sleep 0.1
  done
  pass "agent running (pid $AGENT_PID): $(grep -m1 ' reconciled ' "$AGENT_LOG" | sed -E 's/.* reconciled //')"
}

# ---------------------------------------------------------------- containers

# Starts container NAME with `--network none` and extra `docker run` options.
run_container() {
  local name=$1 id
  shift
  # --pull never: the lab builds the image locally, and the demo contacts no registry.
  RUN_AT[$name]=$(date +%s%3N)
  id=$(docker run -d --pull never --name "$name" --network none "$@" "$LAB_IMAGE" sleep 3650d) ||
    abort "docker run $name failed"
  CONTAINER_ID[$name]=$id
  STARTED_NAMES+=("$name")
}

# Prints the global addresses of eth0 in container NAME, one "ADDRESS/PREFIX" a line.
container_addresses() {
  docker exec "$1" ip -o addr show dev eth0 scope global 2> /dev/null | awk '{ print $4 }'
}

# Waits up to ATTACH_TIMEOUT seconds until the agent has plugged container NAME: `clampify
# list` shows an ACTIVE port whose device_id is the container's ID, and every fixed IP of
# that port is on the container's eth0. Then prints both and sets PORT_ID, IPV4 and IPV6.
wait_attached() {
  local name=$1 id=${CONTAINER_ID[$1]} deadline addresses entry ip missing=""
  deadline=$(( $(date +%s) + ATTACH_TIMEOUT ))
  while :; do
    addresses=$(container_addresses "$name")
    if [ -n "$addresses" ]; then
      entry=$(ports_of_containers "$id" | head -n 1)
      if [ -n "$entry" ] && [ "$(jq -r .status <<< "$entry")" = ACTIVE ]; then
        missing=""
        for ip in $(jq -r '.ip_addresses[]' <<< "$entry"); do
          grep -q "^$ip/" <<< "$addresses" || missing+=" $ip"
        done
        [ -n "$missing" ] || break
      fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      abort "timed out after ${ATTACH_TIMEOUT}s waiting for an ACTIVE port of $name with its fixed IPs on eth0${missing:+ (missing:$missing)}"
    fi
    sleep 0.3
  done
  PORT_ID[$name]=$(jq -r .port_id <<< "$entry")
  IPV4[$name]=$(jq -r '[.ip_addresses[] | select(contains("."))][0] // empty' <<< "$entry")
  IPV6[$name]=$(jq -r '[.ip_addresses[] | select(contains(":"))][0] // empty' <<< "$entry")
  pass "$name attached $(seconds_since "${RUN_AT[$name]}") s after docker run"
  info "  Neutron port ${PORT_ID[$name]}: $(jq -r '.ip_addresses | join(" ")' <<< "$entry")"
  info "  ip -o addr show dev eth0 (in the container): $(paste -sd' ' <<< "$addresses")"
}

# Pings ADDRESS from container FROM, with ping6 for an IPv6 address. Tries up to 10 single
# pings of 1 s for a first reply, then sends 3 pings and prints the replies and average time.
check_ping() {
  local from=$1 to=$2 address=$3 ping=ping out sent received avg
  case $address in *:*) ping=ping6 ;; esac
  for _ in $(seq 1 10); do
    docker exec "$from" "$ping" -c 1 -W 1 "$address" > /dev/null 2>&1 && break
  done
  out=$(docker exec "$from" "$ping" -c 3 -i 0.2 -W 2 "$address" 2>&1)
  sent=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<< "$out")
  received=$(sed -nE 's/.* ([0-9]+) packets received.*/\1/p' <<< "$out")
  avg=$(sed -nE 's|^round-trip min/avg/max = [0-9.]+/([0-9.]+)/.*|\1|p' <<< "$out")
  if [ -n "$received" ] && [ "$received" = "$sent" ]; then
    pass "$from → $to $address: $ping $received/$sent replies, avg $avg ms"
  else
    fail "$from → $to $address: $ping ${received:-0}/${sent:-0} replies: $(tail -n 1 <<< "$out")"
  fi
}

# Pings ADDRESS from container FROM and expects packets to go out and none to come back.
check_no_ping() {
  local from=$1 to=$2 address=$3 out sent received
  out=$(docker exec "$from" ping -c 3 -i 0.2 -W 2 "$address" 2>&1)
  sent=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<< "$out")
  received=$(sed -nE 's/.* ([0-9]+) packets received.*/\1/p' <<< "$out")
  if [ "${sent:-0}" -gt 0 ] && [ "$received" = 0 ]; then
    pass "$from → $to $address: 0/$sent replies, as expected"
  else
    fail "$from → $to $address: expected $sent pings sent and none answered: $(tail -n 2 <<< "$out" | paste -sd' ')"
  fi
}

# Sends TRANSFER_BYTES random bytes over TCP from container FROM to container TO with
# busybox nc, and compares their md5sum on both ends.
check_tcp_transfer() {
  local from=$1 to=$2 address=${IPV4[$2]} listening=0 sent_md5 received status started ms
  # The listener reads its stdin from sleep, because busybox nc half-closes the connection
  # when its stdin ends, and the sender then stops early. With busybox 1.35 and stdin
  # /dev/null, 1 KiB of 1 MiB arrived.
  docker exec -d "$to" sh -c "rm -f /tmp/received; sleep 60 | nc -l -p $TCP_PORT > /tmp/received"
  for _ in $(seq 1 50); do
    docker exec "$to" netstat -ltn | grep -q ":$TCP_PORT " && { listening=1; break; }
    sleep 0.1
  done
  if [ $listening = 0 ]; then
    fail "nc in $to is not listening on TCP port $TCP_PORT after 5 s"
    return
  fi
  sent_md5=$(docker exec "$from" sh -c \
    "head -c $TRANSFER_BYTES /dev/urandom > /tmp/sent && md5sum < /tmp/sent" | awk '{ print $1 }')
  started=$(date +%s%3N)
  docker exec "$from" sh -c "timeout 20 nc $address $TCP_PORT < /tmp/sent"
  status=$?
  ms=$(( $(date +%s%3N) - started ))
  received=$(docker exec "$to" sh -c 'echo $(wc -c < /tmp/received) $(md5sum < /tmp/received)' |
    awk '{ print $1, $2 }')
  if [ "$status" = 0 ] && [ "$received" = "$TRANSFER_BYTES $sent_md5" ]; then
    pass "$TRANSFER_BYTES bytes $from → $to $address:$TCP_PORT over TCP in $ms ms, md5sum $sent_md5 on both ends"
  else
    fail "TCP $from → $to $address:$TCP_PORT: nc exit status $status, sent $TRANSFER_BYTES bytes md5sum $sent_md5, received (bytes md5sum) ${received:-nothing}"
  fi
}

show_list() {
  step "clampify list"
  local output line others=0
  if ! output=$("$CLAMPIFY" --openrc "$OPENRC" list 2>&1); then
    fail "clampify list failed: $output"
    return
  fi
  info "$(head -n 1 <<< "$output")"
  while IFS= read -r line; do
    case " ${PORT_ID[*]} " in
      *" ${line%% *} "*) info "$line" ;;
      *) others=$((others + 1)) ;;
    esac
  done < <(tail -n +2 <<< "$output")
  if [ "$others" -gt 0 ]; then
    info "($others more Clampify ports on this host, of other namespaces or containers, are not shown)"
  fi
}

# Prints the IDs of the ports on tenant-b-net that have IP address ADDRESS. Fails when a
# Keystone or Neutron request fails.
tenant_b_ports_with() {
  local network
  LAB_TOKEN=$( . "$OPENRC" && keystone_token "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME")
  [ -n "$LAB_TOKEN" ] || return 1
  network=$(neutron_api GET "/networks?name=tenant-b-net" | jq -er '.networks[0].id') || return 1
  neutron_api GET "/ports?network_id=$network&fixed_ips=ip_address%3D$1" | jq -r '.ports[].id'
}

# ---------------------------------------------------------------- clean-up

# Deletes a Clampify port that outlived its container, in Neutron and on br-int.
delete_leftover_port() {
  local port=$1 row
  for row in $(ovs-vsctl --bare --columns=name find Interface "external_ids:iface-id=$port"); do
    ovs-vsctl --if-exists del-port br-int "$row"
    ip link delete "$row" 2> /dev/null || true
  done
  LAB_TOKEN=$( . "$OPENRC" && keystone_token "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME")
  neutron_api DELETE "/ports/$port" > /dev/null
}

# Removes the OVS rows that Clampify made for the given containers (external_ids:vm-uuid is
# the container ID) and reports each as a failure with CAUSE.
check_ovs_rows_removed() {
  local cause=$1 id row
  shift
  for id in "$@"; do
    for row in $(ovs-vsctl --bare --columns=name find Interface "external_ids:vm-uuid=$id"); do
      ovs-vsctl --if-exists del-port br-int "$row"
      ip link delete "$row" 2> /dev/null || true
      fail "$cause: OVS port $row of removed container ${id:0:12} was left; deleted it"
    done
  done
}

clean_up() {
  local ids=() name left port device cause="Clampify bug"
  [ ${#STARTED_NAMES[@]} -gt 0 ] || [ ${#LEFTOVER_IDS[@]} -gt 0 ] || [ -n "$AGENT_PID" ] || return 0
  step "clean up"
  for name in "${STARTED_NAMES[@]}"; do
    ids+=("${CONTAINER_ID[$name]}")
  done
  if [ ${#ids[@]} -gt 0 ]; then
    if docker rm -f "${ids[@]}" > /dev/null; then
      pass "removed containers ${STARTED_NAMES[*]}"
    else
      fail "docker rm -f ${STARTED_NAMES[*]} failed"
    fi
  fi
  ids+=("${LEFTOVER_IDS[@]}")

  if [ -n "$AGENT_PID" ]; then
    if [ ${#ids[@]} -gt 0 ] && pid_running "$AGENT_PID"; then
      local started
      started=$(date +%s%3N)
      if wait_ports_deleted "${ids[@]}"; then
        pass "the agent deleted the containers' ports in $(( $(date +%s%3N) - started )) ms"
      else
        fail "the agent did not delete every port of the removed containers within ${DETACH_TIMEOUT}s"
      fi
    fi
    if pid_running "$AGENT_PID"; then
      stop_agent_pid "$AGENT_PID"
      pass "agent stopped (pid $AGENT_PID)"
    else
      fail "the agent (pid $AGENT_PID) had exited before the clean-up"
      cause="the agent had exited"
    fi
    rm -f "$AGENT_PIDFILE"
  fi

  [ ${#ids[@]} -gt 0 ] && [ -x "$CLAMPIFY" ] || return 0
  local failures_before=$FAILURES
  if ! left=$(ports_of_containers "${ids[@]}"); then
    fail "could not list the Clampify ports of this host to check for leftovers"
    return
  fi
  while read -r port device; do
    if delete_leftover_port "$port"; then
      fail "$cause: Neutron port $port of removed container ${device:0:12} was left; deleted it"
    else
      fail "$cause: Neutron port $port of removed container ${device:0:12} was left, and deleting it failed"
    fi
  done < <(jq -r '"\(.port_id) \(.device_id)"' <<< "$left")
  check_ovs_rows_removed "$cause" "${ids[@]}"
  if [ "$FAILURES" = "$failures_before" ]; then
    pass "no Neutron port or OVS port of the demo's containers is left on host $LAB_HOST"
  fi
}

print_kept() {
  [ ${#STARTED_NAMES[@]} -gt 0 ] || [ -n "$AGENT_PID" ] || return 0
  step "kept (KEEP=1)"
  info "containers: ${STARTED_NAMES[*]:-none}"
  if [ -n "$AGENT_PID" ]; then
    info "agent: pid $AGENT_PID, log $AGENT_LOG"
  fi
  info "to clean up, run 'make demo' again, which removes them first, or by hand:"
  info "  docker rm -f ${STARTED_NAMES[*]}"
  info "  then, once '$CLAMPIFY --openrc $OPENRC list' no longer shows their ports:"
  info "  kill $AGENT_PID"
}

# Runs on every exit, Ctrl-C included: cleans up unless KEEP=1, then prints the outcome.
finish() {
  local status=$? others
  trap - EXIT INT TERM
  [ "$status" = 0 ] && [ "$FAILURES" -gt 0 ] && status=1
  if [ "$KEEP" = 1 ]; then
    print_kept
  else
    clean_up
  fi
  [ "$FAILURES" = 0 ] || status=1
  if [ "$INTERRUPTED" = 1 ]; then
    echo "== demo interrupted after $(elapsed)"
    exit "$status"
  fi
  if [ "$status" != 0 ] && [ -s "$AGENT_LOG" ] && [ -n "$AGENT_PID" ]; then
    echo "== agent log, last 30 lines of $AGENT_LOG"
    show_tail "$AGENT_LOG"
    # An agent with the same host ID deletes the ports of containers that its dockerd lacks.
    others=$(summarize_other_runs)
    [ -z "$others" ] || info "note: other Clampify runs were active at the end, and may have changed the demo's ports: $others"
  fi
  if [ "$status" = 0 ]; then
    echo "== demo passed in $(elapsed)"
  else
    echo "== demo FAILED in $(elapsed): $FAILURES failed $( [ "$FAILURES" = 1 ] && echo check || echo checks); logs in $DEMO_DIR"
  fi
  exit "$status"
}

# ---------------------------------------------------------------- main

trap finish EXIT
trap 'INTERRUPTED=1; echo; echo "   interrupted"; exit 130' INT TERM

check_prerequisites
start_lab
build
clean_previous_run
wait_for_other_runs
start_agent

step "two containers on demo-net (--network none; the agent's default network)"
run_container cfy-demo-a
run_container cfy-demo-b
wait_attached cfy-demo-a
wait_attached cfy-demo-b

step "cfy-demo-a and cfy-demo-b talk"
check_ping cfy-demo-a cfy-demo-b "${IPV4[cfy-demo-b]}"
check_ping cfy-demo-b cfy-demo-a "${IPV4[cfy-demo-a]}"
if [ -n "${IPV6[cfy-demo-a]}" ] && [ -n "${IPV6[cfy-demo-b]}" ]; then
  check_ping cfy-demo-a cfy-demo-b "${IPV6[cfy-demo-b]}"
  check_ping cfy-demo-b cfy-demo-a "${IPV6[cfy-demo-a]}"
else
  info "no IPv6 ping: a port has no IPv6 address"
fi
check_tcp_transfer cfy-demo-a cfy-demo-b

show_list

step "tenant-b container on tenant-b-net (same 198.51.100.0/24)"
# Asking for cfy-demo-a's IPv4 address shows that the two networks' address spaces are
# separate. A port on tenant-b-net that already has the address would make the attach fail.
twin=${IPV4[cfy-demo-a]}
if ! taken=$(tenant_b_ports_with "$twin"); then
  info "could not look up $twin on tenant-b-net; Neutron picks the address"
  run_container cfy-demo-tenant-b --label clampify.networks=tenant-b-net
elif [ -n "$taken" ]; then
  info "$twin is taken on tenant-b-net by port $taken; Neutron picks the address"
  run_container cfy-demo-tenant-b --label clampify.networks=tenant-b-net
else
  info "label clampify.ips=$twin asks for the IPv4 address of cfy-demo-a"
  run_container cfy-demo-tenant-b --label clampify.networks=tenant-b-net --label "clampify.ips=$twin"
fi
wait_attached cfy-demo-tenant-b
for name in cfy-demo-a cfy-demo-b; do
  if [ "${IPV4[cfy-demo-tenant-b]}" = "${IPV4[$name]}" ]; then
    info "cfy-demo-tenant-b has the same address as $name, ${IPV4[$name]}, on another network"
    twin_of=$name
  fi
done
for name in cfy-demo-a cfy-demo-b; do
  # Pinging its own address would only reach the container itself.
  [ "$name" = "${twin_of:-}" ] || check_no_ping cfy-demo-tenant-b "$name" "${IPV4[$name]}"
done
info "positive control: the demo containers still reach each other"
check_ping cfy-demo-b cfy-demo-a "${IPV4[cfy-demo-a]}"
check_ping cfy-demo-a cfy-demo-b "${IPV4[cfy-demo-b]}"
