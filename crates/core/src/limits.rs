//! The one input limit (issue 15): how deep, how long and how large a JSON value Countersign
//! accepts may be, and which characters its text may hold.
//!
//! Every path that takes a document or text calls this module: REST and Graph bodies, the web
//! admin center's JSON editor, the API's query parameters, free text through `validate`, and the
//! CLI before it sends. So what one path accepts every path
//! accepts, and every value stored can be read back: a document nested 127 levels deep was
//! accepted by the JSON reader (its own limit is 128) but, once wrapped in a request's stored
//! state, could not be read again (issue 15, finding 1). PostgreSQL cannot hold a NUL in text,
//! so NUL is refused everywhere (finding 10).
//!
//! The limits follow OWASP's input validation advice (bound depth, lengths and counts, allow
//! only the characters a field needs) and are deliberately generous for real documents.

use serde_json::Value;
use std::fmt;

/// Levels of nesting of a value: `{}` is 1, `{"a": []}` is 2. Far below the JSON reader's 128,
/// so that a value wrapped in a request's state, its API answer and its diff stays readable.
pub const MAX_DEPTH: usize = 32;
/// Characters in one string value: room for a large device script (Intune allows 200 KB).
pub const MAX_STRING_CHARS: usize = 256 * 1024;
/// Characters in one object key.
pub const MAX_KEY_CHARS: usize = 256;
/// Items in one array, or members of one object.
pub const MAX_ITEMS: usize = 10_000;
/// Bytes of the whole value as compact JSON.
pub const MAX_BYTES: usize = 1024 * 1024;

/// A value or text beyond one of the limits. The detail names the limit and where it was
/// passed (a JSON Pointer, RFC 6901, or a field's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputLimit {
    Depth { at: String },
    StringLength { at: String, chars: usize },
    KeyLength { at: String, chars: usize },
    Items { at: String, count: usize },
    Size { bytes: usize },
    Character { at: String, character: char },
}

impl InputLimit {
    /// The limit's stable name, given with the `input_limit` code as the problem's `limit`.
    pub fn name(&self) -> &'static str {
        match self {
            InputLimit::Depth { .. } => "depth",
            InputLimit::StringLength { .. } => "stringLength",
            InputLimit::KeyLength { .. } => "keyLength",
            InputLimit::Items { .. } => "items",
            InputLimit::Size { .. } => "size",
            InputLimit::Character { .. } => "character",
        }
    }
}

impl fmt::Display for InputLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputLimit::Depth { at } => {
                write!(f, "the value at {at} nests more than {MAX_DEPTH} levels deep; at most {MAX_DEPTH} are allowed")
            }
            InputLimit::StringLength { at, chars } => {
                write!(f, "the string at {at} is {chars} characters long; at most {MAX_STRING_CHARS} are allowed")
            }
            InputLimit::KeyLength { at, chars } => {
                write!(f, "a key at {at} is {chars} characters long; at most {MAX_KEY_CHARS} are allowed")
            }
            InputLimit::Items { at, count } => {
                write!(f, "the value at {at} holds {count} items; at most {MAX_ITEMS} are allowed")
            }
            InputLimit::Size { bytes } => {
                write!(f, "the value is {bytes} bytes long as JSON; at most {MAX_BYTES} are allowed")
            }
            InputLimit::Character { at, character } => {
                write!(f, "the control character {} is not allowed in {at}", crate::text::shown(&character.to_string()))
            }
        }
    }
}

impl std::error::Error for InputLimit {}

/// One step of the path to a value, borrowed while the value is walked.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path walked so far, as a JSON Pointer with hidden characters shown escaped.
fn pointer(path: &[Step<'_>]) -> String {
    if path.is_empty() {
        return "the top level".into();
    }
    let mut at = String::new();
    for step in path {
        at.push('/');
        match step {
            Step::Key(key) => at.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Step::Index(index) => at.push_str(&index.to_string()),
        }
    }
    crate::text::shown(&at).into_owned()
}

/// Why JSON text was not read: it is not JSON, or it passes a limit.
#[derive(Debug)]
pub enum Unread {
    Malformed(serde_json::Error),
    Limit(InputLimit),
}

/// Reads JSON text and checks it with [`json`]. Text nested past the reader's own limit (128)
/// is reported as past [`MAX_DEPTH`], like any other too deep.
pub fn parse(text: &[u8]) -> Result<Value, Unread> {
    let value = serde_json::from_slice(text).map_err(|e| {
        // serde_json names this error only in its message.
        if e.to_string().starts_with("recursion limit exceeded") {
            Unread::Limit(InputLimit::Depth { at: "the top level".into() })
        } else {
            Unread::Malformed(e)
        }
    })?;
    json(&value).map_err(Unread::Limit)?;
    Ok(value)
}

/// Checks a JSON value against every limit: depth, string and key lengths, item counts, size,
/// no control character in a key and no NUL anywhere. The first limit passed is reported.
pub fn json(value: &Value) -> Result<(), InputLimit> {
    let mut path = Vec::new();
    walk(value, 1, &mut path)?;
    let bytes = compact_size(value);
    if bytes > MAX_BYTES {
        return Err(InputLimit::Size { bytes });
    }
    Ok(())
}

fn walk<'a>(value: &'a Value, depth: usize, path: &mut Vec<Step<'a>>) -> Result<(), InputLimit> {
    let nests = matches!(value, Value::Array(_) | Value::Object(_));
    if nests && depth > MAX_DEPTH {
        return Err(InputLimit::Depth { at: pointer(path) });
    }
    match value {
        Value::String(s) => string_value(s, path),
        Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                return Err(InputLimit::Items { at: pointer(path), count: items.len() });
            }
            for (index, item) in items.iter().enumerate() {
                path.push(Step::Index(index));
                walk(item, depth + 1, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Object(members) => {
            if members.len() > MAX_ITEMS {
                return Err(InputLimit::Items { at: pointer(path), count: members.len() });
            }
            for (key, member) in members {
                let chars = key.chars().count();
                if chars > MAX_KEY_CHARS {
                    return Err(InputLimit::KeyLength { at: pointer(path), chars });
                }
                path.push(Step::Key(key));
                if let Some(character) = key.chars().find(|c| c.is_control()) {
                    return Err(InputLimit::Character { at: format!("the key {}", pointer(path)), character });
                }
                walk(member, depth + 1, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// A string inside a document may hold newlines and tabs (a script does), but not NUL, which
/// PostgreSQL's text cannot store.
fn string_value(s: &str, path: &[Step<'_>]) -> Result<(), InputLimit> {
    let chars = s.chars().count();
    if chars > MAX_STRING_CHARS {
        return Err(InputLimit::StringLength { at: pointer(path), chars });
    }
    if s.contains('\0') {
        return Err(InputLimit::Character { at: format!("the string at {}", pointer(path)), character: '\0' });
    }
    Ok(())
}

/// The length of `value` as compact JSON, counted without building the text.
fn compact_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a counter cannot fail: its keys are strings and the counter never errs.
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Checks free text typed by a person (a justification, approver notes, a description): it may
/// span lines, but holds no other control character (NUL among them).
pub fn text(field: &str, text: &str) -> Result<(), InputLimit> {
    match text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        Some(character) => Err(InputLimit::Character { at: format!("the {field}"), character }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn depth_is_counted_from_the_top_level() {
        assert_eq!(json(&nested(MAX_DEPTH)), Ok(()));
        let refused = json(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(refused.name(), "depth");
        assert_eq!(refused, InputLimit::Depth { at: format!("/{}", vec!["a"; MAX_DEPTH].join("/")) });
        assert_eq!(json(&nested(127)).unwrap_err().name(), "depth", "finding 1's document");
        assert_eq!(json(&json!([[["deep"]]])), Ok(()), "a string adds no level");
    }

    #[test]
    fn lengths_counts_and_size_are_bounded() {
        let long = "é".repeat(MAX_STRING_CHARS);
        assert_eq!(json(&json!({ "script": long })), Ok(()), "characters are counted, not bytes");
        assert_eq!(
            json(&json!({ "script": "x".repeat(MAX_STRING_CHARS + 1) })),
            Err(InputLimit::StringLength { at: "/script".into(), chars: MAX_STRING_CHARS + 1 })
        );
        assert_eq!(json(&json!({ "k".repeat(MAX_KEY_CHARS + 1): 1 })).unwrap_err().name(), "keyLength");
        assert_eq!(
            json(&json!({ "list": vec![0; MAX_ITEMS + 1] })),
            Err(InputLimit::Items { at: "/list".into(), count: MAX_ITEMS + 1 })
        );
        let members: serde_json::Map<String, Value> = (0..=MAX_ITEMS).map(|i| (i.to_string(), json!(0))).collect();
        assert_eq!(json(&Value::Object(members)).unwrap_err().name(), "items");
        let wide: Vec<String> = vec!["y".repeat(MAX_STRING_CHARS); 5];
        assert!(matches!(json(&json!(wide)), Err(InputLimit::Size { bytes }) if bytes > MAX_BYTES));
    }

    #[test]
    fn nul_is_refused_in_values_and_control_characters_in_keys() {
        assert_eq!(json(&json!({ "script": "line 1\nline 2\ttab" })), Ok(()));
        assert_eq!(
            json(&json!({ "a": ["x\u{0}y"] })),
            Err(InputLimit::Character { at: "the string at /a/0".into(), character: '\0' })
        );
        let refused = json(&json!({ "a\u{7}b": 1 })).unwrap_err();
        assert_eq!(refused, InputLimit::Character { at: "the key /a\\u{7}b".into(), character: '\u{7}' });
        assert!(refused.to_string().contains("\\u{7}"), "shown escaped: {refused}");
        assert!(json(&json!({ "a/b~": "\u{0}" })).unwrap_err().to_string().contains("/a~1b~0"));
    }

    #[test]
    fn text_past_the_readers_own_limit_is_reported_as_too_deep() {
        let text = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(parse(text(MAX_DEPTH).as_bytes()).is_ok());
        for levels in [MAX_DEPTH + 1, 127, 129, 100_000] {
            assert!(matches!(parse(text(levels).as_bytes()), Err(Unread::Limit(InputLimit::Depth { .. }))), "{levels}");
        }
        assert!(matches!(parse(b"{\"a\": "), Err(Unread::Malformed(_))));
    }

    #[test]
    fn text_may_span_lines_but_holds_no_other_control_character() {
        assert_eq!(text("justification", "CVE fix\r\n\tsee ticket"), Ok(()));
        assert_eq!(
            text("justification", "a\u{0}b"),
            Err(InputLimit::Character { at: "the justification".into(), character: '\0' })
        );
        assert_eq!(text("notes", "\u{1b}[2J").unwrap_err().name(), "character");
        assert_eq!(text("notes", "\u{85}").unwrap_err().name(), "character", "C1 controls too");
    }

    /// A JSON value no larger than `depth` levels, with plain keys and strings.
    fn value_within(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[^\u{0}]{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(depth.saturating_sub(1), 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z0-9 ._/~-]{0,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// One way past a limit, applied somewhere inside a value.
    #[derive(Debug, Clone)]
    enum Breach {
        Deep,
        LongString,
        LongKey,
        ManyItems,
        Nul,
        ControlInKey(char),
    }

    fn breach() -> impl Strategy<Value = Breach> {
        prop_oneof![
            Just(Breach::Deep),
            Just(Breach::LongString),
            Just(Breach::LongKey),
            Just(Breach::ManyItems),
            Just(Breach::Nul),
            prop::char::range('\u{0}', '\u{1f}').prop_map(Breach::ControlInKey),
        ]
    }

    fn breaching(breach: &Breach) -> Value {
        match breach {
            Breach::Deep => nested(MAX_DEPTH),
            Breach::LongString => json!("s".repeat(MAX_STRING_CHARS + 1)),
            Breach::LongKey => json!({ "k".repeat(MAX_KEY_CHARS + 1): true }),
            Breach::ManyItems => json!(vec![1; MAX_ITEMS + 1]),
            Breach::Nul => json!("before\u{0}after"),
            Breach::ControlInKey(c) => json!({ format!("key{c}"): 1 }),
        }
    }

    /// Puts `part` at the first place a walk down `value`'s first members reaches.
    fn plant(value: &mut Value, part: Value) {
        match value {
            Value::Array(items) if !items.is_empty() => plant(&mut items[0], part),
            Value::Object(members) if !members.is_empty() => {
                if let Some((_, first)) = members.iter_mut().next() {
                    plant(first, part);
                }
            }
            Value::Array(items) => items.push(part),
            Value::Object(members) => {
                members.insert("planted".into(), part);
            }
            leaf => *leaf = json!([part]),
        }
    }

    proptest! {
        #[test]
        fn a_value_within_the_limits_is_accepted(value in value_within(MAX_DEPTH as u32)) {
            prop_assert_eq!(json(&value), Ok(()));
        }

        #[test]
        fn a_value_beyond_any_one_limit_is_refused(mut value in value_within(6), breach in breach()) {
            plant(&mut value, breaching(&breach));
            let refused = json(&value);
            prop_assert!(refused.is_err(), "{:?} was accepted", breach);
        }
    }
}
