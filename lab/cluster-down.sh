#!/bin/bash
# Remove simulated hosts made by cluster-up.sh.
#   usage: cluster-down.sh [hostN ...]     (default: all of them)
# For each host it removes its containers while its Clampify agent (if one is recorded in
# run/clampify-agent.pid) still runs, so that the agent deletes their ports. Then it stops the
# agent, dockerd, the API relay, ovn-controller (which deletes its chassis), ovs-vswitchd and
# ovsdb-server by pid file. It deletes the Neutron ports still bound to the host, and the
# host's netns, underlay veth and state directory. Once no simulated host is left, host1 gets
# back its original tunnel address and br-ul is deleted, so the lab is a single host again.
set -uo pipefail
LAB_SCRIPT=cluster-down
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

# Unmounts every mount point below DIR, deepest first.
unmount_below() {
  local mount_point
  awk -v prefix="$1/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r mount_point; do
        umount "$mount_point" 2>/dev/null || umount -l "$mount_point"
      done
}

# Succeeds when PIDFILE names a running process whose command line contains PATTERN, so that
# a stale pid file never gets an unrelated process signalled.
pidfile_runs() {
  local pidfile=$1 pattern=$2
  pidfile_running "$pidfile" \
    && tr '\0' ' ' < "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# Logs in once as the lab admin, who can list the ports of every project. Fails when Keystone
# issues no token.
neutron_login() {
  [ -n "${LAB_TOKEN:-}" ] && return 0
  # shellcheck disable=SC1091
  LAB_TOKEN=$( . "$LAB_DIR/openrc" && keystone_token "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME" 2>/dev/null)
  [ -n "$LAB_TOKEN" ]
}

# Prints the IDs of the Neutron ports bound to HOST, optionally only those of DEVICE_OWNER.
host_ports() {
  local host=$1 owner=${2:-}
  neutron_api GET "/ports?binding:host_id=$host${owner:+&device_owner=$owner}&fields=id" \
    | jq -r '.ports[].id'
}

# Containers go first, so that no containerd shim outlives its dockerd, and while the agent
# runs, so that it deletes their ports as it would on a real host.
remove_host_containers() {
  local host=$1 dir=$LAB_CLUSTER/$1 sock="unix://$LAB_SOCK_DIR/docker-$1.sock" ids
  pidfile_running "$dir/run/dockerd.pid" || return 0
  ids=$(timeout 30 docker -H "$sock" ps -aq)
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  timeout 60 docker -H "$sock" rm -f $ids > /dev/null && lab_log "$host: removed containers $(echo $ids)"
  if pidfile_runs "$dir/run/clampify-agent.pid" clampify && neutron_login; then
    for _ in $(seq 1 100); do
      [ -z "$(host_ports "$host" compute:clampify)" ] && return 0
      sleep 0.1
    done
    lab_log "$host: the agent left ports of removed containers after 10 s"
  fi
}

stop_host_agent() {
  local host=$1 dir=$LAB_CLUSTER/$1
  if pidfile_runs "$dir/run/clampify-agent.pid" clampify; then
    stop_by_pidfile "$host clampify agent" "$dir/run/clampify-agent.pid"
  fi
  rm -f "$dir/run/clampify-agent.pid"
}

# A port bound to a host that no longer exists can never be plugged again.
delete_host_ports() {
  local host=$1 port count=0
  if ! neutron_login; then
    lab_log "$host: Keystone issued no token, so Neutron ports still bound to $host are left"
    return 0
  fi
  for port in $(host_ports "$host"); do
    neutron_api DELETE "/ports/$port" > /dev/null && count=$((count + 1))
  done
  [ "$count" = 0 ] || lab_log "$host: deleted $count Neutron ports still bound to it"
}

stop_host_dockerd() {
  local host=$1 dir=$LAB_CLUSTER/$1
  stop_by_pidfile "$host dockerd" "$dir/run/dockerd.pid" 30
  # dockerd bind-mounts its netns at <exec-root>/netns/default and leaves it mounted on exit.
  unmount_below "$LAB_SOCK_DIR/docker-$host"
  unmount_below "$dir/docker"
  rm -rf "$LAB_SOCK_DIR/docker-$host" "$LAB_SOCK_DIR/docker-$host.sock"
  # rmdir removes only the empty cgroup directories that --cgroup-parent created.
  local cgroup
  for cgroup in /sys/fs/cgroup/*/clampify-lab-"$host" /sys/fs/cgroup/clampify-lab-"$host"; do
    [ -d "$cgroup" ] && rmdir "$cgroup" 2>/dev/null
  done
  return 0
}

remove_host_ovn_controller() {
  local host=$1 dir=$LAB_CLUSTER/$1 pid
  if pidfile_running "$dir/run/ovn-controller.pid"; then
    pid=$(cat "$dir/run/ovn-controller.pid")
    # "exit" makes ovn-controller delete its own Chassis and Encap rows.
    timeout 10 ovn-appctl -t "$dir/run/ovn-controller.$pid.ctl" exit > /dev/null 2>&1
    for _ in $(seq 1 100); do
      pid_running "$pid" || break
      sleep 0.1
    done
    pid_running "$pid" || lab_log "$host: stopped ovn-controller (pid $pid), chassis removed"
    stop_by_pidfile "$host ovn-controller" "$dir/run/ovn-controller.pid"
  fi
  if [ -n "$(ovn-sbctl --db="$OVN_SB" --timeout=5 --bare --columns=name find Chassis name="$host" 2>/dev/null)" ]; then
    ovn-sbctl --db="$OVN_SB" --timeout=5 chassis-del "$host" && lab_log "$host: deleted lingering chassis"
  fi
}

remove_host() {
  local host=$1 dir=$LAB_CLUSTER/$1
  remove_host_containers "$host"
  stop_host_agent "$host"
  stop_host_dockerd "$host"
  delete_host_ports "$host"
  if pidfile_runs "$dir/run/api-relay.pid" cluster-relay; then
    stop_by_pidfile "$host API relay" "$dir/run/api-relay.pid"
  fi
  remove_host_ovn_controller "$host"
  stop_by_pidfile "$host ovs-vswitchd" "$dir/run/ovs-vswitchd.pid"
  stop_by_pidfile "$host ovsdb-server" "$dir/run/ovsdb-server.pid"
  ovs-vsctl --timeout=5 --if-exists del-port br-ul "ul-$host" 2>/dev/null
  ip link del "ul-$host" 2>/dev/null
  if ip netns list | grep -qw "^$host"; then
    ip netns del "$host" && lab_log "$host: netns deleted"
  fi
  if ! rm -rf "$dir"; then
    lab_log "$host: could not delete $dir completely (a mount left behind by dockerd?)"
  fi
  rm -f "$LAB_CLUSTER/$host.env"
}

# Counts simulated hosts whose ovs-vswitchd still runs.
count_remaining_hosts() {
  local dir count=0
  for dir in "$LAB_CLUSTER"/host*/; do
    [ -d "$dir" ] && pidfile_running "$dir/run/ovs-vswitchd.pid" && count=$((count + 1))
  done
  echo "$count"
}

restore_host1() {
  local original
  if [ -f "$LAB_CLUSTER/host1.encap-ip.orig" ]; then
    original=$(cat "$LAB_CLUSTER/host1.encap-ip.orig")
    ovs-vsctl --timeout=5 set Open_vSwitch . external_ids:ovn-encap-ip="$original" \
      && rm -f "$LAB_CLUSTER/host1.encap-ip.orig" \
      && lab_log "host1: ovn-encap-ip back to $original"
  fi
  ovs-vsctl --timeout=5 --if-exists del-br br-ul 2>/dev/null
  rm -f "$LAB_CLUSTER/host1.env"
  rmdir "$LAB_CLUSTER" "$LAB_SOCK_DIR" 2>/dev/null
  lab_log "cluster removed; the lab is a single host again"
}

main() {
  local hosts=("$@") dir remaining
  if [ ${#hosts[@]} -eq 0 ]; then
    for dir in "$LAB_CLUSTER"/host*/; do
      [ -d "$dir" ] && hosts+=("$(basename "$dir")")
    done
  fi
  for host in "${hosts[@]}"; do
    [[ "$host" =~ ^host[0-9]+$ ]] || { echo "cluster-down: error: invalid host name '$host'" >&2; exit 2; }
    remove_host "$host"
  done
  remaining=$(count_remaining_hosts)
  if [ "$remaining" = 0 ]; then
    restore_host1
  else
    lab_log "$remaining simulated hosts still up; host1 keeps br-ul and its underlay address"
  fi
}

main "$@"
