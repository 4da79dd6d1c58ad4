//! The state of switches, flags and samples, names and the errors of the admin operations.

use std::collections::BTreeMap;
use std::fmt;

/// The extension name flask-pancake uses by default.
pub const DEFAULT_EXTENSION: &str = "pancake";

/// The group overrides key on when none is named (`user`, keyed on the
/// evaluation context's targeting key).
pub const DEFAULT_GROUP: &str = "user";

/// The three kinds of pancake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Globally on or off.
    Switch,
    /// Globally on or off, with per-object overrides in groups.
    Flag,
    /// Active for a ratio (0–100) of checks.
    Sample,
}

impl Kind {
    /// The key prefix (`SWITCH`, `FLAG`, `SAMPLE`).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Switch => "SWITCH",
            Kind::Flag => "FLAG",
            Kind::Sample => "SAMPLE",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Switch => "switch",
            Kind::Flag => "flag",
            Kind::Sample => "sample",
        })
    }
}

/// A kind name that is none of switch, flag or sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind '{0}' (expected switch, flag or sample)")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        match s {
            "switch" | "switches" => Ok(Kind::Switch),
            "flag" | "flags" => Ok(Kind::Flag),
            "sample" | "samples" => Ok(Kind::Sample),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

/// A flag's stored state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlagState {
    /// The global value (`None`: not set, the declared default applies).
    pub active: Option<bool>,
    /// Overrides by group, then by object id.
    pub overrides: BTreeMap<String, BTreeMap<String, bool>>,
}

/// A value in Redis that is not what its key's kind stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The Redis key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every switch, flag and sample stored under one extension.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PancakeState {
    /// Switches by name.
    pub switches: BTreeMap<String, bool>,
    /// Flags by name.
    pub flags: BTreeMap<String, FlagState>,
    /// Samples by name: the ratio, 0–100.
    pub samples: BTreeMap<String, f64>,
    /// Keys whose values could not be read (left out of the maps above).
    pub problems: Vec<Problem>,
}

impl PancakeState {
    /// Reads one key and its value into the state (keys of other extensions
    /// and tracking sets are ignored; a value that is not what the key's kind
    /// stores becomes a problem).
    pub(crate) fn absorb(&mut self, ext: &str, key: &str, raw: Option<&str>) {
        let (Some(raw), Some(slot)) = (raw, Slot::parse(ext, key)) else {
            return;
        };
        let value = match slot {
            Slot::Tracking => return,
            Slot::BadOverride => Err("override key is not k:{group}:{NAME}:{object_id}".into()),
            Slot::Sample(_) => match raw.trim().parse::<f64>() {
                Ok(ratio) if validate_ratio(ratio).is_ok() => Ok(Stored::Ratio(ratio)),
                _ => Err(format!("sample value {raw:?} is not a ratio from 0 to 100")),
            },
            Slot::Switch(_) | Slot::Flag(_) | Slot::Override { .. } => match raw {
                "1" => Ok(Stored::On(true)),
                "0" => Ok(Stored::On(false)),
                _ => Err(format!("{} value {raw:?} is not 1 or 0", slot.kind())),
            },
        };
        match value {
            Ok(value) => self.store(&slot, value),
            Err(message) => self.problems.push(Problem {
                key: key.to_string(),
                message,
            }),
        }
    }

    /// For every key listed as a problem, keeps the value `previous` had for
    /// it (a bad write loses nothing that was good).
    pub fn keep_good_values(&mut self, ext: &str, previous: &PancakeState) {
        let problems = std::mem::take(&mut self.problems);
        for slot in problems.iter().filter_map(|p| Slot::parse(ext, &p.key)) {
            if let Some(value) = previous.stored(&slot) {
                self.store(&slot, value);
            }
        }
        self.problems = problems;
    }

    fn stored(&self, slot: &Slot<'_>) -> Option<Stored> {
        match *slot {
            Slot::Switch(name) => self.switches.get(name).copied().map(Stored::On),
            Slot::Flag(name) => self.flags.get(name)?.active.map(Stored::On),
            Slot::Override { group, name, id } => {
                let on = self.flags.get(name)?.overrides.get(group)?.get(id)?;
                Some(Stored::On(*on))
            }
            Slot::Sample(name) => self.samples.get(name).copied().map(Stored::Ratio),
            Slot::Tracking | Slot::BadOverride => None,
        }
    }

    fn store(&mut self, slot: &Slot<'_>, value: Stored) {
        match (*slot, value) {
            (Slot::Switch(name), Stored::On(on)) => {
                self.switches.insert(name.to_string(), on);
            }
            (Slot::Flag(name), Stored::On(on)) => {
                self.flags.entry(name.to_string()).or_default().active = Some(on);
            }
            (Slot::Override { group, name, id }, Stored::On(on)) => {
                self.flags
                    .entry(name.to_string())
                    .or_default()
                    .overrides
                    .entry(group.to_string())
                    .or_default()
                    .insert(id.to_string(), on);
            }
            (Slot::Sample(name), Stored::Ratio(ratio)) => {
                self.samples.insert(name.to_string(), ratio);
            }
            _ => {}
        }
    }
}

/// A value as stored: `1`/`0`, or a sample's ratio.
#[derive(Debug, Clone, Copy)]
enum Stored {
    On(bool),
    Ratio(f64),
}

/// What one Redis key of an extension holds.
#[derive(Debug, Clone, Copy)]
enum Slot<'k> {
    Switch(&'k str),
    Flag(&'k str),
    /// `FLAG:{ext}:k:{group}:{NAME}:{object_id}` (the id may contain `:`).
    Override {
        group: &'k str,
        name: &'k str,
        id: &'k str,
    },
    Sample(&'k str),
    /// `FLAG:{ext}:t:…`, flask-pancake's set of overridden keys.
    Tracking,
    /// A `FLAG:{ext}:k:…` key without group, name and id.
    BadOverride,
}

impl<'k> Slot<'k> {
    /// The slot `key` addresses, or `None` for a key of another extension or kind.
    fn parse(ext: &str, key: &'k str) -> Option<Slot<'k>> {
        let (prefix, rest) = key.split_once(':')?;
        let rest = rest.strip_prefix(ext)?.strip_prefix(':')?;
        if rest.is_empty() {
            return None;
        }
        Some(match prefix {
            "SWITCH" => Slot::Switch(rest),
            "SAMPLE" => Slot::Sample(rest),
            "FLAG" if rest.starts_with("t:") => Slot::Tracking,
            "FLAG" => match rest.strip_prefix("k:") {
                None => Slot::Flag(rest),
                Some(override_key) => {
                    let mut parts = override_key.splitn(3, ':');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(group), Some(name), Some(id)) if !id.is_empty() => {
                            Slot::Override { group, name, id }
                        }
                        _ => Slot::BadOverride,
                    }
                }
            },
            _ => return None,
        })
    }

    fn kind(&self) -> Kind {
        match self {
            Slot::Switch(_) => Kind::Switch,
            Slot::Sample(_) => Kind::Sample,
            _ => Kind::Flag,
        }
    }
}

/// Errors of the admin operations; nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum PancakeError {
    /// An empty name, or one with `:` or white space.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// `name`, `group`, `object id` or `extension`.
        what: &'static str,
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A sample ratio outside 0–100 (or not a number).
    #[error("sample {name}: ratio {ratio} is outside 0-100")]
    RatioOutOfRange {
        /// The sample.
        name: String,
        /// The ratio given.
        ratio: f64,
    },
    /// Clearing something that does not exist.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// What kind was looked for.
        kind: Kind,
        /// The (upper-cased) name.
        name: String,
    },
    /// Clearing every override of a group that has none.
    #[error("flag {name} has no overrides for group {group}")]
    NoOverrides {
        /// The flag.
        name: String,
        /// The group.
        group: String,
    },
    /// Clearing an override that does not exist.
    #[error("flag {name} has no override for {group} {id:?}")]
    NoOverride {
        /// The flag.
        name: String,
        /// The group.
        group: String,
        /// The object id (empty when clearing all of a group).
        id: String,
    },
    /// The pub/sub connection closed.
    #[error("redis {url}: the pub/sub connection closed")]
    Closed {
        /// The server (password masked).
        url: String,
    },
    /// Redis failed.
    #[error("redis {url}: {source}")]
    Redis {
        /// The server.
        url: String,
        /// The error.
        #[source]
        source: ::redis::RedisError,
    },
}

impl PancakeError {
    /// Whether retrying may help: Redis failed or the connection closed (not a
    /// refused name, ratio or missing entry).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PancakeError::Redis { .. } | PancakeError::Closed { .. }
        )
    }
}

/// Checks a pancake name and returns it upper-cased, as stored.
pub fn validate_name(name: &str) -> Result<String, PancakeError> {
    check_segment("name", name)?;
    Ok(name.to_uppercase())
}

/// Checks a group name (kept as given).
pub fn validate_group(group: &str) -> Result<(), PancakeError> {
    check_segment("group", group)
}

/// Checks a sample ratio.
pub fn validate_ratio(ratio: f64) -> Result<(), &'static str> {
    if ratio.is_finite() && (0.0..=100.0).contains(&ratio) {
        Ok(())
    } else {
        Err("outside 0-100")
    }
}

pub(crate) fn check_segment(what: &'static str, name: &str) -> Result<(), PancakeError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.contains(':') {
        "it contains ':'"
    } else if name.chars().any(char::is_whitespace) {
        "it contains white space"
    } else if name.len() > 200 {
        "it is longer than 200 bytes"
    } else {
        return Ok(());
    };
    Err(PancakeError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_into_the_state_and_bad_values_are_problems() {
        let mut state = PancakeState::default();
        for (key, value) in [
            ("SWITCH:pancake:NEW_UI", "1"),
            ("SWITCH:pancake:OLD", "0"),
            ("SWITCH:other:ELSEWHERE", "1"),
            ("SWITCH:pancake:BROKEN", "yes"),
            ("FLAG:pancake:BETA", "0"),
            ("FLAG:pancake:k:user:BETA:ada", "1"),
            ("FLAG:pancake:k:team:BETA:a:b", "0"),
            ("FLAG:pancake:k:user:ONLY_OVERRIDE:bob", "1"),
            ("SAMPLE:pancake:HALF", "50.0"),
            ("SAMPLE:pancake:TOO_MUCH", "140"),
            ("FLAG:pancake:k:user:BETA:eve", "2"),
            ("FLAG:pancake:k:user", "1"),
        ] {
            state.absorb("pancake", key, Some(value));
        }
        assert_eq!(state.switches.len(), 2);
        assert!(state.switches["NEW_UI"] && !state.switches["OLD"]);
        assert_eq!(state.flags["BETA"].active, Some(false));
        assert!(state.flags["BETA"].overrides["user"]["ada"]);
        assert!(!state.flags["BETA"].overrides["team"]["a:b"]);
        assert_eq!(state.flags["ONLY_OVERRIDE"].active, None);
        assert_eq!(state.samples["HALF"], 50.0);
        let keys: Vec<&str> = state.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "SWITCH:pancake:BROKEN",
                "SAMPLE:pancake:TOO_MUCH",
                "FLAG:pancake:k:user:BETA:eve",
                "FLAG:pancake:k:user"
            ]
        );
        assert_eq!(state.problems[2].message, "flag value \"2\" is not 1 or 0");

        let mut previous = PancakeState::default();
        previous.switches.insert("BROKEN".into(), true);
        previous.samples.insert("TOO_MUCH".into(), 10.0);
        let mut beta = FlagState::default();
        beta.overrides
            .insert("user".into(), BTreeMap::from([("eve".into(), false)]));
        previous.flags.insert("BETA".into(), beta);
        state.keep_good_values("pancake", &previous);
        assert!(!state.flags["BETA"].overrides["user"]["eve"]);
        assert!(state.flags["BETA"].overrides["user"]["ada"]);
        assert!(state.switches["BROKEN"]);
        assert_eq!(state.samples["TOO_MUCH"], 10.0);
    }

    #[test]
    fn names_are_checked_and_upper_cased() {
        assert_eq!(validate_name("new_ui").expect("valid"), "NEW_UI");
        for bad in ["", "a:b", "two words"] {
            assert!(
                matches!(validate_name(bad), Err(PancakeError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_ratio(140.0).is_err() && validate_ratio(f64::NAN).is_err());
        assert!(validate_ratio(0.0).is_ok() && validate_ratio(100.0).is_ok());
    }
}
