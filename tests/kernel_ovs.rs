//! Root-only tests of the OVSDB client and of traffic through a scratch OVS bridge, checked
//! with `ovs-vsctl`, `ping` and a TCP transfer rather than through Clampify.

#![cfg(feature = "kernel-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use clampify::plumbing::ovsdb::DEFAULT_ENDPOINT;
use clampify::plumbing::{plug_veth, InterfaceConfig, OvsdbClient, PlumbingError, Route};
use common::{
    eventually, ovs_interface, ovs_map, random_suffix, require_ovs, HostLinkGuard, ScratchBridge,
    ScratchNetns,
};

fn external_ids(port_id: &str, mac: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("attached-mac".to_owned(), mac.to_owned()),
        ("iface-id".to_owned(), port_id.to_owned()),
        ("iface-status".to_owned(), "active".to_owned()),
    ])
}

fn config(mac: &str, addresses: &[&str], routes: Vec<Route>) -> InterfaceConfig {
    InterfaceConfig {
        name: "eth0".to_owned(),
        mac: mac.parse().unwrap(),
        mtu: 1500,
        addresses: addresses
            .iter()
            .map(|address| address.parse().unwrap())
            .collect(),
        routes,
        disable_tx_checksum: true,
    }
}

async fn client() -> OvsdbClient {
    require_ovs();
    OvsdbClient::connect(DEFAULT_ENDPOINT).await.unwrap()
}

/// Creates a scratch namespace with a plugged veth whose host end is ready to be added to a bridge.
async fn plugged(mac: &str, addresses: &[&str]) -> (ScratchNetns, HostLinkGuard) {
    let scratch = ScratchNetns::new();
    let host = HostLinkGuard::new();
    plug_veth(
        &scratch.netns(),
        &host.name,
        &config(mac, addresses, vec![]),
    )
    .await
    .unwrap();
    (scratch, host)
}

#[tokio::test]
async fn add_port_writes_rows_and_waits_for_vswitchd() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:01", &[]).await;
    let ids = external_ids("11111111-2222-4333-8444-555555555555", "fa:16:3e:00:00:01");

    ovs.add_port(&bridge.name, &host.name, &ids).await.unwrap();

    assert_eq!(bridge.ports(), std::slice::from_ref(&host.name));
    let row = ovs_interface(&host.name).expect("Interface row");
    assert_eq!(ovs_map(&row["external_ids"]), ids);
    assert_eq!(row["type"], "");
    // add_port returns after ovs-vswitchd applied the change, so the port number is there.
    let ofport = row["ofport"].as_i64().unwrap_or(-1);
    assert!(ofport > 0, "ofport {ofport} right after add_port");
}

#[tokio::test]
async fn add_port_again_replaces_old_rows() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:02", &[]).await;
    let old = external_ids("aaaaaaaa-0000-4000-8000-000000000001", "fa:16:3e:00:00:02");
    let new = external_ids("bbbbbbbb-0000-4000-8000-000000000002", "fa:16:3e:00:00:02");
    ovs.add_port(&bridge.name, &host.name, &old).await.unwrap();

    ovs.add_port(&bridge.name, &host.name, &new).await.unwrap();

    assert_eq!(bridge.ports(), std::slice::from_ref(&host.name));
    let row = ovs_interface(&host.name).expect("Interface row");
    assert_eq!(ovs_map(&row["external_ids"]), new);
}

#[tokio::test]
async fn add_port_moves_port_from_other_bridge() {
    let ovs = client().await;
    let first = ScratchBridge::new();
    let second = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:03", &[]).await;
    let ids = external_ids("cccccccc-0000-4000-8000-000000000003", "fa:16:3e:00:00:03");
    ovs.add_port(&first.name, &host.name, &ids).await.unwrap();

    ovs.add_port(&second.name, &host.name, &ids).await.unwrap();

    assert!(
        first.ports().is_empty(),
        "still on {}: {:?}",
        first.name,
        first.ports()
    );
    assert_eq!(second.ports(), std::slice::from_ref(&host.name));
}

#[tokio::test]
async fn add_port_to_missing_bridge_writes_nothing() {
    let ovs = client().await;
    let missing = format!("cnone{}", random_suffix());
    let port = format!("ctap{}", random_suffix());

    let error = ovs
        .add_port(&missing, &port, &BTreeMap::new())
        .await
        .unwrap_err();

    assert!(error.is_bridge_not_found(), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("add port {port} to OVS bridge {missing}")
    );
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert_eq!(cause, format!("bridge {missing} does not exist"));
    assert_eq!(ovs_interface(&port), None, "an Interface row was committed");
}

#[tokio::test]
async fn del_port_removes_rows() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:04", &[]).await;
    let ids = external_ids("dddddddd-0000-4000-8000-000000000004", "fa:16:3e:00:00:04");
    ovs.add_port(&bridge.name, &host.name, &ids).await.unwrap();

    assert!(ovs.del_port(&bridge.name, &host.name).await.unwrap());

    assert!(
        bridge.ports().is_empty(),
        "ports left: {:?}",
        bridge.ports()
    );
    assert_eq!(ovs_interface(&host.name), None, "Interface row left behind");
    assert!(!ovs.del_port(&bridge.name, &host.name).await.unwrap());
}

#[tokio::test]
async fn del_port_leaves_other_bridge_alone() {
    let ovs = client().await;
    let owner = ScratchBridge::new();
    let other = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:05", &[]).await;
    ovs.add_port(&owner.name, &host.name, &BTreeMap::new())
        .await
        .unwrap();

    assert!(!ovs.del_port(&other.name, &host.name).await.unwrap());

    assert_eq!(owner.ports(), std::slice::from_ref(&host.name));
}

#[tokio::test]
async fn del_port_on_missing_bridge_is_an_error() {
    let ovs = client().await;
    let missing = format!("cnone{}", random_suffix());

    let error = ovs.del_port(&missing, "ctapnothing").await.unwrap_err();

    assert!(error.is_bridge_not_found(), "{error:?}");
}

#[tokio::test]
async fn list_interfaces_reports_ofport_and_error() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:06", &[]).await;
    let ids = external_ids("eeeeeeee-0000-4000-8000-000000000006", "fa:16:3e:00:00:06");
    ovs.add_port(&bridge.name, &host.name, &ids).await.unwrap();
    // A port whose device does not exist, as after a container died and took its veth along.
    let ghost = format!("cghost{}", random_suffix());
    ovs.add_port(&bridge.name, &ghost, &BTreeMap::new())
        .await
        .unwrap();

    let interfaces = ovs.list_interfaces(&bridge.name).await.unwrap();

    let names: Vec<&str> = interfaces
        .iter()
        .map(|interface| interface.name.as_str())
        .collect();
    assert!(names.contains(&bridge.name.as_str()), "{names:?}");
    let plugged = interfaces
        .iter()
        .find(|interface| interface.name == host.name)
        .unwrap();
    assert_eq!(plugged.external_ids, ids);
    assert!(
        plugged.ofport.is_some_and(|ofport| ofport > 0),
        "{plugged:?}"
    );
    assert_eq!(plugged.error, None);
    let ghost = interfaces
        .iter()
        .find(|interface| interface.name == ghost)
        .unwrap();
    assert_eq!(ghost.ofport, Some(-1));
    assert!(
        ghost
            .error
            .as_deref()
            .is_some_and(|error| error.contains("No such device")),
        "{ghost:?}"
    );
}

#[tokio::test]
async fn list_interfaces_of_missing_bridge_is_an_error() {
    let ovs = client().await;
    let error = ovs
        .list_interfaces(&format!("cnone{}", random_suffix()))
        .await
        .unwrap_err();
    assert!(error.is_bridge_not_found(), "{error:?}");
}

#[tokio::test]
async fn datapath_type_read_back() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();

    assert_eq!(
        ovs.bridge_datapath_type(&bridge.name)
            .await
            .unwrap()
            .as_deref(),
        Some("netdev")
    );
    let missing = format!("cnone{}", random_suffix());
    assert_eq!(ovs.bridge_datapath_type(&missing).await.unwrap(), None);
}

#[tokio::test]
async fn interface_external_ids_read_back() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:07", &[]).await;
    let ids = external_ids("ffffffff-0000-4000-8000-000000000007", "fa:16:3e:00:00:07");
    ovs.add_port(&bridge.name, &host.name, &ids).await.unwrap();

    assert_eq!(
        ovs.interface_external_ids(&host.name).await.unwrap(),
        Some(ids)
    );
    assert_eq!(
        ovs.interface_external_ids("cnone-nothing").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn wait_ovn_installed_times_out_then_sees_flag() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (_scratch, host) = plugged("fa:16:3e:00:00:08", &[]).await;
    ovs.add_port(&bridge.name, &host.name, &BTreeMap::new())
        .await
        .unwrap();

    let error = ovs
        .wait_ovn_installed(&host.name, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&host.name), "{error}");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.starts_with("timed out after"), "{cause}");

    // Play ovn-controller: set the flag a little after the wait has started.
    let interface = host.name.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        common::run(
            "ovs-vsctl",
            &[
                "set",
                "Interface",
                &interface,
                "external_ids:ovn-installed=true",
            ],
        );
    });
    ovs.wait_ovn_installed(&host.name, Duration::from_secs(10))
        .await
        .unwrap();
    setter.join().unwrap();
}

#[tokio::test]
async fn concurrent_requests_share_one_connection() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let mut plugs = Vec::new();
    for index in 0..4u8 {
        plugs.push(plugged(&format!("fa:16:3e:00:01:{index:02x}"), &[]).await);
    }

    let no_ids = BTreeMap::new();
    let adds = plugs
        .iter()
        .map(|(_, host)| ovs.add_port(&bridge.name, &host.name, &no_ids));
    for result in futures::future::join_all(adds).await {
        result.unwrap();
    }

    let mut expected: Vec<String> = plugs.iter().map(|(_, host)| host.name.clone()).collect();
    expected.sort();
    assert_eq!(bridge.ports(), expected);
}

#[tokio::test]
async fn missing_socket_named_in_error() {
    require_ovs();
    let directory = tempfile::tempdir().unwrap();
    let endpoint = format!("unix:{}", directory.path().join("db.sock").display());

    let error = OvsdbClient::connect(&endpoint).await.unwrap_err();

    assert!(
        matches!(error, PlumbingError::OvsdbUnreachable { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("connect to OVSDB failed, is ovsdb-server running? (endpoint {endpoint})")
    );
}

/// Pings `address` from `from` once, retrying for a few seconds while OVS learns the MACs.
fn pings(from: &ScratchNetns, address: &str) -> bool {
    eventually(Duration::from_secs(5), || {
        from.exec("ping", &["-c", "1", "-W", "1", address])
            .status
            .success()
    })
}

/// Sends `size` bytes over TCP from `client` to `server_address` and returns how many bytes the
/// server in `server` received.
fn tcp_transfer(
    server: &ScratchNetns,
    client: &ScratchNetns,
    server_address: &str,
    size: usize,
) -> usize {
    const SERVER: &str = "import socket,sys\n\
        s=socket.socket(socket.AF_INET6);s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n\
        s.bind(('::',5001));s.listen(1);s.settimeout(10);print('ready',flush=True)\n\
        c,_=s.accept();c.settimeout(10);n=0\n\
        while True:\n    b=c.recv(65536)\n    if not b: break\n    n+=len(b)\n\
        print(n,flush=True)\n";
    const CLIENT: &str = "import socket,sys\n\
        c=socket.create_connection((sys.argv[1],5001),timeout=10)\n\
        c.sendall(b'x'*int(sys.argv[2]));c.close()\n";

    let mut listener = Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.name,
            "/usr/bin/python3",
            "-c",
            SERVER,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let sent = client.exec(
        "/usr/bin/python3",
        &["-c", CLIENT, server_address, &size.to_string()],
    );
    if !sent.status.success() {
        let _ = listener.kill();
    }
    let received = lines.next().map(|line| line.unwrap()).unwrap_or_default();
    let _ = listener.wait();
    assert!(
        sent.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    received.parse().unwrap()
}

#[tokio::test]
async fn two_namespaces_talk_over_scratch_bridge() {
    let ovs = client().await;
    let bridge = ScratchBridge::new();
    let (left, left_host) = plugged(
        "fa:16:3e:00:02:01",
        &["198.51.100.21/24", "2001:db8:21::21/64"],
    )
    .await;
    let (right, right_host) = plugged(
        "fa:16:3e:00:02:02",
        &["198.51.100.22/24", "2001:db8:21::22/64"],
    )
    .await;
    ovs.add_port(&bridge.name, &left_host.name, &BTreeMap::new())
        .await
        .unwrap();
    ovs.add_port(&bridge.name, &right_host.name, &BTreeMap::new())
        .await
        .unwrap();

    assert!(pings(&left, "198.51.100.22"), "IPv4 ping failed");
    assert!(pings(&left, "2001:db8:21::22"), "IPv6 ping failed");

    // TCP fails on the userspace datapath unless TX checksum offload is off in the namespace.
    let size = 4 * 1024 * 1024;
    assert_eq!(tcp_transfer(&right, &left, "198.51.100.22", size), size);
    assert_eq!(tcp_transfer(&right, &left, "2001:db8:21::22", size), size);
}

/// An ovsdb-server of the test's own, on a scratch database and socket; stopped on drop.
struct PrivateOvsdb {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateOvsdb {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("conf.db");
        let status = Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema")
            .status()
            .unwrap();
        assert!(status.success(), "ovsdb-tool create failed: {status}");
        let mut server = Self { dir, child: None };
        server.run();
        server
    }

    fn socket(&self) -> String {
        self.dir.path().join("db.sock").to_str().unwrap().to_owned()
    }

    /// Starts ovsdb-server in the foreground of a child process and waits for its socket.
    fn run(&mut self) {
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("ovsdb-server")
            .arg(self.dir.path().join("conf.db"))
            .arg(format!("--remote=punix:{socket}"))
            .arg("--unixctl")
            .arg(self.dir.path().join("ctl"))
            .arg("--log-file=/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ovsdb-server");
        self.child = Some(child);
        assert!(
            eventually(Duration::from_secs(5), || std::path::Path::new(&socket)
                .exists()),
            "ovsdb-server did not create {socket}"
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateOvsdb {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn client_connects_again_after_server_restart() {
    common::require_root();
    let mut server = PrivateOvsdb::start();
    let ovs = OvsdbClient::connect(&server.socket()).await.unwrap();
    assert_eq!(ovs.bridge_datapath_type("br-none").await.unwrap(), None);

    server.stop();
    let during = ovs.bridge_datapath_type("br-none").await;
    server.run();
    let after = ovs.bridge_datapath_type("br-none").await;

    assert!(during.is_err(), "a request succeeded with the server down");
    assert_eq!(after.unwrap(), None);
}
