//! `flagyard serve --config flagyard.toml`: every `serve` option as a key,
//! and the environments, SDK keys and admin tokens. Command-line flags and
//! environment variables override the file. An unknown key or a bad value is
//! refused at start with its line (the TOML parser's error, which names the
//! line and column).
//!
//! ```toml
//! listen = "127.0.0.1:8013"
//! db = "flags.sqlite"                 # relative to this file
//!
//! [[environments]]
//! name = "staging"
//! flags = "staging.json"              # seeds it while empty
//!
//! [[sdk-keys]]
//! name = "web"
//! environment = "staging"
//! key-sha256 = "…"                    # or key = "…" (hashed at start)
//!
//! [[admin-tokens]]
//! name = "ada"
//! role = "editor"                     # viewer, editor or admin
//! may-edit = ["staging"]              # an editor's environments (none: all)
//! token-sha256 = "…"                  # or token = "…"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use flagyard::storage::EnvironmentName;
use flagyard_server::{DeclaredCredential, Grant, Role};
use serde::{Deserialize, Deserializer};

/// The file's keys; each is optional, and a flag given on the command line
/// (or its environment variable) wins over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ConfigFile {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) grpc_listen: Option<SocketAddr>,
    pub(crate) db: Option<PathBuf>,
    pub(crate) store: Option<String>,
    pub(crate) redis_prefix: Option<String>,
    pub(crate) history_keep: Option<usize>,
    pub(crate) flags: Option<PathBuf>,
    pub(crate) pancake: Option<String>,
    pub(crate) pancake_extension: Option<String>,
    pub(crate) admin_token: Option<String>,
    pub(crate) sdk_key: Option<String>,
    pub(crate) heartbeat: Option<u64>,
    pub(crate) ofrep_rate_limit: Option<u32>,
    #[serde(default, deserialize_with = "fractional")]
    pub(crate) fractional: Option<flagyard::core::FractionalVersion>,
    pub(crate) allow_origin: Option<Vec<String>>,
    pub(crate) cors_origin: Option<Vec<String>>,
    pub(crate) allow_host: Option<Vec<String>>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) request_timeout: Option<u64>,
    pub(crate) shutdown_deadline: Option<u64>,
    pub(crate) events_db: Option<PathBuf>,
    pub(crate) events_keep_days: Option<u64>,
    pub(crate) events_max: Option<u64>,
    pub(crate) events_jsonl: Option<PathBuf>,
    pub(crate) events_webhook: Option<String>,
    pub(crate) events_webhook_secret: Option<String>,
    pub(crate) log_format: Option<crate::serve::LogFormat>,
    #[serde(default)]
    pub(crate) environments: Vec<EnvironmentEntry>,
    #[serde(default)]
    pub(crate) sdk_keys: Vec<SdkKeyEntry>,
    #[serde(default)]
    pub(crate) admin_tokens: Vec<AdminTokenEntry>,
}

/// `[[environments]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct EnvironmentEntry {
    #[serde(deserialize_with = "environment_name")]
    pub(crate) name: EnvironmentName,
    /// Seeds it while it is empty.
    pub(crate) flags: Option<PathBuf>,
}

/// `[[sdk-keys]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SdkKeyEntry {
    name: String,
    #[serde(deserialize_with = "environment_name")]
    environment: EnvironmentName,
    key: Option<String>,
    #[serde(default, deserialize_with = "sha256_hex")]
    key_sha256: Option<String>,
}

/// `[[admin-tokens]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AdminTokenEntry {
    name: String,
    #[serde(deserialize_with = "role")]
    role: Role,
    #[serde(default, deserialize_with = "environment_names")]
    may_edit: Vec<EnvironmentName>,
    token: Option<String>,
    #[serde(default, deserialize_with = "sha256_hex")]
    token_sha256: Option<String>,
}

/// A string the value's `FromStr` reads (its error is the TOML error's text).
fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn environment_name<'de, D: Deserializer<'de>>(d: D) -> Result<EnvironmentName, D::Error> {
    parsed(d)
}

fn environment_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvironmentName>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|n| n.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn role<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
    parsed(d)
}

fn fractional<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<flagyard::core::FractionalVersion>, D::Error> {
    parsed(d).map(Some)
}

fn sha256_hex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let hex = String::deserialize(d)?.to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(serde::de::Error::custom(
            "a SHA-256 is 64 hex digits (sha256sum of the token)",
        ));
    }
    Ok(Some(hex))
}

/// Exactly one of the clear token and its hash, as the declared hash.
fn one_of(
    what: &str,
    name: &str,
    clear: &Option<String>,
    hashed: &Option<String>,
) -> Result<String, String> {
    match (clear, hashed) {
        (Some(clear), None) if !clear.is_empty() => Ok(flagyard_server::sha256_hex(clear)),
        (None, Some(hashed)) => Ok(hashed.clone()),
        _ => Err(format!(
            "{what} '{name}': give exactly one of `{0}` and `{0}-sha256`",
            if what == "sdk-keys" { "key" } else { "token" }
        )),
    }
}

impl ConfigFile {
    /// Reads and checks `path`; relative paths inside it are taken from its
    /// directory.
    pub(crate) fn read(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut file: ConfigFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut()
                && p.is_relative()
            {
                *p = base.join(&*p);
            }
        };
        resolve(&mut file.db);
        resolve(&mut file.flags);
        resolve(&mut file.events_db);
        resolve(&mut file.events_jsonl);
        for env in &mut file.environments {
            resolve(&mut env.flags);
        }
        let mut names = std::collections::BTreeSet::new();
        for env in &file.environments {
            if !names.insert(env.name.clone()) {
                return Err(format!(
                    "{}: environment '{}' is declared twice",
                    path.display(),
                    env.name
                ));
            }
        }
        file.credentials()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(file)
    }

    /// The declared SDK keys and admin tokens (checked: each names one token
    /// or hash, and an environment the file or the store may serve).
    pub(crate) fn credentials(&self) -> Result<Vec<DeclaredCredential>, String> {
        let mut out = Vec::new();
        for key in &self.sdk_keys {
            out.push(DeclaredCredential {
                name: key.name.clone(),
                grant: Grant::Sdk {
                    environment: key.environment.clone(),
                },
                sha256: one_of("sdk-keys", &key.name, &key.key, &key.key_sha256)?,
            });
        }
        for token in &self.admin_tokens {
            if token.role != Role::Editor && !token.may_edit.is_empty() {
                return Err(format!(
                    "admin-tokens '{}': `may-edit` is for editors (a {} token)",
                    token.name, token.role
                ));
            }
            out.push(DeclaredCredential {
                name: token.name.clone(),
                grant: Grant::Admin {
                    role: token.role,
                    environments: token.may_edit.clone(),
                },
                sha256: one_of(
                    "admin-tokens",
                    &token.name,
                    &token.token,
                    &token.token_sha256,
                )?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flagyard.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile::read(&path)
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let e = parse("listen = \"127.0.0.1:1\"\n\nadmin-tokn = \"x\"\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("admin-tokn"), "{e}");
    }

    #[test]
    fn a_bad_value_is_refused_with_its_line() {
        let e = parse("[[environments]]\nname = \"Prod env\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("only a-z"), "{e}");
        let e =
            parse("[[admin-tokens]]\nname = \"x\"\nrole = \"owner\"\ntoken = \"t\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("unknown role"), "{e}");
        let e = parse("max-connections = -1\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("listen = \"127.0.0.1:1\"\nfractional = \"v4\"\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("unknown fractional version 'v4'"),
            "{e}"
        );
        let file = parse("fractional = \"v3\"\n").unwrap();
        assert_eq!(file.fractional, Some(flagyard::core::FractionalVersion::V3));
    }

    #[test]
    fn tokens_are_hashed_and_paths_resolved_from_the_file() {
        let file = parse(
            "db = \"data/flags.sqlite\"\n\
             [[environments]]\nname = \"staging\"\nflags = \"staging.json\"\n\
             [[sdk-keys]]\nname = \"web\"\nenvironment = \"staging\"\nkey = \"k1\"\n\
             [[admin-tokens]]\nname = \"ada\"\nrole = \"editor\"\nmay-edit = [\"staging\"]\n\
             token-sha256 = \"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"\n",
        )
        .unwrap();
        assert!(file.db.unwrap().ends_with("data/flags.sqlite"));
        assert!(file.environments[0].flags.as_ref().unwrap().is_absolute());
        let credentials = file_credentials(
            "[[sdk-keys]]\nname = \"web\"\nenvironment = \"staging\"\nkey = \"abc\"\n",
        );
        assert_eq!(
            credentials[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let e = parse("[[sdk-keys]]\nname = \"web\"\nenvironment = \"staging\"\n").unwrap_err();
        assert!(e.contains("exactly one of `key` and `key-sha256`"), "{e}");
    }

    fn file_credentials(text: &str) -> Vec<DeclaredCredential> {
        parse(text).unwrap().credentials().unwrap()
    }
}
