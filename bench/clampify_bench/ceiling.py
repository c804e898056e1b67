"""The Neutron ceiling for a burst: N port creates sent at once, straight to Neutron.

A port that nothing plugs never turns ACTIVE, so the ceiling is the time until the last of
the N POST /v2.0/ports requests returned. The ports look like the agent's (bound to this
host, device_owner compute:clampify) and are deleted afterwards.
"""

import socket
import threading

from .openstack import ApiError
from .stats import now_ms


def measure(cloud, network_id, count, concurrency, run_tag, on_done=None):
    """Send `count` port creates, at most `concurrency` at a time, all released at once.

    Returns the ms until the last reply, per-port data, and what `on_done()` returned when
    the last reply came, before the ports are deleted.
    """
    hostname = socket.gethostname()
    gate = threading.Barrier(count + 1)
    in_flight = threading.Semaphore(max(1, concurrency))
    replies = [{} for _ in range(count)]

    def create(index):
        body = {"port": {"network_id": network_id, "binding:host_id": hostname,
                         "device_owner": "compute:clampify",
                         "device_id": f"cfy-bench-ceiling-{run_tag}-{index}",
                         "name": f"cfy-bench-ceiling-{run_tag}-{index}"}}
        gate.wait()
        with in_flight:
            try:
                port = cloud.neutron("POST", "/ports", body)["port"]
                replies[index].update(id=port["id"], vif_type=port.get("binding:vif_type"))
            except ApiError as err:
                replies[index]["error"] = str(err)
            replies[index]["return_ms"] = now_ms() - started

    threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    started = now_ms()
    gate.wait()
    for thread in threads:
        thread.join()
    at_done = on_done() if on_done else None
    for reply in replies:
        if "id" in reply:
            cloud.delete_port(reply["id"])
    failures = [reply["error"] for reply in replies if "error" in reply]
    if failures:
        raise ApiError(f"{len(failures)} of {count} port creates failed, first: {failures[0]}")
    unbound = [reply["id"] for reply in replies if reply["vif_type"] == "binding_failed"]
    if unbound:
        raise ApiError(f"Neutron could not bind {len(unbound)} ports to host {hostname} "
                       f"(binding:vif_type binding_failed); is the OVN chassis {hostname} up?")
    return {"ceiling_ms": max(reply["return_ms"] for reply in replies), "ports": replies,
            "at_done": at_done}
