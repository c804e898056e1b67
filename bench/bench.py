#!/usr/bin/python3
"""Run the Clampify benchmark on the lab and write target/bench/results.json.

Usage: bench/bench.py [run|cleanup]. bench/run.sh (`make bench`) brings the lab up, builds
the binaries and calls `bench.py run`, then bench/report.py. Settings come from the
environment; see Config. Runs as root, because it creates network namespaces and OVS
bridges.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

from clampify_bench import attach, ceiling, cleanup, docker_bridge, host, local_attach, machine
from clampify_bench import neutron_profile, products
from clampify_bench.openstack import ApiError, Cloud
from clampify_bench.stats import percentile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_PARTS = ("docker", "shell", "plumbing", "agent", "kuryr", "ceiling")


class Config:
    """Benchmark settings from environment variables, with BENCH_QUICK=1 for a short run."""

    def __init__(self, environ):
        quick = environ.get("BENCH_QUICK", "0") not in ("", "0")
        self.quick = quick
        self.parts = environ.get("BENCH_PARTS", " ".join(ALL_PARTS)).split()
        unknown = set(self.parts) - set(ALL_PARTS)
        if unknown:
            raise SystemExit(f"bench: unknown BENCH_PARTS entries {sorted(unknown)}; "
                             f"known: {' '.join(ALL_PARTS)}")
        self.out = os.path.abspath(environ.get("BENCH_OUT", os.path.join(REPO_ROOT, "target/bench")))
        self.lab_dir = environ.get("LAB_DIR", "/var/lib/clampify-lab")
        # py-spy, for the profile of Neutron during the first burst; run.sh installs it.
        self.py_spy = environ.get("BENCH_PY_SPY") or None
        self.clampify_bin = os.path.abspath(environ.get(
            "CLAMPIFY_BIN", os.path.join(REPO_ROOT, "target/release/clampify")))
        self.plumbing_bench_bin = os.path.abspath(environ.get(
            "PLUMBING_BENCH_BIN", os.path.join(REPO_ROOT, "target/release/examples/plumbing_bench")))
        self.network = environ.get("BENCH_NETWORK", "demo-net")
        self.image = environ.get("BENCH_IMAGE", "clampify-busybox:latest")
        self.docker_pairs = int(environ.get("BENCH_DOCKER_N", 30 if quick else 100))
        self.local_cycles = int(environ.get("BENCH_LOCAL_N", 50 if quick else 200))
        self.local_rounds = int(environ.get("BENCH_LOCAL_ROUNDS", 5 if quick else 10))
        self.attach_pairs = int(environ.get("BENCH_ATTACH_N", 20 if quick else 40))
        self.burst_n = int(environ.get("BENCH_BURST_N", 20 if quick else 50))
        self.burst_rounds = int(environ.get("BENCH_BURST_ROUNDS", 1 if quick else 3))
        # The agent's --concurrency and the ceiling's requests in flight. Unset, the agent
        # keeps its default and the ceiling uses the value the agent logs at start.
        self.concurrency = int(environ["BENCH_CONCURRENCY"]) if environ.get("BENCH_CONCURRENCY") else None
        # The agent's --spare-ports: ports kept ready, so that a container takes one with a
        # PUT on its create event instead of waiting for a POST. 0 runs the agent without.
        self.spare_ports = int(environ.get("BENCH_SPARE_PORTS", 2))
        self.private_dockerd = environ.get("BENCH_PRIVATE_DOCKERD", "0") not in ("", "0")
        # Seconds to wait for other users' Clampify ports on this host to go, see
        # Bench.wait_for_foreign_ports.
        self.quiet_wait_s = int(environ.get("BENCH_QUIET_WAIT_S", 600))
        self.command = environ.get("BENCH_COMMAND", "bench/bench.py run")

    def as_dict(self):
        return dict(vars(self))


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def other_agents(own_pids):
    """Return (pid, command line) of other `clampify ... watch` processes of this host id."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own_pids:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) != "clampify" or "watch" not in argv:
            continue
        # An agent of another host id (a simulated host of `make cluster`) reconciles only
        # the ports bound to that host.
        if "--host" in argv and argv.index("--host") + 1 < len(argv) and \
                argv[argv.index("--host") + 1] != socket.gethostname():
            continue
        found.append((int(entry), " ".join(argv).strip()))
    return found


class Bench:
    """One benchmark run: the parts in Config.parts, and the cleanup of what they started."""

    def __init__(self, config):
        self.config = config
        self.results = {}
        self.details = {"config": config.as_dict()}
        # Messages of the parts that failed; the run still writes what it measured.
        self.failures = []
        # The machine's dockerd, for the Docker bridge measurement only.
        self.machine_docker_env = dict(os.environ)
        # The private dockerd for the agent, set by start_private_dockerd().
        self.agent_docker_env = None
        self.private_dockerd_dir = os.path.join(config.out, "dockerd")
        self.cloud = None
        self.agent = None
        self.kuryr_network = None
        self.kuryr_started = False

    # ------------------------------------------------------------ driver

    def run(self):
        config = self.config
        os.makedirs(config.out, exist_ok=True)
        self.details["machine"] = machine.collect(REPO_ROOT)
        log(f"parts: {' '.join(config.parts)}; quick: {config.quick}; output: {config.out}")
        needs_cloud = {"agent", "kuryr", "ceiling"} & set(config.parts)
        if needs_cloud:
            self.cloud = Cloud(os.path.join(config.lab_dir, "agent-openrc"))
            self.cloud.authenticate()
        cleanup.remove_leftovers(self.machine_docker_env, self.cloud, log)
        started = time.monotonic()
        try:
            if "docker" in config.parts:
                self.part_docker()
            if {"shell", "plumbing"} & set(config.parts):
                self.part_local()
            if needs_cloud:
                self.part_openstack()
        finally:
            self.teardown()
            self.details["wall_s"] = round(time.monotonic() - started)
            self.details["machine"]["load_average_end"] = round(machine.load_average(), 2)
            self.write()

    def write(self):
        results = {key: self.results[key] for key in sorted(self.results)}
        with open(os.path.join(self.config.out, "results.json"), "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
            out.write("\n")
        with open(os.path.join(self.config.out, "samples.json"), "w", encoding="utf-8") as out:
            json.dump(self.details, out, indent=1, default=str)
        log(f"wrote {self.config.out}/results.json ({len(results)} keys) and samples.json")

    def teardown(self):
        """Remove what the run made, in an order that lets each product clean up after itself."""
        if self.agent_docker_env:
            # While the agent still runs, it deletes the ports of the removed containers.
            self.remove_private_containers()
        cleanup.remove_containers(self.machine_docker_env, log)
        if self.agent is not None:
            log(f"agent: stopping pid {self.agent.pid}: {self.agent.stop()}")
        if self.kuryr_network:
            try:
                products.remove_docker_network(self.kuryr_network, self.machine_docker_env)
                log(f"kuryr: removed network {self.kuryr_network} and its Neutron network")
            except host.CommandError as err:
                log(f"kuryr: {err}")
        if self.kuryr_started:
            # kuryr-down.sh removes the kuryr network too, if the step above could not.
            subprocess.run([os.path.join(REPO_ROOT, "lab/kuryr-down.sh")], check=False,
                           env=self.machine_docker_env)
        if self.agent_docker_env:
            host.run([PRIVATE_DOCKERD, "stop", self.private_dockerd_dir], check=False)
        try:
            cleanup.remove_leftovers(self.machine_docker_env, self.cloud, log)
            if self.cloud is not None:
                cleanup.remove_ports_of_devices(self.cloud, attach.created_devices, log)
        except (host.CommandError, OSError, ApiError) as err:
            log(f"cleanup failed: {err}")

    def remove_private_containers(self):
        try:
            cleanup.remove_containers(self.agent_docker_env, log)
            if self.agent is not None and self.cloud is not None:
                attach.wait_ports_gone(self.cloud, attach.created_devices, 60)
        except (host.CommandError, attach.NotReady, ApiError) as err:
            log(f"cleanup: {err}")

    # ------------------------------------------------------------ parts

    def part_docker(self):
        config = self.config
        use_private = config.private_dockerd or not docker_bridge.bridge_usable(self.machine_docker_env)
        if not use_private:
            try:
                data = self.measure_docker(self.machine_docker_env, "the machine's")
            except host.CommandError as err:
                if docker_bridge.bridge_usable(self.machine_docker_env):
                    raise
                # Another user's dockerd started with --bridge=none in the host netns
                # deletes docker0 while the machine's dockerd still lists its bridge network.
                log(f"docker: docker0 vanished during the measurement ({err}); starting over")
                use_private = True
        if use_private:
            log("docker: the machine's dockerd has no usable bridge network (or "
                "BENCH_PRIVATE_DOCKERD=1); using a private dockerd in its own netns")
            bridge_dir = os.path.join(config.out, "dockerd-bridge")
            sock = host.run([PRIVATE_DOCKERD, "start", bridge_dir, "bridge"]).strip().splitlines()[-1]
            try:
                data = self.measure_docker(dict(self.machine_docker_env, DOCKER_HOST=sock),
                                           "a private (bench/private-dockerd.sh bridge)")
            finally:
                host.run([PRIVATE_DOCKERD, "stop", bridge_dir], check=False)
        self.results.update(data.pop("results"))
        self.details["docker"] = data

    def measure_docker(self, env, dockerd):
        log(f"docker: {self.config.docker_pairs} interleaved pairs of docker run -d on none "
            f"and bridge, on {dockerd} dockerd")
        data = docker_bridge.measure(self.config.docker_pairs, self.config.image, env, log)
        data["dockerd"] = dockerd
        return data

    def part_local(self):
        config = self.config
        example = config.plumbing_bench_bin if "plumbing" in config.parts else None
        if example and not os.access(example, os.X_OK):
            raise SystemExit(f"bench: {example} is missing; build it with "
                             "'cargo build --release --example plumbing_bench'")
        if "shell" not in config.parts:
            log("local: the shell attach always runs beside plumbing_bench, for interleaving")
        log(f"local: {config.local_cycles} cycles in {config.local_rounds} rounds"
            + (f", alternating with {example}" if example else ", shell only"))
        data = local_attach.measure(config.local_cycles, config.local_rounds, example, log)
        self.results.update(data.pop("results"))
        self.details["local"] = data

    def part_openstack(self):
        config = self.config
        network_id = self.cloud.network_id(config.network)
        targets = []
        if "kuryr" in config.parts:
            self.start_kuryr()
            targets.append(products.KuryrTarget(self.machine_docker_env, self.kuryr_network))
        if "agent" in config.parts:
            self.start_private_dockerd()
            self.start_agent()
            targets.insert(0, products.ClampifyTarget(self.agent_docker_env))
        targets = self.warm_up(targets)
        if targets:
            self.attach_samples(targets)
        for round_index in range(config.burst_rounds if (targets or "ceiling" in config.parts) else 0):
            self.burst_round(round_index, targets, network_id)
        self.summarize_bursts()

    # ------------------------------------------------------------ products

    def start_private_dockerd(self):
        sock = host.run([PRIVATE_DOCKERD, "start", self.private_dockerd_dir, "none"]).strip()
        self.agent_docker_env = dict(os.environ, DOCKER_HOST=sock.splitlines()[-1])
        cleanup.remove_containers(self.agent_docker_env, log)
        log(f"docker: private dockerd for the agent on {self.agent_docker_env['DOCKER_HOST']}")

    def wait_for_foreign_ports(self):
        """Wait until no Clampify container port of another user is bound to this host.

        The agent's startup reconcile deletes every such port whose container its dockerd
        does not run, and the benchmark's private dockerd runs only the benchmark's.
        """
        deadline = time.monotonic() + self.config.quiet_wait_s
        announced = False
        while True:
            foreign = cleanup.foreign_container_ports(self.cloud)
            if not foreign:
                return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"bench: {len(foreign)} Clampify ports of other containers are bound to this "
                    f"host (first: {foreign[0]}), and the agent's startup reconcile would delete "
                    f"them. Waited {self.config.quiet_wait_s} s; run again when the machine is "
                    "quiet, or raise BENCH_QUIET_WAIT_S.")
            if not announced:
                log(f"agent: waiting up to {self.config.quiet_wait_s} s until the {len(foreign)} "
                    "Clampify ports of other users' containers on this host are gone")
                announced = True
            time.sleep(2)

    def start_kuryr(self):
        self.kuryr_started = True
        subprocess.run([os.path.join(REPO_ROOT, "lab/kuryr-up.sh")], check=True)
        self.kuryr_network = products.create_kuryr_network(self.machine_docker_env)
        pid = products.kuryr_pid(self.config.lab_dir)
        self.results["kuryr_rss_mib_idle"] = round(host.tree_memory_mib(pid)["rss"], 1)
        log(f"kuryr: network {self.kuryr_network}, kuryr-server pid {pid}")

    def start_agent(self):
        config = self.config
        if not os.access(config.clampify_bin, os.X_OK):
            raise SystemExit(f"bench: {config.clampify_bin} is missing; build it with "
                             "'cargo build --release' or set CLAMPIFY_BIN")
        for pid, cmd in other_agents({os.getpid()}):
            # They watch another dockerd, but when one of them starts or reconnects, its
            # reconcile deletes the ports of containers it does not know, including ours.
            log(f"agent: warning: another Clampify agent runs (pid {pid}: {cmd}); if it "
                "reconciles during the run, attach samples of this run may fail")
        self.wait_for_foreign_ports()
        self.agent_log = os.path.join(config.out, "agent.log")
        open(self.agent_log, "w", encoding="utf-8").close()
        self.agent = products.Agent(config.clampify_bin, os.path.join(config.lab_dir, "agent-openrc"),
                                    config.network, self.agent_log, concurrency=config.concurrency,
                                    extra_args=["--docker-host", self.agent_docker_env["DOCKER_HOST"]],
                                    spare_ports=config.spare_ports)
        self.agent.start()
        time.sleep(2)  # lets the startup reconcile finish
        self.results["agent_rss_mib_idle"] = round(host.memory_mib(self.agent.pid)["rss"], 1)
        self.details["agent_command"] = " ".join(self.agent.args)
        log(f"agent: pid {self.agent.pid}, {self.agent.metrics_url}, "
            f"idle RSS {self.results['agent_rss_mib_idle']} MiB")

    # ------------------------------------------------------------ measurements

    def warm_up(self, targets):
        """Run one untimed sample per product (token, connections, page cache).

        A product whose warm-up fails is left out of the rest of the run, and the failure
        is recorded for the report, so that the other figures are still measured.
        """
        working = []
        for target in targets:
            try:
                attach.one_sample(target, self.config.image, self.cloud)
                working.append(target)
            except attach.NotReady as err:
                where = (f"the agent's log {self.agent_log}" if target.name == "clampify"
                         else f"{self.config.lab_dir}/kuryr/kuryr.log")
                if target.name == "clampify":
                    last_error = last_agent_error(self.agent_log)
                    err = f"{err}; the agent's last error: {last_error}" if last_error else err
                message = f"the warm-up attach on {target.name} failed: {err}; see {where}"
                log(f"attach: error: {message}; {target.name} is left out of this run")
                self.failures.append(message)
                self.details.setdefault("errors", {})[target.name] = str(err)
        return working

    def attach_samples(self, targets):
        config = self.config
        samples = {target.name: [] for target in targets}
        failures = {target.name: [] for target in targets}
        log_offset = os.path.getsize(self.agent_log) if self.agent else 0

        log(f"attach: {config.attach_pairs} interleaved samples of {', '.join(samples)}")
        for index in range(config.attach_pairs):
            order = targets if index % 2 == 0 else list(reversed(targets))
            for target in order:
                try:
                    samples[target.name].append(attach.one_sample(target, config.image, self.cloud))
                except attach.NotReady as err:
                    failures[target.name].append(str(err))
                    log(f"attach: {target.name} sample failed: {err}")
            if (index + 1) % 5 == 0:
                log("attach: " + ", ".join(
                    f"{name} p50 {percentile([s['ready_ms'] for s in got], 0.5):.0f} ms"
                    for name, got in samples.items() if got) + f" after {index + 1} pairs")

        self.details["attach"] = {"samples": samples, "failures": failures}
        self.summarize_attach(samples, failures)
        if self.agent:
            elapsed = agent_elapsed_ms(self.agent_log, log_offset)
            self.details["attach"]["agent_elapsed_ms"] = elapsed
            if elapsed:
                self.results["agent_attach_elapsed_ms_p50"] = round(percentile(elapsed, 0.5), 1)

    def summarize_attach(self, samples, failures):
        keys = {"clampify": "e2e_attach", "kuryr": "kuryr_attach"}
        for name, got in samples.items():
            if not got:
                raise SystemExit(f"bench: every {name} attach sample failed: {failures[name][:1]}")
            key = keys[name]
            ready = [s["ready_ms"] for s in got]
            self.results[f"{key}_ms_p50"] = round(percentile(ready, 0.5), 1)
            self.results[f"{key}_ms_p90"] = round(percentile(ready, 0.9), 1)
            self.results[f"{key}_run_ms_p50"] = round(percentile([s["run_ms"] for s in got], 0.5), 1)
            self.results[f"{key}_n"] = len(got)
            self.results[f"{key}_failures"] = len(failures[name])

    def burst_round(self, round_index, targets, network_id):
        config = self.config
        bursts = self.details.setdefault("bursts", [])
        timeout_s = 120 + 3 * config.burst_n
        for target in targets:
            log(f"burst {round_index + 1}/{config.burst_rounds}: {config.burst_n} containers on "
                f"{target.name}")
            entry = {"round": round_index, "product": target.name, "n": config.burst_n}
            neutron = neutron_profile.neutron_pids(config.lab_dir)
            # The first round of each product is profiled. The profile stops once all
            # containers are ready, which keeps the port deletes of the cleanup out of it.
            profile = neutron_profile.Profile(
                config.py_spy if round_index == 0 else None,
                neutron_profile.api_worker_pid(config.lab_dir),
                os.path.join(config.out, f"neutron-profile-{target.name}.raw"))

            def on_ready():
                profile.stop()
                return {"counters": self.read_counters() if self.agent else None,
                        "neutron_cpu_ms": neutron_profile.cpu_ms(neutron)}

            if target.name == "clampify":
                before = self.read_counters()
                sample_rss = lambda: (host.memory_mib(self.agent.pid) or {}).get("rss")
            else:
                pid = products.kuryr_pid(config.lab_dir)
                sample_rss = lambda: host.tree_memory_mib(pid)["rss"]
            cpu_before = neutron_profile.cpu_ms(neutron)
            profile.start()
            try:
                with attach.MemorySampler(sample_rss) as mem:
                    data = attach.burst(target, config.burst_n, config.image, self.cloud,
                                        timeout_s, on_ready=on_ready)
            finally:
                profile.stop()
            at_ready = data.pop("at_ready")
            if target.name == "clampify":
                # Counted until all containers were ready, so the deletes of the cleanup are out.
                counters = at_ready["counters"]
                entry["requests"] = {name: counters[name] - before[name]
                                     for name in COUNTERS
                                     if before[name] is not None and counters[name] is not None}
            entry["rss_mib_sampled_max"] = mem.max_mib
            entry["neutron_cpu_ms"] = round(at_ready["neutron_cpu_ms"] - cpu_before)
            if round_index == 0:
                entry["neutron_profile_s"] = profile.seconds
                entry["neutron_profile_error"] = profile.error
            entry.update(data)
            bursts.append(entry)
            log(f"burst: {target.name} {data['burst_ms']:.0f} ms, cleanup {data['cleanup_ms']:.0f} ms")
        if "ceiling" in config.parts:
            neutron = neutron_profile.neutron_pids(config.lab_dir)
            cpu_before = neutron_profile.cpu_ms(neutron)
            data = ceiling.measure(self.cloud, network_id, config.burst_n, self.burst_concurrency(),
                                   host.random_suffix(),
                                   on_done=lambda: neutron_profile.cpu_ms(neutron))
            data["neutron_cpu_ms"] = round(data.pop("at_done") - cpu_before)
            bursts.append({"round": round_index, "product": "ceiling", "n": config.burst_n, **data})
            log(f"ceiling: {config.burst_n} port creates returned after {data['ceiling_ms']:.0f} ms")

    def burst_concurrency(self):
        """Return the requests in flight for the ceiling: the agent's concurrency when known."""
        if self.config.concurrency:
            return self.config.concurrency
        if self.agent is not None and self.agent.concurrency:
            return self.agent.concurrency
        return self.config.burst_n

    def read_counters(self):
        return {name: self.agent.counter(name) for name in COUNTERS}

    def summarize_bursts(self):
        bursts = self.details.get("bursts", [])
        if not bursts:
            return
        self.results["burst_containers"] = self.config.burst_n
        self.results["burst_concurrency"] = self.burst_concurrency()

        def median_of(product, key):
            values = [b[key] for b in bursts if b["product"] == product]
            return round(percentile(values, 0.5), 0) if values else None

        for product, key, result_key in (("clampify", "burst_ms", "burst_ms"),
                                         ("kuryr", "burst_ms", "kuryr_burst_ms"),
                                         ("ceiling", "ceiling_ms", "neutron_ceiling_ms")):
            value = median_of(product, key)
            if value is not None:
                self.results[result_key] = value
        # Neutron CPU time per port, to tell Neutron's own work from waiting.
        for product, result_key in (("clampify", "burst_neutron_cpu_ms_per_attach"),
                                    ("kuryr", "kuryr_burst_neutron_cpu_ms_per_attach"),
                                    ("ceiling", "ceiling_neutron_cpu_ms_per_port")):
            per_port = [b["neutron_cpu_ms"] / b["n"] for b in bursts
                        if b["product"] == product and "neutron_cpu_ms" in b]
            if per_port:
                self.results[result_key] = round(percentile(per_port, 0.5), 0)
        self.results["burst_rounds"] = len([b for b in bursts if b["product"] == bursts[0]["product"]])
        agent_bursts = [b for b in bursts if b["product"] == "clampify"]
        if agent_bursts:
            attaches = sum(b["n"] for b in agent_bursts)
            for name, key in (("clampify_neutron_requests_total", "neutron_requests_per_attach"),
                              ("clampify_keystone_requests_total", "keystone_requests_per_attach")):
                if all(name in b["requests"] for b in agent_bursts):
                    self.results[key] = round(sum(b["requests"][name] for b in agent_bursts) / attaches, 2)
                else:
                    log(f"burst: the agent's /metrics has no {name}, so {key} is not measured")
            reading = host.memory_mib(self.agent.pid)
            self.results["agent_rss_mib_peak"] = round(reading["hwm"], 1)
        kuryr_bursts = [b for b in bursts if b["product"] == "kuryr"]
        if kuryr_bursts:
            pid = products.kuryr_pid(self.config.lab_dir)
            self.results["kuryr_rss_mib_peak"] = round(host.tree_memory_mib(pid)["hwm"], 1)


COUNTERS = ("clampify_neutron_requests_total", "clampify_keystone_requests_total")
PRIVATE_DOCKERD = os.path.join(REPO_ROOT, "bench/private-dockerd.sh")
# Colour codes of the agent's log lines, in case it colours a file.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def last_agent_error(log_path):
    """Return the message of the agent's last WARN or ERROR log line, without colour codes."""
    last = None
    with open(log_path, encoding="utf-8", errors="replace") as agent_log:
        for line in agent_log:
            line = ANSI_ESCAPE.sub("", line).strip()
            match = re.search(r"\b(?:WARN|ERROR)\b.*?\berror=(.*)$", line)
            if match:
                last = match.group(1)
    return last


def agent_elapsed_ms(log_path, offset):
    """Return the elapsed_ms values of the agent's "container attached" lines after `offset`."""
    values = []
    with open(log_path, encoding="utf-8", errors="replace") as agent_log:
        agent_log.seek(offset)
        for line in agent_log:
            line = ANSI_ESCAPE.sub("", line)
            if "container attached" not in line:
                continue
            match = re.search(r'elapsed_ms"?[=:]\s*"?([0-9.]+)', line)
            if match:
                values.append(float(match.group(1)))
    return values


def main(argv):
    command = argv[1] if len(argv) > 1 else "run"
    # SIGTERM ends the run through the same cleanup as an error does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = Config(os.environ)
    bench = Bench(config)
    if command == "run":
        try:
            bench.run()
        except (attach.NotReady, host.CommandError, ApiError) as err:
            raise SystemExit(f"bench: {err}") from err
        if bench.failures:
            raise SystemExit("bench: finished with errors:\n  " + "\n  ".join(bench.failures))
    elif command == "cleanup":
        cloud = Cloud(os.path.join(config.lab_dir, "agent-openrc"))
        cloud.authenticate()
        cleanup.remove_everything(config, cloud, REPO_ROOT, log)
    else:
        raise SystemExit(f"usage: {argv[0]} [run|cleanup]")


if __name__ == "__main__":
    main(sys.argv)
