#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use super::*;
use crate::openstack::Secret;
use serde_json::json;

const CATALOG: &str = include_str!("../../../tests/fixtures/openstack/catalog-from-token.json");

fn catalog() -> Vec<CatalogService> {
    serde_json::from_str(CATALOG).unwrap()
}

fn credentials_with(auth: AuthMethod, scope: Option<Scope>) -> Credentials {
    Credentials {
        auth_url: "http://127.0.0.1:5000/v3".parse().unwrap(),
        auth,
        scope,
        region_name: None,
        interface: Interface::Public,
        cacert: None,
        insecure: false,
        sources: Vec::new(),
    }
}

fn admin_in_default() -> UserRef {
    UserRef::Name {
        name: "admin".to_owned(),
        domain: DomainRef::Name("Default".to_owned()),
    }
}

#[test]
fn password_body_matches_openstackclient_request() {
    // The request openstackclient sent to the lab, with the password replaced.
    let captured: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/openstack/token-request.json"
    ))
    .unwrap();
    let credentials = credentials_with(
        AuthMethod::Password {
            user: admin_in_default(),
            password: Secret::new("<ADMIN_PASSWORD>"),
        },
        Some(Scope::Project(ProjectRef::Name {
            name: "admin".to_owned(),
            domain: DomainRef::Name("Default".to_owned()),
        })),
    );

    assert_eq!(auth_request(&credentials), captured);
}

#[test]
fn password_body_by_ids() {
    let credentials = credentials_with(
        AuthMethod::Password {
            user: UserRef::Id("u-1".to_owned()),
            password: Secret::new("pw"),
        },
        Some(Scope::Project(ProjectRef::Id("p-1".to_owned()))),
    );

    let expected = json!({ "auth": {
        "identity": { "methods": ["password"], "password": { "user": { "id": "u-1", "password": "pw" } } },
        "scope": { "project": { "id": "p-1" } },
    }});
    assert_eq!(auth_request(&credentials), expected);
}

#[test]
fn application_credential_bodies_have_no_scope() {
    let by_id = credentials_with(
        AuthMethod::ApplicationCredentialId {
            id: "ac-1".to_owned(),
            secret: Secret::new("s"),
        },
        None,
    );
    let by_name = credentials_with(
        AuthMethod::ApplicationCredentialName {
            name: "agent".to_owned(),
            user: admin_in_default(),
            secret: Secret::new("s"),
        },
        None,
    );

    let expected_by_id = json!({ "auth": { "identity": {
        "methods": ["application_credential"],
        "application_credential": { "id": "ac-1", "secret": "s" },
    }}});
    let expected_by_name = json!({ "auth": { "identity": {
        "methods": ["application_credential"],
        "application_credential": {
            "name": "agent",
            "user": { "name": "admin", "domain": { "name": "Default" } },
            "secret": "s",
        },
    }}});
    assert_eq!(auth_request(&by_id), expected_by_id);
    assert_eq!(auth_request(&by_name), expected_by_name);
}

#[test]
fn token_body_with_domain_scope() {
    let credentials = credentials_with(
        AuthMethod::Token {
            token: Secret::new("old-token"),
        },
        Some(Scope::Domain(DomainRef::Id("default".to_owned()))),
    );

    let expected = json!({ "auth": {
        "identity": { "methods": ["token"], "token": { "id": "old-token" } },
        "scope": { "domain": { "id": "default" } },
    }});
    assert_eq!(auth_request(&credentials), expected);
}

#[test]
fn catalog_gives_network_endpoint_for_interface_and_region() {
    let catalog = catalog();

    let public = network_endpoint(&catalog, Interface::Public, Some("RegionOne")).unwrap();
    let any_region = network_endpoint(&catalog, Interface::Admin, None).unwrap();

    assert_eq!(public.as_str(), "http://127.0.0.1:9696/");
    assert_eq!(any_region.as_str(), "http://127.0.0.1:9696/");
}

#[test]
fn catalog_without_matching_region_lists_endpoints() {
    let error = network_endpoint(&catalog(), Interface::Internal, Some("RegionTwo")).unwrap_err();

    assert_eq!(
        error.to_string(),
        "the keystone catalog has no internal network endpoint in region RegionTwo; it has: \
         public in region RegionOne, internal in region RegionOne, admin in region RegionOne"
    );
}

#[test]
fn catalog_without_network_service_says_so() {
    let identity_only: Vec<CatalogService> = catalog()
        .into_iter()
        .filter(|service| service.service_type != "network")
        .collect();

    let error = network_endpoint(&identity_only, Interface::Public, None).unwrap_err();

    assert_eq!(
        error.to_string(),
        "the keystone catalog has no public network endpoint; it has: no network service"
    );
}

#[test]
fn network_url_loses_version_and_slashes() {
    let cases = [
        ("http://127.0.0.1:9696", "http://127.0.0.1:9696/"),
        ("http://127.0.0.1:9696/", "http://127.0.0.1:9696/"),
        ("http://127.0.0.1:9696/v2.0", "http://127.0.0.1:9696/"),
        ("http://127.0.0.1:9696/v2.0/", "http://127.0.0.1:9696/"),
        (
            "https://cloud.test/networking/v2.0",
            "https://cloud.test/networking",
        ),
    ];
    for (given, expected) in cases {
        assert_eq!(
            normalize_network_url(given).unwrap().as_str(),
            expected,
            "from {given}"
        );
    }
}

fn token_with_times(issued_at: &str, expires_at: &str, received: Instant) -> Token {
    let body = TokenBody {
        expires_at: expires_at.to_owned(),
        issued_at: issued_at.to_owned(),
        project: None,
        catalog: Vec::new(),
    };
    let auth_url: Url = "http://127.0.0.1:5000/v3".parse().unwrap();
    token_from(HeaderValue::from_static("t"), body, &auth_url, received).unwrap()
}

#[test]
fn hour_token_is_renewed_five_minutes_early() {
    let received = Instant::now();

    let token = token_with_times(
        "2026-12-04T15:38:28.000000Z",
        "2026-12-04T16:38:28.000000Z",
        received,
    );

    assert_eq!(token.renew_at - received, Duration::from_secs(55 * 60));
}

#[test]
fn short_token_is_renewed_at_ninety_percent() {
    let received = Instant::now();

    let token = token_with_times("2026-12-04T15:38:28Z", "2026-12-04T15:48:28Z", received);

    assert_eq!(token.renew_at - received, Duration::from_secs(9 * 60));
}

#[test]
fn invalid_expiry_is_reported_with_its_value() {
    let body = TokenBody {
        expires_at: "tomorrow".to_owned(),
        issued_at: "2026-12-04T15:38:28Z".to_owned(),
        project: None,
        catalog: Vec::new(),
    };
    let auth_url: Url = "http://127.0.0.1:5000/v3".parse().unwrap();

    let error = token_from(
        HeaderValue::from_static("t"),
        body,
        &auth_url,
        Instant::now(),
    );

    assert_eq!(
        error.err().unwrap().to_string(),
        "keystone at http://127.0.0.1:5000/v3 returned a token with an invalid expires_at \"tomorrow\""
    );
}

#[test]
fn token_header_is_hidden_from_debug_output() {
    let mut header = HeaderValue::from_static("gAAAAA-secret-token");
    header.set_sensitive(true);

    assert!(!format!("{header:?}").contains("secret-token"));
}
