//! Root-only tests of namespaces and veth plugging against the real kernel, checked with
//! `ip -j`, `ethtool -k` and /proc rather than through Clampify.

#![cfg(feature = "kernel-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;

use clampify::plumbing::{
    delete_link, delete_link_in, delete_named, ensure_named, in_netns, link_exists, link_exists_in,
    next_free_ifname, plug_veth, plug_veth_in, plug_veth_with, write_sysctl, InterfaceConfig,
    Netns, PlumbingError, Route,
};
use common::{
    host_link, random_suffix, require_root, run, stdout_of, HostLinkGuard, NetnsNameGuard,
    ScratchNetns,
};
use serde_json::Value;

fn interface(name: &str, addresses: &[&str], routes: Vec<Route>) -> InterfaceConfig {
    InterfaceConfig {
        name: name.to_owned(),
        mac: "fa:16:3e:12:34:56".parse().unwrap(),
        mtu: 1442,
        addresses: addresses
            .iter()
            .map(|address| address.parse().unwrap())
            .collect(),
        routes,
        disable_tx_checksum: true,
    }
}

fn route(destination: &str, gateway: Option<&str>) -> Route {
    Route {
        destination: destination.parse().unwrap(),
        gateway: gateway.map(|gateway| gateway.parse().unwrap()),
    }
}

/// eth0 with an IPv4 and an IPv6 address, default routes for both and an on-link route.
fn dual_stack_interface() -> InterfaceConfig {
    interface(
        "eth0",
        &["198.51.100.10/24", "2001:db8:10::10/64"],
        vec![
            route("0.0.0.0/0", Some("198.51.100.1")),
            route("203.0.113.0/24", None),
            route("::/0", Some("2001:db8:10::1")),
        ],
    )
}

fn flags(link: &Value) -> Vec<String> {
    link["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|flag| flag.as_str().unwrap().to_owned())
        .collect()
}

/// Returns the `ip -j addr` entries of `ifname` as (local/prefixlen, entry).
fn addresses(netns: &ScratchNetns, ifname: &str) -> Vec<(String, Value)> {
    let links = netns.ip_json(&["addr", "show", "dev", ifname]);
    links[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|info| {
            (
                format!("{}/{}", info["local"].as_str().unwrap(), info["prefixlen"]),
                info.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn plug_veth_configures_both_ends() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    let config = dual_stack_interface();

    plug_veth(&scratch.netns(), &host.name, &config)
        .await
        .unwrap();

    let host_end = host_link(&host.name).expect("host end exists");
    assert_eq!(host_end["mtu"], 1442);
    assert!(
        flags(&host_end).contains(&"UP".to_owned()),
        "host end flags {:?}",
        flags(&host_end)
    );

    let inside = &scratch.ip_json(&["link", "show", "dev", "eth0"])[0];
    assert_eq!(inside["address"], "fa:16:3e:12:34:56");
    assert_eq!(inside["mtu"], 1442);
    assert_eq!(inside["operstate"], "UP");
    let lo = &scratch.ip_json(&["link", "show", "dev", "lo"])[0];
    assert!(
        flags(lo).contains(&"UP".to_owned()),
        "lo flags {:?}",
        flags(lo)
    );

    let addresses = addresses(&scratch, "eth0");
    let ipv4 = addresses
        .iter()
        .find(|(address, _)| address == "198.51.100.10/24");
    assert!(ipv4.is_some(), "addresses {addresses:?}");
    let (_, ipv6) = addresses
        .iter()
        .find(|(address, _)| address == "2001:db8:10::10/64")
        .expect("IPv6 address");
    assert_eq!(
        ipv6["nodad"], true,
        "IPv6 address added without IFA_F_NODAD: {ipv6}"
    );
    assert_eq!(
        ipv6.get("tentative"),
        None,
        "IPv6 address is still tentative: {ipv6}"
    );
}

#[tokio::test]
async fn plug_veth_installs_routes() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    let config = dual_stack_interface();

    plug_veth(&scratch.netns(), &host.name, &config)
        .await
        .unwrap();

    let routes = scratch.ip_json(&["-4", "route", "show"]);
    let routes = routes.as_array().unwrap();
    let default = routes
        .iter()
        .find(|route| route["dst"] == "default")
        .expect("IPv4 default route");
    assert_eq!(default["gateway"], "198.51.100.1");
    assert_eq!(default["dev"], "eth0");
    let on_link = routes
        .iter()
        .find(|route| route["dst"] == "203.0.113.0/24")
        .expect("on-link route");
    assert_eq!(on_link["scope"], "link");
    assert_eq!(on_link.get("gateway"), None);

    let routes6 = scratch.ip_json(&["-6", "route", "show"]);
    let default6 = routes6
        .as_array()
        .unwrap()
        .iter()
        .find(|route| route["dst"] == "default");
    let default6 = default6.expect("IPv6 default route");
    assert_eq!(default6["gateway"], "2001:db8:10::1");
    assert_eq!(default6["dev"], "eth0");
}

#[tokio::test]
async fn plug_veth_turns_tx_checksum_off() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();

    plug_veth(
        &scratch.netns(),
        &host.name,
        &interface("eth0", &[], vec![]),
    )
    .await
    .unwrap();

    let output = scratch.exec("ethtool", &["-k", "eth0"]);
    let features = String::from_utf8(output.stdout).unwrap();
    assert!(
        features.contains("tx-checksumming: off"),
        "ethtool -k eth0:\n{features}"
    );
    let host_features = stdout_of("ethtool", &["-k", &host.name]);
    assert!(
        host_features.contains("tx-checksumming: on"),
        "host end changed too:\n{host_features}"
    );
}

#[tokio::test]
async fn plug_veth_leaves_offload_when_not_asked() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    let mut config = interface("eth0", &[], vec![]);
    config.disable_tx_checksum = false;

    plug_veth(&scratch.netns(), &host.name, &config)
        .await
        .unwrap();

    let features = String::from_utf8(scratch.exec("ethtool", &["-k", "eth0"]).stdout).unwrap();
    assert!(
        features.contains("tx-checksumming: on"),
        "ethtool -k eth0:\n{features}"
    );
}

#[tokio::test]
async fn plug_veth_in_simulated_host() {
    require_root();
    let host_netns = ScratchNetns::new();
    let container = ScratchNetns::new();
    let host = HostLinkGuard::new();

    let config = interface("eth0", &["198.51.100.10/24"], vec![]);
    plug_veth_in(
        Some(&host_netns.netns()),
        &container.netns(),
        &host.name,
        &config,
    )
    .await
    .unwrap();

    assert_eq!(
        host_link(&host.name),
        None,
        "host end created in this process's namespace"
    );
    assert!(
        host_netns.link_names().contains(&host.name),
        "{:?}",
        host_netns.link_names()
    );
    assert!(container.link_names().contains(&"eth0".to_owned()));
    assert!(link_exists_in(Some(&host_netns.netns()), &host.name)
        .await
        .unwrap());

    assert!(delete_link_in(Some(&host_netns.netns()), &host.name)
        .await
        .unwrap());
    assert_eq!(container.link_names(), ["lo"]);
}

#[tokio::test]
async fn failed_route_removes_the_veth() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    // No address covers the gateway, so the kernel rejects the route (ENETUNREACH).
    let config = interface(
        "eth0",
        &["198.51.100.10/24"],
        vec![route("0.0.0.0/0", Some("203.0.113.1"))],
    );

    let error = plug_veth(&scratch.netns(), &host.name, &config)
        .await
        .unwrap_err();

    assert!(matches!(error, PlumbingError::AddRoute { .. }), "{error}");
    assert!(
        error.to_string().contains("0.0.0.0/0 via 203.0.113.1"),
        "{error}"
    );
    assert_eq!(host_link(&host.name), None, "host end left behind");
    assert_eq!(scratch.link_names(), ["lo"], "peer left behind");
}

#[tokio::test]
async fn plug_veth_with_sees_host_end() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    let host_name = host.name.clone();

    let seen = plug_veth_with(
        &scratch.netns(),
        &host.name,
        &dual_stack_interface(),
        async { link_exists(&host_name).await },
    )
    .await
    .unwrap();

    assert!(
        seen,
        "the host end did not exist when the work alongside ran"
    );
    assert!(host_link(&host.name).is_some());
    assert_eq!(scratch.link_names(), ["lo", "eth0"]);
}

#[tokio::test]
async fn plug_veth_with_failure_removes_veth() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    let rejected = async {
        Err::<(), _>(PlumbingError::InvalidIfname {
            name: "stand-in".to_owned(),
            reason: "the test refuses it",
        })
    };

    let error = plug_veth_with(
        &scratch.netns(),
        &host.name,
        &dual_stack_interface(),
        rejected,
    )
    .await
    .unwrap_err();

    assert!(error.to_string().contains("the test refuses it"), "{error}");
    assert_eq!(host_link(&host.name), None, "host end left behind");
    assert_eq!(scratch.link_names(), ["lo"], "peer left behind");
}

#[tokio::test]
async fn existing_inside_name_fails_without_leftovers() {
    require_root();
    let scratch = ScratchNetns::new();
    let first = HostLinkGuard::new();
    let second = HostLinkGuard::new();
    plug_veth(
        &scratch.netns(),
        &first.name,
        &interface("eth0", &[], vec![]),
    )
    .await
    .unwrap();

    let error = plug_veth(
        &scratch.netns(),
        &second.name,
        &interface("eth0", &[], vec![]),
    )
    .await
    .unwrap_err();

    assert!(matches!(error, PlumbingError::CreateVeth { .. }), "{error}");
    assert_eq!(host_link(&second.name), None);
    assert!(
        host_link(&first.name).is_some(),
        "the first plug was disturbed"
    );
}

#[tokio::test]
async fn delete_link_removes_both_ends() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    plug_veth(
        &scratch.netns(),
        &host.name,
        &interface("eth0", &[], vec![]),
    )
    .await
    .unwrap();
    assert!(link_exists(&host.name).await.unwrap());
    assert!(link_exists_in(Some(&scratch.netns()), "eth0")
        .await
        .unwrap());

    assert!(delete_link(&host.name).await.unwrap());

    assert_eq!(host_link(&host.name), None);
    assert_eq!(scratch.link_names(), ["lo"]);
    assert!(!link_exists(&host.name).await.unwrap());
}

#[tokio::test]
async fn delete_missing_link_returns_false() {
    require_root();
    let missing = format!("cnone{}", random_suffix());
    assert!(!delete_link(&missing).await.unwrap());
    assert!(!link_exists(&missing).await.unwrap());
}

#[tokio::test]
async fn next_free_ifname_skips_used_names() {
    require_root();
    let scratch = ScratchNetns::new();
    assert_eq!(next_free_ifname(&scratch.netns()).await.unwrap(), "eth0");

    run(
        "ip",
        &[
            "-n",
            &scratch.name,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth2",
        ],
    );

    assert_eq!(next_free_ifname(&scratch.netns()).await.unwrap(), "eth1");
}

#[test]
fn named_netns_round_trip() {
    require_root();
    let guard = NetnsNameGuard::new();
    let name = guard.name.clone();

    let (netns, created) = ensure_named(&name).unwrap();
    let listed = || {
        stdout_of("ip", &["netns", "list"])
            .lines()
            .any(|line| line.split_whitespace().next() == Some(&name))
    };
    assert!(created);
    assert_eq!(netns.path(), std::path::Path::new("/run/netns").join(&name));
    assert!(listed(), "ip netns list does not show {name}");
    run("ip", &["-n", &name, "link", "show", "lo"]);

    let (_, created_again) = ensure_named(&name).unwrap();
    assert!(!created_again);

    assert!(delete_named(&name).unwrap());
    assert!(!listed(), "ip netns list still shows {name}");
    assert!(!delete_named(&name).unwrap());
}

#[test]
fn ensure_named_gives_a_new_namespace() {
    require_root();
    let guard = NetnsNameGuard::new();
    let name = guard.name.clone();
    let (netns, _) = ensure_named(&name).unwrap();

    let inode = std::fs::metadata(netns.path()).unwrap().ino();
    let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    delete_named(&name).unwrap();

    assert_ne!(inode, own);
}

#[test]
fn in_netns_enters_only_worker_thread() {
    require_root();
    let scratch = ScratchNetns::new();
    let target = std::fs::metadata(scratch.netns().path()).unwrap().ino();
    let before = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();

    let seen = in_netns(&scratch.netns(), || {
        Ok(std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino())
    });

    assert_eq!(seen.unwrap(), target);
    assert_eq!(
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        before
    );
}

#[test]
fn in_netns_reports_missing_namespace() {
    require_root();
    let missing = Netns::named(&format!("clampify-test-{}", random_suffix())).unwrap();

    let error = in_netns(&missing, || Ok(())).unwrap_err();

    assert!(matches!(error, PlumbingError::OpenNetns { .. }), "{error}");
}

#[tokio::test]
async fn write_sysctl_acts_only_inside() {
    require_root();
    let scratch = ScratchNetns::new();
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap();

    write_sysctl(&scratch.netns(), "net/ipv4/ip_default_ttl", "77")
        .await
        .unwrap();

    let inside = String::from_utf8(
        scratch
            .exec("sysctl", &["-n", "net.ipv4.ip_default_ttl"])
            .stdout,
    )
    .unwrap();
    assert_eq!(inside.trim(), "77");
    let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap();
    assert_eq!(host_after, host_before);
}

#[tokio::test]
async fn plug_veth_enables_ipv6_on_its_interface_only() {
    require_root();
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    // What Docker 20.10 does to a `--network none` container's namespace.
    for key in ["all", "default"] {
        let setting = format!("net.ipv6.conf.{key}.disable_ipv6=1");
        let output = scratch.exec("sysctl", &["-w", &setting]);
        assert!(output.status.success(), "sysctl -w {setting} failed");
    }

    plug_veth(&scratch.netns(), &host.name, &dual_stack_interface())
        .await
        .unwrap();

    let addresses = addresses(&scratch, "eth0");
    let ipv6 = addresses
        .iter()
        .find(|(address, _)| address == "2001:db8:10::10/64");
    assert!(ipv6.is_some(), "addresses {addresses:?}");
    let eth0 = scratch.exec("sysctl", &["-n", "net.ipv6.conf.eth0.disable_ipv6"]);
    assert_eq!(String::from_utf8_lossy(&eth0.stdout).trim(), "0");
    let default = scratch.exec("sysctl", &["-n", "net.ipv6.conf.default.disable_ipv6"]);
    assert_eq!(String::from_utf8_lossy(&default.stdout).trim(), "1");
}
