"""Commands, processes, /proc readings and the Docker Engine API on this machine."""

import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse

from .stats import now_ms


class CommandError(Exception):
    """A command that exited with a non-zero status."""


def run(args, check=True, env=None, timeout=120):
    """Run a command and return its standard output as text.

    Raises CommandError with the command line, status and standard error when `check` is
    true and the command fails.
    """
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise CommandError(f"{' '.join(args)} failed with exit status {result.returncode}: "
                           f"{result.stderr.strip()[:600]}")
    return result.stdout


def timed_run(args, env=None, timeout=120):
    """Run a command and return (elapsed ms, standard output); raise CommandError on failure."""
    started = now_ms()
    output = run(args, env=env, timeout=timeout)
    return now_ms() - started, output


def random_suffix(length=8):
    """Return `length` random hexadecimal characters."""
    return os.urandom(length).hex()[:length]


def free_loopback_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- processes

def pid_running(pid):
    """Tell whether `pid` exists and is not a zombie (PID 1 here reaps exited processes late)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def stop_pid(pid, timeout_s=20):
    """Send SIGTERM to `pid`, wait up to `timeout_s`, then SIGKILL. Return how it stopped."""
    if not pid_running(pid):
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_running(pid):
            return "SIGTERM"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return "SIGKILL"


def process_tree(pid):
    """Return `pid` and all its descendants that still exist."""
    pids = [pid]
    for children_file in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(children_file, encoding="ascii") as children:
                for child in children.read().split():
                    pids += process_tree(int(child))
        except FileNotFoundError:
            pass
    return pids


def memory_mib(pid):
    """Return {"rss": VmRSS, "hwm": VmHWM} of `pid` in MiB, or None when it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
    except FileNotFoundError:
        return None
    if "VmRSS" not in values:
        return None
    return {"rss": values["VmRSS"], "hwm": values["VmHWM"]}


def tree_memory_mib(pid):
    """Return the VmRSS and VmHWM of `pid` and its descendants, each summed, in MiB."""
    total = {"rss": 0.0, "hwm": 0.0, "processes": 0}
    for member in process_tree(pid):
        reading = memory_mib(member)
        if reading:
            total["rss"] += reading["rss"]
            total["hwm"] += reading["hwm"]
            total["processes"] += 1
    return total


# ---------------------------------------------------------------- containers

def container_has_ipv4(pid):
    """Tell whether the netns of process `pid` has an IPv4 address of global scope."""
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "-4", "addr", "show",
                             "scope", "global"], capture_output=True, text=True, timeout=10)
    return result.returncode == 0 and " inet " in result.stdout


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class DockerApi:
    """Read-only calls to the Docker Engine API over its unix socket; one connection per call."""

    def __init__(self, docker_host):
        parsed = urllib.parse.urlparse(docker_host)
        if parsed.scheme != "unix":
            raise ValueError(f"DOCKER_HOST {docker_host} is not a unix:// socket")
        self.socket_path = parsed.path

    def get(self, path):
        """Return the parsed JSON reply to GET `path`; raise CommandError on HTTP errors."""
        connection = _UnixConnection(self.socket_path, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise CommandError(f"Docker API GET {path} returned HTTP {response.status}: "
                               f"{body[:300].decode(errors='replace')}")
        return json.loads(body)

    def inspect(self, container_id):
        """Return the container's inspect document."""
        return self.get(f"/containers/{container_id}/json")
