//! The field rules the management API shares across resources: names and email addresses.
//! Each check returns the normalized value or a 400 naming the field. The limits are constants
//! so the OpenAPI document states the same bounds the checks enforce.

use crate::error::ApiError;

/// Names (organizations, projects, API keys, users): 1 to this many characters after trimming.
pub const MAX_NAME_CHARS: usize = 200;
/// Email addresses: at most this many characters (RFC 5321's path limit is 254 octets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// What `char::is_whitespace` and `str::trim` take (Unicode White_Space), as a regex class body.
const WHITESPACE: &str = pulse_shared::event::WHITESPACE_CLASS;
/// What `char::is_control` takes (Unicode Cc), as a regex class body.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// The OpenAPI `pattern` of a name [`check_name`] takes: anything trimmed off the ends, then 1
/// to [`MAX_NAME_CHARS`] characters without control characters, first and last not whitespace.
/// With `blank_allowed`, a blank value too (register's `name`, where blank means "none").
pub fn name_pattern(blank_allowed: bool) -> String {
    let inner = MAX_NAME_CHARS - 2;
    let name = format!("[^{WHITESPACE}{CONTROL}](?:[^{CONTROL}]{{0,{inner}}}[^{WHITESPACE}{CONTROL}])?");
    let name = if blank_allowed { format!("(?:{name})?") } else { name };
    format!("^[{WHITESPACE}]*{name}[{WHITESPACE}]*$")
}

/// The OpenAPI `pattern` of an email [`normalize_email`] takes (with `maxLength`
/// [`MAX_EMAIL_CHARS`]): whitespace at the ends, then `local@domain` without whitespace,
/// control characters or a second `@`, the domain not starting with a dot.
pub fn email_pattern() -> String {
    let part = format!("{WHITESPACE}{CONTROL}@");
    format!("^[{WHITESPACE}]*[^{part}]+@[^{part}.][^{part}]*[{WHITESPACE}]*$")
}

/// Trimmed, lower-cased email, or 400 naming the field. The length limit counts the value as
/// sent, so the rule is a `maxLength` and a `pattern` in the OpenAPI document.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::InvalidField {
        field: "email",
        message: "email must look like name@example.com".into(),
    };
    let email = raw.trim();
    if raw.chars().count() > MAX_EMAIL_CHARS || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.') =>
        {
            Ok(email.to_lowercase())
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

    /// Strings built from characters at the edges of the rules (whitespace that is and is not
    /// control, control that is not whitespace, `@`, `.`, non-ASCII), of lengths around the
    /// limits: the patterns the document states and the checks agree on every one.
    fn samples() -> Vec<String> {
        const POOL: [char; 13] = [
            'a', ' ', '\t', '\n', '\u{85}', '\u{3000}', '\u{1c}', '\u{0}', '@', '.', 'é', '\u{9f}', '\u{a0}',
        ];
        let mut samples = Vec::new();
        for &first in &POOL {
            samples.push(first.to_string());
            for &second in &POOL {
                for &third in &POOL {
                    samples.push([first, second, third].iter().collect());
                    samples.push(format!("{first}a{second}@b{third}"));
                }
            }
        }
        for length in [
            MAX_NAME_CHARS - 1,
            MAX_NAME_CHARS,
            MAX_NAME_CHARS + 1,
            MAX_EMAIL_CHARS,
            MAX_EMAIL_CHARS + 1,
        ] {
            for &edge in &POOL {
                samples.push(format!("{edge}{}{edge}", "x".repeat(length - 2)));
                samples.push(format!("{edge}{}@x.io{edge}", "é".repeat(length - 6)));
            }
        }
        samples
    }

    #[test]
    fn the_documented_patterns_agree_with_the_checks() {
        let name = regex_lite::Regex::new(&name_pattern(false)).expect("name pattern");
        let blank_or_name = regex_lite::Regex::new(&name_pattern(true)).expect("blank pattern");
        let email = regex_lite::Regex::new(&email_pattern()).expect("email pattern");
        for sample in samples() {
            let named = check_name("name", &sample).is_ok();
            assert_eq!(name.is_match(&sample), named, "name {sample:?}");
            assert_eq!(
                blank_or_name.is_match(&sample),
                named || sample.trim().is_empty(),
                "blank {sample:?}"
            );
            let emailed = sample.chars().count() <= MAX_EMAIL_CHARS && email.is_match(&sample);
            assert_eq!(emailed, normalize_email(&sample).is_ok(), "email {sample:?}");
        }
    }
}
