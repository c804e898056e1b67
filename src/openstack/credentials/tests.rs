#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::resolve::normalize_auth_url;
use super::sources::parse_openrc;
use super::*;

/// A fake machine: a current directory, a home and a site config folder in a temp dir.
struct Machine {
    _dir: TempDir,
    cwd: PathBuf,
    home: PathBuf,
    site: PathBuf,
    env: HashMap<String, String>,
}

impl Machine {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let (cwd, home, site) = (
            dir.path().join("cwd"),
            dir.path().join("home"),
            dir.path().join("etc"),
        );
        for folder in [&cwd, &home, &site] {
            fs::create_dir_all(folder).unwrap();
        }
        let env = HashMap::from([("HOME".to_owned(), home.display().to_string())]);
        Self {
            _dir: dir,
            cwd,
            home,
            site,
            env,
        }
    }

    fn locations(&self) -> Locations {
        Locations {
            cwd: Some(self.cwd.clone()),
            home: Some(self.home.clone()),
            user_config: vec![self.home.join(".config/openstack")],
            site_config: self.site.clone(),
        }
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    fn load(&self, options: &CredentialOptions) -> Result<Credentials, CredentialsError> {
        Credentials::load_from(options, &self.env, &self.locations())
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn cloud_options(name: &str) -> CredentialOptions {
    CredentialOptions {
        os_cloud: Some(name.to_owned()),
        ..CredentialOptions::default()
    }
}

fn openrc_options(path: &Path) -> CredentialOptions {
    CredentialOptions {
        openrc: Some(path.to_owned()),
        ..CredentialOptions::default()
    }
}

const LAB_CLOUDS: &str = "
clouds:
  lab:
    auth:
      auth_url: http://127.0.0.1:5000
      username: neutron
      password: from-clouds
      project_name: service
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
";

fn password_of(credentials: &Credentials) -> &str {
    match &credentials.auth {
        AuthMethod::Password { password, .. } => password.expose(),
        other => panic!("expected password auth, got {other:?}"),
    }
}

fn user_of(credentials: &Credentials) -> &UserRef {
    match &credentials.auth {
        AuthMethod::Password { user, .. } => user,
        other => panic!("expected password auth, got {other:?}"),
    }
}

// ---- openrc parsing ----

#[test]
fn openrc_reads_quotes_comments_and_export() {
    let text = r#"#!/usr/bin/env bash
# a comment
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_USERNAME='admin'   # trailing comment
OS_PASSWORD="p#ss 'word' \"quoted\" \$dollar"
export OS_PROJECT_NAME=my\ project
export OS_REGION_NAME="Region"'One'
"#;

    let variables = parse_openrc(text, &HashMap::new()).unwrap();

    assert_eq!(variables["OS_AUTH_URL"], "http://127.0.0.1:5000/v3");
    assert_eq!(variables["OS_USERNAME"], "admin");
    assert_eq!(variables["OS_PASSWORD"], r#"p#ss 'word' "quoted" $dollar"#);
    assert_eq!(variables["OS_PROJECT_NAME"], "my project");
    assert_eq!(variables["OS_REGION_NAME"], "RegionOne");
}

#[test]
fn openrc_skips_commands_that_do_not_only_assign() {
    let text = r#"
unset OS_TENANT_ID
echo "Please enter your OpenStack Password: "
read -sr OS_PASSWORD_INPUT
if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi
export OS_INTERFACE=public; export OS_IDENTITY_API_VERSION=3
"#;

    let variables = parse_openrc(text, &HashMap::new()).unwrap();

    assert_eq!(variables.get("OS_TENANT_ID"), None);
    assert_eq!(variables.get("OS_PASSWORD_INPUT"), None);
    assert_eq!(variables["OS_INTERFACE"], "public");
    assert_eq!(variables["OS_IDENTITY_API_VERSION"], "3");
    assert_eq!(variables.len(), 2);
}

#[test]
fn openrc_expands_file_then_environment_variables() {
    let text = "BASE=http://127.0.0.1:5000\n\
                export OS_AUTH_URL=${BASE}/v3\n\
                export OS_PASSWORD=$SECRET_FROM_ENV\n\
                export OS_USERNAME=\"$UNSET_NAME\"\n";
    let env = HashMap::from([("SECRET_FROM_ENV".to_owned(), "s3cret".to_owned())]);

    let variables = parse_openrc(text, &env).unwrap();

    assert_eq!(variables["OS_AUTH_URL"], "http://127.0.0.1:5000/v3");
    assert_eq!(variables["OS_PASSWORD"], "s3cret");
    assert_eq!(variables["OS_USERNAME"], "");
    assert_eq!(variables.get("BASE"), None, "only OS_* variables are kept");
}

#[test]
fn openrc_unterminated_quote_names_line() {
    let text = "export OS_USERNAME=admin\nexport OS_PASSWORD=\"open\n";

    let error = parse_openrc(text, &HashMap::new()).unwrap_err();

    assert_eq!(error.0, 2);
    assert!(error.1.contains("unterminated double quote"), "{}", error.1);
}

#[test]
fn openrc_rejects_command_substitution() {
    let text = "export OS_PASSWORD=$(cat /run/secret)\n";

    let error = parse_openrc(text, &HashMap::new()).unwrap_err();

    assert_eq!(error.0, 1);
    assert!(error.1.contains("command substitution"), "{}", error.1);
}

#[test]
fn openrc_file_error_names_path_and_line() {
    let machine = Machine::new();
    let openrc = machine.cwd.join("bad-openrc");
    write(&openrc, "export OS_PASSWORD='x\n");

    let error = machine.load(&openrc_options(&openrc)).unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "parse openrc file {}, line 1: unterminated single quote (values must fit on one line)",
            openrc.display()
        )
    );
}

#[test]
fn horizon_openrc_gives_password_credentials() {
    let mut machine = Machine::new();
    machine.set("OS_PASSWORD_INPUT", "typed");
    let openrc = machine.cwd.join("admin-openrc.sh");
    write(
        &openrc,
        r#"#!/usr/bin/env bash
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_PROJECT_ID=f999dfc5e17a40adbc118b0561a08f09
export OS_USER_DOMAIN_NAME="Default"
if [ -z "$OS_USER_DOMAIN_NAME" ]; then unset OS_USER_DOMAIN_NAME; fi
export OS_USERNAME="admin"
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD=$OS_PASSWORD_INPUT
export OS_REGION_NAME="RegionOne"
export OS_INTERFACE=internal
"#,
    );

    let credentials = machine.load(&openrc_options(&openrc)).unwrap();

    assert_eq!(credentials.auth_url.as_str(), "http://127.0.0.1:5000/v3");
    assert_eq!(password_of(&credentials), "typed");
    assert_eq!(
        user_of(&credentials),
        &UserRef::Name {
            name: "admin".to_owned(),
            domain: DomainRef::Name("Default".to_owned()),
        }
    );
    assert_eq!(
        credentials.scope,
        Some(Scope::Project(ProjectRef::Id(
            "f999dfc5e17a40adbc118b0561a08f09".to_owned()
        )))
    );
    assert_eq!(credentials.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(credentials.interface, Interface::Internal);
}

// ---- precedence ----

#[test]
fn explicit_openrc_overrides_environment() {
    let mut machine = Machine::new();
    machine
        .set("OS_AUTH_URL", "http://127.0.0.1:5000/v3")
        .set("OS_USERNAME", "from-env")
        .set("OS_PASSWORD", "env-password");
    let openrc = machine.cwd.join("openrc");
    write(&openrc, "export OS_USERNAME=from-file\n");

    let credentials = machine.load(&openrc_options(&openrc)).unwrap();

    assert_eq!(user_of(&credentials), &name_in_default("from-file"));
    assert_eq!(password_of(&credentials), "env-password");
    assert_eq!(
        credentials.sources,
        [
            CredentialSource::Environment,
            CredentialSource::Openrc(openrc)
        ]
    );
}

fn name_in_default(name: &str) -> UserRef {
    UserRef::Name {
        name: name.to_owned(),
        domain: DomainRef::Id("default".to_owned()),
    }
}

#[test]
fn environment_overrides_cloud_settings() {
    let mut machine = Machine::new();
    write(&machine.cwd.join("clouds.yaml"), LAB_CLOUDS);
    machine
        .set("OS_CLOUD", "lab")
        .set("OS_USERNAME", "other")
        .set("OS_PASSWORD", "from-env")
        .set("OS_INTERFACE", "admin");

    let credentials = machine.load(&CredentialOptions::default()).unwrap();

    assert_eq!(
        user_of(&credentials),
        &UserRef::Name {
            name: "other".to_owned(),
            domain: DomainRef::Name("Default".to_owned()),
        }
    );
    assert_eq!(password_of(&credentials), "from-env");
    assert_eq!(credentials.interface, Interface::Admin);
    assert_eq!(credentials.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(credentials.auth_url.as_str(), "http://127.0.0.1:5000/v3");
}

#[test]
fn region_variable_must_match_cloud_region_name() {
    let mut machine = Machine::new();
    write(&machine.cwd.join("clouds.yaml"), LAB_CLOUDS);
    machine
        .set("OS_CLOUD", "lab")
        .set("OS_REGION_NAME", "RegionTwo");

    let error = machine.load(&CredentialOptions::default()).unwrap_err();

    assert_eq!(
        error.to_string(),
        "region RegionTwo is not one of the regions of cloud lab: RegionOne"
    );
}

#[test]
fn cloud_without_region_accepts_any() {
    let mut machine = Machine::new();
    write(
        &machine.cwd.join("clouds.yaml"),
        &LAB_CLOUDS.replace("    region_name: RegionOne\n", ""),
    );
    machine
        .set("OS_CLOUD", "lab")
        .set("OS_REGION_NAME", "RegionTwo");

    let credentials = machine.load(&CredentialOptions::default()).unwrap();

    assert_eq!(credentials.region_name.as_deref(), Some("RegionTwo"));
}

#[test]
fn empty_environment_variable_does_not_override_cloud() {
    let mut machine = Machine::new();
    write(&machine.cwd.join("clouds.yaml"), LAB_CLOUDS);
    machine.set("OS_CLOUD", "lab").set("OS_PASSWORD", "");

    let credentials = machine.load(&CredentialOptions::default()).unwrap();

    assert_eq!(password_of(&credentials), "from-clouds");
}

#[test]
fn os_cloud_option_overrides_os_cloud_variable() {
    let mut machine = Machine::new();
    let clouds =
        format!("{LAB_CLOUDS}  other:\n    auth:\n      auth_url: http://127.0.0.2:5000\n");
    write(&machine.cwd.join("clouds.yaml"), &clouds);
    machine.set("OS_CLOUD", "other");

    let credentials = machine.load(&cloud_options("lab")).unwrap();

    assert_eq!(credentials.auth_url.as_str(), "http://127.0.0.1:5000/v3");
}

#[test]
fn secure_yaml_is_merged_over_clouds_yaml() {
    let machine = Machine::new();
    let clouds = LAB_CLOUDS.replace("      password: from-clouds\n", "");
    write(&machine.home.join(".config/openstack/clouds.yaml"), &clouds);
    write(
        &machine.home.join(".config/openstack/secure.yaml"),
        "clouds:\n  lab:\n    auth:\n      password: from-secure\n",
    );

    let credentials = machine.load(&cloud_options("lab")).unwrap();

    assert_eq!(password_of(&credentials), "from-secure");
    assert_eq!(
        user_of(&credentials),
        &UserRef::Name {
            name: "neutron".to_owned(),
            domain: DomainRef::Name("Default".to_owned()),
        }
    );
    assert!(
        matches!(
            &credentials.sources[0],
            CredentialSource::Cloud {
                secure_file: Some(_),
                ..
            }
        ),
        "{:?}",
        credentials.sources
    );
}

#[test]
fn clouds_yaml_search_order() {
    let mut machine = Machine::new();
    let at = |url: &str| LAB_CLOUDS.replace("http://127.0.0.1:5000", url);
    let override_file = machine.cwd.join("elsewhere/my-clouds.yaml");
    write(&machine.site.join("clouds.yaml"), &at("http://site:5000"));
    write(
        &machine.home.join(".config/openstack/clouds.yml"),
        &at("http://user:5000"),
    );
    write(&machine.cwd.join("clouds.yaml"), &at("http://cwd:5000"));
    write(&override_file, &at("http://override:5000"));
    let options = cloud_options("lab");

    assert_eq!(
        machine.load(&options).unwrap().auth_url.as_str(),
        "http://cwd:5000/v3"
    );

    machine.set(
        "OS_CLIENT_CONFIG_FILE",
        &override_file.display().to_string(),
    );
    assert_eq!(
        machine.load(&options).unwrap().auth_url.as_str(),
        "http://override:5000/v3"
    );

    machine.env.remove("OS_CLIENT_CONFIG_FILE");
    fs::remove_file(machine.cwd.join("clouds.yaml")).unwrap();
    assert_eq!(
        machine.load(&options).unwrap().auth_url.as_str(),
        "http://user:5000/v3"
    );

    fs::remove_file(machine.home.join(".config/openstack/clouds.yml")).unwrap();
    assert_eq!(
        machine.load(&options).unwrap().auth_url.as_str(),
        "http://site:5000/v3"
    );
}

#[test]
fn unknown_cloud_lists_known_ones() {
    let machine = Machine::new();
    write(&machine.cwd.join("clouds.yaml"), LAB_CLOUDS);

    let error = machine.load(&cloud_options("prod")).unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "cloud prod not found in {}; it defines: lab",
            machine.cwd.join("clouds.yaml").display()
        )
    );
}

#[test]
fn cloud_without_clouds_yaml_lists_searched_files() {
    let machine = Machine::new();

    let error = machine.load(&cloud_options("lab")).unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with("cloud lab is requested but no clouds.yaml exists"),
        "{message}"
    );
    assert!(
        message.contains(&machine.site.join("clouds.yaml").display().to_string()),
        "{message}"
    );
}

#[test]
fn home_openrc_is_used_when_nothing_is_given() {
    let mut machine = Machine::new();
    let openrc = machine.home.join("openrc");
    write(
        &openrc,
        "export OS_AUTH_URL=http://127.0.0.1:5000\nexport OS_USERNAME=admin\n\
         export OS_PASSWORD=pw\nexport OS_REGION_NAME=RegionOne\n",
    );
    machine.set("OS_REGION_NAME", "RegionTwo");

    let credentials = machine.load(&CredentialOptions::default()).unwrap();

    assert_eq!(password_of(&credentials), "pw");
    assert_eq!(
        credentials.region_name.as_deref(),
        Some("RegionTwo"),
        "environment wins"
    );
    assert_eq!(
        credentials.sources[0],
        CredentialSource::DefaultOpenrc(openrc)
    );
}

#[test]
fn home_openrc_is_ignored_when_environment_names_keystone() {
    let mut machine = Machine::new();
    write(
        &machine.home.join("openrc"),
        "export OS_USERNAME=from-home-openrc\n",
    );
    machine
        .set("OS_AUTH_URL", "http://127.0.0.1:5000/v3")
        .set("OS_USERNAME", "from-env")
        .set("OS_PASSWORD", "pw");

    let credentials = machine.load(&CredentialOptions::default()).unwrap();

    assert_eq!(user_of(&credentials), &name_in_default("from-env"));
    assert_eq!(credentials.sources, [CredentialSource::Environment]);
}

#[test]
fn no_credentials_at_all_is_an_error() {
    let machine = Machine::new();

    let error = machine.load(&CredentialOptions::default()).unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "no OpenStack credentials: pass --os-cloud or --openrc, set OS_CLOUD or OS_AUTH_URL, or create {}",
            machine.home.join("openrc").display()
        )
    );
}

#[test]
fn missing_password_names_variable_and_sources() {
    let mut machine = Machine::new();
    machine
        .set("OS_AUTH_URL", "http://127.0.0.1:5000")
        .set("OS_USERNAME", "admin");

    let error = machine.load(&CredentialOptions::default()).unwrap_err();

    assert_eq!(
        error.to_string(),
        "missing password: set OS_PASSWORD or `password` in clouds.yaml \
         (settings read from: OS_* environment variables)"
    );
}

// ---- regions ----

const REGIONS_CLOUD: &str = "
clouds:
  multi:
    auth:
      auth_url: http://127.0.0.1:5000
      username: u
      password: p
    regions:
      - name: RegionOne
        values:
          interface: internal
      - RegionTwo
";

#[test]
fn first_region_of_cloud_is_the_default() {
    let machine = Machine::new();
    write(&machine.cwd.join("clouds.yaml"), REGIONS_CLOUD);

    let credentials = machine.load(&cloud_options("multi")).unwrap();

    assert_eq!(credentials.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(
        credentials.interface,
        Interface::Internal,
        "region values apply"
    );
}

#[test]
fn requested_region_must_be_one_of_the_cloud() {
    let mut machine = Machine::new();
    write(&machine.cwd.join("clouds.yaml"), REGIONS_CLOUD);
    machine.set("OS_REGION_NAME", "RegionTwo");
    let chosen = machine.load(&cloud_options("multi")).unwrap();
    machine.set("OS_REGION_NAME", "RegionNine");

    let error = machine.load(&cloud_options("multi")).unwrap_err();

    assert_eq!(chosen.region_name.as_deref(), Some("RegionTwo"));
    assert_eq!(chosen.interface, Interface::Public);
    assert_eq!(
        error.to_string(),
        "region RegionNine is not one of the regions of cloud multi: RegionOne, RegionTwo"
    );
}

// ---- auth kinds, domains and scope ----

fn from_env(pairs: &[(&str, &str)]) -> Result<Credentials, CredentialsError> {
    let mut machine = Machine::new();
    machine.set("OS_AUTH_URL", "http://127.0.0.1:5000/v3");
    for (name, value) in pairs {
        machine.set(name, value);
    }
    machine.load(&CredentialOptions::default())
}

#[test]
fn name_without_domain_uses_default_domain_id() {
    let credentials = from_env(&[
        ("OS_USERNAME", "admin"),
        ("OS_PASSWORD", "pw"),
        ("OS_PROJECT_NAME", "admin"),
    ])
    .unwrap();

    assert_eq!(user_of(&credentials), &name_in_default("admin"));
    assert_eq!(
        credentials.scope,
        Some(Scope::Project(ProjectRef::Name {
            name: "admin".to_owned(),
            domain: DomainRef::Id("default".to_owned()),
        }))
    );
}

#[test]
fn os_default_domain_replaces_default() {
    let credentials = from_env(&[
        ("OS_USERNAME", "admin"),
        ("OS_PASSWORD", "pw"),
        ("OS_DEFAULT_DOMAIN", "corp"),
    ])
    .unwrap();

    assert_eq!(
        user_of(&credentials),
        &UserRef::Name {
            name: "admin".to_owned(),
            domain: DomainRef::Id("corp".to_owned()),
        }
    );
    assert_eq!(credentials.scope, None);
}

#[test]
fn domain_name_applies_to_user_and_project() {
    let credentials = from_env(&[
        ("OS_USERNAME", "u"),
        ("OS_PASSWORD", "pw"),
        ("OS_PROJECT_NAME", "p"),
        ("OS_DOMAIN_NAME", "Corp"),
    ])
    .unwrap();
    let corp = DomainRef::Name("Corp".to_owned());

    assert_eq!(
        user_of(&credentials),
        &UserRef::Name {
            name: "u".to_owned(),
            domain: corp.clone()
        }
    );
    assert_eq!(
        credentials.scope,
        Some(Scope::Project(ProjectRef::Name {
            name: "p".to_owned(),
            domain: corp
        }))
    );
}

#[test]
fn domain_without_project_is_domain_scope() {
    let credentials = from_env(&[
        ("OS_USER_ID", "u-1"),
        ("OS_PASSWORD", "pw"),
        ("OS_DOMAIN_ID", "d-1"),
    ])
    .unwrap();

    assert_eq!(user_of(&credentials), &UserRef::Id("u-1".to_owned()));
    assert_eq!(
        credentials.scope,
        Some(Scope::Domain(DomainRef::Id("d-1".to_owned())))
    );
}

#[test]
fn tenant_name_aliases_project_name() {
    let credentials = from_env(&[
        ("OS_USERNAME", "u"),
        ("OS_PASSWORD", "pw"),
        ("OS_TENANT_NAME", "old"),
        ("OS_PROJECT_ID", "p-1"),
    ])
    .unwrap();

    assert_eq!(
        credentials.scope,
        Some(Scope::Project(ProjectRef::Id("p-1".to_owned())))
    );
}

#[test]
fn application_credential_by_id() {
    let credentials = from_env(&[
        ("OS_AUTH_TYPE", "v3applicationcredential"),
        ("OS_APPLICATION_CREDENTIAL_ID", "ac-1"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
        ("OS_PROJECT_NAME", "ignored"),
    ])
    .unwrap();

    assert_eq!(
        credentials.auth,
        AuthMethod::ApplicationCredentialId {
            id: "ac-1".to_owned(),
            secret: Secret::new("s")
        }
    );
    assert_eq!(
        credentials.scope, None,
        "keystone rejects a scope with application credentials"
    );
}

#[test]
fn application_credential_by_name_needs_user() {
    let with_user = from_env(&[
        ("OS_APPLICATION_CREDENTIAL_NAME", "agent"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
        ("OS_USERNAME", "neutron"),
    ])
    .unwrap();
    let without_user = from_env(&[
        ("OS_APPLICATION_CREDENTIAL_NAME", "agent"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
    ])
    .unwrap_err();

    assert_eq!(
        with_user.auth,
        AuthMethod::ApplicationCredentialName {
            name: "agent".to_owned(),
            user: name_in_default("neutron"),
            secret: Secret::new("s"),
        }
    );
    assert!(
        without_user.to_string().starts_with("missing username"),
        "{without_user}"
    );
}

#[test]
fn token_auth_type_and_inferred_token() {
    let explicit = from_env(&[
        ("OS_AUTH_TYPE", "token"),
        ("OS_TOKEN", "t"),
        ("OS_PROJECT_ID", "p"),
    ])
    .unwrap();
    let inferred = from_env(&[("OS_TOKEN", "t")]).unwrap();

    assert_eq!(
        explicit.auth,
        AuthMethod::Token {
            token: Secret::new("t")
        }
    );
    assert_eq!(
        explicit.scope,
        Some(Scope::Project(ProjectRef::Id("p".to_owned())))
    );
    assert_eq!(
        inferred.auth,
        AuthMethod::Token {
            token: Secret::new("t")
        }
    );
}

#[test]
fn unsupported_auth_type_is_named() {
    let error = from_env(&[("OS_AUTH_TYPE", "v3oidcpassword")]).unwrap_err();

    assert_eq!(
        error.to_string(),
        "unsupported auth_type \"v3oidcpassword\": use password, v3applicationcredential or token"
    );
}

// ---- endpoint choice and TLS ----

#[test]
fn auth_url_is_normalized_to_v3() {
    let cases = [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/v3"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/v3"),
        ("http://127.0.0.1:5000/v3", "http://127.0.0.1:5000/v3"),
        ("http://127.0.0.1:5000/v3/", "http://127.0.0.1:5000/v3"),
        ("http://127.0.0.1:5000/v2.0", "http://127.0.0.1:5000/v3"),
        (
            "https://cloud.test/identity",
            "https://cloud.test/identity/v3",
        ),
        (
            "https://cloud.test/identity/v3",
            "https://cloud.test/identity/v3",
        ),
    ];
    for (given, expected) in cases {
        assert_eq!(
            normalize_auth_url(given).unwrap().as_str(),
            expected,
            "from {given}"
        );
    }
}

#[test]
fn auth_url_must_be_http() {
    let error = normalize_auth_url("ftp://127.0.0.1/").unwrap_err();

    assert_eq!(
        error.to_string(),
        "invalid auth_url \"ftp://127.0.0.1/\": the scheme must be http or https"
    );
}

#[test]
fn interface_defaults_to_public_and_accepts_old_names() {
    let default = from_env(&[("OS_TOKEN", "t")]).unwrap();
    let old = from_env(&[("OS_TOKEN", "t"), ("OS_ENDPOINT_TYPE", "internalURL")]).unwrap();
    let invalid = from_env(&[("OS_TOKEN", "t"), ("OS_INTERFACE", "private")]).unwrap_err();

    assert_eq!(default.interface, Interface::Public);
    assert_eq!(old.interface, Interface::Internal);
    assert_eq!(
        invalid.to_string(),
        "invalid interface \"private\": use public, internal or admin"
    );
}

#[test]
fn insecure_from_option_variable_or_verify_false() {
    let mut machine = Machine::new();
    let clouds = format!("{LAB_CLOUDS}    verify: false\n    cacert: /etc/ssl/lab.pem\n");
    write(&machine.cwd.join("clouds.yaml"), &clouds);
    let from_yaml = machine.load(&cloud_options("lab")).unwrap();
    let from_env = from_env(&[("OS_TOKEN", "t"), ("OS_INSECURE", "True")]).unwrap();
    let plain = from_env_default();
    machine
        .set("OS_AUTH_URL", "http://127.0.0.1:5000")
        .set("OS_TOKEN", "t");
    let flag = CredentialOptions {
        insecure: true,
        ..CredentialOptions::default()
    };
    let from_flag = machine.load(&flag).unwrap();

    assert!(from_yaml.insecure);
    assert_eq!(
        from_yaml.cacert.as_deref(),
        Some(Path::new("/etc/ssl/lab.pem"))
    );
    assert!(from_env.insecure);
    assert!(!plain.insecure);
    assert!(from_flag.insecure);
}

fn from_env_default() -> Credentials {
    from_env(&[("OS_TOKEN", "t")]).unwrap()
}

#[test]
fn debug_output_hides_secrets() {
    let credentials =
        from_env(&[("OS_USERNAME", "admin"), ("OS_PASSWORD", "hunter2-secret")]).unwrap();
    let token = from_env(&[("OS_TOKEN", "gAAAAAtoken")]).unwrap();

    let shown = format!("{credentials:?} {token:?}");

    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(!shown.contains("gAAAAAtoken"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}
