//! Replays the fuzz targets' stored inputs (`conformance/fuzz/corpus/` seeds
//! and `conformance/fuzz/regressions/`, inputs that once failed) through the
//! targets' bodies, so the ordinary test run holds every property the
//! coverage-guided runs check (`scripts/fuzz.sh`).

use std::path::Path;

use flagyard_conformance::fuzz;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("document", fuzz::document),
    ("evaluate", fuzz::evaluate),
    ("stream_message", fuzz::stream_message),
    ("sse_stream", fuzz::sse_stream),
    ("admin_body", fuzz::admin_body),
    ("ofrep_body", fuzz::ofrep_body),
];

/// The files in `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_stored_input_keeps_its_target_s_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in TARGETS {
        let seeds = inputs(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seed inputs for the {name} target");
        let regressions = inputs(&root.join("regressions").join(name));
        for file in seeds.iter().chain(&regressions) {
            let bytes = std::fs::read(file).expect("a stored input is readable");
            let run = std::panic::catch_unwind(|| target(&bytes));
            assert!(run.is_ok(), "{name}: {} fails its property", file.display());
        }
    }
}
