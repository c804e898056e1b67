//! One HTTP exchange with Keystone or Neutron, and the error that describes a failed one.

use std::time::Instant;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::keystone::KeystoneError;

/// Maximum length, in characters, of a non-JSON error body quoted in an error message.
const MAX_QUOTED_BODY: usize = 200;

/// A failed HTTP request to Keystone or Neutron.
///
/// The message names the method and the full URL, so it is enough to replay the request with
/// curl. Tokens and passwords never appear: they travel in headers and request bodies, which
/// are not part of any message. The details are boxed to keep `Result`s small.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RequestError(Box<RequestErrorKind>);

/// Cause of a failed request.
#[derive(Debug, thiserror::Error)]
pub enum RequestErrorKind {
    /// No TCP or TLS connection could be made. `hint` names the setting that contains the URL.
    #[error("cannot connect for {method} {url}; {hint}")]
    Connect {
        method: Method,
        url: Url,
        hint: &'static str,
        #[source]
        source: reqwest::Error,
    },

    /// The request failed after connecting, for example by timing out.
    #[error("{method} {url} failed")]
    Send {
        method: Method,
        url: Url,
        #[source]
        source: reqwest::Error,
    },

    /// The server replied with an error status. `message` is the server's own explanation:
    /// `NeutronError.message` from Neutron, `error.message` from Keystone.
    #[error("{method} {url} returned {status}: {message}")]
    Status {
        method: Method,
        url: Url,
        status: StatusCode,
        /// `NeutronError.type`, such as `MacAddressInUse`, when Neutron sent one.
        error_type: Option<String>,
        message: String,
    },

    /// The server replied with success, but the body is not the JSON this client expects.
    #[error("{method} {url} returned a body that does not match the expected JSON")]
    Decode {
        method: Method,
        url: Url,
        #[source]
        source: serde_json::Error,
    },

    /// Getting a token for the request failed.
    #[error(transparent)]
    Auth(KeystoneError),
}

impl RequestError {
    pub fn kind(&self) -> &RequestErrorKind {
        &self.0
    }

    /// Returns the HTTP status the server replied with, if it replied with an error status.
    pub fn status(&self) -> Option<StatusCode> {
        match self.kind() {
            RequestErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Returns Neutron's error type (`NeutronError.type`), such as `IpAddressAlreadyAllocated`.
    pub fn error_type(&self) -> Option<&str> {
        match self.kind() {
            RequestErrorKind::Status { error_type, .. } => error_type.as_deref(),
            _ => None,
        }
    }

    /// Tells whether the server replied 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Tells whether the same request may succeed later: no connection could be made, the
    /// request failed on the way, or the server replied 5xx or 429. The same holds for the
    /// Keystone request that a request needed first.
    pub fn is_transient(&self) -> bool {
        match self.kind() {
            RequestErrorKind::Connect { .. } | RequestErrorKind::Send { .. } => true,
            RequestErrorKind::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            RequestErrorKind::Auth(KeystoneError::Authenticate { source, .. }) => {
                source.is_transient()
            }
            _ => false,
        }
    }
}

impl From<RequestErrorKind> for RequestError {
    fn from(kind: RequestErrorKind) -> Self {
        Self(Box::new(kind))
    }
}

impl From<KeystoneError> for RequestError {
    fn from(error: KeystoneError) -> Self {
        RequestErrorKind::Auth(error).into()
    }
}

/// A complete HTTP response, of any status.
#[derive(Debug)]
pub(crate) struct Reply {
    pub method: Method,
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// Turns an error status into [`RequestError::Status`] and passes a success through.
    pub fn error_for_status(self) -> Result<Self, RequestError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let (error_type, message) = error_message(&self.body);
        Err(RequestErrorKind::Status {
            method: self.method,
            url: self.url,
            status: self.status,
            error_type,
            message,
        }
        .into())
    }

    /// Checks the status, then decodes the body as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, RequestError> {
        let reply = self.error_for_status()?;
        serde_json::from_slice(&reply.body).map_err(|source| {
            RequestErrorKind::Decode {
                method: reply.method,
                url: reply.url,
                source,
            }
            .into()
        })
    }
}

/// Sends `request` and reads the whole response, whatever its status.
///
/// `hint` completes the message of a connection failure by naming the setting that contains
/// the URL, such as `OS_AUTH_URL`. Only the method, URL, status and time are logged.
pub(crate) async fn send(
    http: &reqwest::Client,
    request: reqwest::Request,
    hint: &'static str,
) -> Result<Reply, RequestError> {
    let method = request.method().clone();
    let url = request.url().clone();
    let started = Instant::now();

    let response = match http.execute(request).await {
        Ok(response) => response,
        Err(source) => return Err(send_error(method, url, hint, source)),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(body) => body.to_vec(),
        Err(source) => {
            return Err(RequestErrorKind::Send {
                method,
                url,
                source,
            }
            .into())
        }
    };

    tracing::trace!(%method, %url, %status, elapsed = ?started.elapsed(), "http request");
    Ok(Reply {
        method,
        url,
        status,
        headers,
        body,
    })
}

fn send_error(
    method: Method,
    url: Url,
    hint: &'static str,
    source: reqwest::Error,
) -> RequestError {
    let kind = if source.is_connect() {
        RequestErrorKind::Connect {
            method,
            url,
            hint,
            source,
        }
    } else {
        RequestErrorKind::Send {
            method,
            url,
            source,
        }
    };
    kind.into()
}

/// Error bodies as Neutron and Keystone send them.
///
/// Neutron: `{"NeutronError": {"type", "message", "detail"}}`. Keystone, and keystonemiddleware
/// in front of Neutron when it rejects a token: `{"error": {"code", "title", "message"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "NeutronError")]
    neutron: Option<NeutronErrorBody>,
    error: Option<KeystoneErrorBody>,
}

#[derive(Deserialize)]
struct NeutronErrorBody {
    #[serde(rename = "type")]
    error_type: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct KeystoneErrorBody {
    message: Option<String>,
}

/// Extracts the error type and a human-readable message from an error response body.
fn error_message(body: &[u8]) -> (Option<String>, String) {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        if let Some(neutron) = parsed.neutron {
            if let Some(message) = neutron.message {
                return (neutron.error_type, message);
            }
        }
        if let Some(message) = parsed.error.and_then(|error| error.message) {
            return (None, message);
        }
    }
    (None, quote_body(body))
}

/// Quotes the start of a body that is not a known error document, such as an HTML page from
/// a proxy.
fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // One line per message, even for an HTML page.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "empty response body".to_owned();
    }
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Parses an http(s) URL and strips trailing slashes and the first matching suffix of
/// `versions` from its path. On failure returns the reason, for the caller's error.
pub(crate) fn service_root(text: &str, versions: &[&str]) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".to_owned());
    }
    let path = url.path().trim_end_matches('/');
    let root = versions
        .iter()
        .find_map(|version| path.strip_suffix(version))
        .unwrap_or(path);
    let root = root.to_owned();
    url.set_path(&root);
    Ok(url)
}

/// Returns `base` with `segments` appended to its path, each one percent-encoded.
pub(crate) fn join_path(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    // A base URL always has a path here: `Url`s built by this module are checked to be http(s).
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn neutron_error_body_gives_type_and_message() {
        let body = include_str!("../../tests/fixtures/openstack/error-409-mac-in-use.json");

        let (error_type, message) = error_message(body.as_bytes());

        assert_eq!(error_type.as_deref(), Some("MacAddressInUse"));
        assert_eq!(
            message,
            "Unable to complete operation for network 842f87a4-4d39-4d9e-8f27-ff1ca12bd5ce. \
             The mac address fa:16:3e:d8:1c:8f is in use."
        );
    }

    #[test]
    fn keystone_error_body_gives_message() {
        let body = include_str!("../../tests/fixtures/openstack/error-401-bad-token.json");

        let (error_type, message) = error_message(body.as_bytes());

        assert_eq!(error_type, None);
        assert_eq!(
            message,
            "The request you have made requires authentication."
        );
    }

    #[test]
    fn html_error_body_is_quoted_and_cut() {
        let body = format!("<html>{}</html>", "x".repeat(500));

        let (_, message) = error_message(body.as_bytes());

        assert!(message.starts_with("<html>xxx"), "{message}");
        assert_eq!(message.chars().count(), MAX_QUOTED_BODY + 1);
    }

    #[test]
    fn html_error_body_becomes_one_line() {
        let body = "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n</html>\n";

        let (_, message) = error_message(body.as_bytes());

        assert_eq!(
            message,
            "<html> <head> <title>404 Not Found</title> </head> </html>"
        );
    }

    #[test]
    fn empty_error_body_is_named() {
        let (_, message) = error_message(b"  \n");

        assert_eq!(message, "empty response body");
    }

    #[test]
    fn join_path_appends_to_root_and_to_prefix() {
        let root: Url = "http://127.0.0.1:9696".parse().unwrap();
        let prefixed: Url = "http://127.0.0.1/networking".parse().unwrap();

        assert_eq!(
            join_path(&root, &["v2.0", "ports"]).as_str(),
            "http://127.0.0.1:9696/v2.0/ports"
        );
        assert_eq!(
            join_path(&prefixed, &["v2.0", "ports"]).as_str(),
            "http://127.0.0.1/networking/v2.0/ports"
        );
    }

    #[test]
    fn join_path_encodes_segments() {
        let root: Url = "http://127.0.0.1:9696".parse().unwrap();

        let url = join_path(&root, &["v2.0", "ports", "a/b c"]);

        assert_eq!(url.as_str(), "http://127.0.0.1:9696/v2.0/ports/a%2Fb%20c");
    }
}
