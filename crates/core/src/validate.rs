//! Input rules shared by every interface: justification (R5), approver notes (R6), names. The
//! characters free text may hold are `limits::text`'s.

use crate::{limits, DomainError};

pub const MAX_TEXT: usize = 1024;

/// R5: a business justification is required, non-blank, at most 1024 characters.
pub fn justification(text: Option<&str>) -> Result<String, DomainError> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(DomainError::JustificationRequired);
    }
    let length = text.chars().count();
    if length > MAX_TEXT {
        return Err(DomainError::JustificationTooLong(length));
    }
    limits::text("justification", text)?;
    Ok(text.to_owned())
}

/// R6: approver notes are optional, at most 1024 characters.
pub fn notes(text: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let length = text.chars().count();
    if length > MAX_TEXT {
        return Err(DomainError::NotesTooLong(length));
    }
    limits::text("approver notes", text)?;
    Ok(Some(text.to_owned()))
}

/// A display name: non-blank, at most 256 characters, no control characters and (R20) no
/// format characters: a bidirectional override or a zero-width character in a name makes it
/// read as another. An account's display name refuses more (`lookalike::account_display_name`).
pub fn display_name(field: &str, text: &str) -> Result<String, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DomainError::Validation(format!("{field} must not be blank")));
    }
    if text.chars().count() > 256 {
        return Err(DomainError::Validation(format!("{field} must be at most 256 characters")));
    }
    if let Some(character) = text.chars().find(|c| c.is_control()) {
        return Err(limits::InputLimit::Character { at: format!("the {field}"), character }.into());
    }
    if let Some(c) = text.chars().find(|c| crate::text::is_format(*c)) {
        return Err(DomainError::Validation(format!(
            "{field} must not contain format characters (bidirectional controls, zero-width characters) such as {}",
            crate::text::shown(&c.to_string())
        )));
    }
    Ok(text.to_owned())
}

/// An optional description: at most 1024 characters.
pub fn description(text: Option<&str>) -> Result<String, DomainError> {
    let text = text.unwrap_or_default().trim();
    if text.chars().count() > MAX_TEXT {
        return Err(DomainError::Validation("description must be at most 1024 characters".into()));
    }
    limits::text("description", text)?;
    Ok(text.to_owned())
}

/// A username: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn username(text: &str) -> Result<String, DomainError> {
    let ok =
        !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(DomainError::Validation("username must be 1-64 characters of letters, digits, '.', '_', '-' or '@'".into()))
    }
}

/// A new password: at least 12 characters, at most 256.
pub fn password(text: &str) -> Result<(), DomainError> {
    let length = text.chars().count();
    if length < 12 {
        return Err(DomainError::Validation("password must be at least 12 characters".into()));
    }
    if length > 256 {
        return Err(DomainError::Validation("password must be at most 256 characters".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn justification_is_required_and_trimmed() {
        assert_eq!(justification(None), Err(DomainError::JustificationRequired));
        assert_eq!(justification(Some("   \n")), Err(DomainError::JustificationRequired));
        assert_eq!(justification(Some("  CVE fix ")).unwrap(), "CVE fix");
    }

    #[test]
    fn justification_length_counts_characters_not_bytes() {
        assert!(justification(Some(&"é".repeat(1024))).is_ok());
        assert_eq!(justification(Some(&"x".repeat(1025))), Err(DomainError::JustificationTooLong(1025)));
    }

    #[test]
    fn notes_are_optional_but_bounded() {
        assert_eq!(notes(None).unwrap(), None);
        assert_eq!(notes(Some(" ")).unwrap(), None);
        assert_eq!(notes(Some("ok")).unwrap().as_deref(), Some("ok"));
        assert_eq!(notes(Some(&"x".repeat(1025))), Err(DomainError::NotesTooLong(1025)));
    }

    #[test]
    fn free_text_may_span_lines_but_holds_no_nul_or_other_control_character() {
        assert_eq!(justification(Some("CVE-1\nsee ticket")).unwrap(), "CVE-1\nsee ticket");
        for refused in [justification(Some("fix\u{0}")).unwrap_err(), notes(Some("ok\u{1b}[2J")).unwrap_err()] {
            assert_eq!(refused.code(), crate::error::ErrorCode::InputLimit, "{refused}");
        }
        assert_eq!(description(Some("a\u{0}")).unwrap_err().code(), crate::error::ErrorCode::InputLimit);
        assert_eq!(display_name("name", "a\u{0}b").unwrap_err().code(), crate::error::ErrorCode::InputLimit);
    }

    #[test]
    fn names_and_passwords() {
        assert!(display_name("name", " ").is_err());
        assert!(display_name("name", "a\u{7}b").is_err());
        assert!(display_name("name", "evil\u{202e}gnp.exe").is_err(), "a bidirectional override");
        assert!(display_name("name", "a\u{200d}b").is_err(), "a zero-width joiner");
        assert_eq!(display_name("name", " Zoom ").unwrap(), "Zoom");
        assert!(username("alice").is_ok());
        assert!(username("al ice").is_err());
        assert!(password("short").is_err());
        assert!(password("long enough pass").is_ok());
    }
}
