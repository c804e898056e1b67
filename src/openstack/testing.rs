//! Fakes shared by the unit tests: credentials and a Keystone on a wiremock server.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::credentials::{AuthMethod, Credentials, DomainRef, Interface, ProjectRef, Scope};
use super::{Secret, Session, UserRef};

/// A real token response from the lab (Keystone 30), issued at 15:38:28 for one hour.
pub const TOKEN_RESPONSE: &str = include_str!("../../tests/fixtures/openstack/token-response.json");

/// The catalog URL of Neutron in [`TOKEN_RESPONSE`], replaced by the mock server's.
const LAB_NEUTRON_URL: &str = "http://127.0.0.1:9696";

/// Returns password credentials for user `admin` in project `admin`, against the mock server.
pub fn credentials(server: &MockServer) -> Credentials {
    let mut credentials = credentials_for_uri(&server.uri());
    credentials.scope = Some(Scope::Project(ProjectRef::Name {
        name: "admin".to_owned(),
        domain: DomainRef::Name("Default".to_owned()),
    }));
    credentials.region_name = Some("RegionOne".to_owned());
    credentials
}

pub fn session(server: &MockServer) -> Session {
    Session::new(credentials(server)).unwrap()
}

/// Returns the lab's token response with Neutron moved to `neutron_url`.
pub fn token_body(neutron_url: &str) -> Value {
    serde_json::from_str(&TOKEN_RESPONSE.replace(LAB_NEUTRON_URL, neutron_url)).unwrap()
}

/// Builds a Keystone reply that issues `token`, with the mock server as Neutron.
pub fn token_reply(server: &MockServer, token: &str) -> ResponseTemplate {
    ResponseTemplate::new(201)
        .insert_header("X-Subject-Token", token)
        .set_body_json(token_body(&server.uri()))
}

/// Mocks `POST /v3/auth/tokens`, issuing `token`.
pub fn keystone(server: &MockServer, token: &str) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_reply(server, token))
}

/// Returns a session whose Keystone is `uri`, for tests that send no request.
pub fn session_for_uri(uri: &str) -> Session {
    Session::new(credentials_for_uri(uri)).unwrap()
}

fn credentials_for_uri(uri: &str) -> Credentials {
    Credentials {
        auth_url: format!("{uri}/v3").parse().unwrap(),
        auth: AuthMethod::Password {
            user: UserRef::Name {
                name: "admin".to_owned(),
                domain: DomainRef::Name("Default".to_owned()),
            },
            password: Secret::new("admin-password"),
        },
        scope: None,
        region_name: None,
        interface: Interface::Public,
        cacert: None,
        insecure: false,
        sources: Vec::new(),
    }
}
