//! Every flagd-testbed evaluation case must pass, on both fractional profiles.

use flagyard_conformance::data::data_dir;
use flagyard_conformance::testbed::{Profile, run_profile};

fn run(profile: Profile) {
    let Some(dir) = data_dir() else { return };
    let report = run_profile(&dir, profile).expect("conformance data is readable");
    println!("flagd-testbed, profile {profile:?}:\n{report}");
    assert!(report.passed() > 0, "no case ran for profile {profile:?}");
    assert_eq!(
        report.failed(),
        0,
        "profile {profile:?} has failures:\n{report}"
    );
}

#[test]
fn testbed_profile_v2() {
    run(Profile::V2);
}

#[test]
fn testbed_profile_v3() {
    run(Profile::V3);
}
