//! Experiments beside the events in Redis ([`RedisEvents`]), shared by every
//! server on it.
//!
//! Keys under the prefix: `experiments` (hash: flag → definition),
//! `experiments:tallies` (hash: flag → tally), `experiments:<flag>:participants`
//! (hash: targeting key → part), `experiments:cursor` (the last event id the
//! tallies have read) and `experiments:version` (counts changes to the
//! definitions). A step reads events after the cursor and commits its tallies
//! and parts in one script that checks the cursor and the version are still
//! what it read: when two servers step at once, one commits and the other
//! reads again, so every event is counted once.

use std::collections::HashMap;

use flagyard_core::StoreError;

use super::{Collected, Experiment, Participant, Tally, Working};
use crate::RedisEvents;
use crate::events::redis::Entry;

/// Adds the definition unless the flag has one. KEYS: definitions, tallies,
/// version, the flag's participants. ARGV: flag, definition, empty tally.
const CREATE: &str = r#"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('DEL', KEYS[4])
redis.call('INCR', KEYS[3])
return 1
"#;

/// Replaces a definition if it is still the one read. KEYS: definitions,
/// version. ARGV: flag, the definition read, the new one.
const REPLACE: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
"#;

/// Deletes a definition, its tally and parts. KEYS: definitions, tallies,
/// version, the flag's participants. ARGV: flag.
const DELETE: &str = r#"
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4])
redis.call('INCR', KEYS[3])
return n
"#;

/// Commits a step if the cursor and the version are what it read. KEYS:
/// cursor, version, tallies, then the participant hashes. ARGV: cursor
/// read, new cursor, version read, the number of tallies T, T pairs (flag,
/// tally), then triples (index of the participant hash in KEYS, key, part).
const COMMIT: &str = r#"
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local t = tonumber(ARGV[4])
for i = 0, t - 1 do
  local flag = ARGV[5 + 2 * i]
  if redis.call('HEXISTS', KEYS[3], flag) == 1 then
    redis.call('HSET', KEYS[3], flag, ARGV[6 + 2 * i])
  end
end
for i = 5 + 2 * t, #ARGV, 3 do
  redis.call('HSET', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
return 1
"#;

/// Steps retried at most when other servers keep committing first.
const CONFLICT_RETRIES: usize = 20;

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::database("experiment JSON", false, e)
}

impl RedisEvents {
    fn participants_key(&self, flag: &str) -> String {
        self.key(&format!("experiments:{flag}:participants"))
    }

    fn corrupt(&self, flag: &str, what: &str, e: serde_json::Error) -> StoreError {
        StoreError::Corrupt {
            path: self.key("experiments").into(),
            detail: format!("experiment {flag}: {what}: {e}"),
        }
    }

    /// A stored tally (none yet: empty).
    fn tally_of(&self, flag: &str, text: Option<String>) -> Result<Tally, StoreError> {
        text.map_or(Ok(Tally::default()), |text| {
            serde_json::from_str(&text).map_err(|e| self.corrupt(flag, "tally", e))
        })
    }

    /// Adds an experiment with an empty tally; `false` when its flag has one.
    pub async fn create_experiment(&self, experiment: &Experiment) -> Result<bool, StoreError> {
        let definition = serde_json::to_string(experiment).map_err(json_error)?;
        let tally = serde_json::to_string(&Tally::default()).map_err(json_error)?;
        let mut conn = self.space.redis.conn.clone();
        let added: i64 = redis::Script::new(CREATE)
            .key(self.key("experiments"))
            .key(self.key("experiments:tallies"))
            .key(self.key("experiments:version"))
            .key(self.participants_key(&experiment.flag))
            .arg(&experiment.flag)
            .arg(definition)
            .arg(tally)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(added == 1)
    }

    /// Every experiment, by flag.
    pub async fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key("experiments"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        let mut out = all
            .into_iter()
            .map(|(flag, definition)| {
                serde_json::from_str::<Experiment>(&definition)
                    .map_err(|e| self.corrupt(&flag, "definition", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.flag.cmp(&b.flag));
        Ok(out)
    }

    /// One experiment and its tally as far as the tallies have read.
    pub async fn experiment(&self, flag: &str) -> Result<Option<(Experiment, Tally)>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let (definition, tally): (Option<String>, Option<String>) = redis::pipe()
            .cmd("HGET")
            .arg(self.key("experiments"))
            .arg(flag)
            .cmd("HGET")
            .arg(self.key("experiments:tallies"))
            .arg(flag)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        let Some(definition) = definition else {
            return Ok(None);
        };
        let experiment =
            serde_json::from_str(&definition).map_err(|e| self.corrupt(flag, "definition", e))?;
        let tally = self.tally_of(flag, tally)?;
        Ok(Some((experiment, tally)))
    }

    /// Stops an experiment at `at` (ms since the epoch) unless it stopped
    /// before; the experiment as it is now, `None` when there is none.
    pub async fn stop_experiment(
        &self,
        flag: &str,
        at: u64,
    ) -> Result<Option<Experiment>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        loop {
            let definition: Option<String> = self.space.hget("experiments", flag).await?;
            let Some(definition) = definition else {
                return Ok(None);
            };
            let mut experiment: Experiment = serde_json::from_str(&definition)
                .map_err(|e| self.corrupt(flag, "definition", e))?;
            if experiment.stop.is_some() {
                return Ok(Some(experiment));
            }
            experiment.stop = Some(at.max(experiment.start));
            let stopped = serde_json::to_string(&experiment).map_err(json_error)?;
            let replaced: i64 = redis::Script::new(REPLACE)
                .key(self.key("experiments"))
                .key(self.key("experiments:version"))
                .arg(flag)
                .arg(definition)
                .arg(stopped)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?;
            if replaced == 1 {
                return Ok(Some(experiment));
            }
        }
    }

    /// Deletes an experiment, its tally and its participants; `false` when
    /// there was none.
    pub async fn delete_experiment(&self, flag: &str) -> Result<bool, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let deleted: i64 = redis::Script::new(DELETE)
            .key(self.key("experiments"))
            .key(self.key("experiments:tallies"))
            .key(self.key("experiments:version"))
            .key(self.participants_key(flag))
            .arg(flag)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(deleted == 1)
    }

    /// Reads up to `limit` events the tallies have not read yet into them;
    /// returns how many it read (0: caught up). Safe to run on every server
    /// at once: each event is counted once.
    pub async fn advance_experiments(&self, limit: usize) -> Result<usize, StoreError> {
        for _ in 0..CONFLICT_RETRIES {
            if let Some(read) = self.try_advance(limit).await? {
                return Ok(read);
            }
        }
        Err(StoreError::database(
            self.key("experiments"),
            true,
            std::io::Error::other(format!(
                "other servers committed first {CONFLICT_RETRIES} times in a row"
            )),
        ))
    }

    /// One step; `None` when another server committed first.
    async fn try_advance(&self, limit: usize) -> Result<Option<usize>, StoreError> {
        let mut conn = self.space.redis.conn.clone();
        let (cursor, version): (Option<u64>, Option<u64>) = redis::pipe()
            .cmd("GET")
            .arg(self.key("experiments:cursor"))
            .cmd("GET")
            .arg(self.key("experiments:version"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        let (cursor, version) = (cursor.unwrap_or(0), version.unwrap_or(0));
        let experiments = self.experiments().await?;
        if experiments.is_empty() {
            // Nothing to count: the cursor moves to the newest event.
            let newest: Vec<Entry> = redis::cmd("XREVRANGE")
                .arg(self.key("events"))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?;
            let Some(newest) = newest.into_iter().next() else {
                return Ok(Some(0));
            };
            let newest = self.decode(newest)?.id;
            if newest <= cursor {
                return Ok(Some(0));
            }
            let committed: i64 = redis::Script::new(COMMIT)
                .key(self.key("experiments:cursor"))
                .key(self.key("experiments:version"))
                .key(self.key("experiments:tallies"))
                .arg(cursor)
                .arg(newest)
                .arg(version)
                .arg(0)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?;
            return Ok((committed == 1).then_some((newest - cursor) as usize));
        }
        let entries: Vec<Entry> = redis::cmd("XRANGE")
            .arg(self.key("events"))
            .arg(format!("(0-{cursor}"))
            .arg("+")
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        let read = entries.len();
        let mut last = cursor;
        let mut events = Collected::default();
        for entry in entries {
            let stored = self.decode(entry)?;
            last = stored.id;
            events.push(stored.environment, stored.event);
        }
        if read == 0 {
            return Ok(Some(0));
        }
        let script = redis::Script::new(COMMIT);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.key("experiments:cursor"))
            .key(self.key("experiments:version"))
            .key(self.key("experiments:tallies"))
            .arg(cursor)
            .arg(last)
            .arg(version);
        let mut steps = Vec::new();
        for (experiment, keys, events) in events.touching(&experiments) {
            let mut working = self.load(experiment, &keys).await?;
            working.apply(events);
            steps.push(working);
        }
        invocation.arg(steps.len());
        for working in &steps {
            invocation
                .arg(&working.experiment.flag)
                .arg(serde_json::to_string(&working.tally).map_err(json_error)?);
        }
        for (index, working) in steps.iter().enumerate() {
            invocation.key(self.participants_key(&working.experiment.flag));
            for key in &working.changed {
                let Some(participant) = working.participants.get(key) else {
                    continue;
                };
                invocation
                    .arg(index + 4)
                    .arg(key)
                    .arg(serde_json::to_string(participant).map_err(json_error)?);
            }
        }
        let committed: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok((committed == 1).then_some(read))
    }

    async fn load(&self, experiment: &Experiment, keys: &[&str]) -> Result<Working, StoreError> {
        let flag = &experiment.flag;
        let tally: Option<String> = self.space.hget("experiments:tallies", flag).await?;
        let mut conn = self.space.redis.conn.clone();
        let parts: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.participants_key(flag))
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        let mut participants = HashMap::with_capacity(keys.len());
        for (key, part) in keys.iter().zip(parts) {
            if let Some(part) = part {
                let participant: Participant = serde_json::from_str(&part)
                    .map_err(|e| self.corrupt(flag, "participant", e))?;
                participants.insert(key.to_string(), participant);
            }
        }
        let tally = self.tally_of(flag, tally)?;
        Ok(Working {
            experiment: experiment.clone(),
            tally,
            participants,
            changed: Vec::new(),
        })
    }
}
