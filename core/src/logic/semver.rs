//! flagd's `sem_ver` operator.
//!
//! Versions are stringified, may start with `v`/`V`, may be partial (`1`, `1.2`),
//! and their build metadata is ignored. `~` means same major.minor, `^` same major
//! (as flagd: no lower bound). Invalid input yields `None` (the rule's `null`).

use std::cmp::Ordering;

use super::eval::Val;

#[derive(Debug, PartialEq, Eq)]
struct Version<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<&'a str>,
}

fn numeric(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if part.len() > 1 && part.starts_with('0') {
        return None;
    }
    part.parse().ok()
}

fn parse(text: &str) -> Option<Version<'_>> {
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let text = match text.split_once('+') {
        Some((version, build)) => {
            if build.is_empty() || !build.split('.').all(valid_identifier) {
                return None;
            }
            version
        }
        None => text,
    };
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => {
            if pre.is_empty() || !pre.split('.').all(valid_identifier) {
                return None;
            }
            // Numeric pre-release identifiers must not have leading zeros.
            if pre.split('.').any(|id| {
                id.bytes().all(|b| b.is_ascii_digit()) && id.len() > 1 && id.starts_with('0')
            }) {
                return None;
            }
            (core, Some(pre))
        }
        None => (text, None),
    };
    let mut parts = core.split('.');
    let major = numeric(parts.next()?)?;
    let minor = parts.next().map_or(Some(0), numeric)?;
    let patch = parts.next().map_or(Some(0), numeric)?;
    if parts.next().is_some() {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch,
        pre,
    })
}

fn valid_identifier(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn compare_pre(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let mut left = a.split('.');
            let mut right = b.split('.');
            loop {
                match (left.next(), right.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(x), Some(y)) => {
                        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => x.cmp(y),
                        };
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                }
            }
        }
    }
}

fn compare(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| compare_pre(a.pre, b.pre))
}

/// Applies a `sem_ver` comparison to two rule values.
pub(crate) fn compare_values(a: &Val<'_>, operator: &str, b: &Val<'_>) -> Option<bool> {
    let (a_text, b_text) = (version_text(a)?, version_text(b)?);
    let (a, b) = (parse(&a_text)?, parse(&b_text)?);
    Some(match operator {
        "=" => compare(&a, &b) == Ordering::Equal,
        "!=" => compare(&a, &b) != Ordering::Equal,
        ">" => compare(&a, &b) == Ordering::Greater,
        "<" => compare(&a, &b) == Ordering::Less,
        ">=" => compare(&a, &b) != Ordering::Less,
        "<=" => compare(&a, &b) != Ordering::Greater,
        "~" => a.major == b.major && a.minor == b.minor,
        "^" => a.major == b.major,
        _ => return None,
    })
}

fn version_text<'v>(value: &'v Val<'_>) -> Option<std::borrow::Cow<'v, str>> {
    match value {
        Val::Str(_) | Val::String(_) | Val::Num(_) => Some(value.to_text()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, op: &str, b: &str) -> Option<bool> {
        compare_values(&Val::Str(a), op, &Val::Str(b))
    }

    #[test]
    fn orders_versions_and_prereleases() {
        assert_eq!(check("2.0.0", "=", "2.0.0"), Some(true));
        assert_eq!(check("2.0.0-alpha", "<", "2.0.0"), Some(true));
        assert_eq!(check("1.0.0-alpha.2", ">", "1.0.0-alpha.10"), Some(false));
        assert_eq!(check("1.0.0-beta", ">", "1.0.0-alpha.10"), Some(true));
        assert_eq!(check("v1.2", "=", "1.2.0"), Some(true));
        assert_eq!(check("1.0.0+build.5", "=", "1.0.0"), Some(true));
    }

    #[test]
    fn tilde_and_caret() {
        assert_eq!(check("3.0.9", "~", "3.0.0"), Some(true));
        assert_eq!(check("3.1.0", "~", "3.0.0"), Some(false));
        assert_eq!(check("3.9.0", "^", "3.0.0"), Some(true));
        assert_eq!(check("2.9.0", "^", "3.0.0"), Some(false));
    }

    #[test]
    fn invalid_input_is_null() {
        assert_eq!(check("2.0.0.0", "=", "2.0.0"), None);
        assert_eq!(check("not-a-version", "=", "1.0.0"), None);
        assert_eq!(check("01.0.0", "=", "1.0.0"), None);
        assert_eq!(check("1.0.0", "===", "1.0.0"), None);
        assert_eq!(
            compare_values(&Val::Bool(true), "=", &Val::Str("1.0.0")),
            None
        );
    }

    #[test]
    fn numbers_are_stringified() {
        assert_eq!(
            compare_values(&Val::Num(1.2), ">", &Val::Str("1.1")),
            Some(true)
        );
        assert_eq!(
            compare_values(&Val::Num(1.0), "^", &Val::Str("1")),
            Some(true)
        );
    }
}
