//! Reading the credential layers: openrc files, `OS_*` variables and clouds.yaml.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::str::Chars;

use serde_json::{Map, Value};

use super::{CredentialSource, CredentialsError};

/// `OS_*` variables that choose where settings come from rather than being settings.
const SELECTORS: [&str; 4] = [
    "OS_CLOUD",
    "OS_CLOUD_NAME",
    "OS_CLIENT_CONFIG_FILE",
    "OS_CLIENT_SECURE_FILE",
];

/// Why a line with `$(…)` or backquotes cannot be read without a shell.
const COMMAND_SUBSTITUTION: &str = "command substitution is not supported: write the value itself";

/// File name endings openstacksdk accepts for clouds.yaml and secure.yaml. YAML is a superset
/// of JSON, so one parser reads all three.
const CONFIG_SUFFIXES: [&str; 3] = ["yaml", "yml", "json"];

/// Folders searched for clouds.yaml, secure.yaml and the default openrc. Tests set the
/// fields by hand.
#[derive(Debug, Clone)]
pub(super) struct Locations {
    pub cwd: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// Per-user config folders, most specific first.
    pub user_config: Vec<PathBuf>,
    pub site_config: PathBuf,
}

impl Locations {
    /// Returns the folders openstacksdk searches, with `HOME` and `XDG_CONFIG_HOME` taken from `env`.
    pub fn standard(env: &HashMap<String, String>) -> Self {
        let home = non_empty_path(env, "HOME");
        let mut user_config = Vec::new();
        if let Some(xdg) = non_empty_path(env, "XDG_CONFIG_HOME") {
            user_config.push(xdg.join("openstack"));
        }
        if let Some(home) = &home {
            let dot_config = home.join(".config").join("openstack");
            if !user_config.contains(&dot_config) {
                user_config.push(dot_config);
            }
        }
        Self {
            cwd: std::env::current_dir().ok(),
            home,
            user_config,
            site_config: PathBuf::from("/etc/openstack"),
        }
    }

    /// Lists the files to try for `stem` (`clouds` or `secure`), in order, after `override_file`.
    pub fn candidates(&self, stem: &str, override_file: Option<&str>) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = override_file.map(PathBuf::from).into_iter().collect();
        let folders = self
            .cwd
            .iter()
            .chain(&self.user_config)
            .chain([&self.site_config]);
        for folder in folders {
            for suffix in CONFIG_SUFFIXES {
                files.push(folder.join(format!("{stem}.{suffix}")));
            }
        }
        files
    }

    pub fn default_openrc(&self) -> Option<PathBuf> {
        self.home.as_ref().map(|home| home.join("openrc"))
    }

    pub fn default_openrc_display(&self) -> String {
        match self.default_openrc() {
            Some(path) => path.display().to_string(),
            None => "~/openrc (HOME is not set)".to_owned(),
        }
    }
}

fn non_empty_path(env: &HashMap<String, String>, name: &str) -> Option<PathBuf> {
    env.get(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// Settings named like clouds.yaml keys with the `auth:` level flattened away: `auth_url`,
/// `username`, `region_name`, `verify` and so on. Empty values count as unset.
#[derive(Clone, Default)]
pub(super) struct Settings(BTreeMap<String, String>);

impl fmt::Debug for Settings {
    /// Lists only the keys, because the values include passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Settings {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_owned(), value.to_owned());
    }

    /// Replaces settings with the non-empty ones of `higher`.
    pub fn overlay(&mut self, higher: Settings) {
        let non_empty = higher.0.into_iter().filter(|(_, value)| !value.is_empty());
        self.0.extend(non_empty);
    }

    /// Settings from `OS_*` variables: `OS_PROJECT_NAME` becomes `project_name`.
    pub fn from_variables(variables: &HashMap<String, String>) -> Self {
        let pairs = variables.iter().filter_map(|(name, value)| {
            if SELECTORS.contains(&name.as_str()) {
                return None;
            }
            let key = name.strip_prefix("OS_")?.to_ascii_lowercase();
            Some((key, value.clone()))
        });
        Self::from_pairs(pairs)
    }

    /// Settings from one cloud of clouds.yaml. Keys outside `auth:` win over the same keys
    /// inside it, as in openstacksdk, which reads them as overrides.
    fn from_cloud(cloud: &Map<String, Value>) -> Self {
        let auth = cloud
            .get("auth")
            .and_then(Value::as_object)
            .into_iter()
            .flatten();
        let pairs = auth
            .chain(cloud)
            .filter_map(|(key, value)| Some((key.clone(), scalar(value)?)));
        Self::from_pairs(pairs)
    }

    /// Builds settings from raw pairs, mapping old names to current ones. A current name
    /// (`project_name`) wins over an old one (`tenant_name`) whatever the order of the pairs.
    fn from_pairs(pairs: impl Iterator<Item = (String, String)>) -> Self {
        let mut current = BTreeMap::new();
        let mut old = BTreeMap::new();
        for (key, value) in pairs {
            let key = key.replace('-', "_");
            match current_name(&key) {
                Some(renamed) => old.insert(renamed.to_owned(), value),
                None => current.insert(key, value),
            };
        }
        old.extend(current);
        Self(old)
    }
}

/// Returns the current name of a setting that openstackclient still accepts under an old name.
fn current_name(key: &str) -> Option<&'static str> {
    match key {
        "tenant_name" => Some("project_name"),
        "tenant_id" => Some("project_id"),
        "endpoint_type" => Some("interface"),
        "auth_token" => Some("token"),
        "auth_plugin" => Some("auth_type"),
        _ => None,
    }
}

/// Renders a YAML scalar as the string an environment variable would hold.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Reads the variables an openrc file assigns, keeping the `OS_*` ones.
///
/// No shell runs. Each line is split into words with shell quoting (single quotes, double
/// quotes, backslashes, `#` comments, `;` between commands). A command made only of
/// `NAME=value` words, optionally after `export`, assigns them. Any other command (`if`,
/// `unset`, `echo`, `read`) is skipped. `$NAME` and `${NAME}` expand to a variable the file
/// assigned earlier, else to one from `env`, else to nothing.
pub(super) fn read_openrc(
    path: &Path,
    env: &HashMap<String, String>,
) -> Result<HashMap<String, String>, CredentialsError> {
    let text = fs::read_to_string(path).map_err(|source| CredentialsError::ReadOpenrc {
        path: path.to_owned(),
        source,
    })?;
    parse_openrc(&text, env).map_err(|(line, reason)| CredentialsError::ParseOpenrc {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parses openrc text; on failure returns the 1-based line number and the reason.
pub(super) fn parse_openrc(
    text: &str,
    env: &HashMap<String, String>,
) -> Result<HashMap<String, String>, (usize, &'static str)> {
    let mut assigned: HashMap<String, String> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let lookup = |name: &str| assigned.get(name).or_else(|| env.get(name)).cloned();
        let commands = split_commands(line, &lookup).map_err(|reason| (index + 1, reason))?;
        for command in commands {
            assigned.extend(assignments(command));
        }
    }
    assigned.retain(|name, _| name.starts_with("OS_"));
    Ok(assigned)
}

/// Returns the assignments of a command that only assigns, or nothing for any other command.
fn assignments(mut words: Vec<String>) -> Vec<(String, String)> {
    let exported = words.first().is_some_and(|word| word == "export");
    if exported {
        words.remove(0);
    }
    let mut pairs = Vec::new();
    for word in words {
        match word.split_once('=') {
            Some((name, value)) if is_identifier(name) => {
                pairs.push((name.to_owned(), value.to_owned()));
            }
            // `export NAME` only marks an existing variable for export.
            None if exported && is_identifier(&word) => {}
            _ => return Vec::new(),
        }
    }
    pairs
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits one line into commands (at `;`) made of words, with quotes removed and variables
/// expanded.
fn split_commands(
    line: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Vec<String>>, &'static str> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();

    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | ';' => {
                if let (Some(done), Some(command)) = (word.take(), commands.last_mut()) {
                    command.push(done);
                }
                if c == ';' {
                    commands.push(Vec::new());
                }
            }
            '#' if word.is_none() => break,
            '\'' => single_quoted(&mut chars, word.get_or_insert_with(String::new))?,
            '"' => double_quoted(&mut chars, lookup, word.get_or_insert_with(String::new))?,
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '$' => expand(&mut chars, lookup, word.get_or_insert_with(String::new))?,
            '`' => return Err(COMMAND_SUBSTITUTION),
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    if let (Some(done), Some(command)) = (word, commands.last_mut()) {
        command.push(done);
    }
    Ok(commands)
}

fn single_quoted(chars: &mut Peekable<Chars<'_>>, word: &mut String) -> Result<(), &'static str> {
    for c in chars.by_ref() {
        if c == '\'' {
            return Ok(());
        }
        word.push(c);
    }
    Err("unterminated single quote (values must fit on one line)")
}

fn double_quoted(
    chars: &mut Peekable<Chars<'_>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    word: &mut String,
) -> Result<(), &'static str> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            // Inside double quotes a backslash escapes only these characters.
            '\\' => match chars.next_if(|next| matches!(next, '$' | '`' | '"' | '\\')) {
                Some(escaped) => word.push(escaped),
                None => word.push('\\'),
            },
            '$' => expand(chars, lookup, word)?,
            '`' => return Err(COMMAND_SUBSTITUTION),
            other => word.push(other),
        }
    }
    Err("unterminated double quote (values must fit on one line)")
}

/// Expands the variable after a `$`; a `$` followed by no name stays as it is.
fn expand(
    chars: &mut Peekable<Chars<'_>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    word: &mut String,
) -> Result<(), &'static str> {
    let mut name = String::new();
    match chars.peek() {
        Some('(') => return Err(COMMAND_SUBSTITUTION),
        Some('{') => {
            chars.next();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) => name.push(c),
                    None => return Err("unterminated ${"),
                }
            }
        }
        _ => {
            while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                name.push(c);
            }
        }
    }
    if name.is_empty() {
        word.push('$');
    } else {
        word.push_str(&lookup(&name).unwrap_or_default());
    }
    Ok(())
}

/// Reads cloud `name` from the first clouds.yaml found, with the first secure.yaml found merged
/// over it, and applies its region (`requested_region`, else its own `region_name`, else the
/// first of its `regions`).
pub(super) fn load_cloud(
    name: &str,
    requested_region: Option<&str>,
    variables: &HashMap<String, String>,
    locations: &Locations,
) -> Result<(Settings, CredentialSource), CredentialsError> {
    let override_file = variables.get("OS_CLIENT_CONFIG_FILE").map(String::as_str);
    let searched = locations.candidates("clouds", override_file);
    let Some(file) = searched.iter().find(|path| path.is_file()).cloned() else {
        let cloud = name.to_owned();
        return Err(CredentialsError::NoCloudsFile { cloud, searched });
    };
    let mut document = read_yaml(&file)?;

    let secure_override = variables.get("OS_CLIENT_SECURE_FILE").map(String::as_str);
    let secure_candidates = locations.candidates("secure", secure_override);
    let secure_file = secure_candidates.into_iter().find(|path| path.is_file());
    if let Some(secure) = &secure_file {
        merge(&mut document, read_yaml(secure)?);
    }

    let cloud = find_cloud(&document, name, &file)?;
    let mut settings = Settings::from_cloud(cloud);
    apply_region(&mut settings, cloud, name, requested_region)?;

    let name = name.to_owned();
    let source = CredentialSource::Cloud {
        name,
        file,
        secure_file,
    };
    Ok((settings, source))
}

fn read_yaml(path: &Path) -> Result<Value, CredentialsError> {
    let text = fs::read_to_string(path).map_err(|source| CredentialsError::ReadCloudsFile {
        path: path.to_owned(),
        source,
    })?;
    serde_saphyr::from_str(&text).map_err(|source| CredentialsError::ParseCloudsFile {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// Merges `higher` into `base` key by key at every level of nesting, as openstacksdk merges
/// secure.yaml into clouds.yaml.
fn merge(base: &mut Value, higher: Value) {
    match (base, higher) {
        (Value::Object(base), Value::Object(higher)) => {
            for (key, value) in higher {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, higher) => *base = higher,
    }
}

fn find_cloud<'a>(
    document: &'a Value,
    name: &str,
    file: &Path,
) -> Result<&'a Map<String, Value>, CredentialsError> {
    let clouds = document.get("clouds").and_then(Value::as_object);
    if let Some(cloud) = clouds.and_then(|clouds| clouds.get(name)?.as_object()) {
        return Ok(cloud);
    }
    let available = clouds
        .map(|clouds| clouds.keys().cloned().collect())
        .unwrap_or_default();
    Err(CredentialsError::CloudNotFound {
        cloud: name.to_owned(),
        path: file.to_owned(),
        available,
    })
}

/// Picks the cloud's region and lays that region's `values:` over the cloud's settings.
///
/// The cloud's regions are its `regions:` list, else its `region_name` (a name, a list, or
/// names separated by commas). Like openstacksdk, a requested region (`OS_REGION_NAME`) must
/// be one of them, and without a request the first one is used. A cloud that names no region
/// accepts any.
fn apply_region(
    settings: &mut Settings,
    cloud: &Map<String, Value>,
    cloud_name: &str,
    requested: Option<&str>,
) -> Result<(), CredentialsError> {
    let regions = known_regions(cloud);
    let chosen = match requested {
        Some(wanted) => regions.iter().find(|(name, _)| name == wanted),
        None => regions.first(),
    };
    let Some((region, values)) = chosen else {
        return match requested {
            Some(region) if !regions.is_empty() => Err(CredentialsError::RegionNotFound {
                cloud: cloud_name.to_owned(),
                region: region.to_owned(),
                available: regions.into_iter().map(|(name, _)| name).collect(),
            }),
            _ => Ok(()),
        };
    };

    settings.set("region_name", region);
    if let Some(values) = values {
        settings.overlay(Settings::from_cloud(values));
    }
    Ok(())
}

/// Lists the cloud's regions, each with the settings it overrides.
fn known_regions(cloud: &Map<String, Value>) -> Vec<(String, Option<&Map<String, Value>>)> {
    let entries = match (cloud.get("regions"), cloud.get("region_name")) {
        (Some(Value::Array(entries)), _) | (None, Some(Value::Array(entries))) => entries,
        (None, Some(Value::String(names))) => {
            let names = names
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty());
            return names.map(|name| (name.to_owned(), None)).collect();
        }
        _ => return Vec::new(),
    };
    entries.iter().filter_map(region_entry).collect()
}

/// Reads a `regions:` entry, which is a name or `{name: …, values: {…}}`.
fn region_entry(entry: &Value) -> Option<(String, Option<&Map<String, Value>>)> {
    match entry {
        Value::String(name) => Some((name.clone(), None)),
        Value::Object(fields) => {
            let name = fields.get("name")?.as_str()?.to_owned();
            Some((name, fields.get("values").and_then(Value::as_object)))
        }
        _ => None,
    }
}
