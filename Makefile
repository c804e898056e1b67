# Developer entry points. The lab targets need root and a Debian 12 machine; see lab/NOTES.md.

SHELL := /bin/bash
# Number of simulated hosts for `make cluster`, counting this machine as host1.
HOSTS ?= 3

.PHONY: test demo lab lab-down lab-purge lab-status cluster cluster-down cluster-check

# Every test tier CI runs, from a fresh machine, as root: the lab, fmt, clippy, unit,
# kernel and end-to-end tests. Ends with "N passed, M failed".
test:
	scripts/test.sh

# The main job on the local lab: the agent gives two containers Neutron ports on demo-net,
# they talk, and a tenant-b container cannot reach them. KEEP=1 keeps what it made.
demo:
	scripts/demo.sh

# Install what is missing and start the single-host lab; safe to run again.
lab:
	lab/up.sh

# Stop what `make lab` started; servers that it found running are left alone.
lab-down:
	lab/down.sh

# Stop the lab and delete its state, so the next `make lab` starts fresh.
lab-purge:
	lab/down.sh --purge

# One line per lab server and per demo network; fails when something is missing.
lab-status:
	lab/status.sh

# Bring the lab up, then add simulated hosts host2..host$(HOSTS) as network namespaces.
cluster: lab
	lab/cluster-up.sh $(HOSTS)

# Remove the simulated hosts and return the lab to a single host.
cluster-down:
	lab/cluster-down.sh

# Ping between ports plugged by hand on every simulated host; deletes what it creates.
cluster-check:
	lab/cluster-check.sh

.PHONY: demo-cluster

# Clampify across simulated hosts host2..host4, one agent each: cross-host traffic, tenant
# isolation and `clampify list` per host, then teardown. KEEP=1 keeps it all running.
demo-cluster: lab
	scripts/demo-cluster.sh

.PHONY: bench
# Benchmark Clampify and kuryr-libnetwork on the lab (root); writes target/bench/results.json
# and docs/benchmarks.md. BENCH_QUICK=1 for a run of a few minutes; see bench/run.sh.
bench:
	bench/run.sh
