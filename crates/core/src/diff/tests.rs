use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

fn text(before: Value, after: Value) -> String {
    render(&diff(&before, &after), &Names::new())
}

#[test]
fn nested_changes_are_named_by_json_pointer() {
    let before = json!({"name": "Zoom", "document": {"version": "5.1", "silent": true}});
    let after = json!({"name": "Zoom", "document": {"version": "5.2", "args": "-q"}});
    assert_eq!(
        text(before, after),
        "+ /document/args: \"-q\"\n- /document/silent: true\n~ /document/version: \"5.1\" → \"5.2\""
    );
}

#[test]
fn a_reordered_array_is_a_change() {
    let deny_first = json!({"rules": [{"action": "deny"}, {"action": "allow"}]});
    let allow_first = json!({"rules": [{"action": "allow"}, {"action": "deny"}]});
    assert_eq!(text(deny_first, allow_first), "- /rules/0: {\"action\": \"deny\"}\n+ /rules/1: {\"action\": \"deny\"}");
    assert_eq!(text(json!({"g": ["a", "b"]}), json!({"g": ["b", "a"]})), "- /g/0: \"a\"\n+ /g/1: \"a\"");
}

#[test]
fn what_an_array_keeps_shows_nothing() {
    let rules = json!({"rules": ["a", "b", "c", "d"]});
    assert_eq!(text(rules.clone(), json!({"rules": ["new", "a", "b", "c", "d"]})), "+ /rules/0: \"new\"");
    assert_eq!(text(rules.clone(), json!({"rules": ["a", "c", "d"]})), "- /rules/1: \"b\"");
    let edited = json!({"rules": [{"port": 22}, {"port": 80}]});
    assert_eq!(text(edited, json!({"rules": [{"port": 22}, {"port": 443}]})), "~ /rules/1/port: 80 → 443");
    let big: Vec<Value> = (0..2000).map(Value::from).collect();
    let mut shuffled = big.clone();
    shuffled.reverse();
    let entries = diff(&json!(big), &json!(shuffled));
    assert_eq!(apply(&json!(big), &entries).unwrap(), json!(shuffled), "past the match limit, still exact");
}

#[test]
fn a_duplicated_element_is_a_change() {
    assert_eq!(text(json!({"ports": [443]}), json!({"ports": [443, 443]})), "+ /ports/1: 443");
    assert_eq!(text(json!({"ports": [443, 443]}), json!({"ports": [443]})), "- /ports/1: 443");
}

#[test]
fn dotted_keys_and_nested_keys_render_differently() {
    let dotted = text(json!({}), json!({"a.b": 0}));
    let nested = text(json!({"a": {}}), json!({"a": {"b": 0}}));
    assert_eq!(dotted, "+ /a.b: 0");
    assert_eq!(nested, "+ /a/b: 0");
    assert_eq!(text(json!({}), json!({"a/b": 0})), "+ /a~1b: 0", "RFC 6901 escapes '/'");
    assert_eq!(text(json!({}), json!({"a~1b": 0})), "+ /a~01b: 0", "and '~'");
}

#[test]
fn keys_and_values_cannot_forge_lines() {
    let forged = json!({"x\n~ /document/firewall: \"on\" → \"on\"": 1});
    let shown = text(json!({}), forged);
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert_eq!(shown, "+ \"/x\\u{a}~0 ~1document~1firewall: \\\"on\\\" → \\\"on\\\"\": 1");
    let escape = text(json!({"note": "a"}), json!({"note": "\u{1b}[1A\u{1b}[2K~ /note: \"a\" → \"a\""}));
    assert!(!escape.contains('\u{1b}'), "{escape}");
    assert_eq!(text(json!({"k": "a"}), json!({"k": "a\u{202e}b"})), "~ /k: \"a\" → \"a\\u{202e}b\"");
    assert_eq!(text(json!({}), json!({"a: 1 → 2": 3})), "+ \"/a: 1 → 2\": 3", "a delimiter in a key is quoted");
}

/// Changes a renderer that printed keys raw, or joined them with dots, would show alike.
#[test]
fn changes_a_naive_renderer_confuses_render_differently() {
    let confusable = [
        (json!({"a: 0\n+ ": {}}), json!({"a: 0\n+ ": {"j": 1}}), json!({}), json!({"a": 0, "j": 1})),
        (json!({}), json!({"a.b": 0}), json!({"a": {}}), json!({"a": {"b": 0}})),
        (json!({}), json!({"a/b": 0}), json!({"a": {}}), json!({"a": {"b": 0}})),
        (json!({"x": 1}), json!({"x": 2}), json!({}), json!({"x: 1 → 2": null})),
        (json!({"s": "a"}), json!({"s": "a\u{202e}"}), json!({"s": "a"}), json!({"s": "a\\u{202e}"})),
    ];
    for (b1, a1, b2, a2) in confusable {
        let (one, other) = (text(b1, a1.clone()), text(b2, a2.clone()));
        assert_ne!(one, other, "{a1} and {a2} render alike");
    }
}

#[test]
fn null_below_the_top_is_a_value() {
    assert_eq!(text(json!({"x": null}), json!({"x": 5})), "~ /x: null → 5");
    assert_eq!(text(json!({}), json!({"x": 5})), "+ /x: 5");
    assert_eq!(text(json!({}), json!({"x": null})), "+ /x: null");
}

#[test]
fn create_and_delete_show_the_whole_object() {
    let obj = json!({"name": "x"});
    assert_eq!(diff(&Value::Null, &obj)[0].kind, ChangeKind::Added);
    assert_eq!(diff(&obj, &Value::Null)[0].path, "");
    assert_eq!(text(Value::Null, obj), "+ (object): {\"name\": \"x\"}");
    assert_eq!(render(&[], &Names::new()), "no changes");
}

#[test]
fn referenced_ids_appear_with_their_names() {
    let names: Names = BTreeMap::from([("g2".to_owned(), "Finance \"laptops\"".to_owned())]);
    let shown = render(&diff(&json!({"groups": ["g1"]}), &json!({"groups": ["g1", "g2"]})), &names);
    assert_eq!(shown, "+ /groups/1: \"g2\" (\"Finance \\\"laptops\\\"\")");
}

#[test]
fn the_digest_covers_every_part_of_the_change() {
    let before = json!({"a": 1, "b": [1, 2]});
    let after = json!({"a": 2, "b": [1, 2]});
    let change = Change {
        object_id: "o1",
        resource_type: ResourceType::App,
        operation: Operation::Update,
        before_version: 3,
        before: &before,
        after: &after,
    };
    let digest = change.digest();
    assert_eq!(digest.len(), 64);
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let reordered_keys: Value = serde_json::from_str(r#"{"b": [1, 2], "a": 2}"#).unwrap();
    assert_eq!(Change { after: &reordered_keys, ..change }.digest(), digest, "key order is not part of a change");
    let other_after = json!({"a": 2, "b": [2, 1]});
    let variants = [
        Change { object_id: "o2", ..change },
        Change { resource_type: ResourceType::Script, ..change },
        Change { operation: Operation::Delete, ..change },
        Change { before_version: 4, ..change },
        Change { before: &after, ..change },
        Change { after: &other_after, ..change },
    ];
    for variant in variants {
        assert_ne!(variant.digest(), digest, "{variant:?}");
    }
}

#[test]
fn an_approval_is_of_one_digest() {
    assert!(ensure_digest_seen(None, "abc").is_ok());
    assert!(ensure_digest_seen(Some("ABC"), "abc").is_ok());
    let refused = ensure_digest_seen(Some("abd"), "abc").unwrap_err();
    assert_eq!(refused.code(), "change_digest_mismatch");
    assert!(approved_as_is("d1", [("alice", Some("d1")), ("bob", Some("d1"))]).is_ok());
    let altered = approved_as_is("d2", [("alice", Some("d1"))]).unwrap_err();
    assert!(altered.contains("alice") && altered.contains("d1") && altered.contains("d2"), "{altered}");
    assert!(approved_as_is("d1", [("carol", None)]).unwrap_err().contains("carol"));
}

/// Small JSON documents whose keys and strings include the characters that delimit a line.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec!["a", "b", "a.b", "a/b", "~", "~1", "", " ", ":", "\n", "\"", "→", "\u{202e}"])
        .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        prop::sample::select(vec!["", "x", "x\n", "\"", "\\", "a: 1 → 2", "\u{1b}[2K", "g1"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn different_documents_always_show_a_difference(a in json_value(), b in json_value()) {
        prop_assume!(a != b);
        prop_assert!(!diff(&a, &b).is_empty());
        prop_assert_ne!(text(a, b), "no changes");
    }

    #[test]
    fn the_diff_applied_to_before_gives_after(a in json_value(), b in json_value()) {
        prop_assert_eq!(apply(&a, &diff(&a, &b)).unwrap(), b);
    }

    #[test]
    fn every_rendered_line_is_one_line(a in json_value(), b in json_value()) {
        let entries = diff(&a, &b);
        let shown = render(&entries, &Names::new());
        prop_assert_eq!(shown.lines().count(), entries.len().max(1));
        prop_assert!(!shown.chars().any(|c| c != '\n' && crate::text::is_hidden(c)));
    }

    /// Over a corpus of changes to one `before`: two that render alike are the same change.
    #[test]
    fn rendering_is_injective(before in json_value(), afters in prop::collection::vec(json_value(), 2..12)) {
        let names: Names = BTreeMap::from([("g1".to_owned(), "Group one".to_owned())]);
        let mut seen: BTreeMap<String, Value> = BTreeMap::new();
        for after in afters {
            let shown = render(&diff(&before, &after), &names);
            if let Some(earlier) = seen.insert(shown.clone(), after.clone()) {
                prop_assert_eq!(&earlier, &after, "two changes render as {}", shown);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over a corpus of arbitrary changes: two diffs that render alike are the same diff.
    #[test]
    fn rendering_is_injective_across_documents(pairs in prop::collection::vec((json_value(), json_value()), 2..10)) {
        let mut seen: BTreeMap<String, Vec<DiffEntry>> = BTreeMap::new();
        for (before, after) in pairs {
            let entries = diff(&before, &after);
            let shown = render(&entries, &Names::new());
            if let Some(earlier) = seen.insert(shown.clone(), entries.clone()) {
                prop_assert_eq!(&earlier, &entries, "two diffs render as {}", shown);
            }
        }
    }
}
