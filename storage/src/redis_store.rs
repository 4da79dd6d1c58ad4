//! Redis persistence: the versioned document (with history) that several flag
//! servers share, and a provider cache in the same layout.
//!
//! Keys under a prefix (default `flagyard`): `{prefix}:document` is a hash with
//! `version` and `body`; `{prefix}:history` a list of JSON entries, newest
//! first (trimmed to 1,000); every accepted write publishes its version on the
//! channel `{prefix}:changes`. Writes are Lua scripts, so the body and its
//! version change together and a version only moves forward.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flagyard_core::{Store, StoreError};
use redis::AsyncCommands;

use crate::credentials::StoredCredential;
use crate::documents::{
    Change, DEFAULT_ENVIRONMENT, DEFAULT_HISTORY_KEEP, EnvironmentName, HistoryEntry,
    StoredDocument,
};

/// The end of every script that records a change, as Lua text: numbers the
/// entry template `entry` (a JSON text with a `"__V__"` placeholder) with
/// `version`, pushes it onto the history list `KEYS[2]` trimmed to `keep`
/// entries, and publishes the version on the channel `KEYS[3]`.
macro_rules! record_numbered_entry {
    () => {
        r#"
-- gsub returns (text, count): keep only the text.
local numbered = string.gsub(entry, '"__V__"', tostring(version))
redis.call('LPUSH', KEYS[2], numbered)
redis.call('LTRIM', KEYS[2], 0, keep - 1)
redis.call('PUBLISH', KEYS[3], version)
return version
"#
    };
}
#[cfg(feature = "pancake")]
pub(crate) use record_numbered_entry;

/// Increments the version, stores the body and the history entry, declares
/// the environment, publishes. KEYS: document, history, channel, environment
/// set. ARGV: body, entry template, keep, expected version (or -1),
/// environment name.
const REPLACE: &str = concat!(
    r#"
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local entry, keep, expected = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if expected >= 0 and expected ~= current then
  return 0
end
local version = current + 1
redis.call('HSET', KEYS[1], 'version', version, 'body', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[5])
"#,
    record_numbered_entry!()
);

/// Stores a body with a given version only if it is newer than the stored one.
const PUT_VERSION: &str = r#"
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = tonumber(ARGV[2])
if version <= current then
  return 0
end
redis.call('HSET', KEYS[1], 'version', version, 'body', ARGV[1])
redis.call('PUBLISH', KEYS[3], version)
return version
"#;

pub(crate) fn redis_error(url: &str, e: redis::RedisError) -> StoreError {
    // A Redis that cannot be reached now may be reached later; a refused
    // script or a wrong type will not change by retrying.
    let transient = e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_io_error()
        || e.is_timeout()
        || e.is_unrecoverable_error();
    StoreError::database(format!("redis {}", masked_url(url)), transient, e)
}

/// The URL with its password (if any) replaced by `***`, for logs and errors.
///
/// # Example
/// ```
/// assert_eq!(
///     flagyard_storage::masked_url("redis://:s3cret@10.0.0.1:6379/0"),
///     "redis://:***@10.0.0.1:6379/0"
/// );
/// assert_eq!(flagyard_storage::masked_url("redis://127.0.0.1"), "redis://127.0.0.1");
/// ```
pub fn masked_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_string(),
    }
}

/// A pub/sub connection subscribed to `channels` and the `patterns`.
pub(crate) async fn subscribe(
    client: &redis::Client,
    channels: &[String],
    patterns: &[String],
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    for channel in channels {
        pubsub.subscribe(channel).await?;
    }
    for pattern in patterns {
        pubsub.psubscribe(pattern).await?;
    }
    Ok(pubsub)
}

/// A Redis client and its connection that reconnects by itself, as every
/// Redis user in this crate holds them. `Debug` masks the password.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) url: String,
    pub(crate) client: redis::Client,
    pub(crate) conn: redis::aio::ConnectionManager,
}

impl Connection {
    /// Connects to `url` (the manager reconnects after Redis restarts).
    pub(crate) async fn open(url: &str) -> redis::RedisResult<Connection> {
        let client = redis::Client::open(url)?;
        let conn = connection_manager(&client).await?;
        Ok(Connection {
            url: url.to_string(),
            client,
            conn,
        })
    }
}

/// A connection and the prefix its keys live under: what the documents and
/// the collected events are kept in.
#[derive(Clone, Debug)]
pub(crate) struct Keyspace {
    pub(crate) redis: Connection,
    pub(crate) prefix: String,
}

impl Keyspace {
    /// Connects to `url` for keys under `prefix`.
    pub(crate) async fn open(url: &str, prefix: &str) -> Result<Keyspace, StoreError> {
        let redis = Connection::open(url)
            .await
            .map_err(|e| redis_error(url, e))?;
        Ok(Keyspace {
            redis,
            prefix: prefix.to_string(),
        })
    }

    /// The key `name` under the prefix (`prefix:name`).
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// A Redis error on this connection.
    pub(crate) fn error(&self, e: redis::RedisError) -> StoreError {
        redis_error(&self.redis.url, e)
    }

    /// One field of the hash `prefix:hash` (`None`: absent).
    pub(crate) async fn hget<T: redis::FromRedisValue>(
        &self,
        hash: &str,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let mut conn = self.redis.conn.clone();
        redis::cmd("HGET")
            .arg(self.key(hash))
            .arg(field)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &masked_url(&self.url))
            .finish_non_exhaustive()
    }
}

/// A connection that reconnects by itself after Redis restarts, with short
/// timeouts (2 s to connect or answer, 2 retries).
async fn connection_manager(
    client: &redis::Client,
) -> redis::RedisResult<redis::aio::ConnectionManager> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    client.get_connection_manager_with_config(config).await
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One environment's document and its history in Redis, shared by several
/// servers.
///
/// Needs the crate feature `redis`.
///
/// [`open`](Self::open) gives the environment `default`, whose keys are
/// `prefix:document`, `prefix:history` and `prefix:changes` (as before
/// environments existed, so nothing migrates);
/// [`environment`](Self::environment) another, under `prefix:env:NAME:`.
/// The set `prefix:environments` names them all.
///
/// # Example
/// ```no_run
/// # async fn demo() -> Result<(), flagyard_core::StoreError> {
/// use flagyard_storage::{Change, RedisDocuments};
///
/// let docs = RedisDocuments::open("redis://127.0.0.1:6379", "flagyard").await?;
/// let version = docs.replace(&Change::new(r#"{"flags": {}}"#, "me", "put-document", "")).await?;
/// assert_eq!(docs.current().await?.unwrap().version, version);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RedisDocuments {
    space: Keyspace,
    env: EnvironmentName,
    history_keep: usize,
}

impl RedisDocuments {
    /// Connects to `url` (`redis://host:port/db`) using keys under `prefix`,
    /// for the environment `default`.
    pub async fn open(url: &str, prefix: &str) -> Result<RedisDocuments, StoreError> {
        Ok(RedisDocuments {
            space: Keyspace::open(url, prefix).await?,
            env: EnvironmentName::default_environment(),
            history_keep: DEFAULT_HISTORY_KEEP,
        })
    }

    /// The environment `name` on the same connection (its document is `None`
    /// until the first write, which also declares it).
    pub fn environment(&self, name: EnvironmentName) -> RedisDocuments {
        RedisDocuments {
            space: self.space.clone(),
            env: name,
            history_keep: self.history_keep,
        }
    }

    /// Which environment this is.
    pub fn name(&self) -> &EnvironmentName {
        &self.env
    }

    /// Every environment declared under the prefix, by name (names that are
    /// not valid, written by something else, are left out).
    pub async fn environments(&self) -> Result<Vec<EnvironmentName>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let names: Vec<String> = conn
            .smembers(self.space.key("environments"))
            .await
            .map_err(|e| self.space.error(e))?;
        let mut names: Vec<EnvironmentName> = names.iter().filter_map(|n| n.parse().ok()).collect();
        names.sort();
        Ok(names)
    }

    /// Declares this environment (listed before any document is written);
    /// whether it is new.
    pub async fn declare(&self) -> Result<bool, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let added: u64 = conn
            .sadd(self.space.key("environments"), self.env.as_str())
            .await
            .map_err(|e| self.space.error(e))?;
        Ok(added > 0)
    }

    flagyard_core::setters! {
        /// Keeps the newest `keep` history entries (default
        /// [`DEFAULT_HISTORY_KEEP`]).
        with_history_keep(keep: usize) => history_keep = keep.max(1);
    }

    /// How many history entries are kept.
    pub fn history_keep(&self) -> usize {
        self.history_keep
    }

    /// The Redis client (for subscribing to [`changes_channel`](Self::changes_channel)).
    pub fn client(&self) -> &redis::Client {
        &self.space.redis.client
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.space.redis.url
    }

    /// This environment's key `name`.
    fn key(&self, name: &str) -> String {
        if self.env.as_str() == DEFAULT_ENVIRONMENT {
            self.space.key(name)
        } else {
            self.space.key(&format!("env:{}:{name}", self.env))
        }
    }

    /// The channel on which every accepted version is published.
    pub fn changes_channel(&self) -> String {
        self.key("changes")
    }

    /// A pub/sub connection subscribed to [`changes_channel`](Self::changes_channel)
    /// (each message's payload is the new version).
    pub async fn subscribe(&self) -> Result<redis::aio::PubSub, StoreError> {
        subscribe(&self.space.redis.client, &[self.changes_channel()], &[])
            .await
            .map_err(|e| self.space.error(e))
    }

    /// The current version (0: none), without the body.
    pub async fn version(&self) -> Result<u64, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let v: Option<u64> = conn
            .hget(self.key("document"), "version")
            .await
            .map_err(|e| self.space.error(e))?;
        Ok(v.unwrap_or(0))
    }

    /// The current document, if any.
    pub async fn current(&self) -> Result<Option<StoredDocument>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let (version, body): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key("document"))
            .arg("version")
            .arg("body")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.space.error(e))?;
        Ok(match (version, body) {
            (Some(version), Some(body)) => Some(StoredDocument { version, body }),
            _ => None,
        })
    }

    /// Makes `body` the current document with the next version; returns it.
    pub async fn replace(&self, change: &Change) -> Result<u64, StoreError> {
        self.replace_if(change, None).await
    }

    /// Like [`replace`](Self::replace), only if the current version is
    /// `expected`; returns 0 when it is not.
    pub async fn replace_if(
        &self,
        change: &Change,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        redis::Script::new(REPLACE)
            .key(self.key("document"))
            .key(self.key("history"))
            .key(self.key("changes"))
            .key(self.space.key("environments"))
            .arg(&change.body)
            .arg(serde_json_entry(
                &change.actor,
                &change.action,
                &change.detail,
                &change.diff,
            ))
            .arg(self.history_keep)
            .arg(expected.map_or(-1, |e| e as i64))
            .arg(self.env.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.space.error(e))
    }

    /// Stores `body` as `version` only if that is newer than what is stored
    /// (for mirrors); returns whether it was stored.
    pub async fn put_version(&self, body: &str, version: u64) -> Result<bool, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let stored: u64 = redis::Script::new(PUT_VERSION)
            .key(self.key("document"))
            .key(self.key("history"))
            .key(self.key("changes"))
            .arg(body)
            .arg(version)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.space.error(e))?;
        Ok(stored > 0)
    }

    /// Every credential stored under the prefix (revoked ones too), by id.
    pub async fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let raw: std::collections::BTreeMap<String, String> = conn
            .hgetall(self.space.key("credentials"))
            .await
            .map_err(|e| self.space.error(e))?;
        raw.iter()
            .map(|(id, body)| {
                serde_json::from_str(body).map_err(|e| {
                    StoreError::database(
                        format!("redis {}", masked_url(self.url())),
                        false,
                        format!("credential {id}: {e}"),
                    )
                })
            })
            .collect()
    }

    /// Stores `credential`, replacing the one with its id, and announces it
    /// on [`credentials_channel`](Self::credentials_channel).
    pub async fn put_credential(&self, credential: &StoredCredential) -> Result<(), StoreError> {
        let body = serde_json::to_string(credential)
            .map_err(|e| StoreError::database("credential", false, e))?;
        let mut conn = self.space.redis.conn.clone();
        redis::pipe()
            .atomic()
            .hset(self.space.key("credentials"), &credential.id, body)
            .ignore()
            .publish(self.credentials_channel(), &credential.id)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.space.error(e))
    }

    /// A pub/sub connection that hears every environment's changes and the
    /// credentials' (the default environment's and the credentials' channels,
    /// and the pattern `prefix:env:*:changes`): what a flag server sharing
    /// this Redis follows.
    pub async fn subscribe_everything(&self) -> Result<redis::aio::PubSub, StoreError> {
        let default = self.environment(EnvironmentName::default_environment());
        subscribe(
            &self.space.redis.client,
            &[default.changes_channel(), self.credentials_channel()],
            &[self.space.key("env:*:changes")],
        )
        .await
        .map_err(|e| self.space.error(e))
    }

    /// The channel on which every stored credential's id is announced.
    pub fn credentials_channel(&self) -> String {
        self.space.key("credentials:changes")
    }

    /// A pub/sub connection subscribed to
    /// [`credentials_channel`](Self::credentials_channel).
    pub async fn subscribe_credentials(&self) -> Result<redis::aio::PubSub, StoreError> {
        subscribe(&self.space.redis.client, &[self.credentials_channel()], &[])
            .await
            .map_err(|e| self.space.error(e))
    }

    /// The newest `limit` history entries, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let raw: Vec<String> = conn
            .lrange(self.key("history"), 0, limit.max(1) as isize - 1)
            .await
            .map_err(|e| self.space.error(e))?;
        Ok(raw.iter().filter_map(|r| parse_entry(r)).collect())
    }
}

/// A history entry as JSON, with a `"__V__"` placeholder for the version the
/// script assigns.
fn serde_json_entry(actor: &str, action: &str, detail: &str, diff: &str) -> String {
    let mut entry = serde_json::json!({"version": "__V__", "atMs": now_ms(), "actor": actor, "action": action, "detail": detail});
    if let Ok(diff) = serde_json::from_str::<serde_json::Value>(diff) {
        entry["diff"] = diff;
    }
    entry.to_string()
}

pub(crate) fn parse_entry(raw: &str) -> Option<HistoryEntry> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    Some(HistoryEntry {
        version: v["version"].as_u64()?,
        at_ms: v["atMs"].as_u64()?,
        actor: v["actor"].as_str()?.to_string(),
        action: v["action"].as_str()?.to_string(),
        detail: v["detail"].as_str()?.to_string(),
        diff: v.get("diff").map(ToString::to_string).unwrap_or_default(),
    })
}

/// A provider cache in Redis (the same layout as the servers'), under its own
/// prefix. Calls are synchronous with short timeouts; the store is only used
/// when a document is applied, never on the read path.
///
/// Needs the crate feature `redis`.
#[derive(Debug)]
pub struct RedisStore {
    url: String,
    prefix: String,
    client: redis::Client,
    timeout: Duration,
}

impl RedisStore {
    /// A cache at `url` under `prefix` (for example `myapp-cache`).
    pub fn new(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore {
            url: url.to_string(),
            prefix: prefix.to_string(),
            client: redis::Client::open(url).map_err(|e| redis_error(url, e))?,
            timeout: Duration::from_secs(2),
        })
    }

    fn conn(&self) -> Result<redis::Connection, StoreError> {
        let conn = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| redis_error(&self.url, e))?;
        conn.set_read_timeout(Some(self.timeout))
            .map_err(|e| redis_error(&self.url, e))?;
        conn.set_write_timeout(Some(self.timeout))
            .map_err(|e| redis_error(&self.url, e))?;
        Ok(conn)
    }
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        format!("redis:{} ({})", self.url, self.prefix)
    }

    fn load(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        redis::Commands::hget(&mut conn, format!("{}:document", self.prefix), "body")
            .map_err(|e| redis_error(&self.url, e))
    }

    fn save(&self, document: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let entry = serde_json_entry("cache", "save", "", "");
        let _: u64 = redis::Script::new(REPLACE)
            .key(format!("{}:document", self.prefix))
            .key(format!("{}:history", self.prefix))
            .key(format!("{}:changes", self.prefix))
            .key(format!("{}:environments", self.prefix))
            .arg(document)
            .arg(entry)
            .arg(3)
            .arg(-1)
            .arg(DEFAULT_ENVIRONMENT)
            .invoke(&mut conn)
            .map_err(|e| redis_error(&self.url, e))?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
