#!/usr/bin/env python3
"""Write docs/benchmarks.md and its plots from the last run's target/bench files.

Reads results.json (the figures) and samples.json (machine facts, settings, raw samples).
Run it with the venv that bench/run.sh makes, which has matplotlib:
    target/bench/venv/bin/python bench/report.py
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO_ROOT, "target/bench"))
DOC = os.path.join(REPO_ROOT, "docs/benchmarks.md")
PLOT_DIR = os.path.join(REPO_ROOT, "docs/benchmarks")
# Hand-written analysis of where the time goes, appended to the generated page.
ANALYSIS = os.path.join(REPO_ROOT, "bench/analysis.md")

# (figure, description of the target, function of the results that returns (limit, met) or
# None when an input is missing).
TARGETS = [
    ("local_attach_ms_p50", "≤ 0.3 × docker_bridge_ms_p50",
     lambda r: _ratio_target(r, "local_attach_ms_p50", "docker_bridge_ms_p50", 0.3)),
    ("local_attach_ms_p50", "≤ 0.15 × shell_attach_ms_p50",
     lambda r: _ratio_target(r, "local_attach_ms_p50", "shell_attach_ms_p50", 0.15)),
    ("e2e_attach_ms_p50", "≤ kuryr_attach_ms_p50 / 3",
     lambda r: _ratio_target(r, "e2e_attach_ms_p50", "kuryr_attach_ms_p50", 1 / 3)),
    ("burst_ms", "≤ neutron_ceiling_ms / 0.8",
     lambda r: _ratio_target(r, "burst_ms", "neutron_ceiling_ms", 1 / 0.8)),
    ("neutron_requests_per_attach", "≤ 3",
     lambda r: _fixed_target(r, "neutron_requests_per_attach", 3, inclusive=True)),
    ("keystone_requests_per_attach", "≤ 0",
     lambda r: _fixed_target(r, "keystone_requests_per_attach", 0, inclusive=True)),
    ("agent_rss_mib_peak", "< 20 MiB",
     lambda r: _fixed_target(r, "agent_rss_mib_peak", 20, inclusive=False)),
]


def _ratio_target(results, key, base_key, factor):
    if key not in results or base_key not in results:
        return None
    limit = results[base_key] * factor
    return limit, results[key] <= limit


def _fixed_target(results, key, limit, inclusive):
    if key not in results:
        return None
    value = results[key]
    return limit, (value <= limit if inclusive else value < limit)


def fmt(value, unit=""):
    """Format a number for a table: no decimals from 100 on, else up to two."""
    if value is None:
        return "—"
    if isinstance(value, float) and abs(value) < 100:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,.0f}".replace(",", " ")
    return f"{text} {unit}".strip()


def get(results, key, unit="ms"):
    """Format results[key] with its unit, or a dash when this run did not measure it."""
    return fmt(results.get(key), unit)


# ---------------------------------------------------------------- plots

COLORS = {"clampify": "tab:blue", "kuryr": "tab:orange", "ceiling": "tab:green"}

def plot_attach(details, path):
    """Draw the end-to-end attach samples of both products; return False without samples."""
    samples = details.get("attach", {}).get("samples", {})
    labels = {"clampify": "Clampify agent", "kuryr": "kuryr-libnetwork"}
    series = [(name, labels[name], [s["run_ms"] for s in got], [s["ready_ms"] for s in got])
              for name, got in samples.items() if got]
    if not series:
        return False
    figure, axes = plt.subplots(figsize=(7, 3.2))
    positions = []
    for index, (name, label, run_ms, ready_ms) in enumerate(series):
        ready_at, run_at = 2 * index + 1, 2 * index + 0.5
        positions += [(run_at, f"{label}\ndocker run returned"), (ready_at, f"{label}\nIP + ACTIVE")]
        axes.boxplot([run_ms, ready_ms], positions=[run_at, ready_at], widths=0.35,
                     orientation="horizontal", showfliers=True,
                     medianprops={"color": COLORS[name]})
    axes.set_yticks([p for p, _ in positions], [t for _, t in positions], fontsize=8)
    axes.set_xlabel("ms after docker run -d started")
    axes.set_xlim(left=0)
    axes.set_title(f"One container at a time (n = {min(len(s[2]) for s in series)} each)")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_burst(details, path):
    """Draw containers ready over time in the first burst round; return False without one."""
    bursts = [b for b in details.get("bursts", []) if b["round"] == 0]
    if not bursts:
        return False
    figure, axes = plt.subplots(figsize=(7, 3.4))
    styles = {"clampify": ("Clampify agent: IP + ACTIVE", "-"),
              "kuryr": ("kuryr-libnetwork: IP + ACTIVE", "--"),
              "ceiling": ("Neutron alone: POST /v2.0/ports returned", ":")}
    for burst in bursts:
        if burst["product"] == "ceiling":
            times = sorted(p["return_ms"] for p in burst["ports"])
        else:
            times = sorted(c["ready_ms"] for c in burst["containers"])
        label, style = styles[burst["product"]]
        axes.step([t / 1000 for t in times], range(1, len(times) + 1), where="post",
                  linestyle=style, color=COLORS[burst["product"]], label=label)
    axes.set_xlabel("seconds after the burst started")
    axes.set_ylabel("containers / ports done")
    axes.set_title(f"Burst of {bursts[0]['n']} started at once (round 1)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# ---------------------------------------------------------------- page

def targets_table(results):
    rows = ["| figure | value | target | limit | met |", "|---|---|---|---|---|"]
    for key, description, check in TARGETS:
        outcome = check(results)
        unit = "ms"
        if "mib" in key:
            unit = "MiB"
        elif "per_attach" in key:
            unit = ""
        if outcome is None:
            rows.append(f"| `{key}` | {get(results, key, unit)} | {description} | — | not measured |")
            continue
        limit, met = outcome
        rows.append(f"| `{key}` | {fmt(results[key], unit)} | {description} | "
                    f"{fmt(float(limit), unit)} | {'yes' if met else '**no**'} |")
    return "\n".join(rows)


def machine_lines(details):
    machine = details.get("machine", {})
    return (f"- Machine: {machine.get('nproc')} CPUs (`nproc`), {machine.get('cpu_model')}, "
            f"{machine.get('memory_gib')} GiB memory, kernel {machine.get('kernel')}, "
            f"{machine.get('os')}\n"
            f"- Software: Docker Engine {machine.get('docker_server')}, {machine.get('ovs')}, "
            f"kuryr-libnetwork 18.0.0 with kuryr-lib 3.5.0, the lab's Neutron 29.0.0 (ML2/OVN, "
            f"one uWSGI API worker) and Keystone 30.0.0\n"
            f"- Run: {machine.get('date')}, commit {machine.get('commit')}, "
            f"{fmt(details.get('wall_s', 0) / 60)} minutes; 1-minute load average "
            f"{machine.get('load_average_start')} at the start and "
            f"{machine.get('load_average_end')} at the end (other work shares this machine)")


def error_lines(details):
    """Return a section that lists the products that failed in the run, or nothing."""
    errors = details.get("errors", {})
    if not errors:
        return []
    lines = ["## Failures in this run", ""]
    for product, message in sorted(errors.items()):
        lines.append(f"- {product}: {message}. Its figures are missing below.")
    return lines + [""]


def profile_lines(details):
    """Return the table of the Neutron profiles of the first burst round, if any were taken."""
    profiles = {b["product"]: b for b in details.get("bursts", [])
                if b.get("round") == 0 and b.get("neutron_profile_s")}
    if not profiles:
        return []
    products = [name for name in ("clampify", "kuryr") if name in profiles]
    categories = []
    for name in products:
        for category in profiles[name]["neutron_profile_s"]:
            if category not in categories:
                categories.append(category)
    lines = [
        "### Where Neutron's API worker spent its time in the first burst",
        "",
        "Seconds in which the worker held Python's GIL, from `py-spy record --gil` at 100 Hz "
        "(`bench/clampify_bench/neutron_profile.py` sorts each stack by what it was doing), "
        "until the last container was ready.",
        "",
        "| activity | " + " | ".join(products) + " |",
        "|---|" + "---|" * len(products),
    ]
    for category in categories:
        cells = [fmt(profiles[name]["neutron_profile_s"].get(category), "s") for name in products]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    totals = [fmt(round(sum(profiles[name]["neutron_profile_s"].values()), 2), "s")
              for name in products]
    lines += ["| total | " + " | ".join(totals) + " |", ""]
    return lines


def render(results, details, plots):
    config = details.get("config", {})
    command = config.get("command", "make bench")
    parts = config.get("parts", [])
    burst_n = results.get("burst_containers", config.get("burst_n"))
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/report.py from target/bench/results.json; edit the script, "
        "not this page. -->",
        "",
        "Clampify's attach path measured on the project's lab (real Keystone, Neutron ML2/OVN, "
        "OVN, Open vSwitch with the userspace datapath, and dockerd, all on one machine), beside "
        "kuryr-libnetwork on the same lab. Figures are medians (p50) or 90th percentiles (p90) "
        "in ms unless the name says otherwise, and a dash marks a figure that the last run did "
        "not measure. The machine is shared and noisy, so compared "
        "figures are measured interleaved and the ratios matter more than the absolute values.",
        "",
        "## Last run",
        "",
        f"- Command: `{command}` (parts: {' '.join(parts)}); the agent's network: "
        f"`{config.get('network', 'demo-net')}`",
        machine_lines(details),
        "",
        *error_lines(details),
        "## Targets",
        "",
        targets_table(results),
        "",
        "## Local plumbing per attach (Neutron excluded)",
        "",
        "| figure | p50 | p90 | n |",
        "|---|---|---|---|",
        f"| Clampify: veth into the netns + addresses + routes + TX checksum off, and OVSDB add-port, "
        f"until ovs-vswitchd applied it (`local_attach_ms`) | {get(results, 'local_attach_ms_p50')} | "
        f"{get(results, 'local_attach_ms_p90')} | {get(results, 'local_attach_n', '')} |",
        f"| The same steps as 9 commands: `ip`, `ip netns exec ... ethtool`, `ovs-vsctl` "
        f"(`shell_attach_ms`) | {get(results, 'shell_attach_ms_p50')} | "
        f"{get(results, 'shell_attach_ms_p90')} | {get(results, 'shell_attach_n', '')} |",
        f"| Docker's own bridge plumbing: `docker run -d --network bridge` minus "
        f"`--network none`, per pair (`docker_bridge_ms`) | {get(results, 'docker_bridge_ms_p50')} "
        f"| | {get(results, 'docker_bridge_n', '')} pairs |",
        f"| `docker run -d --network none` until it returned | "
        f"{get(results, 'docker_none_run_ms_p50')} | | |",
        f"| `docker run -d --network bridge` until it returned | "
        f"{get(results, 'docker_bridge_run_ms_p50')} | | |",
        "",
        f"Docker's bridge was measured on {details.get('docker', {}).get('dockerd', 'the machine')} "
        "dockerd.",
        "",
        "## End to end, one container at a time",
        "",
        "From the start of `docker run -d` until the container has an IPv4 address and its Neutron "
        "port is ACTIVE. Containers are removed after each sample, and the next sample starts "
        "once the product has deleted the port.",
        "",
        "| figure | Clampify agent | kuryr-libnetwork |",
        "|---|---|---|",
        f"| IP + ACTIVE, p50 | {get(results, 'e2e_attach_ms_p50')} | "
        f"{get(results, 'kuryr_attach_ms_p50')} |",
        f"| IP + ACTIVE, p90 | {get(results, 'e2e_attach_ms_p90')} | "
        f"{get(results, 'kuryr_attach_ms_p90')} |",
        f"| `docker run -d` returned, p50 | {get(results, 'e2e_attach_run_ms_p50')} | "
        f"{get(results, 'kuryr_attach_run_ms_p50')} |",
        f"| agent's own `elapsed_ms` per attach, p50 | "
        f"{get(results, 'agent_attach_elapsed_ms_p50')} | |",
        f"| samples (failed) | {get(results, 'e2e_attach_n', '')} "
        f"({get(results, 'e2e_attach_failures', '')}) | {get(results, 'kuryr_attach_n', '')} "
        f"({get(results, 'kuryr_attach_failures', '')}) |",
        "",
    ]
    if "attach" in plots:
        lines += ["![End-to-end attach samples](benchmarks/attach.png)", ""]
    lines += [
        f"## Burst of {fmt(burst_n)} containers",
        "",
        f"{fmt(burst_n)} `docker run -d` started at once, until every container has its address "
        "and an ACTIVE port. The Neutron ceiling is the same number of POST /v2.0/ports "
        "(bound to this host, device_owner compute:clampify), sent straight to Neutron with as "
        f"many in flight as the agent works on at once ({fmt(results.get('burst_concurrency'))}). "
        "It ends at the last reply, because ports that nothing plugs never turn ACTIVE. "
        f"Median of {fmt(results.get('burst_rounds'))} round(s).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| Clampify agent (`burst_ms`) | {get(results, 'burst_ms')} |",
        f"| kuryr-libnetwork (`kuryr_burst_ms`) | {get(results, 'kuryr_burst_ms')} |",
        f"| Neutron ceiling (`neutron_ceiling_ms`) | {get(results, 'neutron_ceiling_ms')} |",
        f"| Neutron requests per attach during the burst | "
        f"{get(results, 'neutron_requests_per_attach', '')} |",
        f"| Keystone requests per attach during the burst | "
        f"{get(results, 'keystone_requests_per_attach', '')} |",
        f"| Neutron CPU time per port: Clampify burst, until all ready "
        f"(`burst_neutron_cpu_ms_per_attach`) | "
        f"{get(results, 'burst_neutron_cpu_ms_per_attach')} |",
        f"| Neutron CPU time per port: kuryr burst "
        f"(`kuryr_burst_neutron_cpu_ms_per_attach`) | "
        f"{get(results, 'kuryr_burst_neutron_cpu_ms_per_attach')} |",
        f"| Neutron CPU time per port: ceiling, POSTs only "
        f"(`ceiling_neutron_cpu_ms_per_port`) | "
        f"{get(results, 'ceiling_neutron_cpu_ms_per_port')} |",
        "",
    ]
    if "burst" in plots:
        lines += ["![Containers ready during a burst](benchmarks/burst.png)", ""]
    lines += profile_lines(details)
    lines += [
        "## Memory",
        "",
        "| process | idle | peak |",
        "|---|---|---|",
        f"| Clampify agent (VmRSS after start; VmHWM after the bursts) | "
        f"{get(results, 'agent_rss_mib_idle', 'MiB')} | {get(results, 'agent_rss_mib_peak', 'MiB')} |",
        f"| kuryr-server and its children (VmRSS summed; VmHWM summed after the bursts) | "
        f"{get(results, 'kuryr_rss_mib_idle', 'MiB')} | {get(results, 'kuryr_rss_mib_peak', 'MiB')} |",
        "",
        METHOD,
    ]
    return "\n".join(lines) + "\n"


METHOD = """## How each figure is measured

All of it is in `bench/` and runs as root through `make bench` (`bench/run.sh`): it runs
`make lab` when `lab/status.sh` reports something down, builds the release binary and
`examples/plumbing_bench.rs`, runs `bench/bench.py run`, then this page's generator
`bench/report.py`. Every container, Docker network, namespace and bridge it creates is named
`cfy-bench-*` and removed at the end; kuryr is stopped by its PID (`lab/kuryr-down.sh`).

- `local_attach_ms`: `target/release/examples/plumbing_bench CYCLES` creates its own netns and
  netdev bridge and times `HostPlumbing::plug`, the agent's own call: the veth and its
  netlink configuration, and the OVSDB transaction that adds the port and then waits for
  `cur_cfg`, which overlap.
  Runs of it alternate with rounds of the shell attach. It prints only p50 and p90 per run,
  so the figure is the median of the per-round p50s (and p90s).
- `shell_attach_ms`: one process each for `ip link add HOST mtu 1442 type veth peer name eth0
  address MAC mtu 1442 netns NS`, `ip link set HOST up`, two `ip -n NS addr add` (the IPv6 one
  `nodad`), `ip -n NS link set eth0 up`, two `ip -n NS route add default`, `ip netns exec NS
  ethtool -K eth0 tx off` and `ovs-vsctl add-port` with `external_ids:iface-id` and
  `attached-mac`, on a netdev bridge with a random name (never br-int). Detach is
  `ovs-vsctl del-port` + `ip link del`, not timed.
- `docker_bridge_ms`: pairs of `docker run -d --network none|bridge clampify-busybox:latest
  sleep 600`, the order alternating per pair, each removed before the next; the figure is the
  median of the per-pair differences. When the machine's dockerd has no usable bridge network the
  harness starts a private dockerd in its own netns (`bench/private-dockerd.sh`).
- `e2e_attach_ms` and `kuryr_attach_ms`: the agent runs as `clampify --openrc agent-openrc
  --docker-host unix://target/bench/dockerd/docker.sock watch NETWORK --metrics-address
  127.0.0.1:PORT --spare-ports 2` (`BENCH_SPARE_PORTS`, 0 to run without spares), plus
  `--concurrency N` when `BENCH_CONCURRENCY` is set. Its dockerd is a
  private one of the same version, started by `bench/private-dockerd.sh` in its own netns, so
  that other users' Clampify agents on this machine neither see nor attach the benchmark's
  containers. The agent's startup reconcile deletes every Clampify container port bound to
  this host whose container its dockerd does not run. So the harness starts the agent only
  once no other user's such port exists, and waits up to `BENCH_QUIET_WAIT_S` (600 s by
  default) for that. kuryr runs as set up by `lab/kuryr-up.sh`, on the machine's dockerd,
  because kuryr-libnetwork 18.0.0 accepts no other exec root. Its network comes from `docker
  network create --driver kuryr --ipam-driver kuryr --subnet 203.0.113.0/24 --gateway
  203.0.113.1`. Samples alternate between the two, after one untimed warm-up sample each.
  The address is polled every 5 ms with `nsenter -t PID -n ip -o -4 addr show scope global`.
  After that the port is polled every 25 ms with GET /v2.0/ports?device_id=ID, where ID is
  the container ID for Clampify and the Docker endpoint ID for kuryr. The lab's Neutron has a
  single API worker, so polls compete with the product under test, and both products pay
  the same.
- Burst: threads released together each run `docker run -d`; one poller checks addresses and
  then lists the ports of ready containers every 50 ms. Every container that is not meant
  for the agent (kuryr's, and those of the Docker bridge measurement) carries
  `clampify.disable=true`, so that agents on the machine's dockerd leave it alone.
- `neutron_ceiling_ms`: POST /v2.0/ports with `binding:host_id` = this host and
  `device_owner` compute:clampify on the agent's network, with the agent's credentials. They
  go out through Python's urllib from one thread per burst container, with as many in
  flight as the agent's concurrency. The ports are deleted afterwards.
- Requests per attach: the agent's `clampify_neutron_requests_total` and
  `clampify_keystone_requests_total` from `/metrics`, read before the burst and when every
  container was ready, summed over label sets, divided by the burst size.
- Neutron CPU time: utime + stime from `/proc/PID/stat` of the lab's Neutron processes: the
  uWSGI API master and worker, the OVN maintenance worker and the periodic workers. It is read
  before a burst and when every container was ready (for the ceiling, at the last reply), and
  divided by the number of ports.
- Memory: `/proc/PID/status` VmRSS and VmHWM (peak since the process started).

Leftovers of an interrupted run: `python3 bench/bench.py cleanup` (as root) removes them.
Smaller or larger runs: `BENCH_DOCKER_N`, `BENCH_LOCAL_N`, `BENCH_LOCAL_ROUNDS`,
`BENCH_ATTACH_N`, `BENCH_BURST_N`, `BENCH_BURST_ROUNDS`, `BENCH_CONCURRENCY` (see
`bench/bench.py`), and `BENCH_PARTS` to run a subset of `docker shell plumbing agent kuryr
ceiling`."""


def main():
    try:
        with open(os.path.join(OUT, "results.json"), encoding="utf-8") as source:
            results = json.load(source)
        with open(os.path.join(OUT, "samples.json"), encoding="utf-8") as source:
            details = json.load(source)
    except FileNotFoundError as err:
        sys.exit(f"report: {err.filename} is missing; run 'make bench' first")
    os.makedirs(PLOT_DIR, exist_ok=True)
    plots = set()
    for name, draw in (("attach", plot_attach), ("burst", plot_burst)):
        path = os.path.join(PLOT_DIR, f"{name}.png")
        if draw(details, path):
            plots.add(name)
        elif os.path.exists(path):
            os.remove(path)  # a plot of an older run would contradict this page
    text = render(results, details, plots)
    if os.path.exists(ANALYSIS):
        with open(ANALYSIS, encoding="utf-8") as analysis:
            text = text.rstrip("\n") + "\n\n" + analysis.read()
    with open(DOC, "w", encoding="utf-8") as page:
        page.write(text)
    print(f"report: wrote {DOC} and {len(plots)} plot(s) in {PLOT_DIR}")


if __name__ == "__main__":
    main()
