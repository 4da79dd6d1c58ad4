//! Experiments in the events file ([`SqliteEvents`]): their definitions and
//! tallies (`experiments`), their participants (`participants`), and how far
//! the tallies have read the events (the cursor `experiments`).

use std::collections::HashMap;

use flagyard_core::StoreError;
use flagyard_core::event_json::WireEvent;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Collected, Experiment, Participant, Tally, Working};
use crate::SqliteEvents;

/// The cursor the tallies keep in `cursors`.
const CURSOR: &str = "experiments";

fn json_error(what: &'static str, e: serde_json::Error) -> StoreError {
    StoreError::database(what, false, e)
}

impl SqliteEvents {
    /// Adds an experiment with an empty tally; `false` when its flag has one.
    ///
    /// It counts the events that arrive from now on (and any not yet read
    /// into the tallies) whose time falls in its window.
    pub fn create_experiment(&self, experiment: &Experiment) -> Result<bool, StoreError> {
        let definition =
            serde_json::to_string(experiment).map_err(|e| json_error("experiment JSON", e))?;
        let tally = serde_json::to_string(&Tally::default())
            .map_err(|e| json_error("experiment JSON", e))?;
        let err = |e| self.db.error(e);
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(err)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO experiments (flag, definition, tally) VALUES (?1, ?2, ?3)",
                params![experiment.flag, definition, tally],
            )
            .map_err(err)?;
        if added == 1 {
            // Parts left by an experiment of the same flag deleted before.
            tx.execute(
                "DELETE FROM participants WHERE flag = ?1",
                params![experiment.flag],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(added == 1)
    }

    /// Every experiment, by flag.
    pub fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        let conn = self.db.lock();
        self.definitions(&conn)
    }

    fn definitions(&self, conn: &rusqlite::Connection) -> Result<Vec<Experiment>, StoreError> {
        let err = |e| self.db.error(e);
        let mut stmt = conn
            .prepare_cached("SELECT flag, definition FROM experiments ORDER BY flag")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (flag, definition) = row.map_err(err)?;
            out.push(self.parse(&flag, "definition", &definition)?);
        }
        Ok(out)
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        flag: &str,
        what: &str,
        text: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| {
            self.db
                .corrupt(format_args!("experiment {flag}: {what}: {e}"))
        })
    }

    /// One experiment and its tally as far as the tallies have read.
    pub fn experiment(&self, flag: &str) -> Result<Option<(Experiment, Tally)>, StoreError> {
        let row = self
            .db
            .lock()
            .query_row(
                "SELECT definition, tally FROM experiments WHERE flag = ?1",
                params![flag],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(|e| self.db.error(e))?;
        row.map(|(definition, tally)| {
            Ok((
                self.parse(flag, "definition", &definition)?,
                self.parse(flag, "tally", &tally)?,
            ))
        })
        .transpose()
    }

    /// Stops an experiment at `at` (ms since the epoch) unless it stopped
    /// before; the experiment as it is now, `None` when there is none.
    pub fn stop_experiment(&self, flag: &str, at: u64) -> Result<Option<Experiment>, StoreError> {
        let err = |e| self.db.error(e);
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(err)?;
        let definition: Option<String> = tx
            .query_row(
                "SELECT definition FROM experiments WHERE flag = ?1",
                params![flag],
                |row| row.get(0),
            )
            .optional()
            .map_err(err)?;
        let Some(definition) = definition else {
            return Ok(None);
        };
        let mut experiment: Experiment = self.parse(flag, "definition", &definition)?;
        if experiment.stop.is_none() {
            experiment.stop = Some(at.max(experiment.start));
            let text =
                serde_json::to_string(&experiment).map_err(|e| json_error("experiment JSON", e))?;
            tx.execute(
                "UPDATE experiments SET definition = ?2 WHERE flag = ?1",
                params![flag, text],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Some(experiment))
    }

    /// Deletes an experiment, its tally and its participants; `false` when
    /// there was none.
    pub fn delete_experiment(&self, flag: &str) -> Result<bool, StoreError> {
        let err = |e| self.db.error(e);
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(err)?;
        let deleted = tx
            .execute("DELETE FROM experiments WHERE flag = ?1", params![flag])
            .map_err(err)?;
        tx.execute("DELETE FROM participants WHERE flag = ?1", params![flag])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted == 1)
    }

    /// Reads up to `limit` events the tallies have not read yet into them
    /// (one transaction); returns how many it read (0: caught up).
    pub fn advance_experiments(&self, limit: usize) -> Result<usize, StoreError> {
        let err = |e| self.db.error(e);
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(err)?;
        let cursor: u64 = tx
            .query_row(
                "SELECT last_id FROM cursors WHERE name = ?1",
                params![CURSOR],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map_err(err)?
            .map_or(0, |id| id as u64);
        let experiments = self.definitions(&tx)?;
        if experiments.is_empty() {
            // Nothing to count: the cursor moves to the newest event unread.
            let newest: i64 = tx
                .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| {
                    row.get(0)
                })
                .map_err(err)?;
            let newest = newest as u64;
            if newest <= cursor {
                return Ok(0);
            }
            crate::events::sqlite::put_cursor(&tx, CURSOR, newest).map_err(err)?;
            tx.commit().map_err(err)?;
            return Ok((newest - cursor) as usize);
        }
        let mut ids = Vec::new();
        let mut events = Collected::default();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, kind, environment, body FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(params![cursor as i64, limit as i64], |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(err)?;
            for row in rows {
                let (id, kind, environment, body) = row.map_err(err)?;
                ids.push(id);
                if kind == "summary" {
                    continue;
                }
                let event: WireEvent = serde_json::from_str(&body)
                    .map_err(|e| self.db.corrupt(format_args!("event {id}: {e}")))?;
                events.push(environment, event);
            }
        }
        let Some(&last) = ids.last() else {
            return Ok(0);
        };
        for (experiment, keys, events) in events.touching(&experiments) {
            let mut working = self.load(&tx, experiment, &keys)?;
            working.apply(events);
            self.save(&tx, &working)?;
        }
        crate::events::sqlite::put_cursor(&tx, CURSOR, last).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(ids.len())
    }

    fn load(
        &self,
        tx: &Transaction<'_>,
        experiment: &Experiment,
        keys: &[&str],
    ) -> Result<Working, StoreError> {
        let err = |e| self.db.error(e);
        let flag = &experiment.flag;
        let tally: String = tx
            .query_row(
                "SELECT tally FROM experiments WHERE flag = ?1",
                params![flag],
                |row| row.get(0),
            )
            .map_err(err)?;
        let mut participants = HashMap::with_capacity(keys.len());
        let mut stmt = tx
            .prepare_cached("SELECT part FROM participants WHERE flag = ?1 AND targeting_key = ?2")
            .map_err(err)?;
        for key in keys {
            let part: Option<String> = stmt
                .query_row(params![flag, key], |row| row.get(0))
                .optional()
                .map_err(err)?;
            if let Some(part) = part {
                let participant: Participant = self.parse(flag, "participant", &part)?;
                participants.insert(key.to_string(), participant);
            }
        }
        Ok(Working {
            experiment: experiment.clone(),
            tally: self.parse(flag, "tally", &tally)?,
            participants,
            changed: Vec::new(),
        })
    }

    fn save(&self, tx: &Transaction<'_>, working: &Working) -> Result<(), StoreError> {
        let err = |e| self.db.error(e);
        let flag = &working.experiment.flag;
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO participants (flag, targeting_key, part) VALUES (?1, ?2, ?3)
                 ON CONFLICT(flag, targeting_key) DO UPDATE SET part = excluded.part",
            )
            .map_err(err)?;
        for key in &working.changed {
            let Some(participant) = working.participants.get(key) else {
                continue;
            };
            let part =
                serde_json::to_string(participant).map_err(|e| json_error("experiment JSON", e))?;
            stmt.execute(params![flag, key, part]).map_err(err)?;
        }
        let tally =
            serde_json::to_string(&working.tally).map_err(|e| json_error("experiment JSON", e))?;
        tx.execute(
            "UPDATE experiments SET tally = ?2 WHERE flag = ?1",
            params![flag, tally],
        )
        .map_err(err)?;
        Ok(())
    }
}
