"""Removal of everything the harness names cfy-bench-*, left behind by an interrupted run."""

import os
import re
import socket
import subprocess
import urllib.parse

from . import host
from .openstack import ApiError

# The agent names a container's port "clampify-" + the container name, and the harness names
# its containers cfy-bench-*.
OWN_PORT_PREFIX = "clampify-cfy-bench-"
CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def remove_containers(env, log):
    """Remove the cfy-bench-* containers of the dockerd that env's DOCKER_HOST names."""
    containers = host.run(["docker", "ps", "-aq", "--filter", "name=^cfy-bench-"],
                          env=env).split()
    if containers:
        log(f"cleanup: removing {len(containers)} leftover cfy-bench-* containers")
        host.run(["docker", "rm", "-f", *containers], env=env, check=False)


def remove_leftovers(env, cloud, log):
    """Remove cfy-bench-* containers, Docker networks, netns, OVS bridges and ceiling ports."""
    remove_containers(env, log)
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


def _clampify_container_ports(cloud):
    query = urllib.parse.urlencode([("device_owner", "compute:clampify"),
                                    ("binding:host_id", socket.gethostname()),
                                    ("fields", "id"), ("fields", "device_id"), ("fields", "name")])
    ports = cloud.neutron("GET", f"/ports?{query}")["ports"]
    return [port for port in ports if CONTAINER_ID.match(port["device_id"])]


def foreign_container_ports(cloud):
    """Return the ids of Clampify container ports on this host that the harness did not make."""
    return [port["id"] for port in _clampify_container_ports(cloud)
            if not port["name"].startswith(OWN_PORT_PREFIX)]


def remove_ports_of_devices(cloud, device_ids, log):
    """Delete the ports whose device_id is one of `device_ids`: the harness's own containers."""
    leftovers = cloud.ports_by_device(device_ids, fields=("id", "device_id")) if device_ids else []
    for port in leftovers:
        log(f"cleanup: deleting port {port['id']} of device {port['device_id']}, which its "
            "product left behind")
        cloud.delete_port(port["id"])


def remove_everything(config, cloud, repo_root, log):
    """Remove what an interrupted run left: containers, networks, kuryr, private dockerds, ports.

    Open vSwitch rows that a stopped agent left on br-int are listed, not removed, because
    only Clampify itself changes br-int.
    """
    private_dockerd = os.path.join(repo_root, "bench/private-dockerd.sh")
    host_dir = os.path.join(config.out, "dockerd")
    sock = f"unix://{host_dir}/docker.sock"
    private_env = dict(os.environ, DOCKER_HOST=sock)
    private_up = os.path.exists(os.path.join(host_dir, "docker.sock")) and \
        subprocess.run(["docker", "version"], env=private_env, capture_output=True,
                       timeout=20, check=False).returncode == 0
    if private_up:
        remove_leftovers(private_env, None, log)
    subprocess.run([os.path.join(repo_root, "lab/kuryr-down.sh")],
                   env=private_env if private_up else None, check=False)
    for directory in (host_dir, os.path.join(config.out, "dockerd-bridge")):
        host.run([private_dockerd, "stop", directory], check=False)
    remove_leftovers(dict(os.environ), cloud, log)
    for port in _clampify_container_ports(cloud):
        if port["name"].startswith(OWN_PORT_PREFIX):
            log(f"cleanup: deleting leftover port {port['id']} ({port['name']})")
            cloud.delete_port(port["id"])
            rows = host.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Interface",
                             f"external_ids:iface-id={port['id']}"], check=False).split()
            for row in rows:
                log(f"cleanup: OVS port {row} on br-int belonged to it; remove it with "
                    f"'ovs-vsctl del-port br-int {row}'")
