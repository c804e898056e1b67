"""The local half of an attach (veth into a netns, addresses, routes, OVS port), two ways.

- shell: the steps a script would run with `ip`, `ip netns exec ethtool` and `ovs-vsctl`,
  one process each, on a scratch bridge of this module's own.
- Clampify: examples/plumbing_bench.rs from the crate, which runs the same steps over
  netlink and OVSDB on a scratch bridge of its own.

Both use a userspace-datapath (netdev) bridge with a random name, never br-int, because
ovn-controller acts on every port that carries an iface-id there. Rounds of the two
alternate, so that machine noise reaches both.
"""

import re
import uuid

from . import host
from .stats import now_ms, percentile

MAC = "fa:16:3e:00:be:02"
MTU = "1442"
# The same addresses and routes that examples/plumbing_bench.rs configures.
IPV4 = "198.51.100.50/24"
IPV6 = "2001:db8:50::50/64"
GATEWAY4 = "198.51.100.1"
GATEWAY6 = "2001:db8:50::1"


class ShellScratch:
    """A netns that stands for the container and a netdev OVS bridge; both removed by close()."""

    def __init__(self):
        suffix = host.random_suffix(5)
        self.netns = f"cfy-bench-sh-{suffix}"
        self.bridge = f"cfy-bench-{suffix}"
        host.run(["ip", "netns", "add", self.netns])
        host.run(["ovs-vsctl", "add-br", self.bridge, "--", "set", "Bridge", self.bridge,
                  "datapath_type=netdev"])

    def attach_commands(self, host_ifname, iface_id):
        """Return the commands of one attach, in order."""
        netns, in_netns = self.netns, ["ip", "-n", self.netns]
        return [
            # The peer is created inside the netns, already named, with its MAC and MTU.
            ["ip", "link", "add", host_ifname, "mtu", MTU, "type", "veth", "peer", "name", "eth0",
             "address", MAC, "mtu", MTU, "netns", netns],
            ["ip", "link", "set", host_ifname, "up"],
            in_netns + ["addr", "add", IPV4, "dev", "eth0"],
            in_netns + ["-6", "addr", "add", IPV6, "dev", "eth0", "nodad"],
            in_netns + ["link", "set", "eth0", "up"],
            in_netns + ["route", "add", "default", "via", GATEWAY4],
            in_netns + ["-6", "route", "add", "default", "via", GATEWAY6],
            # Userspace OVS forwards partial checksums unfixed, so TCP needs TX offload off.
            ["ip", "netns", "exec", netns, "ethtool", "-K", "eth0", "tx", "off"],
            # ovs-vsctl waits until ovs-vswitchd applied the change, as Clampify does.
            ["ovs-vsctl", "--", "add-port", self.bridge, host_ifname, "--", "set", "Interface",
             host_ifname, f"external_ids:attached-mac={MAC}", f"external_ids:iface-id={iface_id}"],
        ]

    def cycle(self):
        """Attach and detach once; return (attach ms, detach ms)."""
        host_ifname = f"cfyb{host.random_suffix(11)}"
        started = now_ms()
        for command in self.attach_commands(host_ifname, str(uuid.uuid4())):
            host.run(command)
        attached = now_ms()
        host.run(["ovs-vsctl", "del-port", self.bridge, host_ifname])
        # Deleting the host end deletes the peer in the netns too.
        host.run(["ip", "link", "del", host_ifname])
        return attached - started, now_ms() - attached

    def close(self):
        host.run(["ovs-vsctl", "--if-exists", "del-br", self.bridge], check=False)
        host.run(["ip", "netns", "delete", self.netns], check=False)


# Example line: "attach (veth and OVS port, applied): n=50 p50=5.61 ms p90=6.02 ms ..."
_SUMMARY_LINE = re.compile(r"^(?P<label>[^:]+): n=(?P<n>\d+) p50=(?P<p50>[\d.]+) ms "
                           r"p90=(?P<p90>[\d.]+) ms")


def parse_plumbing_bench(output):
    """Return {label: {"n", "p50", "p90"}} from the summary lines of plumbing_bench."""
    summaries = {}
    for line in output.splitlines():
        match = _SUMMARY_LINE.match(line.strip())
        if match:
            summaries[match["label"]] = {"n": int(match["n"]), "p50": float(match["p50"]),
                                         "p90": float(match["p90"])}
    return summaries


def run_plumbing_bench(example_bin, cycles):
    """Run the example binary for `cycles` attach+detach cycles; return the attach summary."""
    output = host.run([example_bin, str(cycles)], timeout=300)
    summaries = parse_plumbing_bench(output)
    for label, summary in summaries.items():
        if label.startswith("attach"):
            return summary
    raise host.CommandError(f"{example_bin} printed no 'attach' summary line: {output[:400]!r}")


def measure(total_cycles, rounds, example_bin, log):
    """Alternate `rounds` rounds of shell cycles and, when `example_bin` is set, example runs.

    The example prints only p50 and p90 per run, so the Clampify figures are the medians of
    the per-round p50s and p90s, while the shell figures come from all samples.
    """
    per_round = max(1, total_cycles // rounds)
    shell_attach, shell_detach, example_rounds = [], [], []
    scratch = ShellScratch()
    try:
        scratch.cycle()  # warm-up: page cache for ip, ethtool, ovs-vsctl
        for index in range(rounds):
            if example_bin:
                example_rounds.append(run_plumbing_bench(example_bin, per_round))
            for _ in range(per_round):
                attach_ms, detach_ms = scratch.cycle()
                shell_attach.append(attach_ms)
                shell_detach.append(detach_ms)
            log(f"local: round {index + 1}/{rounds}, shell p50 so far "
                f"{percentile(shell_attach, 0.5):.1f} ms"
                + (f", Clampify round p50 {example_rounds[-1]['p50']:.2f} ms" if example_bin else ""))
    finally:
        scratch.close()
    results = {
        "shell_attach_ms_p50": round(percentile(shell_attach, 0.5), 2),
        "shell_attach_ms_p90": round(percentile(shell_attach, 0.9), 2),
        "shell_detach_ms_p50": round(percentile(shell_detach, 0.5), 2),
        "shell_attach_n": len(shell_attach),
    }
    if example_rounds:
        results.update({
            "local_attach_ms_p50": round(percentile([r["p50"] for r in example_rounds], 0.5), 2),
            "local_attach_ms_p90": round(percentile([r["p90"] for r in example_rounds], 0.5), 2),
            "local_attach_n": sum(r["n"] for r in example_rounds),
        })
    return {"shell_attach_ms": shell_attach, "shell_detach_ms": shell_detach,
            "plumbing_bench_rounds": example_rounds, "results": results}
