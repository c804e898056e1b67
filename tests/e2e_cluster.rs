//! End-to-end tests of Clampify across simulated hosts made by `lab/cluster-up.sh`.
//!
//! Each test brings up its own cluster of host2 and host3, network namespaces with their own
//! Open vSwitch, ovn-controller and dockerd, joined to the lab's OVN by geneve tunnels. Every
//! agent runs inside its host's namespace with that host's OVSDB, Docker endpoint and host
//! ID (`lab/cluster-agent.sh`). host1, the root namespace, runs no agent here, because other
//! tests run agents there. A guard takes the cluster down at the end, also when a test fails,
//! and a lock keeps the tests and `make demo-cluster` from sharing one cluster.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use support::*;

/// Argument of `cluster-up.sh`: host1 plus the simulated host2 and host3.
const CLUSTER_SIZE: u32 = 3;
/// How long a new path may take to carry traffic. ACTIVE means the local chassis has its
/// flows; the remote one can lag, more so on a loaded machine.
const TRAFFIC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply must stay away before two tenants count as cut off.
const ISOLATION_WAIT: Duration = Duration::from_secs(3);
/// How long an agent may take to attach a container or delete its port.
const AGENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes per TCP transfer.
const TRANSFER_BYTES: usize = 200_000;

fn lab_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab").join(name)
}

fn cluster_dir() -> PathBuf {
    Path::new(LAB_DIR).join("cluster")
}

/// Runs a lab script and panics with its output when it fails.
fn run_script(name: &str, args: &[&str]) {
    let output = run(lab_script(name).to_str().unwrap(), args);
    assert!(
        output.status.success(),
        "{name} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns whether a process exists and has not exited. This machine's PID 1 reaps slowly, so
/// a zombie counts as gone.
fn process_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Returns the IPv4 and the IPv6 fixed IP of a Neutron port, `None` where the port has none.
fn fixed_ips(port: &Value) -> (Option<String>, Option<String>) {
    let ips: Vec<String> = port["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["ip_address"].as_str().unwrap().to_string())
        .collect();
    let v4 = ips.iter().find(|ip| !ip.contains(':')).cloned();
    let v6 = ips.iter().find(|ip| ip.contains(':')).cloned();
    (v4, v6)
}

fn port_id(port: &Value) -> String {
    port["id"].as_str().unwrap().to_string()
}

fn mac_of(port: &Value) -> String {
    port["mac_address"].as_str().unwrap().to_string()
}

/// The simulated cluster of one test, taken down when dropped.
struct Cluster {
    hosts: Vec<Host>,
    down: bool,
    // Dropped after `Drop::drop` has taken the cluster down.
    _lock: Flock<File>,
}

impl Cluster {
    /// Waits for the cluster lock, removes any cluster left up, and brings up a fresh one.
    fn up() -> Self {
        require_lab();
        let file = File::create(Path::new(LAB_DIR).join("cluster.lock")).unwrap();
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .expect("lock the simulated cluster");
        if cluster_dir().exists() {
            eprintln!("a simulated cluster is up: removing it for a fresh one");
            run_script("cluster-down.sh", &[]);
        }
        run_script("cluster-up.sh", &[&CLUSTER_SIZE.to_string()]);
        let hosts = (2..=CLUSTER_SIZE)
            .map(|index| Host::load(&format!("host{index}")))
            .collect();
        Self {
            hosts,
            down: false,
            _lock: lock,
        }
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|host| host.name == name).unwrap()
    }

    /// Takes the cluster down and checks that nothing of it is left.
    fn down_and_check(&mut self) {
        self.down = true;
        run_script("cluster-down.sh", &[]);
        let names: Vec<String> = self.hosts.iter().map(|host| host.name.clone()).collect();
        assert_nothing_left(&names);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.down {
            // Best effort while a failed test unwinds: panicking here would abort the run.
            let _ = Command::new(lab_script("cluster-down.sh"))
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// One simulated host, with the settings cluster-up.sh wrote to `cluster/HOST.env`.
struct Host {
    name: String,
    ovsdb: String,
    docker_host: String,
}

impl Host {
    fn load(name: &str) -> Self {
        let path = Path::new(LAB_DIR)
            .join("cluster")
            .join(format!("{name}.env"));
        let text = std::fs::read_to_string(&path).unwrap();
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing in {}", path.display()))
                .to_string()
        };
        assert_eq!(value("CLAMPIFY_HOST"), name);
        assert_eq!(value("NETNS"), name);
        Self {
            name: name.to_string(),
            ovsdb: value("CLAMPIFY_OVSDB"),
            docker_host: value("DOCKER_HOST"),
        }
    }

    fn run_dir(&self) -> PathBuf {
        cluster_dir().join(&self.name).join("run")
    }

    /// Starts the agent with demo-net as its default network; returns after its first reconcile.
    fn start_agent(&self) {
        run_script(
            "cluster-agent.sh",
            &[
                "start",
                &self.name,
                env!("CARGO_BIN_EXE_clampify"),
                DEMO_NET,
            ],
        );
    }

    fn stop_agent(&self) {
        run_script("cluster-agent.sh", &["stop", &self.name]);
    }

    /// Sends SIGKILL to the agent, so it stops without finishing anything.
    fn kill_agent(&self) {
        let pid = read_pid(&self.run_dir().join("clampify-agent.pid"));
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        assert!(
            eventually(Duration::from_secs(10), || !process_running(pid)),
            "agent {pid} of {} still runs after SIGKILL",
            self.name
        );
    }

    /// Stops the host's dockerd; its containers stop with it.
    fn stop_dockerd(&self) {
        let pid = read_pid(&self.run_dir().join("dockerd.pid"));
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        assert!(
            eventually(Duration::from_secs(30), || !process_running(pid)),
            "dockerd {pid} of {} still runs 30 s after SIGTERM",
            self.name
        );
    }

    fn docker(&self, args: &[&str]) -> Output {
        let mut all = vec!["-H", self.docker_host.as_str()];
        all.extend_from_slice(args);
        run("docker", &all)
    }

    /// Runs a container with no Docker network and the given labels.
    fn run_container(&self, labels: &[&str]) -> Container {
        let name = unique("cfy-cl-");
        let mut args = vec!["run", "-d", "--name", name.as_str(), "--network", "none"];
        for label in labels {
            args.extend_from_slice(&["--label", label]);
        }
        args.extend_from_slice(&[IMAGE, "sleep", "600"]);
        let output = self.docker(&args);
        assert!(
            output.status.success(),
            "docker run on {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let inspect = self.docker(&["inspect", "-f", "{{.State.Pid}}", &id]);
        let pid = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
        Container {
            host: self.name.clone(),
            docker_host: self.docker_host.clone(),
            name,
            id,
            pid,
        }
    }

    /// Names of the Interface rows in this host's OVSDB that carry `iface-id=PORT`.
    fn ovs_rows_of(&self, port: &str) -> Vec<String> {
        let db = format!("--db={}", self.ovsdb);
        let condition = format!("external_ids:iface-id={port}");
        let out = run_ok(
            "ovs-vsctl",
            &[
                &db,
                "--bare",
                "--columns=name",
                "find",
                "Interface",
                &condition,
            ],
        );
        out.split_whitespace().map(str::to_string).collect()
    }

    fn link_exists(&self, ifname: &str) -> bool {
        run("ip", &["-n", &self.name, "link", "show", "dev", ifname])
            .status
            .success()
    }

    /// Runs `clampify ARGS --json` inside the host's netns with the host's settings as flags.
    fn clampify_json(&self, args: &[&str]) -> Value {
        let netns = format!("--net=/run/netns/{}", self.name);
        let openrc = agent_openrc();
        let mut all = vec![
            netns.as_str(),
            "--",
            env!("CARGO_BIN_EXE_clampify"),
            "--config",
            "/dev/null",
            "--openrc",
            openrc.to_str().unwrap(),
            "--host",
            &self.name,
            "--ovsdb",
            &self.ovsdb,
            "--docker-host",
            &self.docker_host,
            "--json",
        ];
        all.extend_from_slice(args);
        let output = run("nsenter", &all);
        assert!(
            output.status.success(),
            "clampify {args:?} on {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

/// A container on one simulated host.
struct Container {
    host: String,
    docker_host: String,
    name: String,
    id: String,
    pid: String,
}

impl Container {
    /// Waits until the container has exactly one ACTIVE port and returns it.
    fn wait_active_port(&self) -> Value {
        let mut ports = Vec::new();
        let active = eventually(AGENT_TIMEOUT, || {
            ports = neutron().ports_of_device(&self.id);
            ports.len() == 1 && ports[0]["status"] == "ACTIVE"
        });
        assert!(
            active,
            "{} on {}: no single ACTIVE port after {AGENT_TIMEOUT:?}: {ports:?}",
            self.name, self.host
        );
        ports.remove(0)
    }

    /// Runs a program of this machine inside the container's network namespace.
    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["-t", self.pid.as_str(), "-n", "--"];
        all.extend_from_slice(args);
        run("nsenter", &all)
    }

    /// Sends one ping and returns whether a reply came; `extra` goes before the address.
    fn ping(&self, address: &str, extra: &[&str]) -> bool {
        let mut args = vec!["ping", "-c", "1", "-W", "1"];
        args.extend_from_slice(extra);
        args.push(address);
        self.exec(&args).status.success()
    }

    fn reaches(&self, address: &str, extra: &[&str]) -> bool {
        eventually(TRAFFIC_TIMEOUT, || self.ping(address, extra))
    }

    fn link(&self, ifname: &str) -> Value {
        let output = self.exec(&["ip", "-j", "link", "show", "dev", ifname]);
        let links: Value = serde_json::from_slice(&output.stdout).unwrap();
        links[0].clone()
    }

    fn link_names(&self) -> Vec<String> {
        let output = self.exec(&["ip", "-j", "link", "show"]);
        let links: Value = serde_json::from_slice(&output.stdout).unwrap();
        links
            .as_array()
            .unwrap()
            .iter()
            .map(|link| link["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// Returns the MAC address that the container's neighbour table contains for `address`.
    fn neighbour_mac(&self, address: &str) -> Option<String> {
        let output = self.exec(&["ip", "-j", "neigh", "show", address, "dev", "eth0"]);
        let entries: Value = serde_json::from_slice(&output.stdout).unwrap();
        entries[0]["lladdr"].as_str().map(str::to_string)
    }

    fn remove(&self) {
        let output = run("docker", &["-H", &self.docker_host, "rm", "-f", &self.id]);
        assert!(
            output.status.success(),
            "docker rm {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn port_deleted(&self) -> bool {
        eventually(AGENT_TIMEOUT, || {
            neutron().ports_of_device(&self.id).is_empty()
        })
    }
}

/// Sends random bytes with DF on every segment and no local fragmentation (IP_PMTUDISC_DO),
/// then prints "count sha256" and, on a second line, the path MTU the kernel used (IP_MTU).
/// Python 3.11 names none of these socket options, hence the numbers from <linux/in.h> and
/// <linux/in6.h>.
const TCP_CLIENT_DF: &str = r#"
import hashlib, os, socket, sys, time
v6 = ":" in sys.argv[1]
level, discover, mtu_option = (41, 23, 24) if v6 else (0, 10, 14)
PMTUDISC_DO = 2
data = os.urandom(int(sys.argv[2]))
for _ in range(100):
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    s.setsockopt(level, discover, PMTUDISC_DO)
    s.settimeout(10)
    try:
        s.connect((sys.argv[1], 5001)); break
    except OSError:
        s.close(); time.sleep(0.1)
s.sendall(data)
mtu = s.getsockopt(level, mtu_option)
s.close()
print(len(data), hashlib.sha256(data).hexdigest())
print(mtu)
"#;

/// What both ends of a TCP transfer counted.
struct Transfer {
    sent: String,
    received: String,
    path_mtu: Option<u64>,
}

/// Sends TRANSFER_BYTES from `client` to `server_ip`, where `server` listens.
fn tcp_transfer_df(server: &Container, server_ip: &str, client: &Container) -> Transfer {
    let listener = Command::new("nsenter")
        .args(["-t", &server.pid, "-n", "--", "python3", "-c", TCP_SERVER])
        .arg(server_ip)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the TCP server");
    let sent = client.exec(&[
        "python3",
        "-c",
        TCP_CLIENT_DF,
        server_ip,
        &TRANSFER_BYTES.to_string(),
    ]);
    let received = listener.wait_with_output().unwrap();
    let client_out = String::from_utf8_lossy(&sent.stdout).into_owned();
    let mut lines = client_out.lines();
    Transfer {
        sent: lines.next().unwrap_or_default().to_string(),
        path_mtu: lines.next().and_then(|mtu| mtu.trim().parse().ok()),
        received: format!(
            "{}{}",
            String::from_utf8_lossy(&received.stdout).trim(),
            String::from_utf8_lossy(&received.stderr).trim()
        ),
    }
}

/// Bytes received so far by the root end of a host's underlay veth.
fn underlay_rx_bytes(host: &str) -> u64 {
    let path = format!("/sys/class/net/ul-{host}/statistics/rx_bytes");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {path}: {err}"))
        .trim()
        .parse()
        .unwrap()
}

/// Processes of the simulated hosts that are still alive: their daemons, agents, relays and
/// container processes (dockerd puts those under the cgroup `clampify-lab-HOST`).
fn cluster_processes() -> Vec<String> {
    let markers = [
        "/var/lib/clampify-lab/cluster/",
        "/run/clampify-lab/docker-host",
        "cluster-relay.py",
    ];
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if !process_running(pid) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if markers.iter().any(|marker| cmdline.contains(marker))
            || cgroup.contains("clampify-lab-host")
        {
            found.push(format!("{pid} {cmdline}"));
        }
    }
    found
}

/// Checks with OVN, Neutron, OVS, iproute2 and /proc that the named hosts are gone.
fn assert_nothing_left(hosts: &[String]) {
    let chassis = run_ok(
        "ovn-sbctl",
        &[
            "--db=unix:/var/run/ovn/ovnsb_db.sock",
            "--bare",
            "--columns=name",
            "list",
            "Chassis",
        ],
    );
    for host in hosts {
        assert!(
            !chassis.lines().any(|name| name.trim() == host),
            "chassis {host} left in the OVN southbound database"
        );
        assert!(!netns_exists(host), "netns {host} left");
        assert!(!link_exists(&format!("ul-{host}")), "veth ul-{host} left");
        let (_, body) = neutron().call("GET", &format!("/ports?binding:host_id={host}"), None);
        let ports = body["ports"].as_array().cloned().unwrap_or_default();
        assert!(
            ports.is_empty(),
            "Neutron ports bound to {host} left: {ports:?}"
        );
    }
    let processes = cluster_processes();
    assert!(processes.is_empty(), "processes left: {processes:#?}");
    let bridges = run_ok("ovs-vsctl", &["list-br"]);
    assert!(
        !bridges.lines().any(|bridge| bridge == "br-ul"),
        "bridge br-ul left on host1's OVS"
    );
    let underlay_ports = run_ok(
        "ovs-vsctl",
        &["--bare", "--columns=name", "find", "Interface", "type=\"\""],
    );
    assert!(
        !underlay_ports.contains("ul-host"),
        "underlay OVS rows left on host1: {underlay_ports}"
    );
    let encap = run_ok(
        "ovs-vsctl",
        &["get", "Open_vSwitch", ".", "external_ids:ovn-encap-ip"],
    );
    assert!(
        !encap.contains("203.0.113."),
        "host1 kept its underlay tunnel address {encap}"
    );
    assert!(!cluster_dir().exists(), "{} left", cluster_dir().display());
}

#[test]
fn cross_host_traffic_at_full_mtu() {
    let mut cluster = Cluster::up();
    let host2 = cluster.host("host2");
    let host3 = cluster.host("host3");
    host2.start_agent();
    host3.start_agent();

    let a = host2.run_container(&[]);
    let b = host3.run_container(&[]);
    let port_a = a.wait_active_port();
    let port_b = b.wait_active_port();

    // Each port is bound to its own host and plugged into that host's switch and netns only.
    let demo_net = neutron().network_id(DEMO_NET);
    for (container, port, host) in [(&a, &port_a, host2), (&b, &port_b, host3)] {
        let id = port_id(port);
        let tap = tap_of(&id);
        assert_eq!(port["binding:host_id"].as_str(), Some(host.name.as_str()));
        assert_eq!(port["network_id"].as_str(), Some(demo_net.as_str()));
        assert_eq!(host.ovs_rows_of(&id), vec![tap.clone()]);
        assert!(
            host.link_exists(&tap),
            "{tap} missing in netns {}",
            host.name
        );
        assert!(
            !ovs_interface_exists(&tap),
            "{tap} plugged into host1's OVS"
        );
        assert!(!link_exists(&tap), "{tap} created in host1's netns");
        let eth0 = container.link("eth0");
        assert_eq!(eth0["mtu"].as_u64(), Some(LAB_MTU));
        assert_eq!(eth0["address"], port["mac_address"]);
    }

    // `clampify list` run inside a host's netns lists that host's ports, plugged.
    let list = host2.clampify_json(&["list"]);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(
        entries[0]["port_id"].as_str(),
        Some(port_id(&port_a).as_str())
    );
    assert_eq!(entries[0]["ovs_port"], true);
    assert_eq!(entries[0]["link"], true);

    // Ping both ways on both address families.
    let (a_v4, a_v6) = fixed_ips(&port_a);
    let (b_v4, b_v6) = fixed_ips(&port_b);
    let (a_v4, a_v6) = (a_v4.unwrap(), a_v6.unwrap());
    let (b_v4, b_v6) = (b_v4.unwrap(), b_v6.unwrap());
    assert!(a.reaches(&b_v4, &[]), "host2 -> host3 {b_v4}: no reply");
    assert!(b.reaches(&a_v4, &[]), "host3 -> host2 {a_v4}: no reply");
    assert!(a.reaches(&b_v6, &["-6"]), "host2 -> host3 {b_v6}: no reply");
    assert!(b.reaches(&a_v6, &["-6"]), "host3 -> host2 {a_v6}: no reply");

    // Packets of the full network MTU with DF set: 1414 + 8 (ICMP) + 20 (IPv4) = 1442 and
    // 1394 + 8 (ICMPv6) + 40 (IPv6) = 1442.
    assert!(
        a.ping(&b_v4, &["-M", "do", "-s", "1414"]),
        "a 1442-byte IPv4 packet with DF got no reply"
    );
    assert!(
        a.ping(&b_v6, &["-6", "-M", "do", "-s", "1394"]),
        "a 1442-byte IPv6 packet got no reply"
    );

    // 200 kB over TCP with DF on every segment, through host2's underlay.
    let underlay_before = underlay_rx_bytes("host2");
    let v4 = tcp_transfer_df(&b, &b_v4, &a);
    let underlay_bytes = underlay_rx_bytes("host2") - underlay_before;
    assert!(
        v4.sent.starts_with(&format!("{TRANSFER_BYTES} ")),
        "sent: {}",
        v4.sent
    );
    assert_eq!(
        v4.sent, v4.received,
        "TCP transfer to {b_v4} arrived changed"
    );
    assert_eq!(v4.path_mtu, Some(LAB_MTU), "path MTU towards {b_v4}");
    assert!(
        underlay_bytes >= TRANSFER_BYTES as u64,
        "only {underlay_bytes} bytes crossed ul-host2"
    );
    let v6 = tcp_transfer_df(&a, &a_v6, &b);
    assert_eq!(
        v6.sent, v6.received,
        "TCP transfer to {a_v6} arrived changed"
    );
    assert_eq!(v6.path_mtu, Some(LAB_MTU), "path MTU towards {a_v6}");

    // Removed containers lose their ports, on each host.
    a.remove();
    b.remove();
    assert!(a.port_deleted(), "port of {} left on host2", a.name);
    assert!(b.port_deleted(), "port of {} left on host3", b.name);
    assert!(host2.ovs_rows_of(&port_id(&port_a)).is_empty());
    assert!(host3.ovs_rows_of(&port_id(&port_b)).is_empty());
    cluster.down_and_check();
}

/// Returns `count` IPv4 addresses of 198.51.100.0/24 that no Neutron port holds, from a random
/// start, so that concurrent tests seldom pick the same ones.
fn free_addresses(count: usize) -> Vec<String> {
    let start = 160 + usize::from(unique("").as_bytes()[0] % 40);
    let mut free = Vec::new();
    for host in (start..250).chain(160..start) {
        let address = format!("198.51.100.{host}");
        let (_, body) = neutron().call(
            "GET",
            &format!("/ports?fixed_ips=ip_address={address}"),
            None,
        );
        if body["ports"].as_array().is_some_and(Vec::is_empty) {
            free.push(address);
        }
        if free.len() == count {
            return free;
        }
    }
    panic!("fewer than {count} free addresses in 198.51.100.160-249");
}

#[test]
fn tenants_with_same_addresses_stay_apart() {
    let mut cluster = Cluster::up();
    let host2 = cluster.host("host2");
    let host3 = cluster.host("host3");
    host2.start_agent();
    host3.start_agent();
    let addresses = free_addresses(3);
    let (x, y, z) = (&addresses[0], &addresses[1], &addresses[2]);
    let tenant_b = format!("clampify.networks={TENANT_B_NET}");

    // Both tenants put X on host2 and Y on host3; only tenant-b has Z.
    let demo_x = host2.run_container(&[&format!("clampify.ips={x}")]);
    let demo_y = host3.run_container(&[&format!("clampify.ips={y}")]);
    let b_x = host2.run_container(&[&tenant_b, &format!("clampify.ips={x}")]);
    let b_y = host3.run_container(&[&tenant_b, &format!("clampify.ips={y}")]);
    let b_z = host3.run_container(&[&tenant_b, &format!("clampify.ips={z}")]);
    let containers = [&demo_x, &demo_y, &b_x, &b_y, &b_z];
    let ports: Vec<Value> = containers.iter().map(|c| c.wait_active_port()).collect();
    let expected = [x, y, x, y, z];
    for (port, address) in ports.iter().zip(expected) {
        assert_eq!(fixed_ips(port).0.as_ref(), Some(address), "{port}");
    }

    // Each tenant reaches its own container behind the shared address Y.
    assert!(
        demo_x.reaches(y, &[]),
        "demo-net: {y} unreachable across hosts"
    );
    assert!(
        b_x.reaches(y, &[]),
        "tenant-b-net: {y} unreachable across hosts"
    );
    assert_eq!(demo_x.neighbour_mac(y), Some(mac_of(&ports[1])));
    assert_eq!(b_x.neighbour_mac(y), Some(mac_of(&ports[3])));
    assert!(
        demo_y.reaches(x, &[]),
        "demo-net: {x} unreachable across hosts"
    );
    assert_eq!(demo_y.neighbour_mac(x), Some(mac_of(&ports[0])));

    // Z replies to tenant-b (the positive control) and never to demo-net.
    assert!(
        b_x.reaches(z, &[]),
        "tenant-b-net: {z} unreachable across hosts"
    );
    assert!(
        !eventually(ISOLATION_WAIT, || demo_x.ping(z, &[])),
        "demo-net reached tenant-b's {z}"
    );

    for container in containers {
        container.remove();
    }
    for container in containers {
        assert!(container.port_deleted(), "port of {} left", container.name);
    }
    cluster.down_and_check();
}

#[test]
fn killed_agent_restarts_cleanly() {
    let mut cluster = Cluster::up();
    let host2 = cluster.host("host2");
    let host3 = cluster.host("host3");
    host2.start_agent();
    host3.start_agent();
    let a = host2.run_container(&[]);
    let b = host3.run_container(&[]);
    let port_a = a.wait_active_port();
    let port_b = b.wait_active_port();
    let (a_v4, _) = fixed_ips(&port_a);
    let (b_v4, _) = fixed_ips(&port_b);
    let (a_v4, b_v4) = (a_v4.unwrap(), b_v4.unwrap());
    assert!(
        a.reaches(&b_v4, &[]),
        "host2 -> host3: no reply before the kill"
    );

    host2.kill_agent();

    // While host2 has no agent, host3's agent keeps attaching and traffic keeps flowing.
    let late = host2.run_container(&[]);
    let b2 = host3.run_container(&[]);
    let port_b2 = b2.wait_active_port();
    let (b2_v4, _) = fixed_ips(&port_b2);
    let b2_v4 = b2_v4.unwrap();
    assert!(
        a.reaches(&b2_v4, &[]),
        "host2 -> new host3 container: no reply"
    );
    assert!(
        b.reaches(&a_v4, &[]),
        "host3 -> host2: no reply with host2's agent down"
    );
    assert!(
        neutron().ports_of_device(&late.id).is_empty(),
        "{} got a port with no agent on host2",
        late.name
    );

    host2.start_agent();

    // The new container is attached; the old one keeps its port, MAC and addresses.
    let port_late = late.wait_active_port();
    let (late_v4, _) = fixed_ips(&port_late);
    assert!(
        late.reaches(&b_v4, &[]),
        "late host2 container -> host3: no reply"
    );
    assert!(
        b.reaches(&late_v4.unwrap(), &[]),
        "host3 -> late host2 container: no reply"
    );
    let ports_a = neutron().ports_of_device(&a.id);
    assert_eq!(ports_a.len(), 1, "{ports_a:?}");
    assert_eq!(ports_a[0]["id"], port_a["id"]);
    assert_eq!(ports_a[0]["mac_address"], port_a["mac_address"]);
    assert_eq!(ports_a[0]["fixed_ips"], port_a["fixed_ips"]);
    assert_eq!(ports_a[0]["status"], "ACTIVE");
    assert_eq!(a.link_names(), vec!["lo".to_string(), "eth0".to_string()]);
    assert_eq!(a.link("eth0")["address"], port_a["mac_address"]);
    assert!(
        a.reaches(&b_v4, &[]),
        "host2 -> host3: no reply after the restart"
    );

    for container in [&a, &b, &late, &b2] {
        container.remove();
    }
    for container in [&a, &b, &late, &b2] {
        assert!(container.port_deleted(), "port of {} left", container.name);
    }
    cluster.down_and_check();
}

/// The agent is stopped, its containers are removed with `docker rm` meanwhile, and dockerd
/// restarts before the agent comes back. Docker's event history does not survive the restart,
/// so only the agent's reconcile on start can find the ports of the removed containers. A host
/// goes through this sequence when its agent fails during maintenance. Deleting containers
/// from dockerd's data root by hand would instead depend on Docker's on-disk layout.
#[test]
fn reconcile_deletes_ports_of_removed_containers() {
    let mut cluster = Cluster::up();
    let host2 = cluster.host("host2");
    let host3 = cluster.host("host3");
    host2.start_agent();
    host3.start_agent();
    let tenant_b = format!("clampify.networks={TENANT_B_NET}");
    let demo = host2.run_container(&[]);
    let other_tenant = host2.run_container(&[&tenant_b]);
    let remote = host3.run_container(&[]);
    let gone_ports = [demo.wait_active_port(), other_tenant.wait_active_port()];
    let remote_port = remote.wait_active_port();

    host2.stop_agent();
    demo.remove();
    other_tenant.remove();
    for port in &gone_ports {
        let id = port_id(port);
        assert!(
            neutron().port(&id).is_some(),
            "port {id} deleted with no agent"
        );
        assert_eq!(host2.ovs_rows_of(&id), vec![tap_of(&id)]);
    }
    host2.stop_dockerd();
    // cluster-up.sh starts what is not running, here host2's dockerd.
    run_script("cluster-up.sh", &[&CLUSTER_SIZE.to_string()]);

    host2.start_agent();

    for port in &gone_ports {
        let id = port_id(port);
        assert!(
            eventually(AGENT_TIMEOUT, || neutron().port(&id).is_none()),
            "port {id} of a removed container left after the restart"
        );
        assert!(host2.ovs_rows_of(&id).is_empty(), "OVS row of {id} left");
        assert!(!host2.link_exists(&tap_of(&id)), "veth of {id} left");
    }
    let remote_id = port_id(&remote_port);
    let remote_now = neutron().port(&remote_id).expect("host3's port kept");
    assert_eq!(remote_now["status"], "ACTIVE");

    remote.remove();
    assert!(remote.port_deleted(), "port of {} left", remote.name);
    cluster.down_and_check();
}
