//! End-to-end tests of `clampify create`, `delete` and `list` against the lab.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;

use support::*;

/// Deletes the namespace's ports through Clampify, and then the namespace, when dropped.
struct NetnsGuard {
    name: String,
    ports: Vec<String>,
}

impl NetnsGuard {
    fn new(prefix: &str) -> Self {
        Self {
            name: unique(prefix),
            ports: Vec::new(),
        }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        for port in &self.ports {
            let _ = clampify(&["delete", port, &self.name]);
        }
        if netns_exists(&self.name) {
            let _ = run("ip", &["netns", "del", &self.name]);
        }
    }
}

fn create(guard: &mut NetnsGuard, extra: &[&str]) -> Value {
    let mut args = vec!["create", DEMO_NET, guard.name.as_str()];
    args.extend_from_slice(extra);
    let attachment = clampify_json(&args);
    guard
        .ports
        .push(attachment["port_id"].as_str().unwrap().to_string());
    attachment
}

fn address_of(attachment: &Value, v6: bool) -> String {
    attachment["ip_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip.as_str().unwrap().to_string())
        .find(|ip| ip.contains(':') == v6)
        .unwrap_or_else(|| {
            panic!(
                "no {} address in {attachment}",
                if v6 { "IPv6" } else { "IPv4" }
            )
        })
}

#[test]
fn two_namespaces_talk_then_vanish() {
    require_lab();
    let mut a = NetnsGuard::new("cfy-e2e-a-");
    let mut b = NetnsGuard::new("cfy-e2e-b-");

    let port_a = create(&mut a, &[]);
    let port_b = create(&mut b, &[]);

    // Both ports exist in Neutron, are ACTIVE, and carry what the JSON output says.
    for (attachment, netns) in [(&port_a, &a.name), (&port_b, &b.name)] {
        let id = attachment["port_id"].as_str().unwrap();
        let port = neutron().port(id).expect("port exists");
        assert_eq!(port["status"], "ACTIVE", "{port}");
        assert_eq!(attachment["status"], "ACTIVE");
        assert_eq!(port["binding:vif_type"], "ovs");
        assert_eq!(port["device_owner"], "compute:clampify");
        assert_eq!(port["mac_address"], attachment["mac_address"]);
        assert_eq!(attachment["netns"].as_str(), Some(netns.as_str()));
        assert_eq!(attachment["interface"], "eth0");
        assert_eq!(
            attachment["network_id"].as_str().unwrap(),
            neutron().network_id(DEMO_NET)
        );
        let ids = ovs_external_ids(&tap_of(id)).expect("OVS row exists");
        assert_eq!(ids["iface-id"].as_str(), Some(id));
        assert_eq!(ids["attached-mac"], port["mac_address"]);
        assert_eq!(ids["iface-status"], "active");

        // The namespace end has the network's MTU, the port's MAC and TX checksumming off.
        let link: Value =
            serde_json::from_slice(&in_netns(netns, &["ip", "-j", "link", "show", "eth0"]).stdout)
                .unwrap();
        assert_eq!(link[0]["mtu"].as_u64(), Some(LAB_MTU));
        assert_eq!(link[0]["address"], port["mac_address"]);
        let features = String::from_utf8_lossy(&in_netns(netns, &["ethtool", "-k", "eth0"]).stdout)
            .into_owned();
        assert!(features.contains("tx-checksumming: off"), "{features}");
    }

    // IPv4 and IPv6 ping, and 200 kB over TCP both ways of addressing.
    for v6 in [false, true] {
        let ip_b = address_of(&port_b, v6);
        assert!(
            ping_from_netns(&a.name, &ip_b, Duration::from_secs(10)),
            "ping {ip_b} from {}",
            a.name
        );
        let (sent, received) = tcp_transfer(&b.name, &ip_b, &a.name, 200_000);
        assert!(sent.starts_with("200000 "), "sent: {sent}");
        assert_eq!(sent, received, "TCP transfer to {ip_b} arrived changed");
    }

    // delete removes the port, the OVS row, the veth and the namespace create made.
    for guard in [&mut a, &mut b] {
        let port = guard.ports.pop().unwrap();
        let output = clampify(&["delete", &port, &guard.name]);
        assert!(output.status.success());
        assert!(neutron().port(&port).is_none(), "port {port} still exists");
        assert!(
            !ovs_interface_exists(&tap_of(&port)),
            "OVS row of {port} still exists"
        );
        assert!(!link_exists(&tap_of(&port)), "veth of {port} still exists");
        assert!(
            !netns_exists(&guard.name),
            "netns {} still exists",
            guard.name
        );

        let again = clampify(&["delete", &port, &guard.name]);
        assert!(again.status.success(), "second delete failed");
        assert!(String::from_utf8_lossy(&again.stdout).contains("already gone"));
    }
}

#[test]
fn create_with_ip_writes_dns_and_lists() {
    require_lab();
    let mut guard = NetnsGuard::new("cfy-e2e-ip-");
    let wanted = format!("198.51.100.{}", 100 + (unique("").as_bytes()[0] % 100));

    let attachment = create(&mut guard, &["--ip", &wanted]);

    assert!(
        attachment["ip_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ip| ip == &Value::from(wanted.clone())),
        "{attachment}"
    );
    let addresses = String::from_utf8_lossy(
        &in_netns(&guard.name, &["ip", "-o", "addr", "show", "eth0"]).stdout,
    )
    .into_owned();
    assert!(addresses.contains(&format!("{wanted}/24")), "{addresses}");
    let routes =
        String::from_utf8_lossy(&in_netns(&guard.name, &["ip", "route", "show", "default"]).stdout)
            .into_owned();
    assert!(routes.contains("via 198.51.100.1"), "{routes}");
    let resolv = std::fs::read_to_string(format!("/etc/netns/{}/resolv.conf", guard.name)).unwrap();
    assert!(resolv.contains("nameserver 198.51.100.53"), "{resolv}");

    let list = clampify_json(&["list"]);
    let port_id = attachment["port_id"].as_str().unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["port_id"] == port_id)
        .expect("port listed");
    assert_eq!(entry["netns"].as_str(), Some(guard.name.as_str()));
    assert_eq!(entry["interface"], "eth0");
    assert_eq!(entry["ovs_port"], true);
    assert_eq!(entry["link"], true);
    assert_eq!(entry["status"], "ACTIVE");
}

#[test]
fn second_create_gets_eth1() {
    require_lab();
    let mut guard = NetnsGuard::new("cfy-e2e-two-");

    let first = create(&mut guard, &["--no-wait"]);
    let second = create(&mut guard, &["--no-wait"]);

    assert_eq!(first["interface"], "eth0");
    assert_eq!(second["interface"], "eth1");
}

#[test]
fn bad_input_changes_nothing() {
    require_lab();
    let name = unique("cfy-e2e-bad-");

    let unknown = clampify(&["create", "no-such-network-x", &name]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("network no-such-network-x not found")
    );
    assert!(!netns_exists(&name), "netns created for an unknown network");

    let invalid = clampify(&["create", DEMO_NET, "bad/name"]);
    assert!(!invalid.status.success());
    let long = "n".repeat(300);
    let too_long = clampify(&["create", DEMO_NET, &long]);
    assert!(!too_long.status.success());

    let missing_port = clampify(&[
        "create",
        DEMO_NET,
        &name,
        "--port",
        "00000000-0000-0000-0000-000000000000",
    ]);
    assert!(!missing_port.status.success());
    assert!(!netns_exists(&name), "netns created for an unknown port");
}

#[test]
fn json_errors_are_json() {
    require_lab();

    let output = clampify(&[
        "create",
        "no-such-network-y",
        &unique("cfy-e2e-j-"),
        "--json",
    ]);

    assert!(!output.status.success());
    let body: Value = serde_json::from_slice(&output.stdout).expect("error printed as JSON");
    assert!(
        body["error"].as_str().unwrap().contains("not found"),
        "{body}"
    );
}

#[test]
fn wrong_credentials_fail_clearly() {
    require_lab();
    let dir = tempfile::tempdir().unwrap();
    let openrc = dir.path().join("openrc");
    let text = std::fs::read_to_string(agent_openrc()).unwrap();
    let wrong: String = text
        .lines()
        .map(|line| {
            if line.contains("OS_PASSWORD=") {
                "export OS_PASSWORD=wrong-password".to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&openrc, wrong).unwrap();
    let unreachable = dir.path().join("unreachable");
    std::fs::write(&unreachable, text.replace("127.0.0.1:5000", "127.0.0.1:9")).unwrap();
    let name = unique("cfy-e2e-cred-");

    let denied = clampify(&[
        "--openrc",
        openrc.to_str().unwrap(),
        "create",
        DEMO_NET,
        &name,
    ]);
    let refused = clampify(&[
        "--openrc",
        unreachable.to_str().unwrap(),
        "create",
        DEMO_NET,
        &name,
    ]);

    assert!(!denied.status.success());
    let message = String::from_utf8_lossy(&denied.stderr).into_owned();
    assert!(message.contains("401"), "{message}");
    assert!(
        !message.contains("wrong-password"),
        "password leaked: {message}"
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("127.0.0.1:9"));
    assert!(!netns_exists(&name));
}

#[test]
fn adopted_port_is_kept_on_delete() {
    require_lab();
    let network = neutron().network_id(DEMO_NET);
    let (status, body) = neutron().call(
        "POST",
        "/ports",
        Some(
            &serde_json::json!({"port": {"network_id": network, "name": unique("cfy-e2e-adopt-")}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let port_id = body["port"]["id"].as_str().unwrap().to_string();
    let mut guard = NetnsGuard::new("cfy-e2e-adopt-");

    let attachment = clampify_json(&["create", DEMO_NET, &guard.name, "--port", &port_id]);
    assert_eq!(attachment["port_id"].as_str(), Some(port_id.as_str()));
    assert_eq!(attachment["status"], "ACTIVE");

    let output = clampify(&["delete", &port_id, &guard.name]);
    assert!(output.status.success());
    let port = neutron().port(&port_id).expect("adopted port kept");
    assert_eq!(port["binding:host_id"], "");
    assert_eq!(port["device_owner"], "");
    assert!(!ovs_interface_exists(&tap_of(&port_id)));
    guard.ports.clear();
    neutron().call("DELETE", &format!("/ports/{port_id}"), None);
}

#[test]
fn delete_rejects_foreign_port() {
    require_lab();
    let network = neutron().network_id(DEMO_NET);
    let (_, body) = neutron().call(
        "POST",
        "/ports",
        Some(&serde_json::json!({"port": {"network_id": network, "device_owner": "compute:nova"}})),
    );
    let port_id = body["port"]["id"].as_str().unwrap().to_string();

    let output = clampify(&["delete", &port_id, "cfy-e2e-any"]);

    neutron().call("DELETE", &format!("/ports/{port_id}"), None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a Clampify port"));
}
