#!/bin/bash
# Stop the servers that up.sh started, using their pid files only.
#   down.sh          Stops Neutron, Keystone and MariaDB. OVN, Open vSwitch and dockerd are
#                    stopped only when up.sh started them, as its marker files in LAB_DIR/run
#                    record.
#   down.sh --purge  Also deletes the lab state, so the next up.sh starts fresh: Keystone and
#                    MariaDB data, passwords, OVN databases, br-int, credentials files, logs.
#                    The Python venv and the Docker image are kept.
# A simulated cluster made by cluster-up.sh is taken down first.
# Teardown goes on past a failed step, so one stuck server does not leave the rest running.
set -uo pipefail
LAB_SCRIPT=lab-down
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

stop_cluster() {
  if compgen -G "$LAB_CLUSTER/host*/" > /dev/null; then
    "$LAB_SRC/cluster-down.sh"
  fi
}

stop_openstack() {
  stop_by_pidfile neutron-periodic-workers "$LAB_RUN/neutron-periodic.pid"
  stop_by_pidfile neutron-ovn-maintenance-worker "$LAB_RUN/neutron-ovn-maintenance.pid"
  stop_by_pidfile neutron-api "$LAB_RUN/neutron-api.pid" 30
  stop_by_pidfile keystone "$LAB_RUN/keystone.pid" 30
  stop_by_pidfile mariadbd "$LAB_RUN/mysqld.pid" 60
}

stop_ovn() {
  local pid
  if [ -f "$LAB_RUN/ovn-controller.started-by-lab" ]; then
    if pidfile_running $OVN_RUN/ovn-controller.pid; then
      pid=$(cat $OVN_RUN/ovn-controller.pid)
      # "exit" makes ovn-controller delete its Chassis row, but SIGTERM would leave it behind.
      timeout 10 ovn-appctl -t "$OVN_RUN/ovn-controller.$pid.ctl" exit > /dev/null 2>&1 || true
      for _ in $(seq 1 100); do
        pid_running "$pid" || break
        sleep 0.1
      done
      pid_running "$pid" || lab_log "stopped ovn-controller (pid $pid), chassis $LAB_HOST removed"
    fi
    stop_by_pidfile ovn-controller $OVN_RUN/ovn-controller.pid
    rm -f "$LAB_RUN/ovn-controller.started-by-lab"
  fi
  if [ -f "$LAB_RUN/ovn-central.started-by-lab" ]; then
    stop_by_pidfile ovn-northd $OVN_RUN/ovn-northd.pid
    stop_by_pidfile ovsdb-server-nb $OVN_RUN/ovnnb_db.pid
    stop_by_pidfile ovsdb-server-sb $OVN_RUN/ovnsb_db.pid
    rm -f "$LAB_RUN/ovn-central.started-by-lab"
  fi
}

stop_dockerd() {
  if [ -f "$LAB_RUN/dockerd.started-by-lab" ]; then
    stop_by_pidfile dockerd "$LAB_RUN/dockerd.pid" 30
    rm -f "$LAB_RUN/dockerd.started-by-lab"
  elif timeout 5 docker -H "$HOST_DOCKER_SOCK" version > /dev/null 2>&1; then
    lab_log "dockerd was not started by the lab: left running"
  fi
}

stop_ovs() {
  if [ -f "$LAB_RUN/ovs.started-by-lab" ]; then
    stop_by_pidfile ovs-vswitchd $OVS_RUN/ovs-vswitchd.pid
    stop_by_pidfile ovsdb-server $OVS_RUN/ovsdb-server.pid
    rm -f "$LAB_RUN/ovs.started-by-lab"
  elif ovs-vsctl --timeout=3 show > /dev/null 2>&1; then
    lab_log "Open vSwitch was not started by the lab: left running"
  fi
}

# Removes br-int and the chassis settings from the Open vSwitch database. When no ovsdb-server
# runs, one is started just for this and stopped again.
purge_ovs_config() {
  local started_here=0
  if ! ovs-vsctl --timeout=3 show > /dev/null 2>&1; then
    [ -f /etc/openvswitch/conf.db ] || return 0
    /usr/share/openvswitch/scripts/ovs-ctl start --no-ovs-vswitchd > /dev/null 2>&1 || {
      lab_log "could not start ovsdb-server to delete br-int; it stays in /etc/openvswitch/conf.db"
      return 0
    }
    started_here=1
  fi
  ovs-vsctl --timeout=10 --no-wait --if-exists del-br br-int
  ovs-vsctl --timeout=10 --no-wait remove Open_vSwitch . external_ids ovn-remote \
    ovn-encap-type ovn-encap-ip ovn-bridge-datapath-type ovn-cms-options
  lab_log "deleted br-int and the ovn-* external_ids from the Open vSwitch database"
  [ $started_here = 0 ] || stop_by_pidfile ovsdb-server $OVS_RUN/ovsdb-server.pid
}

purge_state() {
  local db
  for db in ovnnb_db ovnsb_db; do
    if pidfile_running "$OVN_RUN/$db.pid"; then
      lab_log "$db is served by an ovsdb-server the lab did not start: left in place"
    else
      rm -f "/var/lib/ovn/$db.db" "/var/lib/ovn/.$db.db.~lock~"
    fi
  done
  rm -rf "$LAB_DATA" "$LAB_ETC" "$LAB_RUN" "$LAB_LOGS" "$LAB_CLUSTER" \
    "$LAB_DIR/openrc" "$LAB_DIR/agent-openrc" "$LAB_DIR/clouds.yaml"
  lab_log "purged lab state under $LAB_DIR (the venv is kept) and the OVN databases"
}

main() {
  PURGE=0
  case "${1:-}" in
    --purge) PURGE=1 ;;
    "") ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
  esac
  stop_cluster
  stop_openstack
  stop_ovn
  stop_dockerd
  # br-int must be deleted while the lab's ovsdb-server still runs.
  [ $PURGE = 0 ] || purge_ovs_config
  stop_ovs
  [ $PURGE = 0 ] || purge_state
  lab_log "done"
}

# Sourcing the file only defines its functions, so a test can run single steps.
[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
