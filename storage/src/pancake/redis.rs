//! The pancake admin and reader over one Redis connection.

use redis::AsyncCommands;

use super::model::{
    DEFAULT_EXTENSION, Kind, PancakeError, PancakeState, check_segment, validate_group,
    validate_name, validate_ratio,
};
use crate::documents::DEFAULT_HISTORY_KEEP;
use crate::documents::HistoryEntry;
use crate::redis_store::{Connection, now_ms, parse_entry, record_numbered_entry};

/// Numbers the entry, keeps it in the history and announces the change.
/// KEYS: sequence, history, channel. ARGV: entry template, keep.
const RECORD: &str = concat!(
    r#"
local entry, keep = ARGV[1], tonumber(ARGV[2])
local version = redis.call('INCR', KEYS[1])
"#,
    record_numbered_entry!()
);

/// Switches, flags and samples of one extension in Redis: the admin
/// operations, declaring defaults, and reading the whole state.
///
/// Every operation validates first and changes nothing on an error.
///
/// # Example
/// ```no_run
/// # async fn demo() -> Result<(), flagyard_storage::pancake::PancakeError> {
/// use flagyard_storage::pancake::{Kind, Pancake};
///
/// let pancake = Pancake::open("redis://127.0.0.1:6379", "pancake").await?;
/// pancake.set_active(Kind::Switch, "new_ui", true, "me").await?;
/// pancake.set_user("beta", "user", "ada", true, "me").await?;
/// pancake.set_sample("rollout", 25.0, "me").await?;
/// let state = pancake.list().await?;
/// assert!(state.switches["NEW_UI"]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Pancake {
    redis: Connection,
    ext: String,
}

fn ratio_text(ratio: f64) -> String {
    // Python's float repr for whole and short ratios ("25.0", "12.5"), which
    // flask-pancake writes too.
    format!("{ratio:?}")
}

impl Pancake {
    /// Connects to `url` for the extension `ext` (flask-pancake's default is
    /// [`DEFAULT_EXTENSION`]).
    pub async fn open(url: &str, ext: &str) -> Result<Pancake, PancakeError> {
        check_segment("extension", ext)?;
        let error = |source| PancakeError::Redis {
            url: url.to_string(),
            source,
        };
        let redis = Connection::open(url).await.map_err(error)?;
        Ok(Pancake {
            redis,
            ext: ext.to_string(),
        })
    }

    /// Connects with the default extension.
    pub async fn open_default(url: &str) -> Result<Pancake, PancakeError> {
        Pancake::open(url, DEFAULT_EXTENSION).await
    }

    /// The Redis URL.
    pub fn url(&self) -> &str {
        &self.redis.url
    }

    /// The extension name.
    pub fn extension(&self) -> &str {
        &self.ext
    }

    /// The Redis client (for subscriptions).
    pub fn client(&self) -> &redis::Client {
        &self.redis.client
    }

    /// The channel Flagyard's writes are announced on.
    pub fn changes_channel(&self) -> String {
        format!("FLAGYARD:{}:changes", self.ext)
    }

    /// Keyspace-notification patterns covering this extension's keys (in the
    /// URL's database).
    pub fn keyspace_patterns(&self) -> Vec<String> {
        let db = self
            .redis
            .client
            .get_connection_info()
            .redis_settings()
            .db();
        [Kind::Switch, Kind::Flag, Kind::Sample]
            .iter()
            .map(|kind| format!("__keyspace@{db}__:{}:{}:*", kind.prefix(), self.ext))
            .collect()
    }

    /// A pub/sub connection subscribed to [`changes_channel`](Self::changes_channel)
    /// and the [`keyspace_patterns`](Self::keyspace_patterns) (harmless where
    /// keyspace notifications are off: nothing arrives on them).
    pub async fn subscribe(&self) -> Result<redis::aio::PubSub, PancakeError> {
        let patterns = self.keyspace_patterns();
        crate::redis_store::subscribe(&self.redis.client, &[self.changes_channel()], &patterns)
            .await
            .map_err(|e| self.redis_error(e))
    }

    /// Whether Redis sends the keyspace notifications a mirror needs (`K` with
    /// string and generic events); with `enable`, turns them on first where
    /// they are off (`CONFIG SET notify-keyspace-events`, adding `K$g` to what
    /// is set). An error means `CONFIG` is refused (as on some hosted Redis).
    pub async fn keyspace_notifications(&self, enable: bool) -> Result<bool, PancakeError> {
        let mut conn = self.redis.conn.clone();
        let current: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e))?;
        let flags = current.get(1).map_or("", String::as_str);
        let covered = flags.contains('K')
            && (flags.contains('A') || (flags.contains('$') && flags.contains('g')));
        if covered || !enable {
            return Ok(covered);
        }
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(format!("{flags}K$g"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e))?;
        Ok(true)
    }

    /// The key of a switch, a flag's global value or a sample.
    pub fn key(&self, kind: Kind, name: &str) -> String {
        format!("{}:{}:{}", kind.prefix(), self.ext, name)
    }

    /// The flag's stored (upper-case) name and the key of one object's
    /// override, or what is wrong with the name, group or id.
    fn checked_override(
        &self,
        name: &str,
        group: &str,
        id: &str,
    ) -> Result<(String, String), PancakeError> {
        let name = validate_name(name)?;
        validate_group(group)?;
        check_object_id(id)?;
        let key = self.override_key(group, &name, id);
        Ok((name, key))
    }

    fn override_key(&self, group: &str, name: &str, id: &str) -> String {
        format!("FLAG:{}:k:{group}:{name}:{id}", self.ext)
    }

    fn tracking_key(&self, group: &str, name: &str) -> String {
        format!("FLAG:{}:t:{group}:{name}", self.ext)
    }

    fn redis_error(&self, source: redis::RedisError) -> PancakeError {
        PancakeError::Redis {
            url: self.redis.url.clone(),
            source,
        }
    }

    async fn record(&self, actor: &str, action: &str, detail: &str) -> Result<(), PancakeError> {
        let entry = serde_json::json!({
            "version": "__V__", "atMs": now_ms(), "actor": actor, "action": action, "detail": detail,
        })
        .to_string();
        let mut conn = self.redis.conn.clone();
        let _: u64 = redis::Script::new(RECORD)
            .key(format!("FLAGYARD:{}:seq", self.ext))
            .key(format!("FLAGYARD:{}:history", self.ext))
            .key(self.changes_channel())
            .arg(entry)
            .arg(DEFAULT_HISTORY_KEEP)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e))?;
        Ok(())
    }

    async fn set_value(
        &self,
        kind: Kind,
        name: &str,
        value: &str,
        actor: &str,
        action: &str,
    ) -> Result<(), PancakeError> {
        let name = validate_name(name)?;
        let mut conn = self.redis.conn.clone();
        // SET … GET: the previous value tells a creation from a change.
        let previous: Option<String> = redis::cmd("SET")
            .arg(self.key(kind, &name))
            .arg(value)
            .arg("GET")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e))?;
        let action = if previous.is_none() { "create" } else { action };
        self.record(actor, action, &format!("{kind} {name}")).await
    }

    /// Turns a switch or a flag (globally) on (`active`) or off, creating it
    /// if needed; a sample is set to 100 or 0.
    pub async fn set_active(
        &self,
        kind: Kind,
        name: &str,
        active: bool,
        actor: &str,
    ) -> Result<(), PancakeError> {
        if kind == Kind::Sample {
            // A sample is on or off through its ratio.
            let ratio = if active { 100.0 } else { 0.0 };
            return self.set_sample(name, ratio, actor).await;
        }
        let (value, action) = if active {
            ("1", "enable")
        } else {
            ("0", "disable")
        };
        self.set_value(kind, name, value, actor, action).await
    }

    /// Sets a sample's ratio (0–100), creating it if needed.
    pub async fn set_sample(
        &self,
        name: &str,
        ratio: f64,
        actor: &str,
    ) -> Result<(), PancakeError> {
        let upper = validate_name(name)?;
        validate_ratio(ratio).map_err(|_| PancakeError::RatioOutOfRange { name: upper, ratio })?;
        self.set_value(Kind::Sample, name, &ratio_text(ratio), actor, "set")
            .await
    }

    /// Deletes a switch's, flag's (global value only) or sample's stored value,
    /// so the declared default applies again. Fails if nothing is stored.
    pub async fn clear(&self, kind: Kind, name: &str, actor: &str) -> Result<(), PancakeError> {
        let name = validate_name(name)?;
        let mut conn = self.redis.conn.clone();
        let deleted: u64 = conn
            .del(self.key(kind, &name))
            .await
            .map_err(|e| self.redis_error(e))?;
        if deleted == 0 {
            return Err(PancakeError::NotFound { kind, name });
        }
        self.record(actor, "clear", &format!("{kind} {name}")).await
    }

    /// Turns a flag on (`active`) or off for one object of a group (`user`
    /// and its id, say).
    pub async fn set_user(
        &self,
        name: &str,
        group: &str,
        id: &str,
        active: bool,
        actor: &str,
    ) -> Result<(), PancakeError> {
        let (name, key) = self.checked_override(name, group, id)?;
        let mut conn = self.redis.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .sadd(self.tracking_key(group, &name), &key)
            .ignore()
            .set(&key, if active { "1" } else { "0" })
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e))?;
        let action = if active {
            "enable-user"
        } else {
            "disable-user"
        };
        self.record(actor, action, &format!("flag {name} {group} {id}"))
            .await
    }

    /// Removes one object's override; fails if there is none.
    pub async fn clear_user(
        &self,
        name: &str,
        group: &str,
        id: &str,
        actor: &str,
    ) -> Result<(), PancakeError> {
        let (name, key) = self.checked_override(name, group, id)?;
        let mut conn = self.redis.conn.clone();
        let (deleted, _): (u64, u64) = redis::pipe()
            .atomic()
            .del(&key)
            .srem(self.tracking_key(group, &name), &key)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e))?;
        if deleted == 0 {
            return Err(PancakeError::NoOverride {
                name,
                group: group.to_string(),
                id: id.to_string(),
            });
        }
        self.record(actor, "clear-user", &format!("flag {name} {group} {id}"))
            .await
    }

    /// Removes every override of a group for a flag (tracked ones, and any
    /// written without tracking); fails if there are none.
    pub async fn clear_all_users(
        &self,
        name: &str,
        group: &str,
        actor: &str,
    ) -> Result<usize, PancakeError> {
        let name = validate_name(name)?;
        validate_group(group)?;
        let tracking = self.tracking_key(group, &name);
        let mut conn = self.redis.conn.clone();
        let mut keys: Vec<String> = conn
            .smembers(&tracking)
            .await
            .map_err(|e| self.redis_error(e))?;
        keys.extend(
            self.scan(&format!("{}*", self.override_key(group, &name, "")))
                .await?,
        );
        keys.sort_unstable();
        keys.dedup();
        let deleted: u64 = if keys.is_empty() {
            0
        } else {
            let (deleted,): (u64,) = redis::pipe()
                .atomic()
                .del(&tracking)
                .ignore()
                .del(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.redis_error(e))?;
            deleted
        };
        if deleted == 0 {
            return Err(PancakeError::NoOverrides {
                name,
                group: group.to_string(),
            });
        }
        self.record(actor, "clear-all-users", &format!("flag {name} {group}"))
            .await?;
        Ok(deleted as usize)
    }

    /// Stores a default where nothing is stored yet (what flask-pancake does on
    /// its first read of a declared switch, flag or sample).
    pub async fn declare(&self, kind: Kind, name: &str, default: f64) -> Result<(), PancakeError> {
        let upper = validate_name(name)?;
        let value = match kind {
            Kind::Sample => {
                validate_ratio(default).map_err(|_| PancakeError::RatioOutOfRange {
                    name: upper.clone(),
                    ratio: default,
                })?;
                ratio_text(default)
            }
            Kind::Switch | Kind::Flag => if default != 0.0 { "1" } else { "0" }.to_string(),
        };
        let mut conn = self.redis.conn.clone();
        let _: bool = conn
            .set_nx(self.key(kind, &upper), value)
            .await
            .map_err(|e| self.redis_error(e))?;
        Ok(())
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, PancakeError> {
        let mut conn = self.redis.conn.clone();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.redis_error(e))?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Reads every switch, flag and sample of the extension (SCAN, then MGET
    /// in batches). Values that cannot be read are listed as problems.
    pub async fn list(&self) -> Result<PancakeState, PancakeError> {
        let mut keys = Vec::new();
        for kind in [Kind::Switch, Kind::Flag, Kind::Sample] {
            keys.extend(
                self.scan(&format!("{}:{}:*", kind.prefix(), self.ext))
                    .await?,
            );
        }
        let tracking = format!("FLAG:{}:t:", self.ext);
        keys.retain(|key| !key.starts_with(&tracking));
        keys.sort_unstable();
        keys.dedup();
        let mut state = PancakeState::default();
        let mut conn = self.redis.conn.clone();
        for chunk in keys.chunks(1000) {
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.redis_error(e))?;
            for (key, value) in chunk.iter().zip(&values) {
                state.absorb(&self.ext, key, value.as_deref());
            }
        }
        Ok(state)
    }

    /// The newest `limit` admin changes made through Flagyard, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, PancakeError> {
        let mut conn = self.redis.conn.clone();
        let raw: Vec<String> = conn
            .lrange(
                format!("FLAGYARD:{}:history", self.ext),
                0,
                limit.max(1) as isize - 1,
            )
            .await
            .map_err(|e| self.redis_error(e))?;
        Ok(raw.iter().filter_map(|r| parse_entry(r)).collect())
    }
}

fn check_object_id(id: &str) -> Result<(), PancakeError> {
    if id.is_empty() || id.chars().any(char::is_whitespace) || id.len() > 200 {
        return Err(PancakeError::InvalidName {
            what: "object id",
            name: id.to_string(),
            reason: "it is empty, has white space or is longer than 200 bytes",
        });
    }
    Ok(())
}
