#!/bin/bash
# Start or stop a private dockerd of the benchmark, always in a network namespace of its own.
#   private-dockerd.sh start DIR none|bridge   prints the DOCKER_HOST to use
#   private-dockerd.sh stop DIR
# none: --bridge=none. The agent measurements use it, so that other users' Clampify agents
#   on this machine never see the benchmark's containers, and the benchmark's agent never
#   handles theirs. The agent plugs containers through /proc/PID/ns/net, so dockerd's own netns
#   does not matter to it. kuryr-libnetwork 18.0.0 cannot use such a daemon: it rejects a
#   SandboxKey outside /var/run/docker/netns, the machine dockerd's exec root.
# bridge: docker0 on 198.51.100.1/24, no NAT and no iptables rules. The Docker bridge
#   measurement uses it when the machine's dockerd has no bridge network.
# The netns matters for both: dockerd 20.10 started with --bridge=none deletes the link
# docker0 of its netns, which in the host netns is the machine dockerd's bridge.
# Socket, data root, exec root, pid file and log live under DIR, and the netns is called
# cfy-bench-<basename of DIR>. The daemon is stopped by the PID in its pid file.
set -Eeuo pipefail
LAB_SCRIPT=bench-dockerd
BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lib.sh
. "$BENCH_SRC/../lab/lib.sh"


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
  local dir=$1 mode=$2 netns sock network_args=()
  netns=cfy-bench-$(basename "$dir")
  sock=unix://$dir/docker.sock
  case $mode in
    none) network_args=(--bridge=none) ;;
    bridge) network_args=(--bip 198.51.100.1/24) ;;
    *) lab_die "unknown mode '$mode': use none or bridge" ;;
  esac

  mkdir -p "$dir/data" "$dir/exec"
  # containerd nests its sockets under the exec root, and a unix socket path has at most
  # 107 bytes.
  [ ${#dir} -le 60 ] || lab_die "$dir is longer than 60 bytes, too long for containerd's sockets"
  if ! pidfile_running "$dir/dockerd.pid"; then
    ip netns list | grep -qw "$netns" || ip netns add "$netns"
    echo "$netns" > "$dir/netns"
    ip -n "$netns" link set lo up
    # An empty configuration file keeps /etc/docker/daemon.json of the machine's dockerd out.
    echo '{}' > "$dir/daemon.json"
    # nsenter rather than "ip netns exec", which remounts /sys and hides the cgroup mounts.
    nsenter "--net=/run/netns/$netns" -- setsid dockerd --config-file "$dir/daemon.json" \
      --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" -H "$sock" \
      "${network_args[@]}" --iptables=false --ip6tables=false --ip-masq=false \
      --cgroup-parent="$netns" > "$dir/dockerd.log" 2>&1 < /dev/null &
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
  local dir=$1 sock ids netns
  sock=unix://$dir/docker.sock
  if pidfile_running "$dir/dockerd.pid"; then
    # Containers go first, so that no containerd shim outlives its dockerd.
    ids=$(docker -H "$sock" ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || docker -H "$sock" rm -f $ids > /dev/null 2>&1 || true
  fi
  stop_by_pidfile "private dockerd $dir" "$dir/dockerd.pid" 30 >&2
  unmount_below "$dir/exec"
  unmount_below "$dir/data"
  netns=$(cat "$dir/netns" 2>/dev/null || true)
  if [ -n "$netns" ] && ip netns list | grep -qw "$netns"; then
    ip netns delete "$netns"
  fi
}

case ${1:-} in
  start) start "${2:?usage: private-dockerd.sh start DIR none|bridge}" "${3:?usage: private-dockerd.sh start DIR none|bridge}" ;;
  stop) stop "${2:?usage: private-dockerd.sh stop DIR}" ;;
  *) lab_die "usage: private-dockerd.sh start DIR none|bridge, or stop DIR" ;;
esac
