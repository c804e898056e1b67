//! The shared Keystone session: one HTTP client and one token for every Neutron call.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use tokio::sync::Mutex;

use super::credentials::Credentials;
use super::http::{self, join_path, Reply, RequestError, RequestErrorKind};
use super::keystone::{self, KeystoneError, Token};

/// Completes the message of a failed connection to Neutron.
const NEUTRON_HINT: &str =
    "check the network endpoint in the Keystone catalog (openstack endpoint list --service network)";

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may take in all. Creating the first port of a project took about 1 s
/// on a loopback lab, so this leaves a wide margin for loaded servers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Failures while setting up a session, before any request.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("read CA certificates from {path}")]
    ReadCaCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parse CA certificates in {path}")]
    ParseCaCert {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },

    #[error("{path} contains no PEM certificate")]
    NoCaCert { path: PathBuf },

    #[error("build the HTTP client")]
    BuildClient {
        #[source]
        source: reqwest::Error,
    },
}

/// An authenticated connection to OpenStack, cheap to clone: clones share the HTTP connection
/// pool, the token and the request counters.
///
/// The first call that needs a token gets one. The token is reused until a tenth of its
/// lifetime (at most 5 minutes) is left, then renewed. When Neutron rejects a token with
/// 401 anyway, the session renews it once and repeats the request once. One caller at a time
/// renews while the others wait for its token, so concurrent calls never send a burst of
/// requests to Keystone.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    credentials: Credentials,
    token: Mutex<Option<Arc<Token>>>,
    keystone_requests: AtomicU64,
    neutron_requests: AtomicU64,
    /// Moves the session's clock forward in tests of token renewal.
    #[cfg(test)]
    clock_offset_ms: AtomicU64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("auth_url", &self.inner.credentials.auth_url.as_str())
            .field("keystone_requests", &self.keystone_requests())
            .field("neutron_requests", &self.neutron_requests())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds the HTTP client with the TLS settings of `credentials`. Sends nothing yet.
    pub fn new(credentials: Credentials) -> Result<Self, SessionError> {
        let http = http_client(&credentials)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                credentials,
                token: Mutex::new(None),
                keystone_requests: AtomicU64::new(0),
                neutron_requests: AtomicU64::new(0),
                #[cfg(test)]
                clock_offset_ms: AtomicU64::new(0),
            }),
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// Returns the Neutron endpoint from the catalog, without `/v2.0`. Gets a token first if
    /// the session has none.
    pub async fn network_endpoint(&self) -> Result<Url, KeystoneError> {
        let token = self.token().await?;
        self.endpoint_of(&token)
    }

    /// Returns the ID of the project the token is scoped to, if it is scoped to a project.
    pub async fn project_id(&self) -> Result<Option<String>, KeystoneError> {
        Ok(self.token().await?.project_id.clone())
    }

    /// Number of token requests sent to Keystone so far, by this session and its clones.
    pub fn keystone_requests(&self) -> u64 {
        self.inner.keystone_requests.load(Ordering::Relaxed)
    }

    /// Number of requests sent to Neutron so far, retries included.
    pub fn neutron_requests(&self) -> u64 {
        self.inner.neutron_requests.load(Ordering::Relaxed)
    }

    /// Sends one request to Neutron and returns the reply, whatever its status.
    ///
    /// `path` is appended to the endpoint, for example `["v2.0", "ports", id]`. A 401 reply
    /// makes the session renew the token and send the request once more.
    pub(crate) async fn network_request<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Reply, RequestError> {
        let token = self.token().await?;
        let reply = self.send_with(&token, &method, path, query, body).await?;
        if reply.status != StatusCode::UNAUTHORIZED {
            return Ok(reply);
        }

        // Keystone can revoke a token before it expires, for example when the user's roles
        // change, so one rejection earns one renewal and one retry.
        tracing::debug!(url = %reply.url, "neutron rejected the token; renewing it");
        self.discard(&token).await;
        let token = self.token().await?;
        self.send_with(&token, &method, path, query, body).await
    }

    async fn send_with<B: Serialize + ?Sized>(
        &self,
        token: &Token,
        method: &Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Reply, RequestError> {
        let mut url = join_path(&self.endpoint_of(token)?, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }

        let mut builder = self.inner.http.request(method.clone(), url.clone());
        builder = builder.header("X-Auth-Token", token.header.clone());
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let request = builder.build().map_err(|source| RequestErrorKind::Send {
            method: method.clone(),
            url,
            source,
        })?;

        self.inner.neutron_requests.fetch_add(1, Ordering::Relaxed);
        http::send(&self.inner.http, request, NEUTRON_HINT).await
    }

    fn endpoint_of(&self, token: &Token) -> Result<Url, KeystoneError> {
        let credentials = &self.inner.credentials;
        let region = credentials.region_name.as_deref();
        keystone::network_endpoint(&token.catalog, credentials.interface, region)
    }

    /// Returns the current token, first getting a new one if there is none or it is due for
    /// renewal. Holding the lock while Keystone responds makes concurrent callers wait for
    /// this renewal instead of starting their own.
    async fn token(&self) -> Result<Arc<Token>, KeystoneError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(token) = slot.as_ref().filter(|token| self.now() < token.renew_at) {
            return Ok(Arc::clone(token));
        }

        self.inner.keystone_requests.fetch_add(1, Ordering::Relaxed);
        let credentials = &self.inner.credentials;
        let token = keystone::issue_token(&self.inner.http, credentials, self.now()).await?;
        tracing::debug!(
            auth_url = %credentials.auth_url,
            identity = %credentials.identity(),
            expires_at = %token.expires_at,
            "keystone token issued"
        );

        let token = Arc::new(token);
        *slot = Some(Arc::clone(&token));
        Ok(token)
    }

    /// Forgets `stale` unless another caller has already replaced it.
    async fn discard(&self, stale: &Arc<Token>) {
        let mut slot = self.inner.token.lock().await;
        if slot
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, stale))
        {
            *slot = None;
        }
    }

    fn now(&self) -> Instant {
        #[cfg(test)]
        {
            let offset = self.inner.clock_offset_ms.load(Ordering::Relaxed);
            Instant::now() + Duration::from_millis(offset)
        }
        #[cfg(not(test))]
        Instant::now()
    }

    #[cfg(test)]
    pub(crate) fn advance_clock(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .clock_offset_ms
            .fetch_add(millis, Ordering::Relaxed);
    }
}

/// Builds the client: fixed timeouts, plus `cacert` or `insecure` from the credentials.
fn http_client(credentials: &Credentials) -> Result<reqwest::Client, SessionError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("clampify/", env!("CARGO_PKG_VERSION")));

    if let Some(path) = &credentials.cacert {
        // Like OS_CACERT for openstackclient, the bundle replaces the system's roots.
        builder = builder.tls_certs_only(read_ca_bundle(path)?);
    }
    if credentials.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|source| SessionError::BuildClient { source })
}

fn read_ca_bundle(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, SessionError> {
    let pem = std::fs::read(path).map_err(|source| SessionError::ReadCaCert {
        path: path.clone(),
        source,
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
        SessionError::ParseCaCert {
            path: path.clone(),
            source,
        }
    })?;
    if certificates.is_empty() {
        return Err(SessionError::NoCaCert { path: path.clone() });
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests;
