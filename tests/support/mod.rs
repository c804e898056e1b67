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

/// Python that receives one TCP connection and prints the byte count and SHA-256 of what
/// arrived, so the sender can compare.
const TCP_SERVER: &str = r#"
import hashlib, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
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
