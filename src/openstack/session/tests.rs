#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::openstack::testing::{self, token_reply};

const BAD_TOKEN: &str = include_str!("../../../tests/fixtures/openstack/error-401-bad-token.json");
const WRONG_PASSWORD: &str =
    include_str!("../../../tests/fixtures/openstack/error-401-keystone-wrong-password.json");

/// Mocks Neutron's `GET /v2.0/networks`, accepting only `token`.
fn networks_with(token: &str) -> Mock {
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .and(header("X-Auth-Token", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "networks": [] })))
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_raw(BAD_TOKEN, "application/json")
}

async fn list_networks(session: &Session) -> Result<Reply, RequestError> {
    let reply = session.network_request::<()>(Method::GET, &["v2.0", "networks"], &[], None);
    reply.await?.error_for_status()
}

#[tokio::test]
async fn token_is_reused_across_calls() {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok-1")
        .expect(1)
        .mount(&server)
        .await;
    networks_with("tok-1").expect(5).mount(&server).await;
    let session = testing::session(&server);

    for _ in 0..5 {
        list_networks(&session).await.unwrap();
    }

    assert_eq!(session.keystone_requests(), 1);
    assert_eq!(session.neutron_requests(), 5);
}

#[tokio::test]
async fn clones_share_token_and_counters() {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok-1")
        .expect(1)
        .mount(&server)
        .await;
    networks_with("tok-1").expect(2).mount(&server).await;
    let session = testing::session(&server);
    let clone = session.clone();

    list_networks(&session).await.unwrap();
    list_networks(&clone).await.unwrap();

    assert_eq!(session.keystone_requests(), 1);
    assert_eq!(session.neutron_requests(), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let server = MockServer::start().await;
    let slow_token = token_reply(&server, "tok-1").set_delay(Duration::from_millis(200));
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(slow_token)
        .expect(1)
        .mount(&server)
        .await;
    networks_with("tok-1").expect(10).mount(&server).await;
    let session = testing::session(&server);

    let calls = (0..10).map(|_| {
        let session = session.clone();
        tokio::spawn(async move { list_networks(&session).await.map(|_| ()) })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }

    assert_eq!(session.keystone_requests(), 1);
}

#[tokio::test]
async fn token_is_renewed_before_expiry() {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok-1")
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    testing::keystone(&server, "tok-2")
        .expect(1)
        .mount(&server)
        .await;
    networks_with("tok-1").expect(2).mount(&server).await;
    networks_with("tok-2").expect(1).mount(&server).await;
    let session = testing::session(&server);

    // The lab token lives one hour, so it is renewed 5 minutes before it expires.
    list_networks(&session).await.unwrap();
    session.advance_clock(Duration::from_secs(54 * 60));
    list_networks(&session).await.unwrap();
    session.advance_clock(Duration::from_secs(61));
    list_networks(&session).await.unwrap();

    assert_eq!(session.keystone_requests(), 2);
}

#[tokio::test]
async fn rejected_token_is_renewed_once_and_request_retried() {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok-1")
        .up_to_n_times(1)
        .mount(&server)
        .await;
    testing::keystone(&server, "tok-2").mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .and(header("X-Auth-Token", "tok-1"))
        .respond_with(unauthorized())
        .expect(1)
        .mount(&server)
        .await;
    networks_with("tok-2").expect(1).mount(&server).await;
    let session = testing::session(&server);

    list_networks(&session).await.unwrap();

    assert_eq!(session.keystone_requests(), 2);
    assert_eq!(session.neutron_requests(), 2);
}

#[tokio::test]
async fn second_rejection_is_returned() {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok")
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(unauthorized())
        .expect(2)
        .mount(&server)
        .await;
    let session = testing::session(&server);

    let error = list_networks(&session).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "GET {}/v2.0/networks returned 401 Unauthorized: \
             The request you have made requires authentication.",
            server.uri()
        )
    );
    assert_eq!(session.keystone_requests(), 2);
    assert_eq!(session.neutron_requests(), 2);
}

#[tokio::test]
async fn wrong_password_shows_keystone_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .and(body_partial_json(
            json!({ "auth": { "identity": { "methods": ["password"] } } }),
        ))
        .respond_with(ResponseTemplate::new(401).set_body_raw(WRONG_PASSWORD, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let session = testing::session(&server);

    let error = session.network_endpoint().await.unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "authenticate user admin in domain Default at {}/v3",
            server.uri()
        )
    );
    assert_eq!(
        std::error::Error::source(&error).unwrap().to_string(),
        format!(
            "POST {}/v3/auth/tokens returned 401 Unauthorized: \
             The request you have made requires authentication.",
            server.uri()
        )
    );
}

#[tokio::test]
async fn failed_neutron_auth_keeps_keystone_cause() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(WRONG_PASSWORD, "application/json"))
        .mount(&server)
        .await;
    let session = testing::session(&server);

    let error = list_networks(&session).await.unwrap_err();

    assert!(
        matches!(error.kind(), RequestErrorKind::Auth(_)),
        "{error:?}"
    );
    assert_eq!(session.neutron_requests(), 0);
}

#[tokio::test]
async fn unreachable_keystone_names_url_and_setting() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = MockServer::start().await;
    let mut credentials = testing::credentials(&server);
    credentials.auth_url = format!("http://127.0.0.1:{closed_port}/v3")
        .parse()
        .unwrap();
    let session = Session::new(credentials).unwrap();

    let error = session.network_endpoint().await.unwrap_err();

    assert_eq!(
        std::error::Error::source(&error).unwrap().to_string(),
        format!(
            "cannot connect for POST http://127.0.0.1:{closed_port}/v3/auth/tokens; \
             check OS_AUTH_URL (auth_url in clouds.yaml) and that Keystone runs"
        )
    );
}

#[tokio::test]
async fn token_without_subject_header_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(testing::token_body(&server.uri())))
        .mount(&server)
        .await;
    let session = testing::session(&server);

    let error = session.network_endpoint().await.unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "keystone at {}/v3 issued a token without a valid X-Subject-Token header",
            server.uri()
        )
    );
}

#[tokio::test]
async fn network_endpoint_and_project_come_from_token() {
    let server = MockServer::start().await;
    let versioned = format!("{}/v2.0/", server.uri());
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("X-Subject-Token", "tok")
                .set_body_json(testing::token_body(&versioned)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let session = testing::session(&server);

    let endpoint = session.network_endpoint().await.unwrap();
    let project = session.project_id().await.unwrap();

    assert_eq!(endpoint.as_str(), format!("{}/", server.uri()));
    assert_eq!(project.as_deref(), Some("f999dfc5e17a40adbc118b0561a08f09"));
}

#[tokio::test]
async fn session_debug_hides_token() {
    let server = MockServer::start().await;
    testing::keystone(&server, "tok-secret-value")
        .mount(&server)
        .await;
    let session = testing::session(&server);
    session.network_endpoint().await.unwrap();

    let shown = format!("{session:?}");

    assert!(!shown.contains("tok-secret-value"), "{shown}");
    assert!(!shown.contains("admin-password"), "{shown}");
}

#[test]
fn missing_ca_bundle_is_named() {
    let server_uri = "http://127.0.0.1:5000/v3";
    let credentials = Credentials {
        cacert: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..testing_credentials(server_uri)
    };

    let error = Session::new(credentials).unwrap_err();

    assert_eq!(
        error.to_string(),
        "read CA certificates from /nonexistent/ca.pem"
    );
}

#[test]
fn ca_bundle_without_certificates_is_rejected() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "not a certificate\n").unwrap();
    let credentials = Credentials {
        cacert: Some(file.path().to_owned()),
        ..testing_credentials("http://127.0.0.1:5000/v3")
    };

    let error = Session::new(credentials).unwrap_err();

    assert_eq!(
        error.to_string(),
        format!("{} contains no PEM certificate", file.path().display())
    );
}

fn testing_credentials(auth_url: &str) -> Credentials {
    use crate::openstack::{AuthMethod, Secret};
    Credentials {
        auth_url: auth_url.parse().unwrap(),
        auth: AuthMethod::Token {
            token: Secret::new("t"),
        },
        scope: None,
        region_name: None,
        interface: crate::openstack::Interface::Public,
        cacert: None,
        insecure: false,
        sources: Vec::new(),
    }
}
