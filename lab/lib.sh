# Shared paths and helpers for the lab scripts. Source it: it sets no shell options.

LAB_DIR=${LAB_DIR:-/var/lib/clampify-lab}
LAB_VENV=$LAB_DIR/venv
LAB_DATA=$LAB_DIR/data
LAB_RUN=$LAB_DIR/run
LAB_LOGS=$LAB_DIR/logs
LAB_ETC=$LAB_DIR/etc
LAB_CLUSTER=$LAB_DIR/cluster
# Docker sockets of the simulated hosts live here, not under LAB_DIR, so that their paths stay
# short: a unix socket path is limited to 107 bytes and containerd nests its own under exec-root.
LAB_SOCK_DIR=${LAB_SOCK_DIR:-/run/clampify-lab}
LAB_SECRETS=$LAB_DATA/secrets.env

KEYSTONE_URL=http://127.0.0.1:5000/v3
NEUTRON_URL=http://127.0.0.1:9696/v2.0
MYSQL_SOCK=$LAB_RUN/mysqld.sock
OVS_RUN=/var/run/openvswitch
OVN_RUN=/var/run/ovn
OVN_SB=unix:$OVN_RUN/ovnsb_db.sock
HOST_DOCKER_SOCK=unix:///var/run/docker.sock
LAB_IMAGE=clampify-busybox:latest
LAB_HOST=$(hostname)

# Every step logs one line with the time since the script started.
LAB_T0=$(date +%s%3N)
lab_log() {
  local ms=$(( $(date +%s%3N) - LAB_T0 ))
  printf '[%s %d.%01ds] %s\n' "${LAB_SCRIPT:-lab}" $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}

lab_die() {
  echo "${LAB_SCRIPT:-lab}: error: $*" >&2
  exit 1
}

# A process that exited stays a zombie until PID 1 reaps it, which is slow on some machines,
# so a zombie counts as not running.
pid_running() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

pidfile_running() {
  [ -f "$1" ] && pid_running "$(cat "$1" 2>/dev/null)"
}

# Sends SIGTERM to the pid in PIDFILE, waits up to TIMEOUT seconds, then SIGKILL.
# Prints what it did and removes the pid file.
stop_by_pidfile() {
  local name=$1 pidfile=$2 timeout=${3:-20} pid
  if ! pidfile_running "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((timeout * 10))); do
    pid_running "$pid" || break
    sleep 0.1
  done
  if pid_running "$pid"; then
    lab_log "$name (pid $pid) still running ${timeout}s after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  lab_log "stopped $name (pid $pid)"
}

# Waits until URL returns HTTP status CODE, for at most TIMEOUT seconds.
wait_for_http() {
  local url=$1 code=$2 timeout=$3
  for _ in $(seq 1 $((timeout * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = "$code" ] && return 0
    sleep 0.1
  done
  echo "timed out after ${timeout}s waiting for HTTP $code from $url" >&2
  return 1
}

# Prints a Keystone token for a password login scoped to a project in domain Default.
keystone_token() {
  local user=$1 password=$2 project=$3 body
  body=$(jq -nc --arg u "$user" --arg p "$password" --arg pr "$project" '{auth: {
      identity: {methods: ["password"],
                 password: {user: {name: $u, domain: {name: "Default"}, password: $p}}},
      scope: {project: {name: $pr, domain: {name: "Default"}}}}}')
  curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" \
      "$KEYSTONE_URL/auth/tokens" \
    | awk 'tolower($1) == "x-subject-token:" { print $2 }' | tr -d '\r'
}

# Sends one API request with $LAB_TOKEN and prints the response body.
# Fails with the status and body on any HTTP status of 400 or more.
api_request() {
  local method=$1 url=$2 data=${3:-} out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" -H "X-Auth-Token: $LAB_TOKEN" \
    -H 'Content-Type: application/json' ${data:+-d "$data"} "$url") || status=000
  if [ "$status" -ge 400 ] || [ "$status" = 000 ]; then
    echo "$method $url failed with HTTP $status: $(head -c 600 "$out")" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}

keystone_api() { api_request "$1" "$KEYSTONE_URL$2" "${3:-}"; }
neutron_api() { api_request "$1" "$NEUTRON_URL$2" "${3:-}"; }
