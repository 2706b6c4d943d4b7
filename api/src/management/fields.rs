//! The field rules the management API shares across resources: names and email addresses.
//! Each check returns the normalized value or a 400 naming the field. The limits are constants
//! so the OpenAPI document states the same bounds the checks enforce.

use crate::error::ApiError;

/// Names (organizations, projects, API keys, users): 1 to this many characters after trimming.
pub const MAX_NAME_CHARS: usize = 200;
/// Email addresses: at most this many bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Trimmed, lower-cased email, or 400 naming the field.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let invalid = || ApiError::InvalidField {
        field: "email",
        message: "email must look like name@example.com".into(),
    };
    if email.len() < 3 || email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.') =>
        {
            Ok(email)
        }
        _ => Err(invalid()),
    }
}

/// A name of 1 to [`MAX_NAME_CHARS`] characters after trimming, without control characters
/// (NUL among them, which PostgreSQL text cannot hold). Returns the trimmed name.
pub fn check_name(field: &'static str, raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            field,
            message: format!("{field} must be 1 to {MAX_NAME_CHARS} characters, without control characters"),
        });
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").expect("valid"), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "ada@@example.com",
            "ada@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("name", "  Ada ").expect("valid"), "Ada");
        assert!(check_name("name", "   ").is_err());
        assert!(check_name("name", &"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name("name", &"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name("name", "a\u{0}b").is_err());
    }
}
