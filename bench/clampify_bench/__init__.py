"""Benchmark harness for Clampify and its peer kuryr-libnetwork on the lab (see bench/run.sh)."""
