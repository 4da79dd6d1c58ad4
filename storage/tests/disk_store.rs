//! DiskStore against a real directory.

use std::time::Duration;

use flagyard_core::{Store, StoreError};
use flagyard_storage::DiskStore;

#[test]
fn missing_file_loads_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = DiskStore::builder()
        .directory(dir.path().join("not/yet"))
        .build();
    assert!(cache.load().expect("no error").is_none());
}

#[test]
fn writes_are_coalesced_then_written_once_atomically() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = DiskStore::builder()
        .directory(dir.path())
        .coalesce(Duration::from_millis(300))
        .build();
    cache.save(r#"{"flags": {"v": 1}}"#).expect("save");
    cache.save(r#"{"flags": {"v": 2}}"#).expect("save");
    cache.save(r#"{"flags": {"v": 3}}"#).expect("save");
    assert!(
        !cache.path().exists(),
        "nothing written inside the coalescing window"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cache.path().exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "coalesced write never happened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(cache.path()).expect("read"),
        r#"{"flags": {"v": 3}}"#
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["flags.json"], "no temporary files left behind");
}

#[test]
fn flush_writes_pending_at_once_and_a_new_cache_reads_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = DiskStore::builder()
        .directory(dir.path())
        .file_name("shop.json")
        .build();
    cache.save(r#"{"flags": {}}"#).expect("save");
    cache.flush().expect("flush");
    drop(cache);
    let again = DiskStore::builder()
        .directory(dir.path())
        .file_name("shop.json")
        .build();
    assert_eq!(
        again.load().expect("load").as_deref(),
        Some(r#"{"flags": {}}"#)
    );
}

#[test]
fn drop_flushes_what_is_pending() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = DiskStore::builder()
        .directory(dir.path())
        .coalesce(Duration::from_secs(60))
        .build();
    cache.save(r#"{"flags": {"late": 1}}"#).expect("save");
    let path = cache.path().to_path_buf();
    drop(cache);
    assert_eq!(
        std::fs::read_to_string(path).expect("written on drop"),
        r#"{"flags": {"late": 1}}"#
    );
}

#[test]
fn unreadable_and_non_utf8_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = DiskStore::builder().directory(dir.path()).build();
    std::fs::write(cache.path(), [0xff, 0xfe, 0x00]).expect("write garbage");
    let err = cache.load().expect_err("not UTF-8");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("flags.json"), "{err}");

    std::fs::remove_file(cache.path()).expect("remove");
    std::fs::create_dir(cache.path()).expect("a directory where the file should be");
    let err = cache
        .load()
        .expect_err("a directory is unreadable as a file");
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert_eq!(
        err.into_provider_error().origin(),
        flagyard_core::ErrorOrigin::Disk
    );
}

#[test]
fn a_failed_write_is_reported_by_flush() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The cache directory is a file: every write must fail.
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "x").expect("write");
    let cache = DiskStore::builder().directory(&blocker).build();
    cache.save(r#"{"flags": {}}"#).expect("save only queues");
    let err = cache.flush().expect_err("the write fails");
    assert!(err.to_string().contains("blocked"), "{err}");
}
