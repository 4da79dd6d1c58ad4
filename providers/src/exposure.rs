//! Exposure events on the read path: recorded into a bounded lock-free queue
//! without heap allocation for short strings, turned into [`ExposureEvent`]s by
//! the background drain.

use std::time::SystemTime;

use flagyard_core::{Event, ExposureEvent, Reason};

/// Bytes kept inline; longer strings go to the heap. 47 covers flag keys,
/// variant names and UUID or e-mail targeting keys in the common case.
const INLINE: usize = 47;

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

    fn into_string(self) -> String {
        match self {
            // The bytes were copied from a `&str`, so they are UTF-8.
            InlineStr::Inline { len, bytes } => {
                String::from_utf8_lossy(&bytes[..usize::from(len)]).into_owned()
            }
            InlineStr::Heap(s) => s.into_string(),
        }
    }
}

/// One exposure as recorded on the read path.
#[derive(Debug, Clone)]
pub(crate) struct RawExposure {
    pub flag: InlineStr,
    pub variant: Option<InlineStr>,
    pub reason: Reason,
    pub targeting_key: Option<InlineStr>,
    pub at: SystemTime,
}

impl RawExposure {
    pub(crate) fn into_event(self) -> Event {
        Event::Exposure(ExposureEvent {
            flag: self.flag.into_string(),
            variant: self.variant.map(InlineStr::into_string),
            reason: self.reason,
            targeting_key: self.targeting_key.map(InlineStr::into_string),
            at: self.at,
        })
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
            assert_eq!(inline.into_string(), s);
        }
    }
}
