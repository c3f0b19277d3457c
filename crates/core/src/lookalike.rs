//! R20: who is who. An approver recognises the people in a request by name, so no two accounts
//! may have names that a screen shows alike: display names are unique under Unicode confusable
//! matching (UTS #39 skeletons), and a display name may not look like another account's
//! username either (a display name "аlice", with a Cyrillic "а", is not a way to pose as the
//! account `alice`).
//!
//! [`skeleton`] is the key two names collide under. It is UTS #39's skeleton, made insensitive
//! to what else a screen hides or a reader overlooks:
//!
//! 1. NFKC (full-width and compatibility forms become their plain letters), format characters
//!    dropped (a zero-width joiner or a bidirectional override changes nothing a reader sees),
//!    every run of whitespace one space, none at either end;
//! 2. the UTS #39 skeleton and Unicode's lowercase mapping, applied in turn until the text no
//!    longer changes (at most [`ROUNDS`] times): skeleton first, so that an upper-case Cyrillic
//!    "М" meets the Latin "M" before lowercasing would send them apart, then lowercase so that
//!    "ALICE" and "alice" meet;
//! 3. `i` folded into `l`: an upper-case `I` looks like `l` (UTS #39 maps it so), and is the
//!    upper case of `i`, so case-insensitive confusable matching has to treat all three alike,
//!    or "ALICE" and "alice" would not collide.
//!
//! The key errs towards collisions: "Ali" and "All" collide. A refused name is a clear error
//! that names the account it is too like; an accepted impersonation is not.

use crate::text::{is_format, is_hidden, shown};
use crate::DomainError;
use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection;

/// How many times step 2 runs at most; the texts that need more than two do not exist in the
/// Unicode data this was written against, so this only bounds the work.
pub const ROUNDS: usize = 4;

/// The key under which two names collide (see the module documentation).
pub fn skeleton(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkc().filter(|c| !is_format(*c)) {
        if c.is_whitespace() {
            space = !folded.is_empty();
        } else {
            if space {
                folded.push(' ');
                space = false;
            }
            folded.push(c);
        }
    }
    for _ in 0..ROUNDS {
        let next = confusable_detection::skeleton(&folded).collect::<String>().to_lowercase();
        if next == folded {
            break;
        }
        folded = next;
    }
    folded.replace('i', "l")
}

/// R20: an account's display name: what [`crate::validate::display_name`] accepts, and no
/// character that a screen does not show as itself ([`crate::text::is_hidden`]: bidirectional
/// controls, zero-width characters, no-break and other odd spaces, private-use and unassigned
/// code points). Trimmed.
pub fn account_display_name(text: &str) -> Result<String, DomainError> {
    let name = crate::validate::display_name("displayName", text)?;
    if let Some(c) = name.chars().find(|c| is_hidden(*c)) {
        return Err(DomainError::Validation(format!(
            "displayName must not contain characters that a screen does not show as themselves, such as {}",
            shown(&c.to_string())
        )));
    }
    Ok(name)
}

/// Which of another account's names a proposed name is too like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenName {
    DisplayName,
    Username,
}

impl TakenName {
    pub fn describe(self) -> &'static str {
        match self {
            TakenName::DisplayName => "the display name",
            TakenName::Username => "the username",
        }
    }
}

/// Whether `proposed` (a display name) collides with `other`, and how: the comparison the store
/// makes with its indexed skeleton columns, for code that holds the names themselves.
pub fn collides(proposed: &str, other_display_name: &str, other_username: &str) -> Option<TakenName> {
    let key = skeleton(proposed);
    if key == skeleton(other_display_name) {
        Some(TakenName::DisplayName)
    } else if key == skeleton(other_username) {
        Some(TakenName::Username)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alike(a: &str, b: &str) -> bool {
        skeleton(a) == skeleton(b)
    }

    #[test]
    fn latin_and_cyrillic_look_alikes_collide() {
        assert!(alike("alice", "\u{430}lice"), "Cyrillic а");
        assert!(alike("Alice Smith", "\u{410}lice Smith"), "Cyrillic А");
        assert!(alike("Mallory", "\u{41c}allory"), "Cyrillic М, upper case");
        assert!(alike("Bob Approver", "B\u{43e}b Appr\u{43e}ver"), "Cyrillic о");
        assert!(alike("paypal", "\u{440}\u{430}y\u{440}\u{430}l"), "Cyrillic р and а");
        assert!(alike("alice", "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}"), "full-width letters");
    }

    #[test]
    fn letters_that_draw_alike_collide() {
        assert!(alike("rn", "m"), "r n beside each other");
        assert!(alike("Kim", "Kirn"));
        assert!(alike("B0B", "BOB"), "zero and O");
        assert!(alike("Alice", "AIice"), "upper-case I and l");
        assert!(alike("bill", "b1ll"), "one and l");
    }

    #[test]
    fn case_and_spacing_do_not_tell_names_apart() {
        assert!(alike("Alice", "alice"));
        assert!(alike("ALICE", "alice"), "upper-case I meets l and i alike");
        assert!(alike("Bob  Approver", " bob approver "));
        assert!(alike("Bob\tApprover", "Bob Approver"));
        assert!(alike("Bob\u{a0}Approver", "Bob Approver"), "a no-break space is a space");
    }

    #[test]
    fn hidden_format_characters_do_not_tell_names_apart() {
        assert!(alike("al\u{200d}ice", "alice"), "zero-width joiner");
        assert!(alike("al\u{200b}ice", "alice"), "zero-width space");
        assert!(alike("\u{202e}ecila", "ecila"), "a bidirectional override is dropped, not obeyed");
        assert!(alike("alice\u{feff}", "alice"), "byte-order mark");
    }

    #[test]
    fn different_names_stay_different() {
        for (a, b) in
            [("alice", "bob"), ("Alice Smith", "Alice Smyth"), ("Carol", "Carl"), ("Dave", "Eve"), ("ab", "a b")]
        {
            assert!(!alike(a, b), "{a} / {b}: {} / {}", skeleton(a), skeleton(b));
        }
        assert!(!alike("ecila", "alice"), "the reversed text itself is another name");
    }

    #[test]
    fn an_account_display_name_refuses_what_a_screen_hides() {
        for bad in ["evil\u{202e}txt", "al\u{200d}ice", "zero\u{200b}width", "no\u{a0}break", "a\u{2028}b", "x\u{e000}"]
        {
            let refused = account_display_name(bad).unwrap_err();
            assert_eq!(refused.code(), "validation_failed", "{bad:?}");
            assert!(!refused.to_string().chars().any(is_hidden), "the message shows the character escaped: {refused}");
        }
        assert!(account_display_name("evil\u{202e}txt").unwrap_err().to_string().contains("\\u{202e}"));
        assert_eq!(account_display_name("  Zoë Ødegaard-Łukasz 漢字 ").unwrap(), "Zoë Ødegaard-Łukasz 漢字");
    }

    #[test]
    fn a_collision_says_which_name_it_is_too_like() {
        assert_eq!(collides("\u{430}lice", "Alice Smith", "alice"), Some(TakenName::Username));
        assert_eq!(collides("Alice Smith", "\u{410}lice smith", "asmith"), Some(TakenName::DisplayName));
        assert_eq!(collides("Bob", "Alice Smith", "alice"), None);
    }
}
