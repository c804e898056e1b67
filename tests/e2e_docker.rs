//! End-to-end tests of `clampify insert` and `reinsert` on containers of the machine's dockerd.
//!
//! Every container is named `cfy-e2e-<random>` and runs with `--network none`. Its guard
//! deletes the container's Neutron ports (found by `device_id`) and their OVS rows with
//! curl and ovs-vsctl, so a Clampify bug cannot leave them behind.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;

use support::*;

/// Time allowed for traffic to flow once a port is ACTIVE.
const TRAFFIC_TIMEOUT: Duration = Duration::from_secs(15);
/// The lab's DNS server for demo-net, from the subnet's `dns_nameservers`.
const LAB_DNS: &str = "198.51.100.53";

/// Runs a `--network none` container that agents leave alone, so that only `insert` plugs
/// it even while a `clampify watch` follows the machine's dockerd.
fn none_container(prefix: &str) -> TestContainer {
    TestContainer::run(
        prefix,
        &["--network", "none", "--label", "clampify.disable=true"],
    )
}

/// Runs `clampify insert demo-net CONTAINER --json` and returns the attachment.
fn insert(container: &TestContainer) -> Value {
    clampify_json(&["insert", DEMO_NET, &container.name])
}

fn port_id(attachment: &Value) -> String {
    attachment["port_id"].as_str().unwrap().to_string()
}

fn ipv4_of(attachment: &Value) -> String {
    attachment["ip_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|ip| !ip.contains(':'))
        .unwrap_or_else(|| panic!("no IPv4 address in {attachment}"))
        .to_string()
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn insert_gives_port_address_and_dns() {
    require_lab();
    let container = none_container("ins-");

    let attachment = insert(&container);

    let id = port_id(&attachment);
    let port = neutron().port(&id).expect("port exists");
    assert_eq!(port["device_id"].as_str(), Some(container.id.as_str()));
    assert_eq!(port["device_owner"], "compute:clampify");
    assert_eq!(port["binding:host_id"].as_str(), Some(lab_host().as_str()));
    assert_eq!(port["status"], "ACTIVE", "{port}");
    assert_eq!(attachment["interface"], "eth0");

    // The container has every fixed IP of the port, the port's MAC and the network's MTU.
    let addresses = container.addresses();
    for ip in fixed_ips(&port) {
        assert!(
            addresses.iter().any(|a| a.split('/').next() == Some(&ip)),
            "{ip} missing in {addresses:?}"
        );
    }
    let (mac, mtu) = container.link().expect("eth0 exists");
    assert_eq!(Some(mac.as_str()), port["mac_address"].as_str());
    assert_eq!(mtu, LAB_MTU);
    let resolv = container.exec_stdout(&["cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains(&format!("nameserver {LAB_DNS}")),
        "{resolv}"
    );
    let ids = ovs_external_ids(&tap_of(&id)).expect("OVS row exists");
    assert_eq!(ids["vm-uuid"].as_str(), Some(container.id.as_str()));

    // A second insert returns the same port and changes nothing.
    let again = insert(&container);
    assert_eq!(port_id(&again), id);
    assert_eq!(container.ports().len(), 1);
    assert_eq!(container.addresses(), addresses);
}

#[test]
fn inserted_containers_ping_and_transfer() {
    require_lab();
    let a = none_container("ping-a-");
    let b = none_container("ping-b-");

    let port_a = insert(&a);
    let port_b = insert(&b);

    let ip_a = ipv4_of(&port_a);
    let ip_b = ipv4_of(&port_b);
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
    let ipv6_b = fixed_ips(&neutron().port(&port_id(&port_b)).unwrap())
        .into_iter()
        .find(|ip| ip.contains(':'))
        .expect("demo-net gives an IPv6 address");
    assert!(
        a.ping(&ipv6_b, TRAFFIC_TIMEOUT),
        "ping {ipv6_b} from {}",
        a.name
    );
    // Full-size TCP segments prove the MTU and the checksum offload setting.
    let (sent, received) = nc_transfer(&b, &ip_b, &a, 512 * 1024);
    assert_eq!(sent, received, "TCP transfer to {ip_b} arrived changed");
}

#[test]
fn restart_then_reinsert_keeps_address() {
    require_lab();
    let container = none_container("re-");
    let peer = none_container("re-peer-");
    let attachment = insert(&container);
    insert(&peer);
    let id = port_id(&attachment);
    let ip = ipv4_of(&attachment);
    let (mac, _) = container.link().expect("eth0 exists");

    container.restart();
    assert!(
        container.link().is_none(),
        "eth0 survived the restart of {}",
        container.name
    );
    let again = clampify_json(&["reinsert", &container.name, &id, &ip]);

    assert_eq!(port_id(&again), id);
    assert_eq!(container.ipv4().as_deref(), Some(ip.as_str()));
    let (mac_after, mtu) = container.link().expect("eth0 exists after reinsert");
    assert_eq!(mac_after, mac);
    assert_eq!(mtu, LAB_MTU);
    assert_eq!(container.ports().len(), 1);
    assert!(
        neutron().wait_status(&id, "ACTIVE", Duration::from_secs(30)),
        "port {id} is not ACTIVE after reinsert"
    );
    assert!(
        peer.ping(&ip, TRAFFIC_TIMEOUT),
        "ping {ip} from {} after reinsert",
        peer.name
    );
    let resolv = container.exec_stdout(&["cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains(&format!("nameserver {LAB_DNS}")),
        "{resolv}"
    );
}

#[test]
fn reinsert_wrong_ip_changes_nothing() {
    require_lab();
    let container = none_container("wrongip-");
    let attachment = insert(&container);
    let id = port_id(&attachment);
    let before = neutron().port(&id).unwrap();
    let addresses = container.addresses();
    let ovs_before = ovs_external_ids(&tap_of(&id));
    // demo-net's allocation pool never hands out the broadcast address.
    let wrong = "198.51.100.255";

    let output = clampify(&["reinsert", &container.name, &id, wrong]);

    assert!(!output.status.success());
    let message = stderr_of(&output);
    assert!(
        message.contains(&format!("{wrong} is not a fixed IP of port {id}")),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    let after = neutron().port(&id).expect("port still exists");
    assert_eq!(after["fixed_ips"], before["fixed_ips"]);
    assert_eq!(after["mac_address"], before["mac_address"]);
    assert_eq!(after["status"], "ACTIVE");
    assert_eq!(container.addresses(), addresses);
    assert!(link_exists(&tap_of(&id)), "veth of {id} was removed");
    assert_eq!(ovs_external_ids(&tap_of(&id)), ovs_before);
}

#[test]
fn insert_rejects_bad_containers() {
    require_lab();
    let stopped = TestContainer::create("stopped-", &["--network", "none"]);
    let host = TestContainer::run(
        "host-",
        &["--network", "host", "--label", "clampify.disable=true"],
    );
    let missing = unique("cfy-e2e-missing-");

    let cases = [
        (missing.as_str(), "not found"),
        (stopped.name.as_str(), "is not running"),
        (host.name.as_str(), "--network host"),
    ];
    for (name, expected) in cases {
        let output = clampify(&["insert", DEMO_NET, name]);

        assert!(!output.status.success(), "insert into {name} succeeded");
        let message = stderr_of(&output);
        assert!(message.contains(expected), "{name}: {message}");
        assert!(message.contains(name), "{name}: {message}");
        let (_, body) = neutron().call("GET", &format!("/ports?name=clampify-{name}"), None);
        assert_eq!(body["ports"], Value::Array(vec![]), "{name}: port created");
    }
    assert_eq!(stopped.ports(), Vec::<Value>::new());
    assert_eq!(host.ports(), Vec::<Value>::new());
    assert!(
        !host.exec_stdout(&["ip", "-o", "link"]).contains("eth0@"),
        "a veth appeared in the host namespace"
    );
}

#[test]
fn reinsert_rejects_bad_input() {
    require_lab();
    let owner = none_container("owner-");
    let other = none_container("other-");
    let stopped = TestContainer::create("rstopped-", &["--network", "none"]);
    let id = port_id(&insert(&owner));
    let owner_addresses = owner.addresses();
    let missing = unique("cfy-e2e-missing-");

    let cases = [
        (other.name.as_str(), id.as_str(), "belongs to device"),
        (missing.as_str(), id.as_str(), "not found"),
        (stopped.name.as_str(), id.as_str(), "is not running"),
        (
            other.name.as_str(),
            "00000000-0000-0000-0000-000000000000",
            "not found",
        ),
    ];
    for (container, port, expected) in cases {
        let output = clampify(&["reinsert", container, port]);

        assert!(!output.status.success(), "reinsert {port} into {container}");
        let message = stderr_of(&output);
        assert!(message.contains(expected), "{container}: {message}");
    }
    assert_eq!(other.ports(), Vec::<Value>::new());
    assert_eq!(other.link(), None, "{} got an interface", other.name);
    assert_eq!(stopped.ports(), Vec::<Value>::new());
    assert_eq!(owner.ports().len(), 1);
    assert_eq!(owner.addresses(), owner_addresses);
    assert!(link_exists(&tap_of(&id)), "veth of {id} was removed");
}

#[test]
fn insert_after_restart_replugs() {
    require_lab();
    let container = none_container("reins-");
    let peer = none_container("reins-peer-");
    let attachment = insert(&container);
    insert(&peer);
    let id = port_id(&attachment);
    let ip = ipv4_of(&attachment);

    // The old namespace and its veth outlive the restart while something references the
    // namespace: the second insert must not take that veth for the current one.
    let holder = NetnsHolder::new(&container);
    container.restart();
    assert!(link_exists(&tap_of(&id)), "the old veth of {id} is gone");
    let again = insert(&container);
    drop(holder);

    assert_eq!(port_id(&again), id);
    assert_eq!(container.ipv4().as_deref(), Some(ip.as_str()));
    assert_eq!(container.ports().len(), 1);
    assert!(
        peer.ping(&ip, TRAFFIC_TIMEOUT),
        "ping {ip} from {} after the second insert",
        peer.name
    );
}
