//! Keystone v3: the token request, the token it returns, and the network endpoint in its catalog.

use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::credentials::{
    AuthMethod, Credentials, DomainRef, Interface, ProjectRef, Scope, UserRef,
};
use super::http::{self, join_path, RequestError, RequestErrorKind};

/// Completes the message of a failed connection to Keystone.
const KEYSTONE_HINT: &str = "check OS_AUTH_URL (auth_url in clouds.yaml) and that Keystone runs";

/// The longest a token is renewed before it expires. Shorter-lived tokens are renewed when a
/// tenth of their lifetime is left.
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Failures getting a token or reading the catalog.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    #[error("authenticate {identity} at {auth_url}")]
    Authenticate {
        identity: String,
        auth_url: String,
        #[source]
        source: RequestError,
    },

    #[error("keystone at {auth_url} issued a token without a valid X-Subject-Token header")]
    MissingTokenHeader { auth_url: String },

    #[error("keystone at {auth_url} returned a token with an invalid {field} {value:?}")]
    InvalidTokenTime {
        auth_url: String,
        field: &'static str,
        value: String,
        #[source]
        source: time::error::Parse,
    },

    #[error("the keystone catalog has no {interface} network endpoint{}; it has: {available}", in_region(region.as_deref()))]
    NoNetworkEndpoint {
        interface: Interface,
        region: Option<String>,
        available: String,
    },

    #[error("invalid network endpoint URL {url:?} in the keystone catalog: {reason}")]
    InvalidEndpoint { url: String, reason: String },
}

fn in_region(region: Option<&str>) -> String {
    region
        .map(|region| format!(" in region {region}"))
        .unwrap_or_default()
}

/// A token with the details Keystone returned with it.
pub(crate) struct Token {
    /// The `X-Auth-Token` header value, marked sensitive so that `Debug` output hides it.
    pub header: HeaderValue,
    /// When to get a new token: a margin before `expires_at`, on this host's monotonic clock.
    pub renew_at: Instant,
    pub expires_at: String,
    pub project_id: Option<String>,
    pub catalog: Vec<CatalogService>,
}

/// One service of the catalog that comes with a token.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogService {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogEndpoint {
    pub interface: String,
    pub region_id: Option<String>,
    pub region: Option<String>,
    pub url: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    issued_at: String,
    project: Option<ProjectBody>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct ProjectBody {
    id: String,
}

/// Asks Keystone for a token: `POST {auth_url}/auth/tokens`.
///
/// `received` is the caller's clock at the time of the call; the renewal time is counted from it.
pub(crate) async fn issue_token(
    http: &reqwest::Client,
    credentials: &Credentials,
    received: Instant,
) -> Result<Token, KeystoneError> {
    let auth_url = &credentials.auth_url;
    let authenticate = |source| KeystoneError::Authenticate {
        identity: credentials.identity(),
        auth_url: auth_url.to_string(),
        source,
    };

    let url = join_path(auth_url, &["auth", "tokens"]);
    let request = http
        .post(url.clone())
        .json(&auth_request(credentials))
        .build();
    let request = request.map_err(|source| authenticate(send_failure(url, source)))?;
    let reply = http::send(http, request, KEYSTONE_HINT)
        .await
        .map_err(authenticate)?;
    let reply = reply.error_for_status().map_err(authenticate)?;

    let mut header = reply
        .headers
        .get("X-Subject-Token")
        .cloned()
        .ok_or_else(|| KeystoneError::MissingTokenHeader {
            auth_url: auth_url.to_string(),
        })?;
    header.set_sensitive(true);
    let body: TokenResponse = reply.json().map_err(authenticate)?;
    token_from(header, body.token, auth_url, received)
}

fn send_failure(url: Url, source: reqwest::Error) -> RequestError {
    let method = reqwest::Method::POST;
    RequestErrorKind::Send {
        method,
        url,
        source,
    }
    .into()
}

fn token_from(
    header: HeaderValue,
    body: TokenBody,
    auth_url: &Url,
    received: Instant,
) -> Result<Token, KeystoneError> {
    let issued_at = parse_time(&body.issued_at, "issued_at", auth_url)?;
    let expires_at = parse_time(&body.expires_at, "expires_at", auth_url)?;
    // Both times come from Keystone's clock, so the lifetime is right even when this host's
    // clock is off.
    let lifetime = Duration::try_from(expires_at - issued_at).unwrap_or(Duration::ZERO);
    let margin = (lifetime / 10).min(MAX_RENEW_MARGIN);

    Ok(Token {
        header,
        renew_at: received + (lifetime - margin),
        expires_at: body.expires_at,
        project_id: body.project.map(|project| project.id),
        catalog: body.catalog,
    })
}

fn parse_time(
    value: &str,
    field: &'static str,
    auth_url: &Url,
) -> Result<OffsetDateTime, KeystoneError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|source| KeystoneError::InvalidTokenTime {
        auth_url: auth_url.to_string(),
        field,
        value: value.to_owned(),
        source,
    })
}

/// Builds the JSON body of a token request. It contains the secret: never log it.
pub(crate) fn auth_request(credentials: &Credentials) -> Value {
    let identity = match &credentials.auth {
        AuthMethod::Password { user, password } => {
            let mut user = user_json(user);
            user["password"] = json!(password.expose());
            json!({ "methods": ["password"], "password": { "user": user } })
        }
        AuthMethod::ApplicationCredentialId { id, secret } => json!({
            "methods": ["application_credential"],
            "application_credential": { "id": id, "secret": secret.expose() },
        }),
        AuthMethod::ApplicationCredentialName { name, user, secret } => json!({
            "methods": ["application_credential"],
            "application_credential": {
                "name": name, "user": user_json(user), "secret": secret.expose(),
            },
        }),
        AuthMethod::Token { token } => json!({
            "methods": ["token"],
            "token": { "id": token.expose() },
        }),
    };

    let mut auth = json!({ "identity": identity });
    if let Some(scope) = &credentials.scope {
        auth["scope"] = scope_json(scope);
    }
    json!({ "auth": auth })
}

fn user_json(user: &UserRef) -> Value {
    match user {
        UserRef::Id(id) => json!({ "id": id }),
        UserRef::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    }
}

fn scope_json(scope: &Scope) -> Value {
    match scope {
        Scope::Project(ProjectRef::Id(id)) => json!({ "project": { "id": id } }),
        Scope::Project(ProjectRef::Name { name, domain }) => {
            json!({ "project": { "name": name, "domain": domain_json(domain) } })
        }
        Scope::Domain(domain) => json!({ "domain": domain_json(domain) }),
    }
}

fn domain_json(domain: &DomainRef) -> Value {
    match domain {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

/// Finds the Neutron endpoint: service type `network`, the given interface, and the region
/// when one is given (else the first match). Returns the URL without `/v2.0`.
pub(crate) fn network_endpoint(
    catalog: &[CatalogService],
    interface: Interface,
    region: Option<&str>,
) -> Result<Url, KeystoneError> {
    let endpoints = catalog
        .iter()
        .filter(|service| service.service_type == "network")
        .flat_map(|service| &service.endpoints);
    let mut matching = endpoints.clone().filter(|endpoint| {
        let in_region = region.is_none_or(|region| {
            endpoint.region_id.as_deref() == Some(region)
                || endpoint.region.as_deref() == Some(region)
        });
        endpoint.interface == interface.as_str() && in_region
    });

    match matching.next() {
        Some(endpoint) => normalize_network_url(&endpoint.url),
        None => Err(KeystoneError::NoNetworkEndpoint {
            interface,
            region: region.map(str::to_owned),
            available: describe_endpoints(endpoints),
        }),
    }
}

fn describe_endpoints<'a>(endpoints: impl Iterator<Item = &'a CatalogEndpoint>) -> String {
    let described: Vec<String> = endpoints
        .map(|endpoint| {
            let region = endpoint.region_id.as_deref().or(endpoint.region.as_deref());
            format!(
                "{} in region {}",
                endpoint.interface,
                region.unwrap_or("(none)")
            )
        })
        .collect();
    if described.is_empty() {
        return "no network service".to_owned();
    }
    described.join(", ")
}

/// Strips a trailing `/v2.0` and slashes: catalogs list Neutron both with and without the
/// version, and requests add `/v2.0` themselves.
pub(crate) fn normalize_network_url(text: &str) -> Result<Url, KeystoneError> {
    http::service_root(text, &["/v2.0"]).map_err(|reason| KeystoneError::InvalidEndpoint {
        url: text.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests;
