#!/bin/bash
# Print one line per lab server (running or not, pid, who started it), one per demo network
# and one per simulated cluster host. Exits 1 when a server is down or a network is missing.
set -uo pipefail
LAB_SCRIPT=lab-status
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

FAILURES=0

# Arguments: name, pid file, and a marker file whose presence means the lab started it.
print_server() {
  local name=$1 pidfile=$2 marker=${3:-} owner=""
  if [ -n "$marker" ]; then
    if [ -f "$marker" ]; then owner="  (started by the lab)"; else owner="  (not started by the lab)"; fi
  fi
  if pidfile_running "$pidfile"; then
    printf '%-32s running  pid %s%s\n' "$name" "$(cat "$pidfile")" "$owner"
  else
    printf '%-32s stopped\n' "$name"
    FAILURES=$((FAILURES + 1))
  fi
}

print_dockerd() {
  if [ -f "$LAB_RUN/dockerd.started-by-lab" ]; then
    print_server dockerd "$LAB_RUN/dockerd.pid" "$LAB_RUN/dockerd.started-by-lab"
  elif timeout 5 docker -H "$HOST_DOCKER_SOCK" version > /dev/null 2>&1; then
    printf '%-32s running  pid %s  (not started by the lab)\n' dockerd \
      "$(cat /var/run/docker.pid 2>/dev/null || echo '?')"
  else
    printf '%-32s stopped\n' dockerd
    FAILURES=$((FAILURES + 1))
  fi
}

print_networks() {
  local name id
  if [ ! -f "$LAB_DIR/openrc" ]; then
    printf '%-32s unknown  (no %s)\n' networks "$LAB_DIR/openrc"
    FAILURES=$((FAILURES + 1))
    return
  fi
  # shellcheck disable=SC1091
  . "$LAB_DIR/openrc"
  LAB_TOKEN=$(keystone_token "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME" 2>/dev/null)
  for name in demo-net tenant-b-net; do
    if [ -z "$LAB_TOKEN" ]; then
      printf '%-32s unknown  (no Keystone token)\n' "network $name"
      FAILURES=$((FAILURES + 1))
      continue
    fi
    id=$(neutron_api GET "/networks?name=$name" 2>/dev/null | jq -r '.networks[0].id // empty')
    if [ -n "$id" ]; then
      printf '%-32s present  id %s\n' "network $name" "$id"
    else
      printf '%-32s missing\n' "network $name"
      FAILURES=$((FAILURES + 1))
    fi
  done
}

print_cluster_hosts() {
  local dir host state
  for dir in "$LAB_CLUSTER"/host*/; do
    [ -d "$dir" ] || continue
    host=$(basename "$dir")
    state=""
    for daemon in ovsdb-server ovs-vswitchd ovn-controller dockerd; do
      if pidfile_running "$dir/run/$daemon.pid"; then
        state+=" $daemon=$(cat "$dir/run/$daemon.pid")"
      else
        state+=" $daemon=stopped"
        FAILURES=$((FAILURES + 1))
      fi
    done
    printf '%-32s%s\n' "cluster $host" "$state"
  done
}

print_server ovsdb-server $OVS_RUN/ovsdb-server.pid "$LAB_RUN/ovs.started-by-lab"
print_server ovs-vswitchd $OVS_RUN/ovs-vswitchd.pid "$LAB_RUN/ovs.started-by-lab"
print_server "ovsdb-server OVN NB" $OVN_RUN/ovnnb_db.pid "$LAB_RUN/ovn-central.started-by-lab"
print_server "ovsdb-server OVN SB" $OVN_RUN/ovnsb_db.pid "$LAB_RUN/ovn-central.started-by-lab"
print_server ovn-northd $OVN_RUN/ovn-northd.pid "$LAB_RUN/ovn-central.started-by-lab"
print_server "ovn-controller (chassis $LAB_HOST)" $OVN_RUN/ovn-controller.pid \
  "$LAB_RUN/ovn-controller.started-by-lab"
print_server mariadbd "$LAB_RUN/mysqld.pid"
print_server "keystone (127.0.0.1:5000)" "$LAB_RUN/keystone.pid"
print_server "neutron-api (127.0.0.1:9696)" "$LAB_RUN/neutron-api.pid"
print_server neutron-ovn-maintenance-worker "$LAB_RUN/neutron-ovn-maintenance.pid"
print_server neutron-periodic-workers "$LAB_RUN/neutron-periodic.pid"
print_dockerd
print_networks
print_cluster_hosts

[ $FAILURES = 0 ] || exit 1
