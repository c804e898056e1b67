#!/bin/bash
# Bring up the Clampify lab on this machine: Open vSwitch, OVN, MariaDB, Keystone, Neutron
# ML2/OVN, dockerd and the test image, plus the projects, users and networks the tests use.
# Every server listens on loopback or a unix socket only. Each step first checks whether its
# work is already done, so a re-run on a running lab only verifies and takes a few seconds.
# State lives under LAB_DIR (default /var/lib/clampify-lab). Stop with down.sh.
set -Eeuo pipefail
LAB_SCRIPT=lab-up
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$LAB_SRC/lib.sh"

KEYSTONE_VERSION=30.0.0
NEUTRON_VERSION=29.0.0
LAB_PYTHON=${LAB_PYTHON:-/usr/bin/python3}
APT_PACKAGES=(openvswitch-switch ovn-central ovn-host mariadb-server docker.io busybox-static
  jq iputils-ping netcat-openbsd ethtool iproute2 curl python3-venv
  # uWSGI is published on PyPI as source only, so pip compiles it.
  gcc python3-dev)
# Neutron's OVN driver fills the DHCP DNS option from the host's /etc/resolv.conf when a subnet
# has no dns_nameservers. This documentation address keeps the real resolver out of the lab.
FALLBACK_DNS=198.51.100.53

LAB_STEP=start
report_failure() {
  local status=$? line=$1
  # Command substitutions inherit this trap. Only the main shell reports, so one failure
  # prints one message.
  [ "$BASH_SUBSHELL" -eq 0 ] || return "$status"
  echo "lab-up: error: step '$LAB_STEP' failed (exit status $status, up.sh line $line)." >&2
  echo "lab-up: server logs are in $LAB_LOGS; fix the cause and run 'make lab' again." >&2
  exit "$status"
}
trap 'report_failure $LINENO' ERR

step() {
  LAB_STEP=$1
}

# ---------------------------------------------------------------- packages and venv

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
  step packages
  local missing=() package created_policy=0 status=0
  for package in "${APT_PACKAGES[@]}"; do
    package_installed "$package" || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    lab_log "packages: all ${#APT_PACKAGES[@]} installed"
    return 0
  fi
  lab_log "packages: apt-get install ${missing[*]}"
  # With policy-rc.d exiting 101, the maintainer scripts start no service, because this
  # script starts each server itself with its own options.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" > "$LAB_LOGS/apt-get.log" 2>&1; } || status=$?
  [ $created_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ $status = 0 ] || lab_die "apt-get install ${missing[*]} failed (status $status), see $LAB_LOGS/apt-get.log"
  lab_log "packages: installed"
}

create_venv() {
  step venv
  local stamp=$LAB_VENV/.clampify-lab-stamp expected
  expected="keystone==$KEYSTONE_VERSION neutron==$NEUTRON_VERSION $(sha256sum < "$LAB_SRC/constraints.txt")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$expected" ]; then
    lab_log "venv: keystone $KEYSTONE_VERSION, neutron $NEUTRON_VERSION present"
    return 0
  fi
  lab_log "venv: pip install keystone==$KEYSTONE_VERSION neutron==$NEUTRON_VERSION (about a minute)"
  "$LAB_PYTHON" -m venv "$LAB_VENV"
  "$LAB_VENV/bin/pip" install -q -c "$LAB_SRC/constraints.txt" \
      "keystone==$KEYSTONE_VERSION" "neutron==$NEUTRON_VERSION" \
      python-openstackclient uWSGI PyMySQL > "$LAB_LOGS/pip.log" 2>&1 \
    || lab_die "pip install failed, see $LAB_LOGS/pip.log"
  echo "$expected" > "$stamp"
  lab_log "venv: installed"
}

# Creates the passwords once and keeps them in the data directory, so a purge renews them
# together with the databases that store them.
load_secrets() {
  step secrets
  SECRETS_CREATED=0
  if [ ! -f "$LAB_SECRETS" ]; then
    (
      umask 077
      for name in ADMIN NEUTRON CLAMPIFY DEMO NEUTRON_DB; do
        echo "${name}_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')"
      done > "$LAB_SECRETS"
    )
    SECRETS_CREATED=1
  fi
  # shellcheck disable=SC1090
  . "$LAB_SECRETS"
}

# ---------------------------------------------------------------- Open vSwitch and OVN

start_ovs() {
  step "Open vSwitch"
  if ovs-vsctl --timeout=3 show > /dev/null 2>&1; then
    lab_log "ovs: running (pid $(cat $OVS_RUN/ovs-vswitchd.pid 2>/dev/null || echo '?'))"
    return 0
  fi
  lab_log "ovs: starting ovsdb-server and ovs-vswitchd"
  # The kernel may lack the openvswitch module, so every lab bridge uses the userspace
  # (netdev) datapath.
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id="$LAB_HOST" \
    > "$LAB_LOGS/ovs-ctl.log" 2>&1 || lab_die "ovs-ctl start failed, see $LAB_LOGS/ovs-ctl.log"
  touch "$LAB_RUN/ovs.started-by-lab"
  ovs-vsctl --timeout=10 show > /dev/null
}

start_ovn() {
  step OVN
  if pidfile_running $OVN_RUN/ovnnb_db.pid && pidfile_running $OVN_RUN/ovnsb_db.pid &&
     pidfile_running $OVN_RUN/ovn-northd.pid; then
    lab_log "ovn: NB, SB and northd running"
  else
    lab_log "ovn: starting NB and SB ovsdb-server and ovn-northd (unix sockets only)"
    /usr/share/ovn/scripts/ovn-ctl start_northd > "$LAB_LOGS/ovn-ctl.log" 2>&1 \
      || lab_die "ovn-ctl start_northd failed, see $LAB_LOGS/ovn-ctl.log"
    touch "$LAB_RUN/ovn-central.started-by-lab"
  fi

  # ovn-controller reads its chassis settings from the local Open_vSwitch row. The chassis
  # name must equal the binding:host_id that Neutron ports are given.
  ovs-vsctl set Open_vSwitch . \
    external_ids:system-id="$LAB_HOST" \
    external_ids:hostname="$LAB_HOST" \
    external_ids:ovn-remote="$OVN_SB" \
    external_ids:ovn-encap-type=geneve \
    external_ids:ovn-bridge-datapath-type=netdev \
    external_ids:ovn-cms-options=enable-chassis-as-gw
  # cluster-up.sh moves the tunnel endpoint to an underlay address, so keep any value it set.
  if ! ovs-vsctl get Open_vSwitch . external_ids:ovn-encap-ip > /dev/null 2>&1; then
    ovs-vsctl set Open_vSwitch . external_ids:ovn-encap-ip=127.0.0.1
  fi

  if pidfile_running $OVN_RUN/ovn-controller.pid; then
    lab_log "ovn: ovn-controller running"
  else
    lab_log "ovn: starting ovn-controller (chassis $LAB_HOST)"
    /usr/share/ovn/scripts/ovn-ctl start_controller >> "$LAB_LOGS/ovn-ctl.log" 2>&1 \
      || lab_die "ovn-ctl start_controller failed, see $LAB_LOGS/ovn-ctl.log"
    touch "$LAB_RUN/ovn-controller.started-by-lab"
  fi
  wait_for_chassis
}

wait_for_chassis() {
  for _ in $(seq 1 150); do
    if [ -n "$(ovn-sbctl --db="$OVN_SB" --timeout=2 --bare --columns=name \
                 find Chassis name="$LAB_HOST" 2>/dev/null)" ]; then
      ovs-vsctl --timeout=10 wait-until bridge br-int datapath_type=netdev
      lab_log "ovn: chassis $LAB_HOST registered, br-int (netdev) present"
      return 0
    fi
    sleep 0.1
  done
  lab_die "chassis $LAB_HOST did not appear in the OVN SB within 15 s, see /var/log/ovn/ovn-controller.log"
}

# ---------------------------------------------------------------- MariaDB

start_mariadb() {
  step MariaDB
  if pidfile_running "$LAB_RUN/mysqld.pid"; then
    lab_log "mariadb: running"
  else
    if [ ! -d "$LAB_DATA/mysql/mysql" ]; then
      lab_log "mariadb: initializing $LAB_DATA/mysql"
      mkdir -p "$LAB_DATA/mysql"
      mariadb-install-db --no-defaults --datadir="$LAB_DATA/mysql" --user=root --skip-test-db \
          --auth-root-authentication-method=socket > "$LAB_LOGS/mariadb-install.log" 2>&1 \
        || lab_die "mariadb-install-db failed, see $LAB_LOGS/mariadb-install.log"
    fi
    lab_log "mariadb: starting on $MYSQL_SOCK (no TCP)"
    # Neutron's migrations and concurrent writers need a real database server, and the
    # durability settings are relaxed because the lab data is disposable.
    setsid mariadbd --no-defaults --datadir="$LAB_DATA/mysql" --socket="$MYSQL_SOCK" \
      --pid-file="$LAB_RUN/mysqld.pid" --skip-networking --user=root \
      --log-error="$LAB_LOGS/mariadb.err" --innodb-buffer-pool-size=256M \
      --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --skip-log-bin \
      --character-set-server=utf8mb3 --collation-server=utf8mb3_general_ci \
      > /dev/null 2>&1 < /dev/null &
    for _ in $(seq 1 300); do
      mariadb-admin --socket="$MYSQL_SOCK" ping > /dev/null 2>&1 && break
      sleep 0.1
    done
    mariadb-admin --socket="$MYSQL_SOCK" ping > /dev/null 2>&1 \
      || lab_die "mariadbd did not respond within 30 s, see $LAB_LOGS/mariadb.err"
  fi
  mariadb --socket="$MYSQL_SOCK" -e "
    CREATE DATABASE IF NOT EXISTS neutron CHARACTER SET utf8;
    CREATE USER IF NOT EXISTS 'neutron'@'localhost';
    ALTER USER 'neutron'@'localhost' IDENTIFIED BY '$NEUTRON_DB_PASSWORD';
    GRANT ALL ON neutron.* TO 'neutron'@'localhost';"
}

# ---------------------------------------------------------------- configuration files

# Installs stdin as FILE when it differs from FILE. Succeeds only when FILE changed.
config_updated() {
  local file=$1 tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  chmod 600 "$tmp"
  mv "$tmp" "$file"
}

render_keystone_conf() {
  cat <<EOF
[DEFAULT]
log_file = $LAB_LOGS/keystone.log
[database]
# timeout: a writer waits up to 30 s for SQLite's lock instead of failing at once with
# "database is locked" (HTTP 500) when logins from several agents run at the same time.
connection = sqlite:///$LAB_DATA/keystone.db?timeout=30
[token]
provider = fernet
[fernet_tokens]
key_repository = $LAB_DATA/fernet-keys
[credential]
key_repository = $LAB_DATA/credential-keys
[cache]
enabled = false
EOF
}

# Arguments: port, WSGI module, pid file name, extra "env = ..." lines.
render_uwsgi_ini() {
  cat <<EOF
[uwsgi]
http-socket = 127.0.0.1:$1
module = $2
virtualenv = $LAB_VENV
$4
env = PYTHONWARNINGS=ignore
master = true
processes = ${5:-1}
threads = 1
enable-threads = true
lazy-apps = true
die-on-term = true
exit-on-reload = false
hook-master-start = unix_signal:15 gracefully_kill_them_all
thunder-lock = true
worker-reload-mercy = 80
buffer-size = 65535
add-header = Connection: close
pidfile = $LAB_RUN/$3
daemonize = $LAB_LOGS/${3%.pid}-uwsgi.log
EOF
}

render_neutron_conf() {
  cat <<EOF
[DEFAULT]
host = $LAB_HOST
core_plugin = ml2
service_plugins = ovn-router
auth_strategy = keystone
# The in-process fake driver replaces RabbitMQ. ML2/OVN needs no RPC to agents because
# ovn-controller reads the OVN southbound database.
transport_url = fake:/
api_paste_config = $LAB_ETC/neutron/api-paste.ini
state_path = $LAB_DATA/neutron
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false
allow_overlapping_ips = true
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
log_file = $LAB_LOGS/neutron-api.log
[database]
connection = mysql+pymysql://neutron:$NEUTRON_DB_PASSWORD@localhost/neutron?unix_socket=$MYSQL_SOCK&charset=utf8
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $NEUTRON_PASSWORD
service_token_roles_required = true
[oslo_concurrency]
lock_path = $LAB_DATA/neutron/lock
[oslo_messaging_notifications]
driver = noop
EOF
}

render_ml2_conf() {
  cat <<EOF
[ml2]
type_drivers = geneve,flat
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security
overlay_ip_version = 4
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[ml2_type_flat]
flat_networks = *
[securitygroup]
enable_security_group = true
[ovn]
ovn_nb_connection = unix:$OVN_RUN/ovnnb_db.sock
ovn_sb_connection = unix:$OVN_RUN/ovnsb_db.sock
ovn_l3_scheduler = leastloaded
ovn_metadata_enabled = false
enable_distributed_floating_ip = false
neutron_sync_mode = off
dns_servers = $FALLBACK_DNS
EOF
}

# Sets KEYSTONE_CONFIG_CHANGED and NEUTRON_CONFIG_CHANGED so that a running server whose
# configuration changed is restarted.
write_configs() {
  step configuration
  mkdir -p "$LAB_ETC/keystone" "$LAB_ETC/neutron" "$LAB_DATA/neutron/lock"
  KEYSTONE_CONFIG_CHANGED=0
  NEUTRON_CONFIG_CHANGED=0
  if render_keystone_conf | config_updated "$LAB_ETC/keystone/keystone.conf"; then
    KEYSTONE_CONFIG_CHANGED=1
  fi
  if render_uwsgi_ini 5000 keystone.wsgi.api:application keystone.pid \
       "env = OS_KEYSTONE_CONFIG_FILES=$LAB_ETC/keystone/keystone.conf" 2 \
     | config_updated "$LAB_ETC/keystone/uwsgi.ini"; then
    KEYSTONE_CONFIG_CHANGED=1
  fi
  if render_neutron_conf | config_updated "$LAB_ETC/neutron/neutron.conf"; then
    NEUTRON_CONFIG_CHANGED=1
  fi
  if render_ml2_conf | config_updated "$LAB_ETC/neutron/ml2_conf.ini"; then
    NEUTRON_CONFIG_CHANGED=1
  fi
  if config_updated "$LAB_ETC/neutron/api-paste.ini" < "$LAB_VENV/etc/neutron/api-paste.ini"; then
    NEUTRON_CONFIG_CHANGED=1
  fi
  if render_uwsgi_ini 9696 neutron.wsgi.api:application neutron-api.pid \
       "env = OS_NEUTRON_CONFIG_DIR=$LAB_ETC/neutron
env = OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini" \
     | config_updated "$LAB_ETC/neutron/uwsgi-api.ini"; then
    NEUTRON_CONFIG_CHANGED=1
  fi
  lab_log "config: $LAB_ETC (keystone changed: $KEYSTONE_CONFIG_CHANGED, neutron changed: $NEUTRON_CONFIG_CHANGED)"
}

# ---------------------------------------------------------------- Keystone

start_keystone() {
  step Keystone
  local manage=("$LAB_VENV/bin/keystone-manage" --config-file "$LAB_ETC/keystone/keystone.conf")
  # keystone-manage bootstrap is idempotent and resets the admin password, so it runs again
  # whenever the password file is new.
  if [ ! -f "$LAB_DATA/keystone.bootstrapped" ] || [ "$SECRETS_CREATED" = 1 ]; then
    lab_log "keystone: db_sync, fernet and credential keys, bootstrap"
    {
      "${manage[@]}" db_sync
      "${manage[@]}" fernet_setup --keystone-user root --keystone-group root
      "${manage[@]}" credential_setup --keystone-user root --keystone-group root
      "${manage[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
        --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
        --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$KEYSTONE_URL" --bootstrap-public-url "$KEYSTONE_URL" \
        --bootstrap-internal-url "$KEYSTONE_URL"
    } > "$LAB_LOGS/keystone-manage.log" 2>&1 \
      || lab_die "keystone-manage failed, see $LAB_LOGS/keystone-manage.log"
    touch "$LAB_DATA/keystone.bootstrapped"
  fi

  if pidfile_running "$LAB_RUN/keystone.pid" && [ "$KEYSTONE_CONFIG_CHANGED" = 1 ]; then
    lab_log "keystone: configuration changed, restarting"
    stop_by_pidfile keystone "$LAB_RUN/keystone.pid" 30
  fi
  if ! pidfile_running "$LAB_RUN/keystone.pid"; then
    lab_log "keystone: starting uwsgi on 127.0.0.1:5000"
    "$LAB_VENV/bin/uwsgi" --ini "$LAB_ETC/keystone/uwsgi.ini" >> "$LAB_LOGS/keystone-uwsgi.log" 2>&1
  fi
  wait_for_http "$KEYSTONE_URL" 200 60

  LAB_TOKEN=$(keystone_token admin "$ADMIN_PASSWORD" admin)
  [ -n "$LAB_TOKEN" ] || lab_die "Keystone issued no token for user admin, see $LAB_LOGS/keystone.log"
  lab_log "keystone: ready, admin token issued"
}

# Every Keystone request costs about 200 ms here, mostly token validation, so the objects are
# listed once and only the missing ones are created.
load_identity_lists() {
  PROJECTS_JSON=$(keystone_api GET "/projects?domain_id=default")
  USERS_JSON=$(keystone_api GET "/users?domain_id=default")
  ROLES_JSON=$(keystone_api GET /roles)
  ASSIGNMENTS_JSON=$(keystone_api GET /role_assignments)
}

# Prints the id of the object named NAME in COLLECTION (projects or roles), creating it from
# BODY when the list loaded by load_identity_lists lacks it.
ensure_identity_object() {
  local collection=$1 name=$2 body=$3 list id
  case $collection in
    projects) list=$PROJECTS_JSON ;;
    roles) list=$ROLES_JSON ;;
  esac
  id=$(jq -r --arg c "$collection" --arg n "$name" '.[$c][] | select(.name == $n) | .id' <<< "$list" | head -n 1)
  if [ -z "$id" ]; then
    id=$(keystone_api POST "/$collection" "$body" | jq -r ".${collection%s}.id")
  fi
  echo "$id"
}

ensure_project() {
  ensure_identity_object projects "$1" \
    "$(jq -nc --arg n "$1" '{project: {name: $n, domain_id: "default"}}')"
}

ensure_role() {
  ensure_identity_object roles "$1" "$(jq -nc --arg n "$1" '{role: {name: $n}}')"
}

ensure_user() {
  local name=$1 password=$2 id
  id=$(jq -r --arg n "$name" '.users[] | select(.name == $n) | .id' <<< "$USERS_JSON" | head -n 1)
  if [ -z "$id" ]; then
    keystone_api POST /users "$(jq -nc --arg n "$name" --arg p "$password" \
      '{user: {name: $n, domain_id: "default", password: $p}}')" | jq -r .user.id
    return
  fi
  # The password file is new but the Keystone database already contains the user.
  if [ "$SECRETS_CREATED" = 1 ]; then
    keystone_api PATCH "/users/$id" "$(jq -nc --arg p "$password" '{user: {password: $p}}')" > /dev/null
  fi
  echo "$id"
}

grant_role() {
  local project_id=$1 user_id=$2 role_id=$3
  if jq -e --arg p "$project_id" --arg u "$user_id" --arg r "$role_id" \
       'any(.role_assignments[]; .scope.project.id == $p and .user.id == $u and .role.id == $r)' \
       <<< "$ASSIGNMENTS_JSON" > /dev/null; then
    return 0
  fi
  keystone_api PUT "/projects/$project_id/users/$user_id/roles/$role_id" > /dev/null
}

create_identity_objects() {
  step "Keystone projects and users"
  local admin_role service_role member_role service_project neutron_user clampify_user
  local demo_user network_service endpoints endpoint_interface user
  load_identity_lists
  admin_role=$(ensure_role admin)
  service_role=$(ensure_role service)
  member_role=$(ensure_role member)
  service_project=$(ensure_project service)
  DEMO_PROJECT_ID=$(ensure_project demo)
  TENANT_B_PROJECT_ID=$(ensure_project tenant-b)

  # Neutron validates tokens as this user. The Clampify agent needs admin or service in
  # its own project because only those roles may set binding:host_id on a port.
  neutron_user=$(ensure_user neutron "$NEUTRON_PASSWORD")
  clampify_user=$(ensure_user clampify "$CLAMPIFY_PASSWORD")
  demo_user=$(ensure_user demo "$DEMO_PASSWORD")
  for user in "$neutron_user" "$clampify_user"; do
    grant_role "$service_project" "$user" "$admin_role"
    grant_role "$service_project" "$user" "$service_role"
  done
  grant_role "$DEMO_PROJECT_ID" "$demo_user" "$member_role"

  network_service=$(keystone_api GET "/services?type=network" | jq -r '.services[0].id // empty')
  if [ -z "$network_service" ]; then
    network_service=$(keystone_api POST /services \
      '{"service": {"name": "neutron", "type": "network", "enabled": true}}' | jq -r .service.id)
  fi
  endpoints=$(keystone_api GET "/endpoints?service_id=$network_service")
  for endpoint_interface in public internal admin; do
    if ! jq -e --arg i "$endpoint_interface" 'any(.endpoints[]; .interface == $i)' \
         <<< "$endpoints" > /dev/null; then
      keystone_api POST /endpoints "$(jq -nc --arg s "$network_service" --arg i "$endpoint_interface" \
        '{endpoint: {service_id: $s, interface: $i, region_id: "RegionOne",
                     url: "http://127.0.0.1:9696", enabled: true}}')" > /dev/null
    fi
  done
  lab_log "keystone: projects service, demo, tenant-b; users neutron, clampify, demo; network endpoint"
}

# ---------------------------------------------------------------- Neutron

start_neutron() {
  step Neutron
  local neutron_args=(--config-file "$LAB_ETC/neutron/neutron.conf"
                      --config-file "$LAB_ETC/neutron/ml2_conf.ini")
  if [ ! -f "$LAB_DATA/neutron-db.migrated" ]; then
    lab_log "neutron: neutron-db-manage upgrade heads"
    "$LAB_VENV/bin/neutron-db-manage" "${neutron_args[@]}" upgrade heads \
        > "$LAB_LOGS/neutron-db-manage.log" 2>&1 \
      || lab_die "neutron-db-manage failed, see $LAB_LOGS/neutron-db-manage.log"
    touch "$LAB_DATA/neutron-db.migrated"
  fi
  if [ "$NEUTRON_CONFIG_CHANGED" = 1 ]; then
    local name
    for name in neutron-periodic neutron-ovn-maintenance neutron-api; do
      if pidfile_running "$LAB_RUN/$name.pid"; then
        lab_log "neutron: configuration changed, restarting $name"
        stop_by_pidfile "$name" "$LAB_RUN/$name.pid" 30
      fi
    done
  fi
  if ! pidfile_running "$LAB_RUN/neutron-api.pid"; then
    lab_log "neutron: starting uwsgi on 127.0.0.1:9696"
    "$LAB_VENV/bin/uwsgi" --ini "$LAB_ETC/neutron/uwsgi-api.ini" >> "$LAB_LOGS/neutron-api-uwsgi.log" 2>&1
  fi
  start_neutron_worker neutron-ovn-maintenance neutron-ovn-maintenance-worker "${neutron_args[@]}"
  start_neutron_worker neutron-periodic neutron-periodic-workers "${neutron_args[@]}"

  # The root URL responds before the API workers have loaded the ML2 plugin.
  wait_for_http http://127.0.0.1:9696/ 200 120
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $LAB_TOKEN" \
           "$NEUTRON_URL/networks?limit=1")" = 200 ] && break
    sleep 0.1
  done
  neutron_api GET "/networks?limit=1" > /dev/null
  lab_log "neutron: API, OVN maintenance worker and periodic workers ready"
}

# Starts a Neutron worker in its own session, unless its pid file names a live process.
start_neutron_worker() {
  local name=$1 command=$2
  shift 2
  pidfile_running "$LAB_RUN/$name.pid" && return 0
  lab_log "neutron: starting $command"
  PYTHONWARNINGS=ignore setsid "$LAB_VENV/bin/$command" "$@" --log-file "$LAB_LOGS/$name.log" \
    > "$LAB_LOGS/$name.out" 2>&1 < /dev/null &
  echo $! > "$LAB_RUN/$name.pid"
}

# Prints the id of network NAME in PROJECT_ID, creating it when missing.
ensure_network() {
  local name=$1 project_id=$2 id
  id=$(neutron_api GET "/networks?name=$name&project_id=$project_id" | jq -r '.networks[0].id // empty')
  if [ -z "$id" ]; then
    id=$(neutron_api POST /networks \
      "$(jq -nc --arg n "$name" --arg p "$project_id" '{network: {name: $n, project_id: $p}}')" \
      | jq -r .network.id)
  fi
  echo "$id"
}

# Prints the id of subnet NAME on NETWORK_ID, creating it from the JSON object ATTRIBUTES
# when missing. An existing subnet is left as it is.
ensure_subnet() {
  local name=$1 network_id=$2 project_id=$3 attributes=$4 id
  id=$(neutron_api GET "/subnets?name=$name&network_id=$network_id" | jq -r '.subnets[0].id // empty')
  if [ -z "$id" ]; then
    id=$(neutron_api POST /subnets "$(jq -nc --arg n "$name" --arg net "$network_id" \
           --arg p "$project_id" --argjson a "$attributes" \
           '{subnet: ({name: $n, network_id: $net, project_id: $p} + $a)}')" \
         | jq -r .subnet.id)
  fi
  echo "$id"
}

create_networks() {
  step "Neutron networks"
  local demo_net tenant_b_net
  demo_net=$(ensure_network demo-net "$DEMO_PROJECT_ID")
  ensure_subnet demo-v4 "$demo_net" "$DEMO_PROJECT_ID" \
    '{"ip_version": 4, "cidr": "198.51.100.0/24", "gateway_ip": "198.51.100.1",
      "dns_nameservers": ["198.51.100.53"]}' > /dev/null
  ensure_subnet demo-v6 "$demo_net" "$DEMO_PROJECT_ID" \
    '{"ip_version": 6, "cidr": "2001:db8:100::/64", "gateway_ip": "2001:db8:100::1"}' > /dev/null
  tenant_b_net=$(ensure_network tenant-b-net "$TENANT_B_PROJECT_ID")
  ensure_subnet tenant-b-v4 "$tenant_b_net" "$TENANT_B_PROJECT_ID" \
    '{"ip_version": 4, "cidr": "198.51.100.0/24", "gateway_ip": "198.51.100.1"}' > /dev/null
  lab_log "neutron: demo-net $demo_net (demo-v4, demo-v6), tenant-b-net $tenant_b_net (tenant-b-v4)"
}

# ---------------------------------------------------------------- Docker

dockerd_responds() {
  timeout 10 docker -H "$HOST_DOCKER_SOCK" version > /dev/null 2>&1
}

start_dockerd() {
  step dockerd
  if dockerd_responds; then
    if [ -f "$LAB_RUN/dockerd.started-by-lab" ] && pidfile_running "$LAB_RUN/dockerd.pid"; then
      lab_log "docker: dockerd started by the lab is running (pid $(cat "$LAB_RUN/dockerd.pid"))"
    else
      lab_log "docker: a dockerd not started by the lab responds on $HOST_DOCKER_SOCK; leaving it alone"
    fi
    return 0
  fi
  lab_log "docker: starting dockerd"
  setsid dockerd --pidfile "$LAB_RUN/dockerd.pid" > "$LAB_LOGS/dockerd.log" 2>&1 < /dev/null &
  touch "$LAB_RUN/dockerd.started-by-lab"
  for _ in $(seq 1 300); do
    dockerd_responds && break
    sleep 0.1
  done
  dockerd_responds || lab_die "dockerd did not respond within 30 s, see $LAB_LOGS/dockerd.log"
}

# Imports a root filesystem holding Debian's static busybox and one link per applet. There is
# no registry in the lab, so the image is built locally and never pulled.
import_busybox_image() {
  step "busybox image"
  if docker -H "$HOST_DOCKER_SOCK" image inspect "$LAB_IMAGE" > /dev/null 2>&1; then
    lab_log "docker: image $LAB_IMAGE present"
    return 0
  fi
  local rootfs busybox applet
  # The dynamically linked busybox package would not run in an image without a libc.
  busybox=$(dpkg-query -L busybox-static | grep -E '/bin/busybox$' | head -n 1)
  [ -x "$busybox" ] || lab_die "busybox-static provides no /bin/busybox"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    # The list names busybox itself, and a link by that name would replace the binary.
    [ "$applet" = busybox ] && continue
    ln -s busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  echo 'root:x:0:' > "$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker -H "$HOST_DOCKER_SOCK" import -c 'CMD ["/bin/sh"]' - "$LAB_IMAGE" > /dev/null
  rm -rf "$rootfs"
  lab_log "docker: image $LAB_IMAGE imported"
}

# ---------------------------------------------------------------- credentials and summary

# Arguments: user, password, project.
render_openrc() {
  cat <<EOF
# Lab Keystone credentials, user $1 in project $3. Use: . $LAB_DIR/$4
export OS_AUTH_URL=$KEYSTONE_URL
export OS_USERNAME=$1
export OS_PASSWORD=$2
export OS_PROJECT_NAME=$3
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
EOF
}

render_cloud() {
  cat <<EOF
  $1:
    auth:
      auth_url: $KEYSTONE_URL
      username: $2
      password: "$3"
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
}

write_credentials() {
  step credentials
  (
    umask 077
    render_openrc admin "$ADMIN_PASSWORD" admin openrc > "$LAB_DIR/openrc"
    render_openrc clampify "$CLAMPIFY_PASSWORD" service agent-openrc > "$LAB_DIR/agent-openrc"
    {
      echo "clouds:"
      render_cloud lab-admin admin "$ADMIN_PASSWORD" admin
      render_cloud lab-agent clampify "$CLAMPIFY_PASSWORD" service
    } > "$LAB_DIR/clouds.yaml"
  )
  lab_log "credentials: $LAB_DIR/openrc (admin), $LAB_DIR/agent-openrc (clampify), $LAB_DIR/clouds.yaml"
}

main() {
  mkdir -p "$LAB_DATA" "$LAB_RUN" "$LAB_LOGS" "$LAB_ETC"
  export PYTHONWARNINGS=ignore
  install_packages
  create_venv
  load_secrets
  start_ovs
  start_ovn
  start_mariadb
  write_configs
  start_keystone
  create_identity_objects
  start_neutron
  create_networks
  start_dockerd
  import_busybox_image
  write_credentials
  LAB_STEP=done
  lab_log "lab is up: Keystone $KEYSTONE_URL, Neutron http://127.0.0.1:9696, chassis $LAB_HOST"
}

# Sourcing the file only defines its functions, so a test can run single steps.
[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
