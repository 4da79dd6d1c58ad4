//! [`RedisEvents`]: collected events in a Redis stream, shared by every flag
//! server on one Redis, so any of them answers queries (and computes results)
//! over all of them.
//!
//! Keys under the prefix: `{prefix}:events` is a stream whose entry ids are
//! `0-<n>` with `n` from the counter `{prefix}:events:seq` (so ids are plain
//! increasing numbers, as in SQLite), each entry holding `r` (received, ms)
//! and `e` (the event's JSON); `{prefix}:events:batch:<id>` marks a batch id
//! as kept (expiring with the retention); `{prefix}:events:cursors` is a hash
//! of forwarders' positions. A batch is one Lua script: its id and its events
//! together, or nothing.

use flagyard_core::StoreError;
use flagyard_core::event_json::WireEvent;

use super::{EventQuery, Ingested, Retention, StoredEvent, rows};
use crate::redis_store::{Keyspace, now_ms};

/// Marks the batch id (or returns -1 when it was known) and appends the
/// events. KEYS: stream, counter, batch key. ARGV: batch TTL (s), received
/// at (ms), the most entries kept, then one event JSON each.
const INGEST: &str = r#"
if not redis.call('SET', KEYS[3], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return -1
end
for i = 5, #ARGV do
  local n = redis.call('INCR', KEYS[2])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. n, 'r', ARGV[2], 'v', ARGV[4], 'e', ARGV[i])
end
return #ARGV - 4
"#;

/// Entries read per request when a query filters.
const SCAN: usize = 1000;

/// Entries a query looks at at most before answering what it found (its
/// `next` goes on from there).
const SCAN_LIMIT: usize = 100_000;

/// Collected events in a Redis stream, shared by several servers.
///
/// Needs the crate feature `redis`.
///
/// Queries filter while reading the stream newest first (or oldest first
/// after an id), so a filter that matches rarely reads further: a page looks
/// at most at 100,000 entries and answers what it found among them.
#[derive(Clone, Debug)]
pub struct RedisEvents {
    pub(crate) space: Keyspace,
    retention: Retention,
}

/// One stream entry: its id and fields.
pub(crate) type Entry = (String, Vec<(String, String)>);

impl RedisEvents {
    /// Connects to `url` using keys under `prefix`; `retention` bounds the
    /// stream at every ingest (count) and prune (age).
    pub async fn open(
        url: &str,
        prefix: &str,
        retention: Retention,
    ) -> Result<RedisEvents, StoreError> {
        Ok(RedisEvents {
            space: Keyspace::open(url, prefix).await?,
            retention,
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.space.redis.url
    }

    pub(crate) fn key(&self, name: &str) -> String {
        self.space.key(name)
    }

    pub(crate) fn error(&self, e: redis::RedisError) -> StoreError {
        self.space.error(e)
    }

    /// Keeps a batch's events, unless its id was seen before.
    pub async fn ingest(
        &self,
        batch_id: &str,
        environment: &str,
        events: &[WireEvent],
    ) -> Result<Ingested, StoreError> {
        let ingest = redis::Script::new(INGEST);
        let mut script = ingest.prepare_invoke();
        script
            .key(self.key("events"))
            .key(self.key("events:seq"))
            .key(self.key(&format!("events:batch:{batch_id}")))
            .arg((self.retention.max_age_ms / 1000).max(1))
            .arg(now_ms())
            .arg(self.retention.max_events)
            .arg(environment);
        for row in rows(events) {
            let body = serde_json::to_string(&*row)
                .map_err(|e| StoreError::database("event JSON", false, e))?;
            script.arg(body);
        }
        let mut conn = self.space.redis.conn.clone();
        let kept: i64 = script
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(if kept < 0 {
            Ingested {
                kept: 0,
                duplicate: true,
            }
        } else {
            Ingested {
                kept: events.len(),
                duplicate: false,
            }
        })
    }

    /// The events `query` asks for: newest first, or oldest first after
    /// `query.after`.
    pub async fn query(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let page = query.page_size();
        let forward = query.after.is_some();
        // The next id to read from (exclusive), as the stream spells it.
        let mut from = match (query.after, query.before) {
            (Some(after), _) => format!("(0-{after}"),
            (None, Some(before)) => format!("(0-{before}"),
            (None, None) => "+".into(),
        };
        let mut out = Vec::new();
        let mut looked = 0;
        let mut conn = self.space.redis.conn.clone();
        while out.len() < page && looked < SCAN_LIMIT {
            let count = if is_filtered(query) {
                SCAN
            } else {
                page - out.len()
            };
            let (command, start, end) = if forward {
                ("XRANGE", from.as_str(), "+")
            } else {
                ("XREVRANGE", from.as_str(), "-")
            };
            let entries: Vec<Entry> = redis::cmd(command)
                .arg(self.key("events"))
                .arg(start)
                .arg(end)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?;
            let Some(last) = entries.last() else {
                break;
            };
            from = format!("({}", last.0);
            looked += entries.len();
            for entry in entries {
                let stored = self.decode(entry)?;
                if matches(query, &stored) && out.len() < page {
                    out.push(stored);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn decode(&self, (id, fields): Entry) -> Result<StoredEvent, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            path: self.key("events").into(),
            detail: format!("entry {id}: {detail}"),
        };
        let n = id
            .strip_prefix("0-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| corrupt("not an id this store writes".into()))?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| corrupt(format!("no field {name}")))
        };
        let received_at = field("r")?
            .parse()
            .map_err(|e| corrupt(format!("r: {e}")))?;
        let event = serde_json::from_str(field("e")?).map_err(|e| corrupt(format!("e: {e}")))?;
        // Entries written before environments were recorded have no `v`.
        let environment = field("v").unwrap_or(crate::DEFAULT_ENVIRONMENT).to_string();
        Ok(StoredEvent {
            id: n,
            received_at,
            environment,
            event,
        })
    }

    /// How many events are kept.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        redis::cmd("XLEN")
            .arg(self.key("events"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    /// Deletes the events older than the retention's age; returns how many.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let cutoff = now_ms().saturating_sub(self.retention.max_age_ms);
        let mut conn = self.space.redis.conn.clone();
        // The first entry young enough to keep: everything before it goes.
        let mut from = "-".to_string();
        let mut keep_from: Option<String> = None;
        loop {
            let entries: Vec<Entry> = redis::cmd("XRANGE")
                .arg(self.key("events"))
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(SCAN)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?;
            let Some(last) = entries.last().map(|e| e.0.clone()) else {
                break;
            };
            if let Some(young) = entries.into_iter().find(|e| {
                self.decode(e.clone())
                    .is_ok_and(|stored| stored.received_at >= cutoff)
            }) {
                keep_from = Some(young.0);
                break;
            }
            from = format!("({last}");
        }
        let trim = redis::cmd("XTRIM")
            .arg(self.key("events"))
            .arg("MINID")
            .clone();
        let deleted: u64 = match keep_from {
            Some(id) => trim.clone().arg(id).query_async(&mut conn).await,
            // Nothing young: everything goes.
            None => {
                trim.clone()
                    .arg("0-18446744073709551615")
                    .query_async(&mut conn)
                    .await
            }
        }
        .map_err(|e| self.error(e))?;
        Ok(deleted)
    }

    /// The last event id a named forwarder passed on (0: none).
    pub async fn cursor(&self, name: &str) -> Result<u64, StoreError> {
        let last: Option<u64> = self.space.hget("events:cursors", name).await?;
        Ok(last.unwrap_or(0))
    }

    /// Records how far a named forwarder got.
    pub async fn set_cursor(&self, name: &str, last_id: u64) -> Result<(), StoreError> {
        let mut conn = self.space.redis.conn.clone();
        redis::cmd("HSET")
            .arg(self.key("events:cursors"))
            .arg(name)
            .arg(last_id)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }
}

fn is_filtered(query: &EventQuery) -> bool {
    query.kind.is_some()
        || query.flag.is_some()
        || query.name.is_some()
        || query.targeting_key.is_some()
        || query.since.is_some()
        || query.until.is_some()
}

/// Whether a stored event passes the query's filters.
fn matches(query: &EventQuery, stored: &StoredEvent) -> bool {
    let columns = super::Columns::of(&stored.event);
    let at = stored.event.at();
    query.kind.as_deref().is_none_or(|k| k == columns.kind)
        && query
            .flag
            .as_deref()
            .is_none_or(|f| columns.flag == Some(f))
        && query
            .name
            .as_deref()
            .is_none_or(|n| columns.name == Some(n))
        && query
            .targeting_key
            .as_deref()
            .is_none_or(|k| columns.targeting_key == Some(k))
        && query
            .environment
            .as_deref()
            .is_none_or(|e| stored.environment == e)
        && query.since.is_none_or(|s| at >= s)
        && query.until.is_none_or(|u| at < u)
}
