"""End-to-end attach: from `docker run -d` until the container has an IPv4 address and its
Neutron port is ACTIVE, for one container at a time and for a burst of parallel containers.

Readiness is polled: the address with `nsenter -t PID -n ip` (a few ms per check), the port
with GET /v2.0/ports?device_id=... The lab's Neutron runs one uWSGI worker, so polls of
Neutron compete with the product under test. They start only once the container has its
address (a port cannot turn ACTIVE before it is plugged) and are spaced out.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import host
from .stats import now_ms

IMAGE_COMMAND = ["sleep", "600"]
IP_POLL_S = 0.005
PORT_POLL_S = 0.025
BURST_POLL_S = 0.05

# Neutron device_ids of every container started so far, for the final check for leftovers.
created_devices = []


class NotReady(Exception):
    """A container that did not get its address or ACTIVE port before the deadline."""


def _docker_run(target, name, image):
    """Start one container; return (container ID, ms until `docker run -d` returned)."""
    elapsed, output = host.timed_run(["docker", "run", "-d", "--name", name,
                                      *target.docker_args(), image, *IMAGE_COMMAND],
                                     env=target.env)
    return output.strip(), elapsed


def _port_states(cloud, device_ids):
    return {port["device_id"]: port["status"] for port in cloud.ports_by_device(device_ids)}


def wait_ports_gone(cloud, device_ids, timeout_s):
    """Wait until no port has one of `device_ids`; return the ms waited."""
    started = now_ms()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not cloud.ports_by_device(device_ids):
            return now_ms() - started
        time.sleep(0.1)
    raise NotReady(f"ports of devices {sorted(device_ids)[:3]}... still exist after {timeout_s} s")


def one_sample(target, image, cloud, timeout_s=60):
    """Measure one attach and remove the container again. Return a dict of ms figures."""
    name = f"cfy-bench-{target.name}-{host.random_suffix()}"
    started = now_ms()
    container_id, run_ms = _docker_run(target, name, image)
    device_id = None
    try:
        inspect = target.docker.inspect(container_id)
        pid, device_id = inspect["State"]["Pid"], target.device_id(inspect)
        created_devices.append(device_id)
        deadline = time.monotonic() + timeout_s
        while not host.container_has_ipv4(pid):
            if time.monotonic() > deadline:
                raise NotReady(f"container {name} has no IPv4 address after {timeout_s} s")
            time.sleep(IP_POLL_S)
        ip_ms = now_ms() - started
        while _port_states(cloud, [device_id]).get(device_id) != "ACTIVE":
            if time.monotonic() > deadline:
                raise NotReady(f"the port of container {name} (device_id {device_id}) is not "
                               f"ACTIVE after {timeout_s} s")
            time.sleep(PORT_POLL_S)
        ready_ms = now_ms() - started
    finally:
        removed = now_ms()
        host.run(["docker", "rm", "-f", container_id], env=target.env)
        # The next sample starts only when the product has deleted this port.
        if device_id:
            wait_ports_gone(cloud, [device_id], timeout_s)
    return {"run_ms": run_ms, "ip_ms": ip_ms, "ready_ms": ready_ms,
            "remove_ms": now_ms() - removed}


class MemorySampler:
    """Samples a memory reading every `interval_s` in a thread and keeps the maximum."""

    def __init__(self, read_mib, interval_s=0.05):
        self._read = read_mib
        self._interval = interval_s
        self._stop = threading.Event()
        self.max_mib = 0.0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            reading = self._read()
            if reading is not None:
                self.max_mib = max(self.max_mib, reading)
            time.sleep(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def burst(target, count, image, cloud, timeout_s, on_ready=None):
    """Start `count` containers at once and wait until all have addresses and ACTIVE ports.

    Returns the time from the start until the last container was ready, per-container
    figures, what `on_ready()` returned when all were ready, and the time the cleanup took.
    Containers and ports are removed before it returns, also on failure.
    """
    suffix = host.random_suffix()
    names = [f"cfy-bench-burst-{target.name}-{suffix}-{index}" for index in range(count)]
    gate = threading.Barrier(count + 1)
    containers = [{"name": name} for name in names]
    errors = []

    def start(entry):
        gate.wait()
        try:
            entry["id"], _ = _docker_run(target, entry["name"], image)
            entry["run_ms"] = now_ms() - started
        except host.CommandError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=start, args=(entry,)) for entry in containers]
    for thread in threads:
        thread.start()
    started = now_ms()
    gate.wait()
    try:
        _poll_burst(target, containers, cloud, started, timeout_s, errors)
        burst_ms = max(entry["ready_ms"] for entry in containers)
        at_ready = on_ready() if on_ready else None
    finally:
        for thread in threads:
            thread.join()
        cleanup_ms = remove_burst(containers, cloud, target.env, timeout_s)
    return {"burst_ms": burst_ms, "cleanup_ms": cleanup_ms, "at_ready": at_ready,
            "containers": containers}


def _poll_burst(target, containers, cloud, started, timeout_s, errors):
    deadline = time.monotonic() + timeout_s
    while True:
        if errors:
            raise NotReady(f"docker run failed during the burst: {errors[0]}")
        for entry in containers:
            if "id" in entry and "pid" not in entry:
                inspect = target.docker.inspect(entry["id"])
                entry["pid"], entry["device_id"] = inspect["State"]["Pid"], target.device_id(inspect)
                created_devices.append(entry["device_id"])
            if "pid" in entry and "ip_ms" not in entry and host.container_has_ipv4(entry["pid"]):
                entry["ip_ms"] = now_ms() - started
        waiting = [e for e in containers if "ip_ms" in e and "active_ms" not in e and e["device_id"]]
        if waiting:
            states = _port_states(cloud, [e["device_id"] for e in waiting])
            for entry in waiting:
                if states.get(entry["device_id"]) == "ACTIVE":
                    entry["active_ms"] = now_ms() - started
                    entry["ready_ms"] = max(entry["ip_ms"], entry["active_ms"])
        if all("ready_ms" in entry for entry in containers):
            return
        if time.monotonic() > deadline:
            ready = sum("ready_ms" in entry for entry in containers)
            raise NotReady(f"{ready} of {len(containers)} burst containers ready after {timeout_s} s")
        time.sleep(BURST_POLL_S)


def remove_burst(containers, cloud, env, timeout_s):
    """Remove the burst's containers and wait until their ports are gone; return the ms taken."""
    started = now_ms()
    ids = [entry["id"] for entry in containers if "id" in entry]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda cid: host.run(["docker", "rm", "-f", cid], env=env, check=False), ids))
    device_ids = [entry["device_id"] for entry in containers if entry.get("device_id")]
    if device_ids:
        wait_ports_gone(cloud, device_ids, timeout_s)
    return now_ms() - started
