//! Helpers for the end-to-end tests, which run the `clampify` binary against the lab.
//!
//! The oracles here (curl against Neutron, `ip`, `ovs-vsctl`, `docker`) are independent of
//! Clampify's own code, so a test cannot pass because Clampify misreads its own work.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where `make lab` keeps its state and credentials.
pub const LAB_DIR: &str = "/var/lib/clampify-lab";
/// The lab network with an IPv4 and an IPv6 subnet.
pub const DEMO_NET: &str = "demo-net";
/// The second tenant's network, on the same IPv4 range as `demo-net`.
pub const TENANT_B_NET: &str = "tenant-b-net";
/// The local image every test container runs.
pub const IMAGE: &str = "clampify-busybox:latest";
/// MTU of the lab's geneve networks.
pub const LAB_MTU: u64 = 1442;

/// Credentials of the agent's service user.
pub fn agent_openrc() -> PathBuf {
    Path::new(LAB_DIR).join("agent-openrc")
}

/// Fails the test unless it runs as root against a lab that is up.
pub fn require_lab() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "end-to-end tests need root: run `make test` or `sudo -E cargo test --features e2e`"
    );
    assert!(
        agent_openrc().exists(),
        "the lab is not up ({} is missing): run `make lab` first",
        agent_openrc().display()
    );
}

/// A name no other test run uses: `prefix` plus eight random hex digits.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 4];
    getrandom(&mut bytes);
    format!(
        "{prefix}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn getrandom(buffer: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buffer)
        .unwrap();
}

/// Runs `clampify ARGS` with the agent's credentials and no `OS_*` variables of the caller.
pub fn clampify(args: &[&str]) -> Output {
    clampify_with(args, &[])
}

/// Runs `clampify ARGS` with extra environment variables.
pub fn clampify_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clampify"));
    if !args.contains(&"--openrc") {
        command.args(["--openrc", agent_openrc().to_str().unwrap()]);
    }
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("OS_") || key.starts_with("CLAMPIFY_") {
            command.env_remove(key);
        }
    }
    command.env("HOME", "/nonexistent");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run clampify");
    eprintln!(
        "$ clampify {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `clampify ARGS --json`, asserts success and returns the parsed output.
pub fn clampify_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = clampify(&all);
    assert!(
        output.status.success(),
        "clampify {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("clampify --json prints JSON")
}

/// Runs a program and returns its output; stderr is kept for messages.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"))
}

/// Runs a program and returns its stdout; panics when it fails.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command inside a named network namespace.
pub fn in_netns(netns: &str, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", netns];
    all.extend_from_slice(args);
    run("ip", &all)
}

pub fn netns_exists(name: &str) -> bool {
    run_ok("ip", &["netns", "list"])
        .lines()
        .any(|line| line.split_whitespace().next() == Some(name))
}

pub fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name]).status.success()
}

pub fn ovs_interface_exists(name: &str) -> bool {
    let out = run_ok(
        "ovs-vsctl",
        &[
            "--bare",
            "--columns=name",
            "find",
            "Interface",
            &format!("name={name}"),
        ],
    );
    !out.trim().is_empty()
}

/// The OVS Interface row of `name` as a map of its `external_ids`.
pub fn ovs_external_ids(name: &str) -> Option<serde_json::Map<String, Value>> {
    let out = run_ok(
        "ovs-vsctl",
        &[
            "--format=json",
            "--columns=external_ids",
            "find",
            "Interface",
            &format!("name={name}"),
        ],
    );
    let table: Value = serde_json::from_str(&out).unwrap();
    let row = table["data"].as_array()?.first()?.clone();
    let pairs = row[0][1].as_array()?.clone();
    Some(
        pairs
            .into_iter()
            .map(|pair| (pair[0].as_str().unwrap().to_string(), pair[1].clone()))
            .collect(),
    )
}

/// `tap` + the first 11 characters of the port ID, as Nova names the host end.
pub fn tap_of(port_id: &str) -> String {
    format!("tap{}", &port_id[..11])
}

/// A Neutron client made of curl and an admin token, independent of Clampify's own.
pub struct Neutron {
    token: String,
}

pub fn neutron() -> &'static Neutron {
    static NEUTRON: OnceLock<Neutron> = OnceLock::new();
    NEUTRON.get_or_init(Neutron::login)
}

fn openrc_value(file: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(|value| value.trim_matches(|c| c == '"' || c == '\'').to_string())
        .unwrap_or_else(|| panic!("{key} missing in {}", file.display()))
}

impl Neutron {
    fn login() -> Self {
        let openrc = Path::new(LAB_DIR).join("openrc");
        let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": openrc_value(&openrc, "OS_USERNAME"), "domain": {"name": "Default"},
            "password": openrc_value(&openrc, "OS_PASSWORD")}}},
            "scope": {"project": {"name": openrc_value(&openrc, "OS_PROJECT_NAME"), "domain": {"name": "Default"}}}}});
        let out = run_ok(
            "curl",
            &[
                "-sS",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
                "http://127.0.0.1:5000/v3/auth/tokens",
            ],
        );
        let token = out
            .lines()
            .find_map(|line| {
                line.strip_prefix("X-Subject-Token: ")
                    .or_else(|| line.strip_prefix("x-subject-token: "))
            })
            .expect("Keystone returned no token")
            .trim()
            .to_string();
        Self { token }
    }

    /// Sends a request and returns the HTTP status and the parsed body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("http://127.0.0.1:9696/v2.0{path}");
        let header = format!("X-Auth-Token: {}", self.token);
        let mut args = vec![
            "-sS",
            "-X",
            method,
            "-H",
            &header,
            "-H",
            "Content-Type: application/json",
            "-w",
            "\n%{http_code}",
        ];
        let text;
        if let Some(body) = body {
            text = body.to_string();
            args.extend_from_slice(&["-d", &text]);
        }
        args.push(&url);
        let out = run_ok("curl", &args);
        let (body, status) = out.rsplit_once('\n').unwrap();
        (
            status.trim().parse().unwrap(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// The port, or `None` when Neutron returns 404.
    pub fn port(&self, id: &str) -> Option<Value> {
        let (status, body) = self.call("GET", &format!("/ports/{id}"), None);
        match status {
            200 => Some(body["port"].clone()),
            404 => None,
            other => panic!("GET port {id} returned {other}: {body}"),
        }
    }

    pub fn ports_of_device(&self, device_id: &str) -> Vec<Value> {
        let (_, body) = self.call("GET", &format!("/ports?device_id={device_id}"), None);
        body["ports"].as_array().cloned().unwrap_or_default()
    }

    pub fn network_id(&self, name: &str) -> String {
        let (_, body) = self.call("GET", &format!("/networks?name={name}"), None);
        body["networks"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("network {name} not found: run `make lab`"))
            .to_string()
    }

    /// Waits until the port's status is `status`; returns whether it got there in time.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.port(id).is_some_and(|port| port["status"] == status) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Python that receives one TCP connection on port 5001 of the address in its first argument
/// and prints the byte count and SHA-256 of what arrived, so the sender can compare.
pub const TCP_SERVER: &str = r#"
import hashlib, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(30)
c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())
"#;

const TCP_CLIENT: &str = r#"
import hashlib, os, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
data = os.urandom(int(sys.argv[2]))
for _ in range(50):
    try:
        s = socket.create_connection((sys.argv[1], 5001), timeout=10); break
    except OSError:
        time.sleep(0.1)
s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())
"#;

/// Sends `bytes` random bytes over TCP from `client_ns` to `server_ip` in `server_ns` and
/// returns what each side counted, as (sent, received) lines of "count sha256".
pub fn tcp_transfer(
    server_ns: &str,
    server_ip: &str,
    client_ns: &str,
    bytes: usize,
) -> (String, String) {
    let server = Command::new("ip")
        .args([
            "netns", "exec", server_ns, "python3", "-c", TCP_SERVER, server_ip,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start TCP server");
    let sent = in_netns(
        client_ns,
        &["python3", "-c", TCP_CLIENT, server_ip, &bytes.to_string()],
    );
    let received = server.wait_with_output().expect("wait for TCP server");
    (
        String::from_utf8_lossy(&sent.stdout).trim().to_string(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&received.stdout).trim(),
            String::from_utf8_lossy(&received.stderr).trim()
        ),
    )
}

/// Pings `ip` from `netns` until one reply arrives or `timeout` passes.
pub fn ping_from_netns(netns: &str, ip: &str, timeout: Duration) -> bool {
    eventually(timeout, || {
        in_netns(netns, &["ping", "-c", "1", "-W", "1", ip])
            .status
            .success()
    })
}

/// The integration bridge that the lab's ovn-controller manages.
pub const BRIDGE: &str = "br-int";

/// Returns the lab's OVN chassis name, the `binding:host_id` of every port bound here.
pub fn lab_host() -> String {
    run_ok("hostname", &[]).trim().to_string()
}

/// Runs `docker ARGS` against the machine's dockerd and returns its trimmed stdout; panics
/// when it fails.
pub fn docker_ok(args: &[&str]) -> String {
    run_ok("docker", args).trim().to_string()
}

/// A container that a test started; dropping it deletes its Neutron ports (found by
/// `device_id`), their OVS rows on br-int, and then the container.
///
/// The ports go first, with curl and ovs-vsctl rather than Clampify, so the guard also
/// cleans up after a Clampify bug.
pub struct TestContainer {
    pub name: String,
    pub id: String,
    /// `-H unix://...` arguments for a private dockerd, empty for the machine's.
    docker_args: Vec<String>,
}

impl TestContainer {
    /// Runs `docker run -d --name cfy-e2e-<prefix><random> EXTRA IMAGE sleep 600`.
    pub fn run(prefix: &str, extra: &[&str]) -> Self {
        Self::run_on(&[], prefix, extra)
    }

    /// Like [`TestContainer::run`], on the dockerd that `docker_args` (e.g. `-H URL`) name.
    pub fn run_on(docker_args: &[&str], prefix: &str, extra: &[&str]) -> Self {
        let name = unique(&format!("cfy-e2e-{prefix}"));
        let mut args: Vec<&str> = docker_args.to_vec();
        args.extend(["run", "-d", "--name", &name]);
        args.extend_from_slice(extra);
        args.extend([IMAGE, "sleep", "600"]);
        let id = docker_ok(&args);
        Self {
            name,
            id,
            docker_args: docker_args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Runs `docker create` instead, so the container exists but never started.
    pub fn create(prefix: &str, extra: &[&str]) -> Self {
        let name = unique(&format!("cfy-e2e-{prefix}"));
        let mut args = vec!["create", "--name", name.as_str()];
        args.extend_from_slice(extra);
        args.extend([IMAGE, "sleep", "600"]);
        let id = docker_ok(&args);
        Self {
            name,
            id,
            docker_args: Vec::new(),
        }
    }

    /// Runs `docker SUBCOMMAND ARGS... CONTAINER` on this container's dockerd.
    pub fn docker(&self, subcommand: &str, args: &[&str]) -> Output {
        let mut all: Vec<&str> = self.docker_args.iter().map(String::as_str).collect();
        all.push(subcommand);
        all.extend_from_slice(args);
        all.push(&self.id);
        run("docker", &all)
    }

    /// Runs `docker exec CONTAINER COMMAND...`.
    pub fn exec(&self, command: &[&str]) -> Output {
        let mut all: Vec<&str> = self.docker_args.iter().map(String::as_str).collect();
        all.extend(["exec", &self.id]);
        all.extend_from_slice(command);
        run("docker", &all)
    }

    /// Runs a command in the container and returns its stdout, or an empty string when it
    /// fails.
    pub fn exec_stdout(&self, command: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(command).stdout).into_owned()
    }

    /// `docker restart`, which gives the container a new network namespace.
    pub fn restart(&self) {
        let output = self.docker("restart", &["-t", "1"]);
        assert!(
            output.status.success(),
            "docker restart {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Returns a field of `docker inspect`, given as a Go template.
    pub fn docker_ok_inspect(&self, template: &str) -> String {
        let output = self.docker("inspect", &["-f", template]);
        assert!(
            output.status.success(),
            "docker inspect {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Runs `docker rm -f` and leaves the ports alone, for tests of what Clampify removes.
    pub fn remove(&self) {
        let output = self.docker("rm", &["-f"]);
        assert!(
            output.status.success(),
            "docker rm -f {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Returns the global addresses of `eth0` as `ADDR/PREFIX`, read with `ip -o addr`.
    pub fn addresses(&self) -> Vec<String> {
        self.exec_stdout(&["ip", "-o", "addr", "show", "dev", "eth0"])
            .lines()
            .filter(|line| line.contains("scope global"))
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|word| *word == "inet" || *word == "inet6")?;
                words.next().map(str::to_string)
            })
            .collect()
    }

    /// Returns the first global IPv4 address of `eth0`, without its prefix length.
    pub fn ipv4(&self) -> Option<String> {
        self.addresses()
            .into_iter()
            .find(|address| !address.contains(':'))
            .map(|address| address.split('/').next().unwrap_or_default().to_string())
    }

    /// Waits until `eth0` has an IPv4 address and returns it.
    pub fn wait_ipv4(&self, timeout: Duration) -> Option<String> {
        let mut found = None;
        eventually(timeout, || {
            found = self.ipv4();
            found.is_some()
        });
        found
    }

    /// Returns the MAC address and MTU of `eth0`, read with `ip -o link`.
    pub fn link(&self) -> Option<(String, u64)> {
        let line = self.exec_stdout(&["ip", "-o", "link", "show", "dev", "eth0"]);
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| {
            let at = words.iter().position(|word| *word == key)?;
            words.get(at + 1).map(|word| word.to_string())
        };
        Some((after("link/ether")?, after("mtu")?.parse().ok()?))
    }

    /// Pings `ip` from the container until one reply arrives or `timeout` passes.
    pub fn ping(&self, ip: &str, timeout: Duration) -> bool {
        let ping: &[&str] = if ip.contains(':') {
            &["busybox", "ping6"]
        } else {
            &["ping"]
        };
        eventually(timeout, || {
            let mut command = ping.to_vec();
            command.extend(["-c", "1", "-W", "1", ip]);
            self.exec(&command).status.success()
        })
    }

    /// Lists the Neutron ports whose `device_id` is this container's ID.
    pub fn ports(&self) -> Vec<Value> {
        neutron().ports_of_device(&self.id)
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        for port in neutron().ports_of_device(&self.id) {
            if let Some(id) = port["id"].as_str() {
                remove_port(id);
            }
        }
        let mut args: Vec<&str> = self.docker_args.iter().map(String::as_str).collect();
        args.extend(["rm", "-f", &self.id]);
        let _ = run("docker", &args);
    }
}

/// Deletes a port in Neutron and its row on br-int, whatever state they are in.
pub fn remove_port(port_id: &str) {
    let _ = run(
        "ovs-vsctl",
        &["--if-exists", "del-port", BRIDGE, &tap_of(port_id)],
    );
    neutron().call("DELETE", &format!("/ports/{port_id}"), None);
}

/// Sends `bytes` random bytes over TCP from `client` to `server_ip` in `server` with busybox
/// `nc` and returns the `md5sum` of what was sent and of what arrived.
pub fn nc_transfer(
    server: &TestContainer,
    server_ip: &str,
    client: &TestContainer,
    bytes: usize,
) -> (String, String) {
    let blocks = (bytes / 1024).to_string();
    let made = client.exec(&[
        "dd",
        "if=/dev/urandom",
        "of=/tmp/sent",
        "bs=1024",
        &format!("count={blocks}"),
    ]);
    assert!(made.status.success(), "dd in {} failed", client.name);

    // busybox nc closes the connection when its stdin ends, so the listener reads a pipe
    // that stays open instead of the /dev/null a background job gets.
    let listen = server.exec(&[
        "sh",
        "-c",
        "rm -f /tmp/received; (sleep 60 | nc -l -p 5001 > /tmp/received) > /dev/null 2>&1 &",
    ]);
    assert!(listen.status.success(), "nc -l in {} failed", server.name);

    // The listener starts in the background: retry the connection until it is up.
    let connected = eventually(Duration::from_secs(10), || {
        client
            .exec(&["sh", "-c", &format!("nc -w 5 {server_ip} 5001 < /tmp/sent")])
            .status
            .success()
    });
    assert!(connected, "nc from {} to {server_ip} failed", client.name);

    let sent = client.exec_stdout(&["md5sum", "/tmp/sent"]);
    let mut received = String::new();
    eventually(Duration::from_secs(10), || {
        received = server.exec_stdout(&["md5sum", "/tmp/received"]);
        received.split_whitespace().next() == sent.split_whitespace().next()
    });
    (
        sent.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        received
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Returns the port's fixed IPs as strings.
pub fn fixed_ips(port: &Value) -> Vec<String> {
    port["fixed_ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["ip_address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A process kept in a container's current network namespace, so that the kernel keeps the
/// namespace and its veth after the container restarts, as it does for a while anyway
/// when something still references it. Dropping it kills the process.
pub struct NetnsHolder {
    child: std::process::Child,
}

impl NetnsHolder {
    pub fn new(container: &TestContainer) -> Self {
        let pid = container.docker_ok_inspect("{{.State.Pid}}");
        let child = Command::new("nsenter")
            .args([&format!("--net=/proc/{pid}/ns/net"), "sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start a process in the container's network namespace");
        Self { child }
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
