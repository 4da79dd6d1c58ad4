//! [`InlineStr`]: a string copied on the read path without allocating when it
//! is short.

/// Bytes kept inline; longer strings go to the heap. 47 covers flag keys,
/// variant names and UUID or e-mail targeting keys in the common case.
pub(crate) const INLINE: usize = 47;

/// A string copied without allocating when it is short.
#[derive(Debug, Clone)]
pub(crate) enum InlineStr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl InlineStr {
    #[inline]
    pub(crate) fn new(s: &str) -> InlineStr {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            InlineStr::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            InlineStr::Heap(Box::from(s))
        }
    }

    /// The string.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `&str`, so they are UTF-8.
            InlineStr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            InlineStr::Heap(s) => s,
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            InlineStr::Heap(s) => s.into_string(),
            inline => inline.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_strings_round_trip() {
        for s in [
            "",
            "on",
            "user-42",
            &"é".repeat(23),
            &"x".repeat(47),
            &"y".repeat(48),
            "ünïcödé-key",
        ] {
            let inline = InlineStr::new(s);
            assert_eq!(matches!(inline, InlineStr::Heap(_)), s.len() > INLINE);
            assert_eq!(inline.as_str(), s);
            assert_eq!(inline.into_string(), s);
        }
    }
}
