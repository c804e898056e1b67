#!/bin/bash
# Start kuryr-libnetwork, the peer that the benchmark compares Clampify with, on the running lab.
# Installs kuryr-libnetwork 18.0.0 and kuryr-lib 3.5.0 from PyPI into their own venv, writes
# their configuration (Keystone password auth as the lab's service user clampify), starts
# kuryr-server on 127.0.0.1:23750 in its own session and registers it with dockerd through
# /etc/docker/plugins/kuryr.spec. Safe to run again: each step checks whether it is done.
# State lives under LAB_DIR/kuryr (default /var/lib/clampify-lab/kuryr). Stop with kuryr-down.sh.
set -Eeuo pipefail
LAB_SCRIPT=kuryr-up
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

KURYR_LIBNETWORK_VERSION=18.0.0
KURYR_LIB_VERSION=3.5.0
KURYR_DIR=$LAB_DIR/kuryr
KURYR_VENV=$KURYR_DIR/venv
KURYR_CONF=$KURYR_DIR/kuryr.conf
KURYR_PIDFILE=$KURYR_DIR/kuryr.pid
KURYR_LOG=$KURYR_DIR/kuryr.log
KURYR_URL=http://127.0.0.1:23750
KURYR_SPEC=/etc/docker/plugins/kuryr.spec
# The versions that pip resolved when this script was written, so that later runs get the
# same dependency set.
KURYR_CONSTRAINTS=$LAB_SRC/../bench/kuryr-constraints.txt
LAB_PYTHON=${LAB_PYTHON:-/usr/bin/python3}
trap 'lab_die "command failed (exit status $?) at kuryr-up.sh line $LINENO"' ERR

create_venv() {
  local stamp=$KURYR_VENV/.clampify-lab-stamp expected constraints=()
  expected="kuryr-libnetwork==$KURYR_LIBNETWORK_VERSION kuryr-lib==$KURYR_LIB_VERSION"
  if [ -f "$KURYR_CONSTRAINTS" ]; then
    constraints=(-c "$KURYR_CONSTRAINTS")
    expected+=" $(sha256sum < "$KURYR_CONSTRAINTS")"
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$expected" ]; then
    lab_log "venv: kuryr-libnetwork $KURYR_LIBNETWORK_VERSION, kuryr-lib $KURYR_LIB_VERSION present"
    return 0
  fi
  lab_log "venv: pip install kuryr-libnetwork==$KURYR_LIBNETWORK_VERSION kuryr-lib==$KURYR_LIB_VERSION"
  "$LAB_PYTHON" -m venv "$KURYR_VENV"
  "$KURYR_VENV/bin/pip" install -q "${constraints[@]}" \
      "kuryr-libnetwork==$KURYR_LIBNETWORK_VERSION" "kuryr-lib==$KURYR_LIB_VERSION" \
      > "$KURYR_DIR/pip.log" 2>&1 \
    || lab_die "pip install failed, see $KURYR_DIR/pip.log"
  [ -x "$KURYR_VENV/libexec/kuryr/ovs" ] \
    || lab_die "kuryr-lib installed no binding scripts in $KURYR_VENV/libexec/kuryr"
  echo "$expected" > "$stamp"
  lab_log "venv: installed"
}

# Prints the kuryr configuration. kuryr-lib runs the binding script named after the port's
# vif_type (ovs on ML2/OVN) from bindir, which pip puts under the venv's libexec.
render_config() {
  # shellcheck disable=SC1091
  . "$LAB_DIR/agent-openrc"
  cat <<EOF
[DEFAULT]
kuryr_uri = $KURYR_URL
capability_scope = local
bindir = $KURYR_VENV/libexec/kuryr
process_external_connectivity = False
log_file = $KURYR_LOG
[binding]
default_driver = kuryr.lib.binding.drivers.veth
enabled_drivers = kuryr.lib.binding.drivers.veth
[neutron]
auth_type = password
auth_url = $OS_AUTH_URL
username = $OS_USERNAME
password = $OS_PASSWORD
project_name = $OS_PROJECT_NAME
user_domain_name = $OS_USER_DOMAIN_NAME
project_domain_name = $OS_PROJECT_DOMAIN_NAME
region_name = $OS_REGION_NAME
endpoint_type = public
EOF
}

# Succeeds when the configuration file changed, so a running kuryr-server must restart.
write_config() {
  local tmp
  tmp=$(mktemp)
  chmod 600 "$tmp"
  render_config > "$tmp"
  if cmp -s "$tmp" "$KURYR_CONF"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$KURYR_CONF"
}

kuryr_responds() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$KURYR_URL/Plugin.Activate" 2>/dev/null)" = 200 ]
}

start_kuryr() {
  if pidfile_running "$KURYR_PIDFILE"; then
    lab_log "kuryr-server: running (pid $(cat "$KURYR_PIDFILE"))"
    return 0
  fi
  if kuryr_responds; then
    lab_die "something not started by this script listens on $KURYR_URL; stop it first"
  fi
  lab_log "kuryr-server: starting on $KURYR_URL"
  setsid "$KURYR_VENV/bin/kuryr-server" --config-file "$KURYR_CONF" \
    > "$KURYR_DIR/kuryr-server.out" 2>&1 < /dev/null &
  echo $! > "$KURYR_PIDFILE"
  for _ in $(seq 1 300); do
    kuryr_responds && break
    pidfile_running "$KURYR_PIDFILE" || break
    sleep 0.1
  done
  kuryr_responds \
    || lab_die "kuryr-server did not respond on $KURYR_URL within 30 s, see $KURYR_DIR/kuryr-server.out and $KURYR_LOG"
}

# dockerd looks plugin specs up by name when a network names the driver, so registering
# needs no dockerd restart.
register_plugin() {
  mkdir -p "$(dirname "$KURYR_SPEC")"
  if [ "$(cat "$KURYR_SPEC" 2>/dev/null)" != "$KURYR_URL" ]; then
    echo "$KURYR_URL" > "$KURYR_SPEC"
  fi
  lab_log "docker: plugin kuryr registered in $KURYR_SPEC"
}

main() {
  [ -f "$LAB_DIR/agent-openrc" ] || lab_die "$LAB_DIR/agent-openrc is missing; run 'make lab' first"
  mkdir -p "$KURYR_DIR"
  create_venv
  if write_config && pidfile_running "$KURYR_PIDFILE"; then
    lab_log "kuryr-server: configuration changed, restarting"
    stop_by_pidfile kuryr-server "$KURYR_PIDFILE" 20
  fi
  start_kuryr
  register_plugin
  lab_log "kuryr is up: $KURYR_URL, pid $(cat "$KURYR_PIDFILE"), log $KURYR_LOG"
}

main "$@"
