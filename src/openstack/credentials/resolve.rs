//! Turning merged settings into [`Credentials`]: auth kind, user, scope, endpoint choice, TLS.

use std::path::PathBuf;

use reqwest::Url;

use super::sources::Settings;
use super::{
    AuthMethod, CredentialSource, Credentials, CredentialsError, DomainRef, Interface, ProjectRef,
    Scope, Secret, UserRef,
};
use crate::openstack::http::service_root;

/// The domain ID used for a user or project given by name without a domain, like
/// openstackclient's `OS_DEFAULT_DOMAIN`, whose default is also `default`.
const DEFAULT_DOMAIN_ID: &str = "default";

/// Settings plus the sources they came from, for "missing setting" messages.
struct Lookup<'a> {
    settings: &'a Settings,
    sources: &'a [CredentialSource],
}

impl Lookup<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key)
    }

    fn owned(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    /// Returns a setting that must be there, or an error that names the variable setting it.
    fn require(&self, key: &'static str, variable: &'static str) -> Result<&str, CredentialsError> {
        self.get(key).ok_or_else(|| self.missing(key, variable))
    }

    fn missing(&self, key: &'static str, variable: &'static str) -> CredentialsError {
        CredentialsError::MissingSetting {
            setting: key,
            variable,
            sources: describe(self.sources),
        }
    }
}

fn describe(sources: &[CredentialSource]) -> String {
    if sources.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<String> = sources.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Builds credentials from the merged settings.
pub(super) fn credentials(
    settings: &Settings,
    sources: Vec<CredentialSource>,
) -> Result<Credentials, CredentialsError> {
    let lookup = Lookup {
        settings,
        sources: &sources,
    };
    let auth_url = normalize_auth_url(lookup.require("auth_url", "OS_AUTH_URL")?)?;
    let auth = auth_method(&lookup)?;
    let scope = match auth {
        AuthMethod::ApplicationCredentialId { .. }
        | AuthMethod::ApplicationCredentialName { .. } => None,
        AuthMethod::Password { .. } | AuthMethod::Token { .. } => scope(&lookup),
    };

    let interface = match lookup.get("interface") {
        Some(text) => parse_interface(text)?,
        None => Interface::default(),
    };
    let insecure = lookup.get("insecure").is_some_and(is_true)
        || lookup.get("verify").is_some_and(|verify| !is_true(verify));

    Ok(Credentials {
        auth_url,
        auth,
        scope,
        region_name: lookup.owned("region_name"),
        interface,
        cacert: lookup.get("cacert").map(PathBuf::from),
        insecure,
        sources,
    })
}

/// Returns the Keystone v3 root for an `auth_url` given with or without `/v3`.
///
/// A trailing `/v2.0` is replaced too: Keystone has served only v3 since the Queens release,
/// and old openrc files still carry v2.0 URLs.
pub(crate) fn normalize_auth_url(text: &str) -> Result<Url, CredentialsError> {
    let invalid = |reason| CredentialsError::InvalidAuthUrl {
        url: text.to_owned(),
        reason,
    };
    let mut url = service_root(text, &["/v3", "/v2.0"]).map_err(invalid)?;

    let v3 = format!("{}/v3", url.path().trim_end_matches('/'));
    url.set_path(&v3);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Picks the auth kind from `auth_type`, or, without one, from the secrets present.
fn auth_method(lookup: &Lookup<'_>) -> Result<AuthMethod, CredentialsError> {
    let auth_type = lookup.get("auth_type").map(str::to_ascii_lowercase);
    let kind = match auth_type.as_deref() {
        Some("password" | "v3password") => AuthKind::Password,
        Some("v3applicationcredential" | "applicationcredential") => AuthKind::Application,
        Some("token" | "v3token") => AuthKind::Token,
        Some(other) => {
            let auth_type = other.to_owned();
            return Err(CredentialsError::UnsupportedAuthType { auth_type });
        }
        None if lookup.get("application_credential_secret").is_some() => AuthKind::Application,
        None if lookup.get("token").is_some() && lookup.get("password").is_none() => {
            AuthKind::Token
        }
        None => AuthKind::Password,
    };

    match kind {
        AuthKind::Password => password_auth(lookup),
        AuthKind::Application => application_credential_auth(lookup),
        AuthKind::Token => {
            let token = Secret::new(lookup.require("token", "OS_TOKEN")?);
            Ok(AuthMethod::Token { token })
        }
    }
}

enum AuthKind {
    Password,
    Application,
    Token,
}

fn password_auth(lookup: &Lookup<'_>) -> Result<AuthMethod, CredentialsError> {
    let user = user(lookup)?;
    let password = Secret::new(lookup.require("password", "OS_PASSWORD")?);
    Ok(AuthMethod::Password { user, password })
}

fn application_credential_auth(lookup: &Lookup<'_>) -> Result<AuthMethod, CredentialsError> {
    let secret = lookup.require(
        "application_credential_secret",
        "OS_APPLICATION_CREDENTIAL_SECRET",
    )?;
    let secret = Secret::new(secret);
    if let Some(id) = lookup.owned("application_credential_id") {
        return Ok(AuthMethod::ApplicationCredentialId { id, secret });
    }
    // Keystone finds a credential by name only within its owner, so the user is needed too.
    let Some(name) = lookup.owned("application_credential_name") else {
        return Err(lookup.missing(
            "application_credential_id",
            "OS_APPLICATION_CREDENTIAL_ID (or OS_APPLICATION_CREDENTIAL_NAME and the user)",
        ));
    };
    let user = user(lookup)?;
    Ok(AuthMethod::ApplicationCredentialName { name, user, secret })
}

/// Returns the user, by `user_id`, or by `username` in the user's domain.
fn user(lookup: &Lookup<'_>) -> Result<UserRef, CredentialsError> {
    if let Some(id) = lookup.owned("user_id") {
        return Ok(UserRef::Id(id));
    }
    let name = lookup
        .require("username", "OS_USERNAME (or OS_USER_ID)")?
        .to_owned();
    let domain = domain_of(lookup, "user_domain_id", "user_domain_name");
    Ok(UserRef::Name { name, domain })
}

/// Returns the scope: a project if one is named, else a domain if one is named, else none.
fn scope(lookup: &Lookup<'_>) -> Option<Scope> {
    if let Some(id) = lookup.owned("project_id") {
        return Some(Scope::Project(ProjectRef::Id(id)));
    }
    if let Some(name) = lookup.owned("project_name") {
        let domain = domain_of(lookup, "project_domain_id", "project_domain_name");
        return Some(Scope::Project(ProjectRef::Name { name, domain }));
    }
    if let Some(id) = lookup.owned("domain_id") {
        return Some(Scope::Domain(DomainRef::Id(id)));
    }
    lookup
        .owned("domain_name")
        .map(|name| Scope::Domain(DomainRef::Name(name)))
}

/// Returns the domain of a user or project given by name, from the first of these that is set:
/// 1. its own domain ID or name;
/// 2. `domain_id` or `domain_name`, which openstacksdk applies to both the user and the
///    project of a project-scoped token;
/// 3. `default_domain` (`OS_DEFAULT_DOMAIN`), as an ID;
/// 4. the ID `default`.
fn domain_of(lookup: &Lookup<'_>, id_key: &str, name_key: &str) -> DomainRef {
    let project_scoped = lookup.get("project_id").is_some() || lookup.get("project_name").is_some();
    if let Some(id) = lookup.owned(id_key) {
        return DomainRef::Id(id);
    }
    if let Some(name) = lookup.owned(name_key) {
        return DomainRef::Name(name);
    }
    if project_scoped {
        if let Some(id) = lookup.owned("domain_id") {
            return DomainRef::Id(id);
        }
        if let Some(name) = lookup.owned("domain_name") {
            return DomainRef::Name(name);
        }
    }
    let default = lookup.get("default_domain").unwrap_or(DEFAULT_DOMAIN_ID);
    DomainRef::Id(default.to_owned())
}

/// Accepts `public`, `internal`, `admin`, and the old `publicURL` forms of `OS_ENDPOINT_TYPE`.
fn parse_interface(text: &str) -> Result<Interface, CredentialsError> {
    let lower = text.to_ascii_lowercase();
    match lower.strip_suffix("url").unwrap_or(&lower) {
        "public" => Ok(Interface::Public),
        "internal" => Ok(Interface::Internal),
        "admin" => Ok(Interface::Admin),
        _ => Err(CredentialsError::InvalidInterface {
            interface: text.to_owned(),
        }),
    }
}

fn is_true(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}
