//! Failures talking to dockerd. The bollard error, when there is one, is the `source`.

/// Text of dockerd's error for an ID prefix that matches several containers. dockerd 20.10
/// returns it with status 500, so the message is the only reliable sign.
const AMBIGUOUS_PREFIX_MESSAGE: &str = "multiple ids found with provided prefix";

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("Docker endpoint {endpoint} is not supported: use a unix:// socket such as unix:///var/run/docker.sock")]
    UnsupportedEndpoint { endpoint: String },

    #[error(
        "connect to dockerd at {endpoint}: is dockerd running, and can this user open the socket?"
    )]
    Connect {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("container {container} not found: check the name or ID with `docker ps -a`")]
    NotFound { container: String },

    #[error("container ID prefix {prefix} matches more than one container: give more characters of the ID, or the name")]
    AmbiguousPrefix { prefix: String },

    #[error("inspect container {container}")]
    Inspect {
        container: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// dockerd returned an inspect response without a field that every container has.
    #[error("inspect container {container}: the response has no {field}")]
    IncompleteInspect {
        container: String,
        field: &'static str,
    },

    #[error("read the system information of dockerd at {endpoint}")]
    Info {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// dockerd returned system information without a field that every dockerd sends.
    #[error("read the system information of dockerd at {endpoint}: the response has no {field}")]
    IncompleteInfo {
        endpoint: String,
        field: &'static str,
    },

    #[error("list containers")]
    ListContainers {
        #[source]
        source: bollard::errors::Error,
    },

    #[error("read the Docker event stream")]
    Events {
        #[source]
        source: bollard::errors::Error,
    },

    /// The container stopped or restarted between an inspect and a later check, so a netns
    /// opened in between may belong to a process that is no longer the container's.
    #[error("container {container} stopped or restarted while its network namespace was opened (it had pid {pid:?}, started at {started_at:?}): retry")]
    ContainerChanged {
        container: String,
        pid: Option<u32>,
        started_at: Option<String>,
    },
}

impl DockerError {
    /// Returns whether the container does not exist, which callers such as reconcile treat
    /// as "already removed" rather than as a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Maps an error from `inspect_container` to the variant that names the cause.
    pub(crate) fn from_inspect(container: &str, source: bollard::errors::Error) -> Self {
        if let bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } = &source
        {
            if *status_code == 404 {
                return Self::NotFound {
                    container: container.to_owned(),
                };
            }
            if message
                .to_ascii_lowercase()
                .contains(AMBIGUOUS_PREFIX_MESSAGE)
            {
                return Self::AmbiguousPrefix {
                    prefix: container.to_owned(),
                };
            }
        }
        Self::Inspect {
            container: container.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server_error(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn inspect_404_is_not_found() {
        let err = DockerError::from_inspect("web", server_error(404, "No such container: web"));

        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "container web not found: check the name or ID with `docker ps -a`"
        );
    }

    #[test]
    fn inspect_ambiguous_prefix_is_named() {
        let message = "Multiple IDs found with provided prefix: 3";
        for status in [400, 500] {
            let err = DockerError::from_inspect("3", server_error(status, message));

            assert!(
                matches!(&err, DockerError::AmbiguousPrefix { prefix } if prefix == "3"),
                "status {status}: {err:?}"
            );
            assert!(!err.is_not_found());
        }
    }

    #[test]
    fn inspect_other_failure_keeps_source() {
        let err = DockerError::from_inspect("web", server_error(500, "driver failed"));

        assert!(matches!(err, DockerError::Inspect { .. }));
        assert_eq!(err.to_string(), "inspect container web");
        assert!(std::error::Error::source(&err).is_some());
    }
}
