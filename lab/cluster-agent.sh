#!/bin/bash
# Start or stop the Clampify agent of one simulated host made by cluster-up.sh.
#   usage: cluster-agent.sh start HOST CLAMPIFY [WATCH_ARGS...]
#          cluster-agent.sh stop HOST
#
# start runs `CLAMPIFY watch WATCH_ARGS` inside the host's network namespace with the host's
# --host, --ovsdb and --docker-host from LAB_DIR/cluster/HOST.env given as flags, the agent's
# credentials from LAB_DIR/agent-openrc, and no configuration file. It writes the agent's PID
# to LAB_DIR/cluster/HOST/run/clampify-agent.pid (where cluster-down.sh looks for it) and its
# log to LAB_DIR/cluster/HOST/log/clampify-agent.log, and returns once the agent has finished
# its first reconcile. stop sends SIGTERM to that PID and waits for the agent to exit.
#
# host1 is rejected because it is the root network namespace, where other agents may run.
set -euo pipefail
LAB_SCRIPT=cluster-agent
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

# Seconds to wait for the first reconcile after the start.
START_TIMEOUT=30

usage() {
  echo "usage: cluster-agent.sh start HOST CLAMPIFY [WATCH_ARGS...] | stop HOST" >&2
  exit 2
}

# Loads HOST's settings and checks that they name a simulated host, never the root namespace.
load_host() {
  local host=$1 env_file=$LAB_CLUSTER/$1.env
  [[ "$host" =~ ^host[0-9]+$ ]] || lab_die "invalid host name '$host', expected hostN"
  [ "$host" != host1 ] || lab_die "host1 is the root network namespace; start its agent by hand"
  [ -f "$env_file" ] || lab_die "$env_file not found: run 'lab/cluster-up.sh' with enough hosts first"
  CLAMPIFY_HOST='' CLAMPIFY_OVSDB='' DOCKER_HOST='' NETNS=''
  # shellcheck disable=SC1090
  . "$env_file"
  [ -n "$CLAMPIFY_HOST" ] && [ -n "$CLAMPIFY_OVSDB" ] && [ -n "$DOCKER_HOST" ] \
    || lab_die "$env_file lacks CLAMPIFY_HOST, CLAMPIFY_OVSDB or DOCKER_HOST"
  [ "$NETNS" = "$host" ] && [ -e "/run/netns/$NETNS" ] \
    || lab_die "$host: network namespace '$NETNS' from $env_file does not exist"
  HOST_DIR=$LAB_CLUSTER/$host
  PID_FILE=$HOST_DIR/run/clampify-agent.pid
  LOG_FILE=$HOST_DIR/log/clampify-agent.log
}

agent_running() {
  pidfile_running "$PID_FILE" && grep -q clampify "/proc/$(cat "$PID_FILE")/cmdline" 2>/dev/null
}

start_agent() {
  local host=$1 clampify=$2 lines pid
  shift 2
  load_host "$host"
  [ -x "$clampify" ] || lab_die "$clampify is not an executable"
  agent_running && lab_die "$host: an agent already runs (pid $(cat "$PID_FILE"))"
  touch "$LOG_FILE"
  lines=$(wc -l < "$LOG_FILE")

  # setsid does not fork here (a background job is no process group leader) and nsenter and
  # env exec, so $! is the agent's own PID.
  setsid nsenter --net="/run/netns/$NETNS" -- env NO_COLOR=1 "$clampify" \
    --config /dev/null --openrc "$LAB_DIR/agent-openrc" --host "$CLAMPIFY_HOST" \
    --ovsdb "$CLAMPIFY_OVSDB" --docker-host "$DOCKER_HOST" watch "$@" \
    >> "$LOG_FILE" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PID_FILE"

  for _ in $(seq 1 $((START_TIMEOUT * 10))); do
    if awk -v from=$((lines + 1)) 'NR >= from && / reconciled / { found = 1 } END { exit !found }' "$LOG_FILE"; then
      lab_log "$host: agent pid $pid started and reconciled"
      return 0
    fi
    pid_running "$pid" || break
    sleep 0.1
  done
  tail -n +$((lines + 1)) "$LOG_FILE" | tail -n 20 >&2
  pid_running "$pid" && kill -TERM "$pid"
  lab_die "$host: agent pid $pid timed out after ${START_TIMEOUT}s waiting for its first reconcile, see $LOG_FILE"
}

stop_agent() {
  load_host "$1"
  if agent_running; then
    stop_by_pidfile "$1 clampify agent" "$PID_FILE"
  else
    rm -f "$PID_FILE"
  fi
}

case "${1:-}" in
  start) [ $# -ge 3 ] || usage; shift; start_agent "$@" ;;
  stop) [ $# -eq 2 ] || usage; stop_agent "$2" ;;
  *) usage ;;
esac
