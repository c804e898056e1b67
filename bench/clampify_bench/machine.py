"""Facts about this machine and the software versions, stored beside every result."""

import datetime
import os
import platform
import subprocess


def _output(args, cwd=None):
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _cpu_model():
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _memory_gib():
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _os_name():
    try:
        with open("/etc/os-release", encoding="utf-8") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except FileNotFoundError:
        pass
    return platform.system()


def load_average():
    """Return the 1-minute load average, a sign of how busy the shared machine was."""
    return os.getloadavg()[0]


def collect(repo_root):
    """Return the machine facts and versions as a dict of strings and numbers."""
    commit = _output(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo_root)
    if _output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_root):
        commit += " (with uncommitted changes)"
    ovs = _output(["ovs-vswitchd", "--version"]).splitlines()
    docker_version = _output(["docker", "version", "--format", "{{.Server.Version}}"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": _os_name(),
        "docker_server": docker_version,
        "ovs": ovs[0] if ovs else "",
        "commit": commit,
        "load_average_start": round(load_average(), 2),
    }
