//! Server-Sent Events read from a byte stream (the WHATWG event-stream
//! format), with the payload cap enforced while reading.
//!
//! Hand-written rather than `reqwest-eventsource` because that crate buffers
//! an event whole before the cap can be checked (a 6 MB event cost seconds of
//! CPU) and a line with invalid UTF-8 stopped every later event until the
//! server closed. Here a line over the cap is discarded as it arrives, a bad
//! line is skipped and reported, and the stream goes on.

/// What the reader found in the bytes fed so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A complete event: its type (`message` when none was given) and data.
    Event {
        /// The `event:` field.
        event: String,
        /// The `data:` lines, joined with `\n`.
        data: String,
    },
    /// Something skipped, described (the stream goes on).
    Skipped(String),
}

/// Splits an event stream into events, holding at most `max` bytes of one
/// event's data and of one line.
#[derive(Debug)]
pub(crate) struct EventReader {
    max: usize,
    line: Vec<u8>,
    /// The current line went over the cap: drop bytes until its end.
    discarding_line: bool,
    /// The previous byte was `\r` (a `\n` right after it ends nothing more).
    after_cr: bool,
    event: String,
    data: String,
    /// The current event went over the cap: dispatch nothing for it.
    oversized: bool,
}

impl EventReader {
    pub(crate) fn new(max: usize) -> EventReader {
        EventReader {
            max,
            line: Vec::new(),
            discarding_line: false,
            after_cr: false,
            event: String::new(),
            data: String::new(),
            oversized: false,
        }
    }

    /// Feeds bytes; returns the events and skips they complete.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => self.end_line(&mut items),
                _ if self.discarding_line => {}
                _ => {
                    self.line.push(byte);
                    if self.line.len() > self.max + 16 {
                        // Over the cap before the line even ends: drop it as
                        // it arrives, and the event it belongs to.
                        self.line = Vec::new();
                        self.discarding_line = true;
                        self.oversized = true;
                    }
                }
            }
        }
        items
    }

    fn end_line(&mut self, items: &mut Vec<Item>) {
        if std::mem::take(&mut self.discarding_line) {
            return;
        }
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(items);
            return;
        }
        let Ok(line) = String::from_utf8(line) else {
            items.push(Item::Skipped(
                "a line that is not UTF-8 was skipped".to_string(),
            ));
            return;
        };
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "" => {} // a comment (heartbeats)
            "event" => self.event = value.to_string(),
            "data" => {
                if self.oversized {
                    return;
                }
                if self.data.len() + value.len() + 1 > self.max {
                    self.oversized = true;
                    self.data = String::new();
                    return;
                }
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {} // id, retry and unknown fields
        }
    }

    fn dispatch(&mut self, items: &mut Vec<Item>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.oversized) {
            items.push(Item::Skipped(format!(
                "an event over the {}-byte cap was dropped",
                self.max
            )));
            return;
        }
        if data.is_empty() {
            return;
        }
        let event = if event.is_empty() {
            "message".to_string()
        } else {
            event
        };
        items.push(Item::Event { event, data });
    }
}

#[cfg(test)]
mod tests {
    use super::{EventReader, Item};

    fn event(event: &str, data: &str) -> Item {
        Item::Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn reads_events_in_any_split_with_comments_and_line_endings() {
        let stream = b": hi\r\nevent: document\nid: 3\ndata: {\"a\":\ndata: 1}\n\ndata: plain\r\r";
        for split in 0..stream.len() {
            let mut reader = EventReader::new(1024);
            let mut items = reader.feed(&stream[..split]);
            items.extend(reader.feed(&stream[split..]));
            assert_eq!(
                items,
                [event("document", "{\"a\":\n1}"), event("message", "plain")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn skips_bad_lines_and_oversized_events_and_goes_on() {
        let mut reader = EventReader::new(32);
        let mut stream = b"event: document\ndata: \xff\xfe\n\n".to_vec();
        stream.extend_from_slice(b"data: ");
        stream.extend(std::iter::repeat_n(b'x', 1000));
        stream.extend_from_slice(b"\n\nevent: document\ndata: ok\n\n");
        let items = reader.feed(&stream);
        assert_eq!(
            items,
            [
                Item::Skipped("a line that is not UTF-8 was skipped".into()),
                Item::Skipped("an event over the 32-byte cap was dropped".into()),
                event("document", "ok"),
            ]
        );
        // The oversized line was never held whole.
        assert!(reader.line.capacity() < 1000);
    }

    proptest::proptest! {
        /// Any bytes in any pieces: no panic, no line held over the cap,
        /// and the events are the same however the bytes were split.
        #[test]
        fn any_bytes_in_any_pieces(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), cut in 0usize..400) {
            let mut whole = EventReader::new(24);
            let expected = whole.feed(&bytes);
            let mut split = EventReader::new(24);
            let cut = cut.min(bytes.len());
            let mut items = split.feed(&bytes[..cut]);
            proptest::prop_assert!(split.line.len() <= 24 + 16);
            items.extend(split.feed(&bytes[cut..]));
            proptest::prop_assert!(split.line.len() <= 24 + 16);
            proptest::prop_assert_eq!(items, expected);
        }
    }
}
