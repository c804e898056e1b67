"""Removal of everything the harness names cfy-bench-*, left behind by an interrupted run."""

import urllib.parse

from . import host
from .openstack import ApiError


def remove_leftovers(env, cloud, log):
    """Remove cfy-bench-* containers, Docker networks, netns, OVS bridges and ceiling ports."""
    containers = host.run(["docker", "ps", "-aq", "--filter", "name=^cfy-bench-"],
                          env=env).split()
    if containers:
        log(f"cleanup: removing {len(containers)} leftover cfy-bench-* containers")
        host.run(["docker", "rm", "-f", *containers], env=env, check=False)
    networks = host.run(["docker", "network", "ls", "-q", "--filter", "name=^cfy-bench-"],
                        env=env).split()
    for network in networks:
        log(f"cleanup: removing leftover Docker network {network}")
        host.run(["docker", "network", "rm", network], env=env, check=False)
    for line in host.run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("cfy-bench-sh-"):
            log(f"cleanup: removing leftover netns {name}")
            host.run(["ip", "netns", "delete", name], check=False)
    for bridge in host.run(["ovs-vsctl", "list-br"]).split():
        if bridge.startswith("cfy-bench-"):
            log(f"cleanup: removing leftover OVS bridge {bridge}")
            host.run(["ovs-vsctl", "--if-exists", "del-br", bridge], check=False)
    if cloud is not None:
        remove_ceiling_ports(cloud, log)


def remove_ceiling_ports(cloud, log):
    """Delete ports that the ceiling measurement created and did not delete."""
    query = urllib.parse.urlencode([("device_owner", "compute:clampify"), ("fields", "id"),
                                    ("fields", "device_id")])
    try:
        ports = cloud.neutron("GET", f"/ports?{query}")["ports"]
    except ApiError as err:
        log(f"cleanup: could not list ceiling ports: {err}")
        return
    leftovers = [p["id"] for p in ports if p["device_id"].startswith("cfy-bench-ceiling-")]
    if leftovers:
        log(f"cleanup: deleting {len(leftovers)} leftover ceiling ports")
    for port_id in leftovers:
        cloud.delete_port(port_id)
