//! Tests of the attach workflow: Neutron on a wiremock server, the host side as a recording fake.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::openstack::testing;
use crate::plumbing::PlumbingError;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/openstack/", $name))
    };
}

const PORT_ID: &str = "4312b826-10e5-4b00-9729-cbcf4a52a225";
const NETWORK_ID: &str = "842f87a4-4d39-4d9e-8f27-ff1ca12bd5ce";

/// A call the workflow made on the host side.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    DatapathType,
    NextFreeIfname,
    Plug {
        host_ifname: String,
        iface: InterfaceConfig,
        external_ids: BTreeMap<String, String>,
    },
    WaitFlows,
    PluggedIfname,
    Unplug {
        host_ifname: String,
    },
}

/// Records every call, and fails `plug` when told to.
#[derive(Debug, Default)]
struct RecordingPlumbing {
    calls: Mutex<Vec<Call>>,
    fail_plug: bool,
}

impl RecordingPlumbing {
    fn failing_plug() -> Self {
        Self {
            fail_plug: true,
            ..Self::default()
        }
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn unplugs(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Unplug { host_ifname } => Some(host_ifname),
                _ => None,
            })
            .collect()
    }
}

impl Plumbing for RecordingPlumbing {
    async fn datapath_type(&self) -> Result<Option<String>, PlumbingError> {
        self.record(Call::DatapathType);
        Ok(Some("netdev".to_string()))
    }

    async fn next_free_ifname(&self, _netns: &Netns) -> Result<String, PlumbingError> {
        self.record(Call::NextFreeIfname);
        Ok("eth0".to_string())
    }

    async fn plug(
        &self,
        _netns: &Netns,
        host_ifname: &str,
        iface: &InterfaceConfig,
        external_ids: &BTreeMap<String, String>,
    ) -> Result<(), PlumbingError> {
        self.record(Call::Plug {
            host_ifname: host_ifname.to_string(),
            iface: iface.clone(),
            external_ids: external_ids.clone(),
        });
        if self.fail_plug {
            return Err(PlumbingError::InvalidNetnsName {
                name: "recorded failure".to_string(),
                reason: "the test asked plug to fail",
            });
        }
        Ok(())
    }

    async fn wait_flows_installed(
        &self,
        _host_ifname: &str,
        _timeout: Duration,
    ) -> Result<bool, PlumbingError> {
        self.record(Call::WaitFlows);
        Ok(true)
    }

    async fn plugged_ifname(
        &self,
        _host_ifname: &str,
        _netns: &Netns,
    ) -> Result<Option<String>, PlumbingError> {
        self.record(Call::PluggedIfname);
        Ok(None)
    }

    async fn unplug(&self, host_ifname: &str) -> Result<Unplugged, PlumbingError> {
        self.record(Call::Unplug {
            host_ifname: host_ifname.to_string(),
        });
        Ok(Unplugged {
            ovs_port: true,
            link: true,
        })
    }
}

fn subnets_body() -> Value {
    let mut v4: Value = serde_json::from_str(fixture!("subnet-create-response.json")).unwrap();
    v4["subnet"]["host_routes"] =
        json!([{"destination": "203.0.113.0/24", "nexthop": "192.168.1.254"}]);
    v4["subnet"]["dns_nameservers"] = json!(["192.168.1.53"]);
    json!({ "subnets": [v4["subnet"]] })
}

fn port_with(vif_type: &str, status: &str) -> Value {
    let mut port: Value = serde_json::from_str(fixture!("port-create-response.json")).unwrap();
    port["port"]["binding:vif_type"] = json!(vif_type);
    port["port"]["status"] = json!(status);
    port
}

/// Mounts Keystone and the network lookup; returns the server.
async fn neutron_server() -> MockServer {
    let server = MockServer::start().await;
    testing::keystone(&server, "token-1").mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .and(query_param("name", "demo-net"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture!("networks-by-name.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/subnets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subnets_body()))
        .mount(&server)
        .await;
    server
}

async fn mount_create(server: &MockServer, reply: Value) {
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(body_partial_json(json!({"port": {
            "network_id": NETWORK_ID,
            "binding:host_id": "node-7",
            "device_owner": "compute:clampify",
            "device_id": "netns:blue",
            "description": DESCRIPTION_CREATED,
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(reply))
        .expect(1)
        .mount(server)
        .await;
}

/// Mounts the batched status poll, `GET /v2.0/ports?id=…`, reporting `status`.
async fn mount_statuses(server: &MockServer, status: &str) {
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("id", PORT_ID))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ports": [{"id": PORT_ID, "status": status}]})),
        )
        .mount(server)
        .await;
}

async fn mount_delete(server: &MockServer, times: u64) {
    Mock::given(method("DELETE"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(ResponseTemplate::new(204))
        .expect(times)
        .mount(server)
        .await;
}

fn attacher(server: &MockServer, plumbing: RecordingPlumbing) -> Attacher<RecordingPlumbing> {
    let neutron = Neutron::new(testing::session(server));
    let mut attacher = Attacher::new(
        neutron,
        plumbing,
        "node-7".to_string(),
        "br-int".to_string(),
    );
    attacher.statuses = StatusPoller::new(attacher.neutron.clone(), Duration::from_millis(10));
    attacher
}

fn request(wait: Option<Duration>) -> AttachRequest {
    AttachRequest {
        network: "demo-net".to_string(),
        netns: Netns::from_path("/run/netns/blue"),
        device_id: "netns:blue".to_string(),
        port_name: "clampify-blue".to_string(),
        source: PortSource::Create {
            ips: Vec::new(),
            security_groups: Vec::new(),
            description: None,
        },
        wait,
        netns_created: false,
    }
}

#[tokio::test]
async fn attach_plugs_port_as_neutron_made_it() {
    let server = neutron_server().await;
    mount_create(&server, port_with("ovs", "DOWN")).await;
    mount_statuses(&server, "ACTIVE").await;
    mount_delete(&server, 0).await;
    let attacher = attacher(&server, RecordingPlumbing::default());

    let attachment = attacher
        .attach(&request(Some(Duration::from_secs(5))))
        .await
        .unwrap();

    assert_eq!(attachment.port_id, PORT_ID);
    assert_eq!(attachment.status, "ACTIVE");
    assert_eq!(attachment.interface, "eth0");
    assert_eq!(attachment.netns, "blue");
    assert_eq!(attachment.ip_addresses, ["192.168.1.217"]);
    assert_eq!(
        attachment.dns_nameservers,
        ["192.168.1.53".parse::<IpAddr>().unwrap()]
    );
    let plug = attacher
        .plumbing()
        .calls()
        .into_iter()
        .find(|c| matches!(c, Call::Plug { .. }))
        .unwrap();
    let Call::Plug {
        host_ifname,
        iface,
        external_ids,
    } = plug
    else {
        unreachable!()
    };
    assert_eq!(host_ifname, "tap4312b826-10");
    assert_eq!(iface.mtu, 1442);
    assert!(
        iface.disable_tx_checksum,
        "netdev bridges need TX checksum offload off"
    );
    assert_eq!(
        iface.addresses,
        ["192.168.1.217/24".parse::<ipnet::IpNet>().unwrap()]
    );
    assert_eq!(iface.routes.len(), 2, "{:?}", iface.routes);
    assert_eq!(external_ids["iface-id"], PORT_ID);
    assert_eq!(external_ids["attached-mac"], "fa:16:3e:d8:1c:8f");
    assert_eq!(external_ids["iface-status"], "active");
    assert_eq!(external_ids["vm-uuid"], "netns:blue");
}

#[tokio::test]
async fn failed_plug_deletes_created_port() {
    let server = neutron_server().await;
    mount_create(&server, port_with("ovs", "DOWN")).await;
    mount_delete(&server, 1).await;
    let attacher = attacher(&server, RecordingPlumbing::failing_plug());

    let err = attacher.attach(&request(None)).await.unwrap_err();

    assert!(matches!(err, AttachError::Plug { .. }), "{err:?}");
}

#[tokio::test]
async fn binding_failure_names_host_and_deletes_port() {
    let server = neutron_server().await;
    mount_create(&server, port_with("binding_failed", "DOWN")).await;
    mount_delete(&server, 1).await;
    let attacher = attacher(&server, RecordingPlumbing::default());

    let err = attacher.attach(&request(None)).await.unwrap_err();

    let message = err.to_string();
    assert!(message.contains("host node-7"), "{message}");
    assert!(message.contains("no OVS agent or OVN chassis"), "{message}");
    assert!(!attacher
        .plumbing()
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Plug { .. })));
}

#[tokio::test]
async fn unknown_vif_type_is_rejected() {
    let server = neutron_server().await;
    mount_create(&server, port_with("vhostuser", "DOWN")).await;
    mount_delete(&server, 1).await;
    let attacher = attacher(&server, RecordingPlumbing::default());

    let err = attacher.attach(&request(None)).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        format!("port {PORT_ID} has binding:vif_type vhostuser, which is not supported; Clampify plugs only vif_type ovs")
    );
}

#[tokio::test]
async fn port_never_active_is_rolled_back() {
    let server = neutron_server().await;
    mount_create(&server, port_with("ovs", "DOWN")).await;
    mount_statuses(&server, "DOWN").await;
    mount_delete(&server, 1).await;
    let attacher = attacher(&server, RecordingPlumbing::default());

    let err = attacher
        .attach(&request(Some(Duration::from_millis(100))))
        .await
        .unwrap_err();

    assert!(matches!(err, AttachError::WaitActive { .. }), "{err:?}");
    assert_eq!(attacher.plumbing().unplugs(), ["tap4312b826-10"]);
}

#[tokio::test]
async fn failed_adoption_unbinds_instead_of_deleting() {
    let server = neutron_server().await;
    Mock::given(method("PUT"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .and(body_partial_json(
            json!({"port": {"binding:host_id": "node-7"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(port_with("ovs", "DOWN")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .and(body_partial_json(json!({"port": {"binding:host_id": ""}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(port_with("unbound", "DOWN")))
        .expect(1)
        .mount(&server)
        .await;
    mount_delete(&server, 0).await;
    let attacher = attacher(&server, RecordingPlumbing::failing_plug());
    let mut adopt = request(None);
    adopt.source = PortSource::Adopt {
        port: PORT_ID.to_string(),
    };

    let err = attacher.attach(&adopt).await.unwrap_err();

    assert!(matches!(err, AttachError::Plug { .. }), "{err:?}");
}

#[tokio::test]
async fn network_lookup_is_cached() {
    let server = MockServer::start().await;
    testing::keystone(&server, "token-1").mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture!("networks-by-name.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/subnets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subnets_body()))
        .expect(1)
        .mount(&server)
        .await;
    let attacher = attacher(&server, RecordingPlumbing::default());

    let first = attacher.network("demo-net").await.unwrap();
    let by_id = attacher.network(NETWORK_ID).await.unwrap();

    assert_eq!(first.network.id, by_id.network.id);
}

fn lab_port() -> Port {
    serde_json::from_value(port_with("ovs", "ACTIVE")["port"].clone()).unwrap()
}

fn lab_subnets() -> Vec<Subnet> {
    serde_json::from_value(subnets_body()["subnets"].clone()).unwrap()
}

#[test]
fn interface_config_without_default_routes() {
    let iface = interface_config(&lab_port(), &lab_subnets(), "eth1", 1442, false, false).unwrap();

    assert_eq!(iface.name, "eth1");
    assert!(!iface.disable_tx_checksum);
    assert_eq!(
        iface.routes.len(),
        1,
        "only the host route: {:?}",
        iface.routes
    );
    assert_eq!(
        iface.routes[0].destination,
        "203.0.113.0/24".parse::<ipnet::IpNet>().unwrap()
    );
}

#[test]
fn interface_config_rejects_bad_mac() {
    let mut port = lab_port();
    port.mac_address = "not-a-mac".to_string();

    let err = interface_config(&port, &lab_subnets(), "eth0", 1442, true, true).unwrap_err();

    assert!(matches!(err, PortDataError::InvalidMac { .. }));
}

#[test]
fn interface_config_rejects_unknown_subnet() {
    let err = interface_config(&lab_port(), &[], "eth0", 1442, true, true).unwrap_err();

    assert!(matches!(err, PortDataError::UnknownSubnet { .. }));
}

#[test]
fn interface_config_one_default_per_family() {
    let mut port = lab_port();
    let mut subnets = lab_subnets();
    let mut second = subnets[0].clone();
    second.id = "second".to_string();
    second.cidr = "192.168.2.0/24".parse().unwrap();
    second.gateway_ip = Some("192.168.2.1".parse().unwrap());
    second.host_routes.clear();
    subnets.push(second);
    port.fixed_ips.push(crate::openstack::FixedIp {
        subnet_id: "second".to_string(),
        ip_address: "192.168.2.9".parse().unwrap(),
    });

    let iface = interface_config(&port, &subnets, "eth0", 1442, true, true).unwrap();

    let defaults: Vec<_> = iface
        .routes
        .iter()
        .filter(|r| r.destination.prefix_len() == 0)
        .collect();
    assert_eq!(defaults.len(), 1, "{:?}", iface.routes);
    assert_eq!(defaults[0].gateway, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(iface.addresses.len(), 2);
}

const CONTAINER_ID: &str = "e9264676f3903478472f9002f6fb26eddb44072870d7199df6c6d1d2eb4e618f";

/// Mounts the POST of a container's port, expected `times` times.
async fn mount_container_create(server: &MockServer, times: u64) {
    let mut reply = port_with("ovs", "DOWN");
    reply["port"]["device_id"] = json!(CONTAINER_ID);
    reply["port"]["description"] =
        json!("created by clampify for the dockerd with data root /var/lib/docker");
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(body_partial_json(json!({"port": {
            "name": "clampify-web",
            "device_id": CONTAINER_ID,
            "description": "created by clampify for the dockerd with data root /var/lib/docker",
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(reply))
        .expect(times)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("device_id", CONTAINER_ID))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ports": []})))
        .mount(server)
        .await;
}

fn network_request() -> NetworkRequest {
    NetworkRequest {
        network: "demo-net".to_string(),
        ips: Vec::new(),
        security_groups: Vec::new(),
        wait: Some(Duration::from_secs(5)),
    }
}

#[tokio::test]
async fn prepared_port_plugged_at_start() {
    let server = neutron_server().await;
    mount_container_create(&server, 1).await;
    mount_statuses(&server, "ACTIVE").await;
    let attacher = attacher(&server, RecordingPlumbing::default());
    let container = web_container();

    let prepared = attacher
        .prepare_container_port(&container, &network_request(), None)
        .await
        .unwrap();
    let again = attacher
        .prepare_container_port(&container, &network_request(), None)
        .await
        .unwrap();
    let target = ContainerTarget {
        id: CONTAINER_ID.to_string(),
        name: "web".to_string(),
        netns: Netns::from_path("/proc/4242/ns/net"),
        data_root: Some("/var/lib/docker".to_string()),
    };
    let (attachment, action) = attacher
        .attach_container(&target, &network_request())
        .await
        .unwrap();

    let prepared = prepared.unwrap();
    assert_eq!(prepared.port.id, PORT_ID);
    assert!(!prepared.from_spare);
    assert!(again.is_none(), "a second prepare created another port");
    assert_eq!(action, PortAction::Prepared);
    assert_eq!(action.as_str(), "created");
    assert_eq!(attachment.port_id, PORT_ID);
    assert_eq!(attachment.status, "ACTIVE");
    let calls = attacher.plumbing().calls();
    assert!(
        !calls.contains(&Call::PluggedIfname),
        "a never-plugged port was looked up: {calls:?}"
    );
    assert!(attacher.plumbing().unplugs().is_empty(), "{calls:?}");
    assert!(
        calls.iter().any(|call| matches!(call, Call::Plug { .. })),
        "{calls:?}"
    );
}

#[tokio::test]
async fn prepared_port_forgotten_after_detach() {
    let server = neutron_server().await;
    mount_container_create(&server, 1).await;
    mount_delete(&server, 1).await;
    let attacher = attacher(&server, RecordingPlumbing::default());
    let container = web_container();

    let port = attacher
        .prepare_container_port(&container, &network_request(), None)
        .await
        .unwrap()
        .unwrap()
        .port;
    attacher.detach(&port).await.unwrap();

    assert!(
        !attacher.take_prepared(PORT_ID),
        "the deleted port is still marked prepared"
    );
}

const SPARE_ID: &str = "5b1a0000-0000-4000-8000-000000000001";

/// Returns a pool with one spare port of demo-net, as the agent's refill would create it.
fn spare_ports() -> SparePorts {
    let mut spare = port_with("ovs", "DOWN")["port"].clone();
    spare["id"] = json!(SPARE_ID);
    spare["network_id"] = json!(NETWORK_ID);
    spare["device_id"] = json!(SPARE_DEVICE_ID);
    spare["description"] = json!(spare_port_description("/var/lib/docker"));
    let spares = SparePorts::new(NETWORK_ID.to_string(), 1);
    spares.add(serde_json::from_value(spare).unwrap());
    spares
}

/// Returns container "web" of the dockerd with data root /var/lib/docker.
fn web_container() -> ContainerRef<'static> {
    ContainerRef {
        id: CONTAINER_ID,
        name: "web",
        data_root: Some("/var/lib/docker"),
    }
}

/// Prepares the port of container "web", which has none yet, with `spares` at hand.
async fn prepare_web(
    attacher: &Attacher<RecordingPlumbing>,
    request: &NetworkRequest,
    spares: &SparePorts,
) -> PreparedPort {
    attacher
        .prepare_container_port(&web_container(), request, Some(spares))
        .await
        .unwrap()
        .expect("a new port for a container without one")
}

#[tokio::test]
async fn spare_port_taken_with_one_update() {
    let server = neutron_server().await;
    mount_container_create(&server, 0).await;
    let mut claimed = port_with("ovs", "DOWN");
    claimed["port"]["id"] = json!(SPARE_ID);
    claimed["port"]["device_id"] = json!(CONTAINER_ID);
    Mock::given(method("PUT"))
        .and(path(format!("/v2.0/ports/{SPARE_ID}")))
        .and(body_partial_json(json!({"port": {
            "device_id": CONTAINER_ID,
            "name": "clampify-web",
            "description": "created by clampify for the dockerd with data root /var/lib/docker",
        }})))
        .respond_with(ResponseTemplate::new(200).set_body_json(claimed))
        .expect(1)
        .mount(&server)
        .await;
    let attacher = attacher(&server, RecordingPlumbing::default());
    let spares = spare_ports();

    let prepared = prepare_web(&attacher, &network_request(), &spares).await;

    assert!(prepared.from_spare);
    assert_eq!(prepared.port.id, SPARE_ID);
    assert_eq!(prepared.port.device_id, CONTAINER_ID);
    assert_eq!(
        spares.missing(),
        1,
        "the spare is still listed as available"
    );
    assert!(
        attacher.take_prepared(SPARE_ID),
        "the spare was not marked prepared"
    );
}

#[tokio::test]
async fn failed_spare_update_falls_back_to_create() {
    let server = neutron_server().await;
    mount_container_create(&server, 1).await;
    Mock::given(method("PUT"))
        .and(path(format!("/v2.0/ports/{SPARE_ID}")))
        .respond_with(
            ResponseTemplate::new(404).set_body_string(fixture!("error-404-port-not-found.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2.0/ports/{SPARE_ID}")))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let attacher = attacher(&server, RecordingPlumbing::default());
    let spares = spare_ports();

    let prepared = prepare_web(&attacher, &network_request(), &spares).await;

    assert!(!prepared.from_spare);
    assert_eq!(prepared.port.id, PORT_ID);
}

#[tokio::test]
async fn spare_not_used_for_fixed_ips() {
    let server = neutron_server().await;
    mount_container_create(&server, 1).await;
    let attacher = attacher(&server, RecordingPlumbing::default());
    let spares = spare_ports();
    let request = NetworkRequest {
        ips: vec!["192.168.1.217".parse().unwrap()],
        ..network_request()
    };

    let prepared = prepare_web(&attacher, &request, &spares).await;

    assert!(!prepared.from_spare);
    assert_eq!(prepared.port.id, PORT_ID);
    assert_eq!(spares.missing(), 0, "the spare was used");
}
