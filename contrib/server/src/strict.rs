//! What `serde_json` accepts silently and an admin body must not carry: an
//! object key twice (serde keeps the last) and an integer beyond 64 bits
//! (serde makes it a float, so `12345678901234567890123` is stored as
//! `1.2345678901234568e22`). Both are refused naming the JSON pointer.
//!
//! A scan of the raw text, before it is parsed; anything it does not
//! understand is left for `serde_json` to report.

/// Why the scan stopped.
enum Stop {
    /// Not JSON the scan follows: `serde_json` will say what is wrong.
    Syntax,
    /// A duplicate key or an oversized integer, described.
    Problem(String),
}

/// Deeper than this is refused by `serde_json` anyway.
const MAX_DEPTH: usize = 128;

/// Refuses duplicate keys and integers beyond 64 bits, naming where.
pub(crate) fn check(text: &[u8]) -> Result<(), String> {
    let mut scanner = Scanner { text, at: 0 };
    match scanner.value(&mut String::new(), 0) {
        Ok(()) | Err(Stop::Syntax) => Ok(()),
        Err(Stop::Problem(problem)) => Err(problem),
    }
}

struct Scanner<'t> {
    text: &'t [u8],
    at: usize,
}

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Stop> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(Stop::Syntax)
        }
    }

    fn value(&mut self, pointer: &mut String, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Syntax);
        }
        match self.peek().ok_or(Stop::Syntax)? {
            b'{' => self.object(pointer, depth),
            b'[' => self.array(pointer, depth),
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(pointer),
            _ => self.literal(),
        }
    }

    fn object(&mut self, pointer: &mut String, depth: usize) -> Result<(), Stop> {
        self.expect(b'{')?;
        let mut keys = std::collections::HashSet::new();
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let key = self.string()?;
            let length = pointer.len();
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            if !keys.insert(key.clone()) {
                return Err(Stop::Problem(format!(
                    "duplicate key \"{key}\" at {pointer} (JSON objects hold each key once)"
                )));
            }
            self.expect(b':')?;
            self.value(pointer, depth + 1)?;
            pointer.truncate(length);
            if self.member_ends(b'}')? {
                return Ok(());
            }
        }
    }

    fn array(&mut self, pointer: &mut String, depth: usize) -> Result<(), Stop> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Ok(());
        }
        for index in 0.. {
            let length = pointer.len();
            pointer.push('/');
            pointer.push_str(&index.to_string());
            self.value(pointer, depth + 1)?;
            pointer.truncate(length);
            if self.member_ends(b']')? {
                return Ok(());
            }
        }
        Err(Stop::Syntax)
    }

    /// Steps over `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.at += 1;
        }
        next
    }

    /// After a member or element: a `,` (more follow, `false`) or `close`
    /// (the container ends, `true`); anything else is a syntax error.
    fn member_ends(&mut self, close: u8) -> Result<bool, Stop> {
        if self.eat(close) {
            Ok(true)
        } else if self.eat(b',') {
            Ok(false)
        } else {
            Err(Stop::Syntax)
        }
    }

    /// A string, decoded (keys are compared decoded: `"a"` and `"\u0061"`
    /// are one key).
    fn string(&mut self) -> Result<String, Stop> {
        if self.peek() != Some(b'"') {
            return Err(Stop::Syntax);
        }
        let start = self.at;
        self.at += 1;
        loop {
            match self.text.get(self.at).ok_or(Stop::Syntax)? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    break;
                }
                _ => self.at += 1,
            }
        }
        let raw = self.text.get(start..self.at).ok_or(Stop::Syntax)?;
        serde_json::from_slice(raw).map_err(|_| Stop::Syntax)
    }

    fn number(&mut self, pointer: &str) -> Result<(), Stop> {
        let start = self.at;
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            self.at += 1;
        }
        let token = std::str::from_utf8(&self.text[start..self.at]).map_err(|_| Stop::Syntax)?;
        let integer = !token.contains(['.', 'e', 'E']);
        if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
            return Err(Stop::Problem(format!(
                "the integer {token} at {pointer} does not fit in 64 bits (write it as a string, or as a float with a decimal point)"
            )));
        }
        Ok(())
    }

    fn literal(&mut self) -> Result<(), Stop> {
        for word in [&b"true"[..], b"false", b"null"] {
            if self.text[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(());
            }
        }
        Err(Stop::Syntax)
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn refuses_duplicates_and_wide_integers_naming_the_pointer() {
        assert_eq!(
            check(br#"{"flags": {"a": {}, "b": [1, 2.5, -3, 1e400]}}"#),
            Ok(())
        );
        assert_eq!(
            check(br#"{"flags": {"a": {"state": "ENABLED", "state": "DISABLED"}}}"#),
            Err(
                "duplicate key \"state\" at /flags/a/state (JSON objects hold each key once)"
                    .into()
            )
        );
        assert_eq!(
            check(br#"{"flags": {"x/y": {"variants": {"big": 12345678901234567890123}}}}"#),
            Err("the integer 12345678901234567890123 at /flags/x~1y/variants/big does not fit in 64 bits (write it as a string, or as a float with a decimal point)".into())
        );
        // Decoded keys: an escape is the same key.
        assert!(check(br#"{"a": 1, "\u0061": 2}"#).is_err());
        // Not JSON: left to serde_json.
        assert_eq!(check(b"{\"a\": "), Ok(()));
        // u64 fits, i64 minimum fits.
        assert_eq!(
            check(b"[18446744073709551615, -9223372036854775808]"),
            Ok(())
        );
        assert!(check(b"[18446744073709551616]").is_err());
    }

    proptest::proptest! {
        /// Any bytes: no panic. Any JSON serde_json writes (keys once,
        /// integers within 64 bits): accepted.
        #[test]
        fn any_bytes_and_any_serialized_json(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            keys in proptest::collection::btree_map("[a-z/~\"\\\\]{0,4}", proptest::prelude::any::<i64>(), 0..6),
        ) {
            let _ = check(&bytes);
            let object: serde_json::Map<String, serde_json::Value> =
                keys.into_iter().map(|(k, v)| (k, serde_json::json!([v, {"x": v}]))).collect();
            let text = serde_json::to_vec(&object).expect("serializes");
            proptest::prop_assert_eq!(check(&text), Ok(()));
        }
    }
}
