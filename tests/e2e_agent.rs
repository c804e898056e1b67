//! End-to-end tests of the `clampify watch` agent against the lab and real dockerds.
//!
//! Each test starts the agent as a child process with its log in a file, which is printed
//! when the test fails. Only one agent may follow a dockerd under one host ID, so each test
//! first waits until no other `clampify watch` runs in this network namespace. Containers
//! are named `cfy-e2e-<random>`; their guards delete their ports with curl and ovs-vsctl.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use support::*;

/// Time allowed for the agent to attach a container it has just seen start.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for the agent to clean up after `docker rm -f`.
const DETACH_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for traffic to flow once both ports are ACTIVE.
const TRAFFIC_TIMEOUT: Duration = Duration::from_secs(15);
/// Maximum time to wait for another `clampify watch` in this namespace to stop.
const OTHER_AGENT_TIMEOUT: Duration = Duration::from_secs(600);

/// A `clampify watch` child process; dropping it kills the agent if it still runs and
/// prints its log when the test is failing.
struct Agent {
    child: Child,
    log: PathBuf,
    metrics_address: String,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Starts `clampify --openrc agent-openrc watch demo-net --metrics-address ADDR EXTRA`
    /// and waits for its first reconcile.
    fn start(extra: &[&str]) -> Self {
        let agent = Self::spawn(&agent_openrc(), extra);
        assert!(
            agent.wait_for_log(&["reconciled"], ATTACH_TIMEOUT),
            "the agent did not finish its first reconcile"
        );
        agent
    }

    /// Starts the agent like [`Agent::start`] with credentials from `openrc`, and returns
    /// at once.
    fn spawn(openrc: &Path, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        let metrics_address = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "--openrc",
            openrc.to_str().unwrap(),
            "watch",
            DEMO_NET,
            "--metrics-address",
            &metrics_address,
        ];
        args.extend_from_slice(extra);

        let mut command = Command::new(env!("CARGO_BIN_EXE_clampify"));
        command.args(&args);
        for (key, _) in std::env::vars() {
            if key.starts_with("OS_") || key.starts_with("CLAMPIFY_") || key == "DOCKER_HOST" {
                command.env_remove(key);
            }
        }
        let child = command
            .env("HOME", "/nonexistent")
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start clampify watch");
        eprintln!("started clampify watch (pid {}): {args:?}", child.id());

        Self {
            child,
            log,
            metrics_address,
            _dir: dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns the log lines that contain every one of `needles`.
    fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|line| needles.iter().all(|needle| line.contains(needle)))
            .map(str::to_string)
            .collect()
    }

    /// Waits until a log line contains every one of `needles`.
    fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> bool {
        eventually(timeout, || !self.log_lines(needles).is_empty())
    }

    /// Sends SIGTERM and waits for the agent to exit.
    fn stop(&mut self) -> ExitStatus {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, Signal::SIGTERM).expect("send SIGTERM to the agent");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `GET PATH` to the metrics server and returns the status and body.
    fn http_get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.metrics_address);
        let out = run_ok("curl", &["-sS", "-w", "\n%{http_code}", &url]);
        let (body, status) = out.rsplit_once('\n').unwrap();
        (status.trim().parse().unwrap(), body.to_string())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- agent log {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Lists `clampify watch` processes in this network namespace, as "PID ARGS" lines.
fn agents_in_this_netns() -> Vec<String> {
    let own_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut agents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|byte| *byte == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let is_agent = args
            .first()
            .is_some_and(|program| program.ends_with("clampify"))
            && args.iter().any(|arg| arg == "watch");
        let same_netns = std::fs::read_link(path.join("ns/net")).ok() == Some(own_netns.clone());
        if is_agent && same_netns && !is_zombie(&path) {
            agents.push(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                args.join(" ")
            ));
        }
    }
    agents
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(')')?;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Checks the lab, then waits while another agent runs in this namespace. Two agents on
/// one host ID would both attach the test's containers, and one's reconcile could delete
/// the other's ports.
fn prepare() {
    require_lab();
    let started = Instant::now();
    loop {
        let agents = agents_in_this_netns();
        if agents.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < OTHER_AGENT_TIMEOUT,
            "another clampify watch still runs in this network namespace after {} s: {agents:?}",
            OTHER_AGENT_TIMEOUT.as_secs()
        );
        eprintln!("waiting for another agent to stop: {agents:?}");
        std::thread::sleep(Duration::from_secs(10));
    }
}

fn none_container(prefix: &str, labels: &[&str]) -> TestContainer {
    let mut extra = vec!["--network", "none"];
    for label in labels {
        extra.extend(["--label", label]);
    }
    TestContainer::run(prefix, &extra)
}

fn wait_ipv4(container: &TestContainer) -> String {
    container
        .wait_ipv4(ATTACH_TIMEOUT)
        .unwrap_or_else(|| panic!("{} got no IPv4 address", container.name))
}

/// Returns the one Neutron port of the container; fails unless there is exactly one.
fn only_port(container: &TestContainer) -> Value {
    let ports = container.ports();
    assert_eq!(ports.len(), 1, "ports of {}: {ports:?}", container.name);
    ports.into_iter().next().unwrap()
}

fn port_id(port: &Value) -> String {
    port["id"].as_str().unwrap().to_string()
}

/// Reads the value of an unlabelled counter or gauge from Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

/// Returns a demo-net IPv4 address that has no port on demo-net or tenant-b-net.
fn free_shared_ipv4() -> String {
    let networks = [
        neutron().network_id(DEMO_NET),
        neutron().network_id(TENANT_B_NET),
    ];
    for _ in 0..20 {
        let byte = 200 + u32::from(unique("").as_bytes()[0]) % 50;
        let ip = format!("198.51.100.{byte}");
        let taken = networks.iter().any(|network| {
            let query = format!("/ports?network_id={network}&fixed_ips=ip_address%3D{ip}");
            let (_, body) = neutron().call("GET", &query, None);
            body["ports"]
                .as_array()
                .is_some_and(|ports| !ports.is_empty())
        });
        if !taken {
            return ip;
        }
    }
    panic!("no free address in 198.51.100.200-249 on demo-net and tenant-b-net")
}

/// Sends an HTTP request with busybox nc and returns the body text, or "" on failure.
fn http_from(client: &TestContainer, ip: &str) -> String {
    let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080");
    client.exec_stdout(&["sh", "-c", &request])
}

/// Serves `text` over HTTP on port 8080 of the container with busybox httpd.
fn serve(container: &TestContainer, text: &str) {
    let script = format!("mkdir -p /www && echo {text} > /www/index.html && httpd -p 8080 -h /www");
    let output = container.exec(&["sh", "-c", &script]);
    assert!(
        output.status.success(),
        "httpd in {} failed",
        container.name
    );
}

#[test]
fn agent_attaches_restarts_and_removes() {
    prepare();
    let data_root = docker_ok(&["info", "-f", "{{.DockerRootDir}}"]);
    let mut agent = Agent::start(&[]);
    let a = none_container("ag-a-", &[]);
    let b = none_container("ag-b-", &[]);

    // Both containers get demo-net addresses and reach each other.
    let ip_a = wait_ipv4(&a);
    let ip_b = wait_ipv4(&b);
    assert!(
        a.ping(&ip_b, TRAFFIC_TIMEOUT),
        "ping {ip_b} from {}",
        a.name
    );
    assert!(
        b.ping(&ip_a, TRAFFIC_TIMEOUT),
        "ping {ip_a} from {}",
        b.name
    );
    for container in [&a, &b] {
        let port = only_port(container);
        let id = port_id(&port);
        assert_eq!(port["device_id"].as_str(), Some(container.id.as_str()));
        assert_eq!(port["device_owner"], "compute:clampify");
        assert!(
            neutron().wait_status(&id, "ACTIVE", ATTACH_TIMEOUT),
            "port {id} of {} is not ACTIVE",
            container.name
        );
        assert_eq!(
            port["description"].as_str(),
            Some(
                format!("created by clampify for the dockerd with data root {data_root}").as_str()
            )
        );
        let resolv = container.exec_stdout(&["cat", "/etc/resolv.conf"]);
        assert!(resolv.contains("nameserver 198.51.100.53"), "{resolv}");
    }

    // A restart keeps the port, the address and the MAC.
    let port_a = port_id(&only_port(&a));
    let (mac_a, _) = a.link().unwrap();
    a.restart();
    assert!(
        eventually(ATTACH_TIMEOUT, || a.ipv4().as_deref()
            == Some(ip_a.as_str())),
        "{} did not get {ip_a} back after its restart",
        a.name
    );
    assert_eq!(port_id(&only_port(&a)), port_a);
    assert_eq!(a.link().unwrap().0, mac_a);
    assert!(b.ping(&ip_a, TRAFFIC_TIMEOUT), "ping {ip_a} after restart");

    // docker rm -f deletes the port and its OVS row.
    let port_b = port_id(&only_port(&b));
    b.remove();
    assert!(
        eventually(DETACH_TIMEOUT, || neutron().port(&port_b).is_none()),
        "port {port_b} of removed container {} still exists",
        b.name
    );
    assert!(
        eventually(DETACH_TIMEOUT, || !ovs_interface_exists(&tap_of(&port_b))),
        "OVS row of port {port_b} still exists"
    );

    // /metrics counts every attach the log reports, and /healthz is 200.
    let (status, text) = agent.http_get("/metrics");
    assert_eq!(status, 200);
    let attaches = metric(&text, "clampify_attaches_total").expect("attaches counter");
    let attach_lines = agent.log_lines(&["container attached"]).len();
    assert!(attaches >= 3.0, "{text}");
    assert_eq!(attaches, attach_lines as f64, "{text}");
    let detaches = metric(&text, "clampify_detaches_total").expect("detaches counter");
    assert!(detaches >= 1.0, "{text}");
    let (health, body) = agent.http_get("/healthz");
    assert_eq!(health, 200, "{body}");

    let status = agent.stop();
    assert!(status.success(), "agent exited with {status}");
}

#[test]
fn agent_creates_port_before_start() {
    prepare();
    let mut agent = Agent::start(&[]);
    let created = TestContainer::create("ag-created-", &["--network", "none"]);

    // `docker create` alone gives the container its port, bound to this host and DOWN.
    assert!(
        eventually(ATTACH_TIMEOUT, || created.ports().len() == 1),
        "no port for created container {}",
        created.name
    );
    let port = only_port(&created);
    let id = port_id(&port);
    assert_eq!(port["device_id"].as_str(), Some(created.id.as_str()));
    assert_eq!(port["status"], "DOWN");
    assert_eq!(port["binding:host_id"].as_str(), Some(lab_host().as_str()));

    // Its start plugs that port: same ID, the port's address, ACTIVE.
    docker_ok(&["start", &created.name]);
    let ip = wait_ipv4(&created);
    assert_eq!(port_id(&only_port(&created)), id);
    assert_eq!(fixed_ips(&only_port(&created))[0], ip);
    assert!(
        neutron().wait_status(&id, "ACTIVE", ATTACH_TIMEOUT),
        "port {id} of {} is not ACTIVE",
        created.name
    );
    let attached = ["container attached", &created.id, "port_action=created"];
    assert!(
        agent.wait_for_log(&attached, ATTACH_TIMEOUT),
        "no attach line for {}",
        created.name
    );
    assert_eq!(agent.log_lines(&attached).len(), 1);

    // A container removed without ever starting takes its port with it.
    let never_started = TestContainer::create("ag-never-", &["--network", "none"]);
    assert!(
        eventually(ATTACH_TIMEOUT, || never_started.ports().len() == 1),
        "no port for created container {}",
        never_started.name
    );
    let unused = port_id(&only_port(&never_started));
    never_started.remove();
    assert!(
        eventually(DETACH_TIMEOUT, || neutron().port(&unused).is_none()),
        "port {unused} of removed container {} still exists",
        never_started.name
    );

    created.remove();
    let status = agent.stop();
    assert!(status.success(), "agent exited with {status}");
}

/// Returns the spare ports that agents of the machine's dockerd keep on this host.
fn spares_of_machine_dockerd() -> Vec<Value> {
    let data_root = docker_ok(&["info", "-f", "{{.DockerRootDir}}"]);
    let description =
        format!("created by clampify as a spare for the dockerd with data root {data_root}");
    neutron()
        .ports_of_device("clampify-spare")
        .into_iter()
        .filter(|port| port["binding:host_id"].as_str() == Some(lab_host().as_str()))
        .filter(|port| port["description"].as_str() == Some(description.as_str()))
        .collect()
}

fn ids(ports: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = ports.iter().map(port_id).collect();
    ids.sort();
    ids
}

#[test]
fn agent_keeps_spare_ports() {
    prepare();
    assert_eq!(
        ids(&spares_of_machine_dockerd()),
        Vec::<String>::new(),
        "spares left by an earlier run"
    );
    let mut agent = Agent::start(&["--spare-ports", "2"]);

    // The agent creates two spares, bound to this host and DOWN.
    assert!(
        eventually(ATTACH_TIMEOUT, || spares_of_machine_dockerd().len() == 2),
        "the agent did not create 2 spare ports"
    );
    let spares = spares_of_machine_dockerd();
    for spare in &spares {
        assert_eq!(spare["status"], "DOWN");
        assert_eq!(spare["device_owner"], "compute:clampify");
    }

    // A new container takes one of them: same port ID, its address, ACTIVE.
    let container = none_container("ag-spare-", &[]);
    let ip = wait_ipv4(&container);
    let port = only_port(&container);
    let id = port_id(&port);
    assert!(
        ids(&spares).contains(&id),
        "port {id} was not one of the spares {spares:?}"
    );
    assert_eq!(fixed_ips(&port)[0], ip);
    assert_eq!(
        port["name"].as_str(),
        Some(format!("clampify-{}", container.name).as_str())
    );
    assert!(
        neutron().wait_status(&id, "ACTIVE", ATTACH_TIMEOUT),
        "port {id} of {} is not ACTIVE",
        container.name
    );

    // The agent makes up for the spare once it is idle.
    assert!(
        eventually(ATTACH_TIMEOUT, || spares_of_machine_dockerd().len() == 2),
        "the agent did not replace the spare that was taken"
    );

    // A killed agent leaves its spares; the next one adopts them instead of making more.
    let before = ids(&spares_of_machine_dockerd());
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    let mut agent = Agent::start(&["--spare-ports", "2"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ids(&spares_of_machine_dockerd()), before);

    // A stopped agent deletes its spares; the container keeps its port.
    let status = agent.stop();
    assert!(status.success(), "agent exited with {status}");
    assert_eq!(
        ids(&spares_of_machine_dockerd()),
        Vec::<String>::new(),
        "spares left after SIGTERM"
    );
    assert_eq!(port_id(&only_port(&container)), id);

    let mut cleanup = Agent::start(&[]);
    container.remove();
    assert!(
        eventually(DETACH_TIMEOUT, || neutron().port(&id).is_none()),
        "port {id} of removed container {} still exists",
        container.name
    );
    assert!(cleanup.stop().success());
}

/// Forwards connections to 127.0.0.1:`listen_port` to `target` from a thread, until the
/// test process ends. Each direction of a connection is copied by a thread of its own.
fn relay(listen_port: u16, target: String) {
    let listener = TcpListener::bind(("127.0.0.1", listen_port)).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&target) else {
                continue;
            };
            let (mut client_read, mut server_read) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut client_write, mut server_write) = (client, server);
            std::thread::spawn(move || std::io::copy(&mut client_read, &mut server_write));
            std::thread::spawn(move || std::io::copy(&mut server_read, &mut client_write));
        }
    });
}

#[test]
fn agent_waits_for_unreachable_keystone() {
    prepare();
    let lab_openrc = std::fs::read_to_string(agent_openrc()).unwrap();
    let lab_keystone = lab_openrc
        .lines()
        .find_map(|line| line.strip_prefix("export OS_AUTH_URL="))
        .expect("OS_AUTH_URL in the agent's openrc")
        .trim_start_matches("http://")
        .trim_end_matches("/v3")
        .to_owned();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let openrc = dir.path().join("openrc");
    let moved = lab_openrc.replace(
        &format!("http://{lab_keystone}/v3"),
        &format!("http://127.0.0.1:{port}/v3"),
    );
    std::fs::write(&openrc, moved).unwrap();

    // Nothing listens on the port yet: the agent keeps trying instead of exiting.
    let mut agent = Agent::spawn(&openrc, &[]);
    assert!(
        agent.wait_for_log(&["default network lookup failed; retrying"], ATTACH_TIMEOUT),
        "no retry line: {}",
        agent.log_text()
    );
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent exited: {}",
        agent.log_text()
    );

    // Once Keystone responds on that port, the agent starts as usual.
    relay(port, lab_keystone);
    assert!(
        agent.wait_for_log(&["reconciled"], ATTACH_TIMEOUT),
        "the agent did not start once Keystone was reachable: {}",
        agent.log_text()
    );
    let status = agent.stop();
    assert!(status.success(), "agent exited with {status}");
}

#[test]
fn spare_ports_need_default_network() {
    require_lab();
    let openrc = agent_openrc();
    // `timeout` ends an agent that starts anyway, so the test fails instead of hanging.
    let output = run(
        "timeout",
        &[
            "20",
            env!("CARGO_BIN_EXE_clampify"),
            "--openrc",
            openrc.to_str().unwrap(),
            "watch",
            "--spare-ports",
            "2",
        ],
    );

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--spare-ports 2 needs a default network"),
        "{stderr}"
    );
}

#[test]
fn agent_isolates_tenants_on_same_ip() {
    prepare();
    let _agent = Agent::start(&[]);
    let shared_ip = free_shared_ipv4();
    let ips_label = format!("clampify.ips={shared_ip}");
    let demo = none_container("iso-demo-", &[&ips_label]);
    let tenant = none_container(
        "iso-b-",
        &[&format!("clampify.networks={TENANT_B_NET}"), &ips_label],
    );
    let peer = none_container("iso-peer-", &[]);

    let demo_ip = wait_ipv4(&demo);
    let tenant_ip = wait_ipv4(&tenant);
    let peer_ip = wait_ipv4(&peer);
    assert_eq!(demo_ip, shared_ip);
    assert_eq!(tenant_ip, shared_ip);
    let demo_port = only_port(&demo);
    let tenant_port = only_port(&tenant);
    assert_eq!(
        tenant_port["network_id"].as_str(),
        Some(neutron().network_id(TENANT_B_NET).as_str())
    );
    assert_eq!(
        demo_port["network_id"].as_str(),
        Some(neutron().network_id(DEMO_NET).as_str())
    );

    // Positive control: the demo peer reaches the shared address, and the demo container
    // responds, as its MAC and the page it serves show.
    serve(&demo, &format!("served-by-{}", demo.name));
    serve(&tenant, &format!("served-by-{}", tenant.name));
    let mut page = String::new();
    let reached = eventually(TRAFFIC_TIMEOUT, || {
        page = http_from(&peer, &shared_ip);
        !page.is_empty()
    });
    assert!(reached, "{} got no HTTP reply from {shared_ip}", peer.name);
    assert!(page.contains(&format!("served-by-{}", demo.name)), "{page}");
    assert!(!page.contains(&tenant.name), "{page}");
    let neighbours = peer.exec_stdout(&["ip", "neigh", "show", &shared_ip]);
    let demo_mac = demo_port["mac_address"].as_str().unwrap();
    assert!(neighbours.contains(demo_mac), "{neighbours}");

    // The tenant-b container cannot reach the other demo-net address.
    assert!(
        !tenant.ping(&peer_ip, Duration::from_secs(5)),
        "{} on {TENANT_B_NET} reached {peer_ip} on {DEMO_NET}",
        tenant.name
    );
    assert_eq!(http_from(&tenant, &peer_ip), "");
}

#[test]
fn agent_leaves_disabled_and_host_alone() {
    prepare();
    let agent = Agent::start(&[]);
    let disabled = none_container("dis-", &["clampify.disable=true"]);
    let host = TestContainer::run("hostnet-", &["--network", "host"]);
    let control = none_container("ctl-", &[]);

    wait_ipv4(&control);
    for container in [&disabled, &host] {
        assert!(
            agent.wait_for_log(&["container left alone", &container.id], ATTACH_TIMEOUT),
            "no log line says {} was left alone",
            container.name
        );
        assert_eq!(container.ports(), Vec::<Value>::new(), "{}", container.name);
    }
    assert_eq!(disabled.link(), None, "{} got an interface", disabled.name);
}

#[test]
fn agent_reconciles_after_restart() {
    prepare();
    let mut first = Agent::start(&[]);
    let kept = none_container("rec-kept-", &[]);
    let removed = none_container("rec-rm-", &[]);
    let kept_ip = wait_ipv4(&kept);
    let removed_ip = wait_ipv4(&removed);
    let kept_port = port_id(&only_port(&kept));
    let removed_port = port_id(&only_port(&removed));

    // A stopped agent leaves the containers attached.
    let status = first.stop();
    assert!(status.success(), "agent exited with {status}");
    assert_eq!(kept.ipv4(), Some(kept_ip.clone()));
    assert_eq!(removed.ipv4(), Some(removed_ip));

    // While no agent runs, one container restarts, one goes and another starts. The old
    // namespace of the restarted one, and its veth, outlive the restart while something
    // references the namespace: reconcile must not take that veth for the current one.
    let holder = NetnsHolder::new(&kept);
    kept.restart();
    assert!(
        link_exists(&tap_of(&kept_port)),
        "the old veth of {kept_port} is gone"
    );
    removed.remove();
    let started = none_container("rec-new-", &[]);
    assert_eq!(
        started.link(),
        None,
        "{} got eth0 with no agent",
        started.name
    );

    let second = Agent::start(&[]);
    wait_ipv4(&started);
    assert_eq!(
        only_port(&started)["device_id"].as_str(),
        Some(started.id.as_str())
    );
    assert!(
        eventually(DETACH_TIMEOUT, || neutron().port(&removed_port).is_none()),
        "port {removed_port} of removed container {} still exists",
        removed.name
    );
    assert!(
        !ovs_interface_exists(&tap_of(&removed_port)),
        "OVS row of port {removed_port} still exists"
    );
    assert!(
        second.wait_for_log(
            &["deleted port of removed container", &removed_port],
            DETACH_TIMEOUT
        ),
        "no log line reports the deletion of {removed_port}"
    );
    assert!(
        eventually(ATTACH_TIMEOUT, || kept.ipv4().as_deref()
            == Some(kept_ip.as_str())),
        "{} did not get {kept_ip} back after its restart",
        kept.name
    );
    assert_eq!(port_id(&only_port(&kept)), kept_port);
    drop(holder);
}

#[test]
fn agent_rejects_label_outside_policy() {
    prepare();
    let agent = Agent::start(&["--allowed-network", DEMO_NET]);
    let rejected = none_container("pol-", &[&format!("clampify.networks={TENANT_B_NET}")]);
    let misplaced = none_container("pol-ip-", &["clampify.ips=203.0.113.9"]);
    let allowed = none_container("pol-ok-", &[]);

    wait_ipv4(&allowed);
    let needles = [
        "container event failed",
        rejected.id.as_str(),
        "label clampify.networks",
        TENANT_B_NET,
        "allowed_networks",
    ];
    assert!(
        agent.wait_for_log(&needles, ATTACH_TIMEOUT),
        "no error names the label, network and policy for {}",
        rejected.name
    );
    assert_eq!(rejected.ports(), Vec::<Value>::new());
    assert_eq!(rejected.link(), None, "{} got an interface", rejected.name);

    // An address outside every requested subnet is an error, not a random address.
    let needles = [
        "container event failed",
        misplaced.id.as_str(),
        "203.0.113.9 is in no subnet",
    ];
    assert!(
        agent.wait_for_log(&needles, ATTACH_TIMEOUT),
        "no error names the address of {}",
        misplaced.name
    );
    assert_eq!(misplaced.ports(), Vec::<Value>::new());
}

/// Socket of the private dockerd that the restart test starts and stops.
const PRIVATE_SOCKET: &str = "/run/cfy-e2e-docker.sock";
const PRIVATE_DATA_ROOT: &str = "/var/lib/cfy-e2e-docker";
const PRIVATE_EXEC_ROOT: &str = "/run/cfy-e2e-docker";
const PRIVATE_PIDFILE: &str = "/run/cfy-e2e-docker.pid";
/// Network namespace the private dockerd runs in.
const PRIVATE_NETNS: &str = "cfy-e2e-dockerd";
/// Time allowed for dockerd to start or stop.
const DOCKERD_TIMEOUT: Duration = Duration::from_secs(60);

/// A dockerd that the test starts, so that it can restart it without touching the machine's
/// dockerd. Dropping it stops dockerd and removes its directories and namespace.
///
/// It runs in a network namespace of its own: dockerd 20.10 started with `--bridge=none`
/// deletes `docker0` in its namespace, which would break the machine dockerd's bridge.
///
/// It shares the host with the machine's dockerd: both read /etc/docker/key.json, so both
/// report the same engine ID, and only the data root tells their containers apart.
struct PrivateDockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl PrivateDockerd {
    fn start() -> Self {
        stop_leftover_dockerd();
        if !netns_exists(PRIVATE_NETNS) {
            run_ok("ip", &["netns", "add", PRIVATE_NETNS]);
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
        let mut dockerd = Self { child: None, dir };
        dockerd.spawn();
        dockerd
    }

    fn docker_args() -> [&'static str; 2] {
        ["-H", "unix:///run/cfy-e2e-docker.sock"]
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("daemon.json");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("dockerd.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .args([
                &format!("--net=/run/netns/{PRIVATE_NETNS}"),
                "setsid",
                "dockerd",
                "--data-root",
                PRIVATE_DATA_ROOT,
                "--exec-root",
                PRIVATE_EXEC_ROOT,
                "--pidfile",
                PRIVATE_PIDFILE,
                "-H",
                &format!("unix://{PRIVATE_SOCKET}"),
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--config-file",
                config.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the private dockerd");
        eprintln!("started the private dockerd (pid {})", child.id());
        self.child = Some(child);
        let mut args = Self::docker_args().to_vec();
        args.push("version");
        assert!(
            eventually(DOCKERD_TIMEOUT, || run("docker", &args).status.success()),
            "the private dockerd did not answer on {PRIVATE_SOCKET}: {}",
            self.log_text()
        );
    }

    /// Stops dockerd with SIGTERM and waits until it has exited.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = kill(pid, Signal::SIGTERM);
        let exited = eventually(DOCKERD_TIMEOUT, || {
            child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(exited, "the private dockerd did not exit after SIGTERM");
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Copies the test image from the machine's dockerd.
    fn load_image(&self) {
        let script = format!("docker save {IMAGE} | docker -H unix://{PRIVATE_SOCKET} load");
        run_ok("sh", &["-c", &script]);
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- private dockerd log ----\n{}", self.log_text());
        }
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
            let _ = kill(pid, Signal::SIGTERM);
            if !eventually(DOCKERD_TIMEOUT, || {
                child.try_wait().ok().flatten().is_some()
            }) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // dockerd leaves a bind mount of its namespace under its exec root.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split_whitespace().nth(4) {
                if point.starts_with(PRIVATE_EXEC_ROOT) || point.starts_with(PRIVATE_DATA_ROOT) {
                    let _ = run("umount", &["-l", point]);
                }
            }
        }
        for path in [PRIVATE_DATA_ROOT, PRIVATE_EXEC_ROOT] {
            let _ = std::fs::remove_dir_all(path);
        }
        let _ = run("ip", &["netns", "del", PRIVATE_NETNS]);
        let _ = std::fs::remove_file(PRIVATE_PIDFILE);
        let _ = std::fs::remove_file(PRIVATE_SOCKET);
    }
}

/// Stops a private dockerd that an earlier, interrupted run of the test left running.
fn stop_leftover_dockerd() {
    let Ok(text) = std::fs::read_to_string(PRIVATE_PIDFILE) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains(PRIVATE_EXEC_ROOT) {
        return;
    }
    eprintln!("stopping the private dockerd (pid {pid}) of an earlier run");
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let gone = eventually(DOCKERD_TIMEOUT, || {
        !proc_dir.exists() || is_zombie(&proc_dir)
    });
    assert!(gone, "the leftover private dockerd {pid} did not exit");
}

#[test]
fn agent_follows_private_dockerd_restart() {
    prepare();
    let mut dockerd = PrivateDockerd::start();
    dockerd.load_image();
    let docker_args = PrivateDockerd::docker_args();

    // A stopped container of the machine's dockerd, with a port made by `insert`. The agent
    // of the private dockerd must leave its port and OVS row alone.
    let machine = none_container("pd-machine-", &["clampify.disable=true"]);
    let inserted = clampify_json(&["insert", DEMO_NET, &machine.name]);
    let machine_port = inserted["port_id"].as_str().unwrap().to_string();
    let stopped = machine.docker("stop", &["-t", "1"]);
    assert!(stopped.status.success(), "docker stop {}", machine.name);

    let agent = Agent::start(&["--docker-host", &format!("unix://{PRIVATE_SOCKET}")]);
    let before = TestContainer::run_on(&docker_args, "pd-before-", &["--network", "none"]);
    wait_ipv4(&before);

    dockerd.restart();
    let after = TestContainer::run_on(&docker_args, "pd-after-", &["--network", "none"]);

    let after_ip = wait_ipv4(&after);
    let port = only_port(&after);
    assert_eq!(port["device_id"].as_str(), Some(after.id.as_str()));
    assert!(
        port["description"]
            .as_str()
            .is_some_and(|text| text.ends_with(PRIVATE_DATA_ROOT)),
        "{port}"
    );
    assert!(after_ip.starts_with("198.51.100."), "{after_ip}");
    assert!(
        !agent.log_lines(&["Docker event stream ended"]).is_empty(),
        "the agent did not notice the dockerd restart"
    );
    assert!(
        eventually(ATTACH_TIMEOUT, || agent.log_lines(&["reconciled"]).len()
            >= 2),
        "no reconcile after the restart"
    );
    assert!(
        neutron().port(&machine_port).is_some(),
        "the agent of the private dockerd deleted port {machine_port} of {}",
        machine.name
    );
    assert!(
        ovs_interface_exists(&tap_of(&machine_port)),
        "the agent of the private dockerd removed the OVS row of {machine_port}"
    );
}
