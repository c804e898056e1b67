"""The two products under test: the Clampify agent and kuryr-libnetwork.

Each product is a target: the dockerd its containers run on, how to start a container on
it, and which Neutron device_id its port carries, so that the measurements can find the port.
"""

import os
import re
import subprocess
import time
import urllib.request

from . import host
from .docker_bridge import SKIP_LABEL


class Target:
    """A product's containers on the dockerd that `env`'s DOCKER_HOST names."""

    name = ""

    def __init__(self, env):
        self.env = env
        self.docker = host.DockerApi(env.get("DOCKER_HOST", "unix:///var/run/docker.sock"))


class ClampifyTarget(Target):
    """Containers on `--network none`, which the agent plugs into its default network."""

    name = "clampify"

    def docker_args(self):
        return ["--network", "none"]

    def device_id(self, inspect):
        # The agent sets the port's device_id to the full container ID.
        return inspect["Id"]


class KuryrTarget(Target):
    """Containers on a Docker network of the kuryr driver.

    They carry clampify.disable=true, so a Clampify agent that runs at the same time
    leaves them alone.
    """

    name = "kuryr"

    def __init__(self, env, network):
        super().__init__(env)
        self.network = network

    def docker_args(self):
        return ["--network", self.network, "--label", SKIP_LABEL]

    def device_id(self, inspect):
        # kuryr-libnetwork sets the port's device_id to the Docker endpoint ID.
        endpoint = inspect["NetworkSettings"]["Networks"].get(self.network, {})
        return endpoint.get("EndpointID") or None


def create_kuryr_network(env, subnet="203.0.113.0/24", gateway="203.0.113.1"):
    """Create a Docker network on kuryr, which creates its own Neutron network; return its name."""
    name = f"cfy-bench-kuryr-{host.random_suffix()}"
    host.run(["docker", "network", "create", "--driver", "kuryr", "--ipam-driver", "kuryr",
              "--subnet", subnet, "--gateway", gateway, name], env=env)
    return name


def remove_docker_network(name, env):
    """Remove a Docker network; kuryr deletes its Neutron network with it."""
    host.run(["docker", "network", "rm", name], env=env)


class Agent:
    """A `clampify watch` process started by the harness and stopped by its PID."""

    def __init__(self, binary, openrc, network, log_path, concurrency=None, extra_args=(),
                 spare_ports=0):
        self.port = host.free_loopback_port()
        self.metrics_url = f"http://127.0.0.1:{self.port}/metrics"
        self.args = [binary, "--openrc", openrc, *extra_args, "watch", network,
                     "--metrics-address", f"127.0.0.1:{self.port}"]
        if concurrency:
            self.args += ["--concurrency", str(concurrency)]
        if spare_ports:
            self.args += ["--spare-ports", str(spare_ports)]
        self.log_path = log_path
        self.process = None
        # Containers the agent works on at once, from its "agent started" log line.
        self.concurrency = concurrency

    def start(self, timeout_s=60):
        """Start the agent in its own session and wait until its /metrics responds."""
        env = dict(os.environ, NO_COLOR="1")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise host.CommandError(f"{' '.join(self.args)} exited with status "
                                        f"{self.process.returncode}, see {self.log_path}")
            try:
                self.scrape()
            except OSError:
                time.sleep(0.1)
                continue
            self.concurrency = self.concurrency or self._logged_concurrency()
            return
        self.stop()
        raise host.CommandError(f"the agent's {self.metrics_url} did not respond within "
                                f"{timeout_s} s, see {self.log_path}")

    def _logged_concurrency(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as agent_log:
            text = re.sub(r"\x1b\[[0-9;]*m", "", agent_log.read())
        match = re.search(r"agent started.*\bconcurrency=(\d+)", text)
        return int(match.group(1)) if match else None

    @property
    def pid(self):
        return self.process.pid

    def scrape(self):
        """Return the Prometheus text that /metrics serves."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return response.read().decode()

    def counter(self, name):
        """Return the sum over all label sets of the counter `name` in a fresh scrape.

        Returns None when the agent does not export the counter.
        """
        return sum_metric(self.scrape(), name)

    def stop(self):
        """Stop the agent by its PID; return how it stopped."""
        if self.process is None:
            return "not started"
        outcome = host.stop_pid(self.process.pid)
        # Reap it, so that it does not linger as a zombie of this harness.
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return outcome


def sum_metric(text, name):
    """Return the sum of the samples of metric `name` in Prometheus text format, or None."""
    total = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            metric, rest = line.split("{", 1)[0], line.rsplit("}", 1)[1]
        else:
            metric, _, rest = line.partition(" ")
        if metric.strip() == name:
            total = (total or 0.0) + float(rest.split()[0])
    return total


def kuryr_pid(lab_dir):
    """Return the PID of the kuryr-server that lab/kuryr-up.sh started, or None."""
    try:
        with open(os.path.join(lab_dir, "kuryr", "kuryr.pid"), encoding="ascii") as pidfile:
            pid = int(pidfile.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if host.pid_running(pid) else None
