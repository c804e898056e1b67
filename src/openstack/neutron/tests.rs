#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::error::Error as _;

use serde_json::json;
use wiremock::matchers::{body_json, body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::openstack::testing;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/openstack/", $name))
    };
}

const NETWORK_ID: &str = "842f87a4-4d39-4d9e-8f27-ff1ca12bd5ce";
const SUBNET_ID: &str = "d439a3eb-4140-465c-9c46-ae2cc08bb5c7";
const PORT_ID: &str = "4312b826-10e5-4b00-9729-cbcf4a52a225";
const OTHER_PORT_ID: &str = "7c4529ef-4172-4d58-a1f9-f8aca733644c";
const ADMIN_PROJECT: &str = "f999dfc5e17a40adbc118b0561a08f09";

/// Starts a mock server acting as Keystone and Neutron, and returns a client on it.
async fn neutron() -> (MockServer, Neutron) {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok").mount(&server).await;
    let neutron = Neutron::new(testing::session(&server));
    (server, neutron)
}

fn json_reply(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

fn source_message(error: &NeutronError) -> String {
    error.source().unwrap().to_string()
}

fn port_request() -> PortCreate {
    PortCreate {
        network_id: NETWORK_ID.to_owned(),
        name: "clampify-a".to_owned(),
        host_id: "vm".to_owned(),
        device_owner: "compute:clampify".to_owned(),
        device_id: "a8f6e998-c12e-4ec1-b01e-64197f1d4c96".to_owned(),
        ..PortCreate::default()
    }
}

// ---- networks, subnets, security groups ----

#[tokio::test]
async fn find_network_by_name() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .and(query_param("name", "demo-net"))
        .respond_with(json_reply(200, fixture!("networks-by-name.json")))
        .expect(1)
        .mount(&server)
        .await;

    let network = neutron.find_network("demo-net").await.unwrap();

    assert_eq!(network.id, NETWORK_ID);
    assert_eq!(network.mtu, Some(1442));
    assert_eq!(network.subnets, [SUBNET_ID]);
    assert_eq!(network.project_id.as_deref(), Some(ADMIN_PROJECT));
    assert_eq!(network.network_type.as_deref(), Some("geneve"));
}

#[tokio::test]
async fn find_network_by_id_skips_name_lookup() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/networks/{NETWORK_ID}")))
        .respond_with(json_reply(200, fixture!("network-create-response.json")))
        .expect(1)
        .mount(&server)
        .await;

    let network = neutron.find_network(NETWORK_ID).await.unwrap();

    assert_eq!(network.name, "demo-net");
    assert_eq!(neutron.session().neutron_requests(), 1);
}

#[tokio::test]
async fn unknown_network_id_is_not_found() {
    let (server, neutron) = neutron().await;
    let missing = "00000000-0000-0000-0000-000000000000";
    let body = json!({ "NeutronError": {
        "type": "NetworkNotFound",
        "message": format!("Network {missing} could not be found."),
        "detail": "",
    }});
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/networks/{missing}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(body))
        .mount(&server)
        .await;

    let error = neutron.find_network(missing).await.unwrap_err();

    assert_eq!(error.to_string(), format!("network {missing} not found"));
    assert!(error.is_not_found());
}

#[tokio::test]
async fn unknown_network_name_is_not_found() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "networks": [] })))
        .mount(&server)
        .await;

    let error = neutron.find_network("no-such-net").await.unwrap_err();

    assert_eq!(error.to_string(), "network no-such-net not found");
}

#[tokio::test]
async fn ambiguous_network_name_lists_ids() {
    let (server, neutron) = neutron().await;
    let networks = json!({ "networks": [
        { "id": "11111111-1111-1111-1111-111111111111", "name": "shared" },
        { "id": "22222222-2222-2222-2222-222222222222", "name": "shared" },
    ]});
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(networks))
        .mount(&server)
        .await;

    let error = neutron.find_network("shared").await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "network name shared matches 2 networks: 11111111-1111-1111-1111-111111111111, \
         22222222-2222-2222-2222-222222222222; pass one of these IDs instead"
    );
}

#[tokio::test]
async fn subnets_of_network_in_one_request() {
    let (server, neutron) = neutron().await;
    let mut subnet: Value = serde_json::from_str(fixture!("subnet-create-response.json")).unwrap();
    subnet["subnet"]["host_routes"] =
        json!([{ "destination": "10.9.0.0/16", "nexthop": "192.168.1.254" }]);
    subnet["subnet"]["dns_nameservers"] = json!(["192.168.1.2"]);
    Mock::given(method("GET"))
        .and(path("/v2.0/subnets"))
        .and(query_param("network_id", NETWORK_ID))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "subnets": [subnet["subnet"]] })),
        )
        .expect(1)
        .mount(&server)
        .await;

    let subnets = neutron.subnets_of(NETWORK_ID).await.unwrap();

    assert_eq!(subnets.len(), 1);
    assert_eq!(
        subnets[0].cidr,
        "192.168.1.0/24".parse::<ipnet::IpNet>().unwrap()
    );
    assert_eq!(subnets[0].gateway_ip, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(
        subnets[0].host_routes[0].destination,
        "10.9.0.0/16".parse::<ipnet::IpNet>().unwrap()
    );
    assert_eq!(
        subnets[0].host_routes[0].nexthop,
        "192.168.1.254".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        subnets[0].dns_nameservers,
        ["192.168.1.2".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(subnets[0].ip_version, 4);
}

#[test]
fn subnet_for_ip_prefers_most_specific() {
    let subnet = |id: &str, cidr: &str| Subnet {
        id: id.to_owned(),
        name: String::new(),
        network_id: NETWORK_ID.to_owned(),
        cidr: cidr.parse().unwrap(),
        gateway_ip: None,
        host_routes: Vec::new(),
        dns_nameservers: Vec::new(),
        ip_version: if cidr.contains(':') { 6 } else { 4 },
        enable_dhcp: true,
    };
    let subnets = [
        subnet("wide", "10.0.0.0/8"),
        subnet("narrow", "10.1.0.0/16"),
        subnet("v6", "fd00::/64"),
    ];
    let found = |ip: &str| find_subnet_for_ip(&subnets, ip.parse().unwrap()).map(|s| s.id.as_str());

    assert_eq!(found("10.1.2.3"), Some("narrow"));
    assert_eq!(found("10.2.0.1"), Some("wide"));
    assert_eq!(found("fd00::5"), Some("v6"));
    assert_eq!(found("192.168.1.1"), None);
}

fn default_groups() -> Value {
    json!({ "security_groups": [
        { "id": "33333333-3333-3333-3333-333333333333", "name": "default", "project_id": "other" },
        { "id": "09242f86-5a61-4232-a8fc-e00e19e56283", "name": "default", "project_id": ADMIN_PROJECT },
    ]})
}

#[tokio::test]
async fn security_group_name_prefers_token_project() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/security-groups"))
        .and(query_param("name", "default"))
        .respond_with(ResponseTemplate::new(200).set_body_json(default_groups()))
        .mount(&server)
        .await;

    let group = neutron.find_security_group("default", None).await.unwrap();

    assert_eq!(group.id, "09242f86-5a61-4232-a8fc-e00e19e56283");
}

#[tokio::test]
async fn security_group_name_outside_project_is_ambiguous() {
    let (server, neutron) = neutron().await;
    let mut groups = default_groups();
    groups["security_groups"][1]["project_id"] = json!("third");
    Mock::given(method("GET"))
        .and(path("/v2.0/security-groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(groups))
        .mount(&server)
        .await;

    let error = neutron
        .find_security_group("default", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "security group name default matches 2 groups: 33333333-3333-3333-3333-333333333333, \
         09242f86-5a61-4232-a8fc-e00e19e56283; pass one of these IDs instead"
    );
}

// ---- ports ----

#[tokio::test]
async fn create_port_sends_one_post_with_binding() {
    let (server, neutron) = neutron().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(body_partial_json(json!({ "port": {
            "network_id": NETWORK_ID,
            "name": "clampify-a",
            "binding:host_id": "vm",
            "device_owner": "compute:clampify",
            "device_id": "a8f6e998-c12e-4ec1-b01e-64197f1d4c96",
        }})))
        .respond_with(json_reply(201, fixture!("port-create-response.json")))
        .expect(1)
        .mount(&server)
        .await;

    let port = neutron.create_port(&port_request()).await.unwrap();

    assert_eq!(port.id, PORT_ID);
    assert_eq!(port.mac_address, "fa:16:3e:d8:1c:8f");
    assert_eq!(
        port.fixed_ips[0].ip_address,
        "192.168.1.217".parse::<IpAddr>().unwrap()
    );
    assert_eq!(port.status, "DOWN");
    assert_eq!(port.binding_host_id.as_deref(), Some("vm"));
    assert_eq!(port.binding_vif_type.as_deref(), Some("ovs"));
    assert_eq!(port.binding_vif_details["bridge_name"], "br-int");
    assert_eq!(neutron.session().neutron_requests(), 1);
    assert_eq!(neutron.session().keystone_requests(), 1);
}

#[tokio::test]
async fn create_port_body_has_only_set_fields() {
    let (server, neutron) = neutron().await;
    let expected = json!({ "port": {
        "network_id": NETWORK_ID,
        "name": "clampify-a",
        "binding:host_id": "vm",
        "device_owner": "compute:clampify",
        "device_id": "a8f6e998-c12e-4ec1-b01e-64197f1d4c96",
    }});
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(body_json(expected))
        .respond_with(json_reply(201, fixture!("port-create-response.json")))
        .expect(1)
        .mount(&server)
        .await;

    neutron.create_port(&port_request()).await.unwrap();
}

#[tokio::test]
async fn create_port_sends_addresses_groups_and_tags() {
    let (server, neutron) = neutron().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(body_partial_json(json!({ "port": {
            "fixed_ips": [{ "subnet_id": SUBNET_ID, "ip_address": "192.168.1.50" }],
            "security_groups": ["09242f86-5a61-4232-a8fc-e00e19e56283"],
            "tags": ["clampify"],
            "description": "clampify",
        }})))
        .respond_with(json_reply(201, fixture!("port-create-response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let request = PortCreate {
        fixed_ips: vec![FixedIpRequest {
            subnet_id: Some(SUBNET_ID.to_owned()),
            ip_address: Some("192.168.1.50".parse().unwrap()),
        }],
        security_groups: Some(vec!["09242f86-5a61-4232-a8fc-e00e19e56283".to_owned()]),
        tags: vec!["clampify".to_owned()],
        description: Some("clampify".to_owned()),
        project_id: None,
        ..port_request()
    };

    neutron.create_port(&request).await.unwrap();
}

#[tokio::test]
async fn create_port_conflict_shows_neutron_message() {
    let (server, neutron) = neutron().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .respond_with(json_reply(409, fixture!("error-409-mac-in-use.json")))
        .mount(&server)
        .await;

    let error = neutron.create_port(&port_request()).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        format!("create port on network {NETWORK_ID}")
    );
    assert_eq!(
        source_message(&error),
        format!(
            "POST {}/v2.0/ports returned 409 Conflict: Unable to complete operation for network \
             842f87a4-4d39-4d9e-8f27-ff1ca12bd5ce. The mac address fa:16:3e:d8:1c:8f is in use.",
            server.uri()
        )
    );
    assert!(error.is_conflict());
    assert_eq!(
        error.request_error().unwrap().error_type(),
        Some("MacAddressInUse")
    );
}

#[tokio::test]
async fn create_port_bad_request_shows_neutron_message() {
    let (server, neutron) = neutron().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .respond_with(json_reply(400, fixture!("error-400-ip-not-in-subnet.json")))
        .mount(&server)
        .await;

    let error = neutron.create_port(&port_request()).await.unwrap_err();

    assert_eq!(
        source_message(&error),
        format!(
            "POST {}/v2.0/ports returned 400 Bad Request: IP address 192.168.2.5 is not a valid \
             IP for any of the subnets on the specified network.",
            server.uri()
        )
    );
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    assert!(!error.is_not_found());
}

#[tokio::test]
async fn create_port_rejections_keep_status_type_and_message() {
    let cases = [
        (400, fixture!("error-400-bad-network-id.json"), "HTTPBadRequest", "400 Bad Request: Invalid input for network_id. Reason: 'not-a-uuid' is not a valid UUID."),
        (400, fixture!("error-400-unknown-attribute.json"), "HTTPBadRequest", "400 Bad Request: Unrecognized attribute(s) 'no_such_attr'"),
        (409, fixture!("error-409-ip-in-use.json"), "IpAddressAlreadyAllocated", "409 Conflict: IP address 192.168.1.217 already allocated in subnet d439a3eb-4140-465c-9c46-ae2cc08bb5c7"),
    ];
    for (status, body, error_type, message) in cases {
        let (server, neutron) = neutron().await;
        Mock::given(method("POST"))
            .and(path("/v2.0/ports"))
            .respond_with(json_reply(status, body))
            .mount(&server)
            .await;

        let error = neutron.create_port(&port_request()).await.unwrap_err();

        let expected = format!("POST {}/v2.0/ports returned {message}", server.uri());
        assert_eq!(source_message(&error), expected);
        assert_eq!(
            error.request_error().unwrap().error_type(),
            Some(error_type)
        );
        assert_eq!(error.status().map(|status| status.as_u16()), Some(status));
    }
}

#[tokio::test]
async fn show_missing_port_is_port_not_found() {
    let (server, neutron) = neutron().await;
    let missing = "00000000-0000-0000-0000-000000000000";
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/ports/{missing}")))
        .respond_with(json_reply(404, fixture!("error-404-port-not-found.json")))
        .mount(&server)
        .await;

    let error = neutron.show_port(missing).await.unwrap_err();

    assert_eq!(error.to_string(), format!("port {missing} not found"));
    assert!(
        matches!(error, NeutronError::PortNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn bare_404_is_not_taken_for_missing_port() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(ResponseTemplate::new(404).set_body_string("404 Not Found"))
        .mount(&server)
        .await;

    let error = neutron.show_port(PORT_ID).await.unwrap_err();

    assert!(matches!(error, NeutronError::ShowPort { .. }), "{error:?}");
    assert_eq!(
        source_message(&error),
        format!(
            "GET {}/v2.0/ports/{PORT_ID} returned 404 Not Found: 404 Not Found",
            server.uri()
        )
    );
}

#[tokio::test]
async fn list_ports_sends_filters() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("device_owner", "compute:clampify"))
        .and(query_param("binding:host_id", "vm"))
        .and(query_param("network_id", NETWORK_ID))
        .and(query_param("tags", "clampify,agent"))
        .and(query_param("description", "clampify"))
        .respond_with(json_reply(200, fixture!("ports-by-owner-and-host.json")))
        .expect(1)
        .mount(&server)
        .await;
    let filters = PortFilters {
        device_owner: Some("compute:clampify".to_owned()),
        host_id: Some("vm".to_owned()),
        network_id: Some(NETWORK_ID.to_owned()),
        tags: vec!["clampify".to_owned(), "agent".to_owned()],
        description: Some("clampify".to_owned()),
        ..PortFilters::default()
    };

    let ports = neutron.list_ports(&filters).await.unwrap();

    let ids: Vec<&str> = ports.iter().map(|port| port.id.as_str()).collect();
    assert_eq!(ids, [PORT_ID, OTHER_PORT_ID]);
}

#[tokio::test]
async fn update_port_wraps_attributes() {
    let (server, neutron) = neutron().await;
    let binding = PortBinding {
        host_id: "vm".to_owned(),
        device_owner: "compute:clampify".to_owned(),
        device_id: "c1".to_owned(),
    };
    Mock::given(method("PUT"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .and(body_json(json!({ "port": {
            "binding:host_id": "vm", "device_owner": "compute:clampify", "device_id": "c1",
        }})))
        .respond_with(json_reply(200, fixture!("port-after-plug-active.json")))
        .expect(1)
        .mount(&server)
        .await;

    let port = neutron
        .update_port(PORT_ID, &binding.attributes())
        .await
        .unwrap();

    assert_eq!(port.status, "ACTIVE");
}

#[tokio::test]
async fn update_port_rejection_shows_neutron_message() {
    let (server, neutron) = neutron().await;
    Mock::given(method("PUT"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .and(body_json(json!({ "port": {
            "binding:host_id": "", "device_owner": "", "device_id": "",
        }})))
        .respond_with(json_reply(
            409,
            fixture!("error-409-port-bound-mac-change.json"),
        ))
        .mount(&server)
        .await;

    let error = neutron
        .update_port(PORT_ID, &PortBinding::cleared())
        .await
        .unwrap_err();

    assert_eq!(error.to_string(), format!("update port {PORT_ID}"));
    assert!(source_message(&error).contains("409 Conflict: Unable to complete operation on port"));
}

#[tokio::test]
async fn delete_port_reports_whether_it_existed() {
    let (server, neutron) = neutron().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2.0/ports/{OTHER_PORT_ID}")))
        .respond_with(json_reply(404, fixture!("error-404-port-not-found.json")))
        .mount(&server)
        .await;

    assert!(neutron.delete_port(PORT_ID).await.unwrap());
    assert!(!neutron.delete_port(OTHER_PORT_ID).await.unwrap());
}

#[tokio::test]
async fn delete_port_server_error_is_returned() {
    let (server, neutron) = neutron().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "NeutronError": {
            "type": "HTTPInternalServerError", "message": "Request Failed: internal server error", "detail": "",
        }})))
        .mount(&server)
        .await;

    let error = neutron.delete_port(PORT_ID).await.unwrap_err();

    assert_eq!(error.to_string(), format!("delete port {PORT_ID}"));
    assert_eq!(
        source_message(&error),
        format!(
            "DELETE {}/v2.0/ports/{PORT_ID} returned 500 Internal Server Error: \
             Request Failed: internal server error",
            server.uri()
        )
    );
}

// ---- status polling ----

#[tokio::test]
async fn statuses_asks_for_many_ids_at_once() {
    let (server, neutron) = neutron().await;
    let body = json!({ "ports": [
        { "id": PORT_ID, "status": "ACTIVE" },
        { "id": OTHER_PORT_ID, "status": "DOWN" },
    ]});
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("id", PORT_ID))
        .and(query_param("id", OTHER_PORT_ID))
        .and(query_param("fields", "status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let gone = "00000000-0000-0000-0000-000000000000";

    let statuses = neutron
        .statuses(&[PORT_ID, OTHER_PORT_ID, gone])
        .await
        .unwrap();

    assert_eq!(statuses[PORT_ID], "ACTIVE");
    assert_eq!(statuses[OTHER_PORT_ID], "DOWN");
    assert_eq!(statuses.get(gone), None);
}

#[tokio::test]
async fn statuses_splits_long_id_lists() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ports": [] })))
        .expect(2)
        .mount(&server)
        .await;
    let ids: Vec<String> = (0..IDS_PER_QUERY + 5)
        .map(|n| format!("{n:08}-0000-0000-0000-000000000000"))
        .collect();

    neutron.statuses(&ids).await.unwrap();
    let none: [&str; 0] = [];
    neutron.statuses(&none).await.unwrap();

    assert_eq!(neutron.session().neutron_requests(), 2);
}

fn port_with_status(status: &str) -> ResponseTemplate {
    let mut body: Value = serde_json::from_str(fixture!("port-create-response.json")).unwrap();
    body["port"]["status"] = json!(status);
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn wait_active_polls_until_active() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(port_with_status("DOWN"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(port_with_status("ACTIVE"))
        .mount(&server)
        .await;

    let port = neutron
        .wait_active(PORT_ID, Duration::from_secs(5), Duration::from_millis(10))
        .await
        .unwrap();

    assert_eq!(port.status, "ACTIVE");
    assert_eq!(neutron.session().neutron_requests(), 3);
}

#[tokio::test]
async fn wait_active_times_out_with_last_status() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/ports/{PORT_ID}")))
        .respond_with(port_with_status("DOWN"))
        .mount(&server)
        .await;

    let error = neutron
        .wait_active(
            PORT_ID,
            Duration::from_millis(100),
            Duration::from_millis(20),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(&error, NeutronError::NotActive { status, .. } if status == "DOWN"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("port {PORT_ID} is still DOWN after 0.")),
        "{message}"
    );
    assert!(message.ends_with(" s"), "{message}");
}

#[tokio::test]
async fn wait_active_stops_at_failed_binding() {
    let (server, neutron) = neutron().await;
    let port_id = "a34fbe83-f59a-4328-b4aa-68aaf9a2d40c";
    Mock::given(method("GET"))
        .and(path(format!("/v2.0/ports/{port_id}")))
        .respond_with(json_reply(
            200,
            fixture!("port-create-unknown-host-binding-failed.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let error = neutron
        .wait_active(port_id, Duration::from_secs(5), Duration::from_millis(10))
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "port {port_id} failed to bind to host no-such-host (binding:vif_type is \
             binding_failed); the host must be the name of an OVN chassis or OVS agent host"
        )
    );
}

#[test]
fn uuid_check() {
    assert!(is_uuid(PORT_ID));
    assert!(is_uuid("842F87A4-4D39-4D9E-8F27-FF1CA12BD5CE"));
    assert!(!is_uuid("demo-net"));
    assert!(!is_uuid("842f87a44d394d9e8f27ff1ca12bd5ce"));
    assert!(!is_uuid("842f87a4-4d39-4d9e-8f27-ff1ca12bd5cg"));
}

// ---- which failures are worth retrying ----

#[tokio::test]
async fn server_errors_are_transient() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let error = neutron.find_network("demo-net").await.unwrap_err();

    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn unknown_network_is_not_transient() {
    let (server, neutron) = neutron().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(json_reply(200, r#"{"networks": []}"#))
        .mount(&server)
        .await;

    let error = neutron.find_network("demo-net").await.unwrap_err();

    assert!(!error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn keystone_unreachable_is_transient() {
    // A loopback port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let neutron = Neutron::new(testing::session_for_uri(&format!(
        "http://127.0.0.1:{port}"
    )));

    let error = neutron.find_network("demo-net").await.unwrap_err();

    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn wrong_password_is_not_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(json_reply(
            401,
            fixture!("error-401-keystone-wrong-password.json"),
        ))
        .mount(&server)
        .await;
    let neutron = Neutron::new(testing::session(&server));

    let error = neutron.find_network("demo-net").await.unwrap_err();

    assert!(!error.is_transient(), "{error:?}");
}
