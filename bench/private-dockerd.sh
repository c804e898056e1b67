#!/bin/bash
# Start or stop a private dockerd for the Docker bridge measurement, used when the machine's
# dockerd has no bridge network (for example when it runs with --bridge=none).
#   private-dockerd.sh start DIR   prints the DOCKER_HOST to use
#   private-dockerd.sh stop DIR
# The daemon runs in its own network namespace cfy-bench-dockerd, so its docker0 bridge
# (198.51.100.1/24, no NAT, no iptables rules) is invisible to the host. Socket, data root,
# exec root, pid file and log live under DIR. It is stopped by the PID in its pid file.
set -Eeuo pipefail
LAB_SCRIPT=bench-dockerd
BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$BENCH_SRC/../lab/lib.sh"

NETNS=cfy-bench-dockerd

# Unmounts every mount point below DIR, deepest first: dockerd bind-mounts its netns under
# its exec root and leaves it mounted on exit.
unmount_below() {
  local mount_point
  awk -v prefix="$1/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r mount_point; do
        umount "$mount_point" 2>/dev/null || umount -l "$mount_point"
      done
}

start() {
  local dir=$1 sock
  sock=unix://$dir/docker.sock
  mkdir -p "$dir/data" "$dir/exec"
  # containerd nests its sockets under the exec root, and a unix socket path has at most
  # 107 bytes.
  [ ${#dir} -le 60 ] || lab_die "$dir is longer than 60 bytes, too long for containerd's sockets"
  if ! pidfile_running "$dir/dockerd.pid"; then
    ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
    ip -n "$NETNS" link set lo up
    echo '{}' > "$dir/daemon.json"
    # nsenter rather than "ip netns exec", which remounts /sys and hides the cgroup mounts.
    nsenter --net="/run/netns/$NETNS" -- setsid dockerd --config-file "$dir/daemon.json" \
      --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" -H "$sock" \
      --bip 198.51.100.1/24 --iptables=false --ip6tables=false --ip-masq=false \
      --cgroup-parent=cfy-bench-dockerd > "$dir/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 300); do
      timeout 5 docker -H "$sock" version > /dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  timeout 10 docker -H "$sock" version > /dev/null 2>&1 \
    || lab_die "private dockerd did not respond on $sock, see $dir/dockerd.log"
  if ! docker -H "$sock" image inspect "$LAB_IMAGE" > /dev/null 2>&1; then
    docker -H "$HOST_DOCKER_SOCK" save "$LAB_IMAGE" | docker -H "$sock" load -q > /dev/null
  fi
  echo "$sock"
}

stop() {
  local dir=$1 sock ids
  sock=unix://$dir/docker.sock
  if pidfile_running "$dir/dockerd.pid"; then
    # Containers go first, so that no containerd shim outlives its dockerd.
    ids=$(docker -H "$sock" ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || docker -H "$sock" rm -f $ids > /dev/null 2>&1 || true
  fi
  stop_by_pidfile "private dockerd" "$dir/dockerd.pid" 30 >&2
  unmount_below "$dir/exec"
  unmount_below "$dir/data"
  if ip netns list | grep -qw "$NETNS"; then
    ip netns delete "$NETNS"
  fi
}

case ${1:-} in
  start) start "${2:?usage: private-dockerd.sh start DIR}" ;;
  stop) stop "${2:?usage: private-dockerd.sh stop DIR}" ;;
  *) lab_die "usage: private-dockerd.sh start|stop DIR" ;;
esac
