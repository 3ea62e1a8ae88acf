//! Full-sync rulesets compared with `tests/golden/*.nft`. `UPDATE_GOLDEN=1 cargo test` rewrites
//! them; review the diff like code.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use svcnet_proxy::compile;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.nft"))
}

#[test]
fn full_sync_rulesets_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, state) in support::golden_states() {
        let (tx, _) = compile(&state, None);
        let text = tx.to_string();
        let path = golden_path(name);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != text {
            eprintln!("--- {name}: golden differs; got:\n{text}");
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ (rerun with UPDATE_GOLDEN=1 and review): {stale:?}"
    );
}

#[test]
fn compiling_twice_gives_the_same_text() {
    for (_, state) in support::golden_states() {
        assert_eq!(
            compile(&state, None).0.to_string(),
            compile(&state, None).0.to_string()
        );
    }
}

#[test]
fn every_golden_ruleset_is_accepted_by_the_fake_nft() {
    for (_, state) in support::golden_states() {
        support::applied(&state);
    }
}
