"""Neutron's time during a burst: the CPU time of its processes, and a py-spy profile.

The lab runs one Neutron API worker (a uWSGI child), which serves every request and also
handles the OVN database updates that turn ports ACTIVE. Its CPU time over a burst, divided
by the number of ports, is comparable between the agent's burst and the ceiling (POSTs only).

The profile samples the worker only while it holds the GIL (`py-spy record --gil`). For a
Python process bound by one GIL, that is where its CPU time goes. Each sampled stack goes to
the first category below whose pattern it contains.
"""

import os
import signal
import subprocess

from . import host

# (category, substring of a py-spy stack), first match wins.
CATEGORIES = (
    ("port create (POST /v2.0/ports)", "Ml2Plugin.create_port "),
    ("port update (PUT)", "Ml2Plugin.update_port "),
    ("port delete", "Ml2Plugin.delete_port "),
    ("port status to ACTIVE (OVN event)", "update_port_status"),
    ("port status to ACTIVE (OVN event)", "set_port_status_up"),
    ("provisioning blocks", "provisioning_complete"),
    ("port listing (GET /v2.0/ports)", "get_ports "),
    ("token check (keystonemiddleware)", "BaseAuthProtocol.__call__"),
    ("OVN database updates", "ovsdbapp"),
    ("OVN database updates", "/ovs/"),
)
OTHER = "other"


def _read_pid(path):
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def api_worker_pid(lab_dir):
    """Return the PID of the Neutron API worker, the uWSGI master's child, or None."""
    master = _read_pid(os.path.join(lab_dir, "run", "neutron-api.pid"))
    if master is None:
        return None
    tree = host.process_tree(master)
    return tree[1] if len(tree) > 1 else master


def neutron_pids(lab_dir):
    """Return the PIDs of every Neutron process of the lab: API, OVN maintenance, periodic."""
    pids = []
    for name in ("neutron-api.pid", "neutron-ovn-maintenance.pid", "neutron-periodic.pid"):
        pid = _read_pid(os.path.join(lab_dir, "run", name))
        if pid is not None:
            pids.extend(host.process_tree(pid))
    return sorted(set(pids))


def cpu_ms(pids):
    """Return the user plus system CPU time of `pids`, in ms; exited processes count zero."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                # The command name, field 2, may contain spaces; fields after ")" are fixed.
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    return total * 1000 / ticks_per_second


class Profile:
    """Records a py-spy profile of one process between start() and stop(), and sorts it.

    `py_spy` is the py-spy binary, or None to skip profiling. After stop(), `seconds` holds
    {category: seconds with the GIL}, or `error` the reason why there is no profile.
    """

    RATE_HZ = 100

    def __init__(self, py_spy, pid, raw_path):
        self.py_spy, self.pid, self.raw_path = py_spy, pid, raw_path
        self.process = None
        self.seconds, self.error = None, None

    def start(self):
        if not self.py_spy or self.pid is None:
            self.error = "py-spy or the Neutron API worker was not found"
            return
        self.process = subprocess.Popen(
            [self.py_spy, "record", "--gil", "--nonblocking", "-p", str(self.pid),
             "-r", str(self.RATE_HZ), "-f", "raw", "-o", self.raw_path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self):
        if self.process is None:
            return
        # py-spy writes its output when interrupted.
        self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        self.process = None
        if not os.path.exists(self.raw_path):
            self.error = f"py-spy wrote no profile: {stderr.strip()[-300:]}"
            return
        self.seconds = classify(self.raw_path, self.RATE_HZ)


def classify(raw_path, rate_hz):
    """Return {category: seconds} from a py-spy raw file ("frame;frame;... count" lines)."""
    seconds = {}
    with open(raw_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            category = next((name for name, pattern in CATEGORIES if pattern in stack), OTHER)
            seconds[category] = seconds.get(category, 0.0) + int(count) / rate_hz
    return {name: round(value, 2) for name, value in
            sorted(seconds.items(), key=lambda item: item[1], reverse=True)}
