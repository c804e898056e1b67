//! OpenStack credentials from clouds.yaml, `OS_*` variables and openrc files.
//!
//! # Precedence
//!
//! [`Credentials::load`] merges up to four layers. A setting from a higher layer replaces the
//! same setting from a lower one, and an empty value counts as unset:
//!
//! 1. (highest) `--openrc FILE`: the file's `OS_*` assignments, as if it had been sourced
//!    into the environment.
//! 2. The `OS_*` environment variables.
//! 3. `~/openrc`, read only when nothing else names credentials: no `--openrc`, no
//!    `--os-cloud`, and neither `OS_CLOUD` nor `OS_AUTH_URL` in the environment.
//! 4. (lowest) The cloud named by `--os-cloud`, or else by `OS_CLOUD` from the layers above,
//!    read from the first `clouds.yaml` found with `secure.yaml` merged over it.
//!
//! Layer 4 under layer 2 is what python-openstackclient does: its global options default to
//! the `OS_*` variables, and openstacksdk's config loader (`OpenStackConfig.get_one`) merges
//! those options over the cloud's settings. So `OS_USERNAME=other` with `OS_CLOUD=lab`
//! authenticates as `other` with the rest of the `lab` cloud. One exception, also from
//! openstacksdk: `OS_REGION_NAME` must name one of the cloud's regions when it lists any.
//!
//! `clouds.yaml` is searched as openstacksdk does: `OS_CLIENT_CONFIG_FILE`, then `clouds.yaml`
//! (or `.yml`, `.json`) in the current directory, `$XDG_CONFIG_HOME/openstack` (by default
//! `~/.config/openstack`) and `/etc/openstack`. `secure.yaml` is searched in the same
//! places, with `OS_CLIENT_SECURE_FILE` first.

mod resolve;
mod sources;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use reqwest::Url;

use sources::{Locations, Settings};

/// The command-line options that select credentials.
#[derive(Debug, Clone, Default)]
pub struct CredentialOptions {
    /// `--os-cloud`: a cloud name from clouds.yaml. Overrides `OS_CLOUD`.
    pub os_cloud: Option<String>,
    /// `--openrc`: a shell file of `OS_*` assignments, parsed without running a shell.
    pub openrc: Option<PathBuf>,
    /// `--insecure`: skip TLS certificate verification.
    pub insecure: bool,
}

/// Everything needed to get a Keystone v3 token and find the Neutron endpoint.
///
/// Secrets are held in [`Secret`], so the `Debug` output never contains them.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The Keystone v3 root, always ending in `/v3`.
    pub auth_url: Url,
    pub auth: AuthMethod,
    /// `None` requests a token for the user's default project. Application credentials are
    /// always `None`, because Keystone rejects a scope with them.
    pub scope: Option<Scope>,
    /// `None` takes the first network endpoint with the right interface, in any region.
    pub region_name: Option<String>,
    pub interface: Interface,
    /// A PEM bundle that replaces the system's trusted roots, like `OS_CACERT` does for
    /// openstackclient.
    pub cacert: Option<PathBuf>,
    /// Skip TLS certificate verification (`--insecure`, `OS_INSECURE`, `verify: false`).
    pub insecure: bool,
    /// The layers the settings came from, lowest precedence first.
    pub sources: Vec<CredentialSource>,
}

/// How to prove who we are to Keystone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `auth_type: password` (the default).
    Password { user: UserRef, password: Secret },
    /// `auth_type: v3applicationcredential` with `application_credential_id`.
    ApplicationCredentialId { id: String, secret: Secret },
    /// `auth_type: v3applicationcredential` with `application_credential_name` and its owner.
    ApplicationCredentialName {
        name: String,
        user: UserRef,
        secret: Secret,
    },
    /// `auth_type: token`: an existing token, exchanged for a scoped one.
    Token { token: Secret },
}

/// A Keystone user, by ID or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A Keystone project, by ID or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A Keystone domain, by ID or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// Token scope: a project or a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Project(ProjectRef),
    Domain(DomainRef),
}

/// Catalog endpoint interface (`OS_INTERFACE`, `interface`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    /// Returns the name Keystone's catalog uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A password, application credential secret or token.
///
/// It has no `Display`, and its `Debug` prints `<redacted>`, so it cannot end up in a log
/// line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One layer that contributed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A file passed with `--openrc`.
    Openrc(PathBuf),
    /// `OS_*` variables from the environment.
    Environment,
    /// `~/openrc`, read because nothing else named credentials.
    DefaultOpenrc(PathBuf),
    /// A cloud from clouds.yaml (`file`), with secure.yaml (`secure_file`) merged over it.
    Cloud {
        name: String,
        file: PathBuf,
        secure_file: Option<PathBuf>,
    },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Openrc(path) => write!(f, "--openrc {}", path.display()),
            Self::Environment => f.write_str("OS_* environment variables"),
            Self::DefaultOpenrc(path) => write!(f, "{}", path.display()),
            Self::Cloud {
                name,
                file,
                secure_file: None,
            } => write!(f, "cloud {name} in {}", file.display()),
            Self::Cloud {
                name,
                file,
                secure_file: Some(secure),
            } => write!(
                f,
                "cloud {name} in {} and {}",
                file.display(),
                secure.display()
            ),
        }
    }
}

/// Failures while finding and reading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no OpenStack credentials: pass --os-cloud or --openrc, set OS_CLOUD or OS_AUTH_URL, or create {default_openrc}")]
    NoCredentials { default_openrc: String },

    #[error("read openrc file {path}")]
    ReadOpenrc {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parse openrc file {path}, line {line}: {reason}")]
    ParseOpenrc {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },

    #[error(
        "cloud {cloud} is requested but no clouds.yaml exists; searched {}",
        display_paths(searched)
    )]
    NoCloudsFile {
        cloud: String,
        searched: Vec<PathBuf>,
    },

    #[error("read {path}")]
    ReadCloudsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parse {path}")]
    ParseCloudsFile {
        path: PathBuf,
        /// Boxed because the parser's error is several hundred bytes.
        #[source]
        source: Box<serde_saphyr::Error>,
    },

    #[error("cloud {cloud} not found in {path}; it defines: {}", available.join(", "))]
    CloudNotFound {
        cloud: String,
        path: PathBuf,
        available: Vec<String>,
    },

    #[error("region {region} is not one of the regions of cloud {cloud}: {}", available.join(", "))]
    RegionNotFound {
        cloud: String,
        region: String,
        available: Vec<String>,
    },

    #[error("missing {setting}: set {variable} or `{setting}` in clouds.yaml (settings read from: {sources})")]
    MissingSetting {
        setting: &'static str,
        variable: &'static str,
        sources: String,
    },

    #[error("invalid auth_url {url:?}: {reason}")]
    InvalidAuthUrl { url: String, reason: String },

    #[error("unsupported auth_type {auth_type:?}: use password, v3applicationcredential or token")]
    UnsupportedAuthType { auth_type: String },

    #[error("invalid interface {interface:?}: use public, internal or admin")]
    InvalidInterface { interface: String },
}

fn display_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

impl Credentials {
    /// Loads credentials with the precedence described in the [module documentation](self).
    ///
    /// `env` stands for the process environment: pass `std::env::vars().collect()`. `HOME` and
    /// `XDG_CONFIG_HOME` are read from it too. Reads files but makes no network request.
    pub fn load(
        options: &CredentialOptions,
        env: &HashMap<String, String>,
    ) -> Result<Self, CredentialsError> {
        Self::load_from(options, env, &Locations::standard(env))
    }

    fn load_from(
        options: &CredentialOptions,
        env: &HashMap<String, String>,
        locations: &Locations,
    ) -> Result<Self, CredentialsError> {
        let mut sources = Vec::new();
        let variables = merged_variables(options, env, locations, &mut sources)?;

        let cloud_name = options
            .os_cloud
            .as_deref()
            .or_else(|| non_empty(&variables, "OS_CLOUD"));
        let mut settings = match cloud_name {
            Some(name) => {
                let region = non_empty(&variables, "OS_REGION_NAME");
                let (settings, source) = sources::load_cloud(name, region, &variables, locations)?;
                sources.insert(0, source);
                settings
            }
            None => Settings::default(),
        };

        settings.overlay(Settings::from_variables(&variables));
        if options.insecure {
            settings.set("insecure", "true");
        }
        resolve::credentials(&settings, sources)
    }

    /// Describes who authenticates, for messages: never contains a secret.
    pub fn identity(&self) -> String {
        match &self.auth {
            AuthMethod::Password { user, .. } => format!("user {user}"),
            AuthMethod::ApplicationCredentialId { id, .. } => {
                format!("application credential {id}")
            }
            AuthMethod::ApplicationCredentialName { name, user, .. } => {
                format!("application credential {name} of user {user}")
            }
            AuthMethod::Token { .. } => "token".to_owned(),
        }
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "with ID {id}"),
            Self::Name { name, domain } => write!(f, "{name} in domain {domain}"),
        }
    }
}

impl fmt::Display for DomainRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "with ID {id}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// Merges the `OS_*` variable layers: `~/openrc` when nothing else names credentials, the
/// environment, then `--openrc`. Records each layer that was used in `sources`.
fn merged_variables(
    options: &CredentialOptions,
    env: &HashMap<String, String>,
    locations: &Locations,
    sources: &mut Vec<CredentialSource>,
) -> Result<HashMap<String, String>, CredentialsError> {
    let mut variables = HashMap::new();

    if nothing_names_credentials(options, env) {
        let Some(path) = locations.default_openrc().filter(|path| path.is_file()) else {
            let default_openrc = locations.default_openrc_display();
            return Err(CredentialsError::NoCredentials { default_openrc });
        };
        variables.extend(sources::read_openrc(&path, env)?);
        sources.push(CredentialSource::DefaultOpenrc(path));
    }

    let from_env: Vec<_> = env
        .iter()
        .filter(|(name, _)| name.starts_with("OS_"))
        .collect();
    if !from_env.is_empty() {
        sources.push(CredentialSource::Environment);
    }
    variables.extend(
        from_env
            .into_iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );

    if let Some(path) = &options.openrc {
        variables.extend(sources::read_openrc(path, env)?);
        sources.push(CredentialSource::Openrc(path.clone()));
    }
    Ok(variables)
}

fn nothing_names_credentials(options: &CredentialOptions, env: &HashMap<String, String>) -> bool {
    options.openrc.is_none()
        && options.os_cloud.is_none()
        && non_empty(env, "OS_CLOUD").is_none()
        && non_empty(env, "OS_AUTH_URL").is_none()
}

fn non_empty<'a>(variables: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    variables
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests;
