//! The bodies of Countersign's fuzz targets, shared by cargo-fuzz (`fuzz_targets/`, nightly)
//! and by the workspace test `fuzz_corpus` (`crates/server/tests/fuzz_corpus.rs`), which replays
//! every seed of `fuzz/corpus/<target>/` on stable Rust in `cargo test --workspace`.
//!
//! A short run of one target (nightly Rust and `cargo install cargo-fuzz`), from the
//! repository's root:
//!
//! ```text
//! cargo +nightly fuzz run odata_filter fuzz/corpus/odata_filter -- -max_total_time=60
//! ```
//!
//! Targets: `odata_filter`, `diff`, `validate`, `body`. A finding is written to
//! `fuzz/artifacts/<target>/`; add it to the corpus once fixed, so the replay keeps it fixed.

use countersign_core::diff::{self, Names};
use countersign_core::validate;
use countersign_server::api;
use countersign_server::extract::json_body;
use countersign_server::graph::odata::{self, Supports};
use serde_json::Value;

/// One fuzz target: any bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target by name: its corpus is `fuzz/corpus/<name>/`.
pub const TARGETS: [(&str, Target); 4] =
    [("odata_filter", odata_filter), ("diff", diff), ("validate", validate), ("body", body)];

/// The OData query options of Graph's request list (`$filter` on status, paging, `$select`):
/// a query string either parses or is refused as a 400, never a panic or an overflow.
pub fn odata_filter(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let requests = Supports { filter: true, paging: true, select: &["id", "status"] };
    if let Err(e) = odata::parse_query(query, requests) {
        assert_eq!(e.0.status().as_u16(), 400, "{query:?}: {}", e.0.detail);
    }
    let _ = countersign_server::graph::mapping::parse_status_filter(query);
}

/// R12 on two JSON documents (the input is `before` and `after`, one per line): the diff
/// rebuilds `after` from `before`, a document has no diff with itself, and the rendering has one
/// line per difference (no key or value can forge a line).
pub fn diff(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (before, after) = text.split_once('\n').unwrap_or((text, "null"));
    let (Ok(before), Ok(after)) = (serde_json::from_str::<Value>(before), serde_json::from_str::<Value>(after)) else {
        return;
    };
    let entries = diff::diff(&before, &after);
    let rebuilt = diff::apply(&before, &entries).expect("a diff applies to its own `before`");
    assert_eq!(rebuilt, after, "apply(before, diff(before, after)) is after");
    assert!(diff::diff(&after, &after).is_empty());
    let rendered = diff::render(&entries, &Names::new());
    assert_eq!(rendered.lines().count(), entries.len().max(1), "{rendered:?}");
    assert!(!rendered.chars().any(|c| c != '\n' && countersign_core::text::is_hidden(c)), "{rendered:?}");
}

/// The input rules (R5, R6, names): every function answers, and what it accepts keeps its rule.
pub fn validate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(kept) = validate::justification(Some(text)) {
        assert!(!kept.trim().is_empty() && kept.chars().count() <= validate::MAX_TEXT, "{kept:?}");
    }
    if let Ok(Some(kept)) = validate::notes(Some(text)) {
        assert!(kept.chars().count() <= validate::MAX_TEXT, "{kept:?}");
    }
    if let Ok(kept) = validate::display_name("name", text) {
        assert!(!kept.is_empty() && kept.chars().count() <= 256, "{kept:?}");
        assert!(!kept.chars().any(|c| c.is_control() || countersign_core::text::is_format(c)), "{kept:?}");
    }
    if let Ok(kept) = validate::description(Some(text)) {
        assert!(kept.chars().count() <= validate::MAX_TEXT, "{kept:?}");
    }
    if let Ok(kept) = validate::username(text) {
        assert!(!kept.is_empty() && kept.len() <= 64, "{kept:?}");
    }
    let _ = validate::password(text);
}

/// The JSON body path of every REST write (`ApiJson`): any bytes are read into each body type
/// or refused with a 4xx problem, never a panic or a 5xx.
pub fn body(data: &[u8]) {
    fn read<T: serde::de::DeserializeOwned>(data: &[u8]) {
        if let Err(e) = json_body::<T>(data) {
            let status = e.status().as_u16();
            assert!((400..500).contains(&status), "{status}: {}", e.detail);
        }
    }
    read::<Value>(data);
    read::<api::resources::ResourceBody>(data);
    read::<api::policies::PolicyBody>(data);
    read::<api::requests::DecisionBody>(data);
    read::<api::directory::NewAccountBody>(data);
    read::<api::directory::GroupBody>(data);
    read::<api::directory::MembersBody>(data);
    read::<api::directory::AssignmentBody>(data);
    read::<api::notifications::ChannelBody>(data);
    read::<api::own::LoginBody>(data);
}
