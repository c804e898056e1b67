#!/bin/bash
# Stop what kuryr-up.sh started: remove the benchmark's kuryr Docker networks (named
# cfy-bench-*) and their containers while kuryr-server still runs, so that kuryr deletes
# their Neutron ports and networks, then stop kuryr-server by its pid file and remove the
# plugin spec. The venv and configuration under LAB_DIR/kuryr stay for the next kuryr-up.sh.
# Teardown goes on past a failed step.
set -uo pipefail
LAB_SCRIPT=kuryr-down
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

KURYR_DIR=$LAB_DIR/kuryr
KURYR_SPEC=/etc/docker/plugins/kuryr.spec

remove_networks() {
  local network containers others
  for network in $(docker network ls -q --filter driver=kuryr --filter name=^cfy-bench- 2>/dev/null); do
    containers=$(docker ps -aq --filter "network=$network")
    [ -z "$containers" ] || docker rm -f $containers > /dev/null
    if docker network rm "$network" > /dev/null; then
      lab_log "removed kuryr network $network"
    else
      lab_log "could not remove kuryr network $network; its Neutron network may remain"
    fi
  done
  others=$(docker network ls --filter driver=kuryr --format '{{.Name}}' 2>/dev/null)
  [ -z "$others" ] || lab_log "kuryr networks not made by the benchmark stay: $others"
}

main() {
  if pidfile_running "$KURYR_DIR/kuryr.pid"; then
    remove_networks
  fi
  stop_by_pidfile kuryr-server "$KURYR_DIR/kuryr.pid" 20
  if [ -f "$KURYR_SPEC" ]; then
    rm -f "$KURYR_SPEC"
    lab_log "removed $KURYR_SPEC"
  fi
}

main "$@"
