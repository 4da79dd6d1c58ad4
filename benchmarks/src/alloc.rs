//! Live-heap accounting and memory per flag.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use serde_json::{Value, json};

/// The system allocator, counting live bytes once [`enable`]d — in the
/// measuring process only: a server child runs on the plain system allocator
/// (a shared counter updated on every allocation would slow its threads).
pub struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Counts from now on (call before the first allocation measured).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn count(bytes: isize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn rss() -> isize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<isize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn per_flag(name: &str, flags: usize, build: impl FnOnce() -> Box<dyn std::any::Any>) -> Value {
    // Let background frees of earlier measurements finish first.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (heap0, rss0) = (live(), rss());
    let kept = build();
    // Flagyard frees a large parsed document on a background thread.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (heap, rss) = (live() - heap0, rss() - rss0);
    drop(kept);
    json!({"implementation": name, "flags": flags, "live_heap_bytes": heap, "rss_bytes": rss,
           "heap_per_flag": heap as f64 / flags as f64, "rss_per_flag": rss as f64 / flags as f64})
}

/// Live heap and RSS growth for 10,003 flags in each implementation.
pub fn memory_per_flag(large: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(large).expect("large document");
    let flags = super::docs::LARGE + 3;
    let unleash = super::docs::unleash(true).to_string();
    vec![
        per_flag("Flagyard snapshot", flags, || {
            Box::new(flagyard::core::Snapshot::parse(&text).expect("parses"))
        }),
        per_flag("yggdrasil", flags, || {
            let state = unleash_yggdrasil::EngineState::default();
            let features = serde_json::from_str(&unleash).expect("features");
            let _ = state.take_state(unleash_yggdrasil::UpdateMessage::FullResponse(features));
            Box::new(state)
        }),
        per_flag("flagd provider (file mode)", flags, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let resolver = runtime
                .block_on(
                    open_feature_flagd::resolver::in_process::resolver::FileResolver::new(
                        large.display().to_string(),
                        None,
                    ),
                )
                .expect("resolver");
            Box::new((resolver, runtime))
        }),
    ]
}
