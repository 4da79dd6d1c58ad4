//! Entry points for the fuzz targets in `conformance/fuzz`: the stream
//! decoders, which are private otherwise. Behind the `fuzzing` feature; not a
//! stable API.

use super::sse_reader::{EventReader, Item};

/// One thing an event stream yielded: an event (its type and data) or a
/// description of what was skipped.
pub type SseItem = Result<(String, String), String>;

/// Feeds `chunks` in order to one SSE reader holding at most `max` bytes of an
/// event, and returns everything it yielded.
pub fn sse_items(chunks: &[&[u8]], max: usize) -> Vec<SseItem> {
    let mut reader = EventReader::new(max);
    chunks
        .iter()
        .flat_map(|chunk| reader.feed(chunk))
        .map(|item| match item {
            Item::Event { event, data } => Ok((event, data)),
            Item::Skipped(why) => Err(why),
        })
        .collect()
}

/// Decodes one stream message or response body as the network sources do:
/// the document's version (when an envelope carried one) and its text, or
/// why it was dropped.
pub fn decode_message(payload: &str, max: usize) -> Result<(Option<u64>, String), String> {
    super::decode(payload, max, "fuzz").map_err(|e| e.to_string())
}
