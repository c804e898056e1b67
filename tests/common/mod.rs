//! Fixtures for the root-only kernel tests: scratch namespaces, bridges and links with random
//! names, removed on drop, and oracles that read the result with `ip`, `ethtool` and
//! `ovs-vsctl` rather than through Clampify.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Panics unless running as root: these tests exist only with the `kernel-tests` feature, so
/// not being root is a setup mistake, never a reason to pass without testing.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "kernel tests need root: run `sudo -E cargo test --features kernel-tests`",
    );
}

/// Panics with the command to run unless ovsdb-server and ovs-vswitchd respond.
pub fn require_ovs() {
    require_root();
    let output = Command::new("ovs-vsctl")
        .args(["--timeout=5", "show"])
        .output();
    let running = output.as_ref().is_ok_and(|output| output.status.success());
    assert!(
        running,
        "Open vSwitch is not running: start it with `/usr/share/openvswitch/scripts/ovs-ctl start` ({output:?})",
    );
}

/// Eight random hexadecimal characters from the kernel's UUID generator.
pub fn random_suffix() -> String {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap();
    uuid.trim().replace('-', "")[..8].to_owned()
}

/// Runs a command and returns its output, panicking with stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout_of(program: &str, args: &[&str]) -> String {
    String::from_utf8(run(program, args).stdout).unwrap()
}

/// A named network namespace made with `ip netns add`, deleted on drop.
pub struct ScratchNetns {
    pub name: String,
}

impl ScratchNetns {
    pub fn new() -> Self {
        require_root();
        let name = format!("clampify-test-{}", random_suffix());
        run("ip", &["netns", "add", &name]);
        Self { name }
    }

    pub fn netns(&self) -> clampify::plumbing::Netns {
        clampify::plumbing::Netns::named(&self.name).unwrap()
    }

    /// Runs `ip -j ARGS` inside the namespace and parses its JSON.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["-n", &self.name, "-j"];
        full.extend_from_slice(args);
        serde_json::from_str(&stdout_of("ip", &full)).unwrap()
    }

    /// Runs `PROGRAM ARGS` inside the namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        Command::new("ip").args(&full).output().unwrap()
    }

    pub fn link_names(&self) -> Vec<String> {
        let links = self.ip_json(&["link", "show"]);
        links
            .as_array()
            .unwrap()
            .iter()
            .map(|link| link["ifname"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// A fresh namespace name for tests of Clampify's own create and delete; on drop, whatever
/// is left under that name is removed with `ip netns delete`.
pub struct NetnsNameGuard {
    pub name: String,
}

impl NetnsNameGuard {
    pub fn new() -> Self {
        require_root();
        Self {
            name: format!("clampify-test-{}", random_suffix()),
        }
    }
}

impl Drop for NetnsNameGuard {
    fn drop(&mut self) {
        if std::path::Path::new("/run/netns").join(&self.name).exists() {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.name])
                .status();
        }
    }
}

/// A host interface name, deleted on drop if an interface of that name exists.
pub struct HostLinkGuard {
    pub name: String,
}

impl HostLinkGuard {
    pub fn new() -> Self {
        Self {
            name: format!("ctap{}", random_suffix()),
        }
    }
}

impl Drop for HostLinkGuard {
    fn drop(&mut self) {
        if host_link(&self.name).is_some() {
            let _ = Command::new("ip")
                .args(["link", "delete", &self.name])
                .status();
        }
    }
}

/// Returns `ip -j link show NAME` for a host interface, or `None` if it does not exist.
pub fn host_link(name: &str) -> Option<Value> {
    let output = Command::new("ip")
        .args(["-j", "link", "show", "dev", name])
        .output()
        .unwrap();
    if !output.status.success() {
        return None;
    }
    let links: Value = serde_json::from_slice(&output.stdout).unwrap();
    links.get(0).cloned()
}

/// An OVS bridge with a random name and the userspace datapath (this kernel has no OVS
/// module), deleted on drop. Never `br-int`: ovn-controller acts on ports there.
pub struct ScratchBridge {
    pub name: String,
}

impl ScratchBridge {
    pub fn new() -> Self {
        require_ovs();
        let name = format!("ctest{}", random_suffix());
        run(
            "ovs-vsctl",
            &[
                "add-br",
                &name,
                "--",
                "set",
                "Bridge",
                &name,
                "datapath_type=netdev",
            ],
        );
        Self { name }
    }

    pub fn ports(&self) -> Vec<String> {
        stdout_of("ovs-vsctl", &["list-ports", &self.name])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for ScratchBridge {
    fn drop(&mut self) {
        let _ = Command::new("ovs-vsctl")
            .args(["--if-exists", "del-br", &self.name])
            .status();
    }
}

/// Returns the Interface row `name` as a map of column name to OVSDB JSON value, read with
/// `ovs-vsctl --format=json list Interface`, or `None` if there is no such row.
pub fn ovs_interface(name: &str) -> Option<serde_json::Map<String, Value>> {
    let output = Command::new("ovs-vsctl")
        .args([
            "--format=json",
            "--columns=name,external_ids,ofport,error,type",
            "list",
            "Interface",
            name,
        ])
        .output()
        .unwrap();
    if !output.status.success() {
        return None;
    }
    let table: Value = serde_json::from_slice(&output.stdout).unwrap();
    let headings = table["headings"].as_array().unwrap();
    let row = table["data"].get(0)?.as_array().unwrap();
    Some(
        headings
            .iter()
            .map(|heading| heading.as_str().unwrap().to_owned())
            .zip(row.iter().cloned())
            .collect(),
    )
}

/// Decodes an `ovs-vsctl --format=json` map value into pairs.
pub fn ovs_map(value: &Value) -> std::collections::BTreeMap<String, String> {
    assert_eq!(value[0], "map", "not a map: {value}");
    value[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Polls `check` until it returns true or `timeout` passes. Returns whether it succeeded.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
