"""The cost of Docker's own bridge plumbing: `docker run -d` on bridge minus on none."""

from . import host
from .stats import median, percentile

# Every container the harness starts outside the agent measurements carries this label, so
# that a Clampify agent running on this machine leaves it alone.
SKIP_LABEL = "clampify.disable=true"


def bridge_usable(env):
    """Tell whether the dockerd at env's DOCKER_HOST has a network called bridge whose
    Linux bridge (docker0) exists in this netns, so that `docker run --network bridge` works.

    The link is looked up in this process's netns, so call it for the machine's dockerd only.
    """
    output = host.run(["docker", "network", "inspect", "bridge", "--format",
                       '{{index .Options "com.docker.network.bridge.name"}}'],
                      env=env, check=False).strip()
    if not output:
        return False
    return host.run(["ip", "link", "show", output], check=False) != ""


def _run_once(network, name, image, env):
    elapsed, output = host.timed_run(["docker", "run", "-d", "--name", name, "--label", SKIP_LABEL,
                                      "--network", network, image, "sleep", "600"], env=env)
    host.run(["docker", "rm", "-f", output.strip()], env=env)
    return elapsed


def measure(pairs, image, env, log):
    """Time `pairs` runs on each network, alternating which goes first in each pair.

    Returns the samples and the per-pair differences (bridge minus none) in ms.
    """
    none_samples, bridge_samples, deltas = [], [], []
    # One untimed run of each warms the image layers and the CLI's API version negotiation.
    _run_once("none", f"cfy-bench-warm-{host.random_suffix()}", image, env)
    _run_once("bridge", f"cfy-bench-warm-{host.random_suffix()}", image, env)
    for index in range(pairs):
        order = ("none", "bridge") if index % 2 == 0 else ("bridge", "none")
        times = {}
        for network in order:
            times[network] = _run_once(network, f"cfy-bench-docker-{host.random_suffix()}",
                                       image, env)
        none_samples.append(times["none"])
        bridge_samples.append(times["bridge"])
        deltas.append(times["bridge"] - times["none"])
        if (index + 1) % 10 == 0:
            log(f"docker: {index + 1}/{pairs} pairs, median delta so far "
                f"{median(deltas):.1f} ms")
    return {
        "none_ms": none_samples,
        "bridge_ms": bridge_samples,
        "delta_ms": deltas,
        "results": {
            "docker_bridge_ms_p50": round(percentile(deltas, 0.5), 2),
            "docker_none_run_ms_p50": round(percentile(none_samples, 0.5), 2),
            "docker_bridge_run_ms_p50": round(percentile(bridge_samples, 0.5), 2),
            "docker_bridge_n": pairs,
        },
    }
