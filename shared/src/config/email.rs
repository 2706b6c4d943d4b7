//! Email and links: `PULSE_SMTP_URL`, `PULSE_SMTP_FROM`, `PULSE_PUBLIC_URL` and
//! `PULSE_EMAIL_*`, read whole by `pulse-worker notify` (which sends) and by `pulse-api` (which
//! writes password-reset mail into the outbox and links to itself), so a bad value stops either
//! at start.

use std::time::Duration;

use url::Url;

use super::webhook::retry_schedule;
use super::{positive, raw, ConfigError};

/// The default email retry schedule: seconds before each retry, about 7 h in all, so an SMTP
/// server down for hours loses nothing.
pub const DEFAULT_EMAIL_RETRY_SCHEDULE: &str = "5,30,60,300,600,1800,3600,3600,3600,3600,3600,3600,3600";

/// Settings of the email outbox and of the links mail carries.
#[derive(Clone)]
pub struct EmailConfig {
    /// `smtp://[user:password@]host[:port][?tls=required|opportunistic]` (STARTTLS by the
    /// parameter) or `smtps://…` (TLS from the first byte).
    pub smtp_url: Url,
    /// The `From` header, `Pulse <alerts@example.com>` or a bare address.
    pub from: String,
    /// Base of the links in mail (`https://pulse.example.com`), without a trailing slash.
    pub public_url: String,
    /// Wait before each retry; the message fails after the last one.
    pub retry_schedule: Vec<Duration>,
    /// Longest SMTP conversation of one message.
    pub timeout: Duration,
    /// Messages in flight per worker process.
    pub concurrency: usize,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.smtp_url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("<redacted>"));
        }
        f.debug_struct("EmailConfig")
            .field("smtp_url", &shown.as_str())
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .field("retry_schedule", &self.retry_schedule)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl EmailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            smtp_url: smtp_url(raw("PULSE_SMTP_URL").as_deref().unwrap_or("smtp://127.0.0.1:2525")).map_err(
                |reason| ConfigError {
                    variable: "PULSE_SMTP_URL",
                    reason,
                },
            )?,
            from: from(raw("PULSE_SMTP_FROM").as_deref().unwrap_or("Pulse <pulse@localhost>")).map_err(|reason| {
                ConfigError {
                    variable: "PULSE_SMTP_FROM",
                    reason,
                }
            })?,
            public_url: public_url(raw("PULSE_PUBLIC_URL").as_deref().unwrap_or("http://127.0.0.1:8080")).map_err(
                |reason| ConfigError {
                    variable: "PULSE_PUBLIC_URL",
                    reason,
                },
            )?,
            retry_schedule: retry_schedule(
                raw("PULSE_EMAIL_RETRY_SCHEDULE")
                    .as_deref()
                    .unwrap_or(DEFAULT_EMAIL_RETRY_SCHEDULE),
            )
            .map_err(|reason| ConfigError {
                variable: "PULSE_EMAIL_RETRY_SCHEDULE",
                reason,
            })?,
            timeout: Duration::from_secs(positive("PULSE_EMAIL_TIMEOUT_SECS", 30)?),
            concurrency: positive("PULSE_EMAIL_CONCURRENCY", 8)?,
        })
    }
}

/// An `smtp://` or `smtps://` URL with a host.
pub fn smtp_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|error| format!("{value:?} is not a URL ({error})"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(format!(
            "scheme {:?} is not smtp or smtps (expected e.g. smtp://mail.example.com:587?tls=required)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("names no host".into());
    }
    if let Some((_, tls)) = url.query_pairs().find(|(key, _)| key == "tls") {
        if !matches!(tls.as_ref(), "required" | "opportunistic") {
            return Err(format!("tls={tls} is not `required` or `opportunistic`"));
        }
    }
    Ok(url)
}

/// `Name <address>` or `address`, with one `@` in the address.
fn from(value: &str) -> Result<String, String> {
    let value = value.trim();
    let address = match (value.rfind('<'), value.ends_with('>')) {
        (Some(start), true) => &value[start + 1..value.len() - 1],
        _ => value,
    };
    let mut parts = address.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => Ok(value.to_owned()),
        _ => Err(format!(
            "{value:?} is not an address (expected e.g. `Pulse <alerts@example.com>`)"
        )),
    }
}

/// An http(s) URL, kept without its trailing slash.
fn public_url(value: &str) -> Result<String, String> {
    let url = Url::parse(value).map_err(|error| format!("{value:?} is not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert!(smtp_url("smtp://127.0.0.1:2525").is_ok());
        assert!(smtp_url("smtps://user:secret@mail.example.com").is_ok());
        assert!(smtp_url("smtp://mail.example.com:587?tls=required").is_ok());
        assert!(smtp_url("http://mail.example.com").is_err());
        assert!(smtp_url("smtp://mail.example.com?tls=sometimes").is_err());
        assert!(smtp_url("mail.example.com").is_err());
    }

    #[test]
    fn from_addresses() {
        assert!(from("Pulse <alerts@example.com>").is_ok());
        assert!(from("alerts@example.com").is_ok());
        assert!(from("Pulse").is_err());
        assert!(from("a@b@c").is_err());
    }

    #[test]
    fn public_urls_lose_the_trailing_slash() {
        assert_eq!(
            public_url("https://pulse.example.com/").as_deref(),
            Ok("https://pulse.example.com")
        );
        assert!(public_url("ftp://x").is_err());
    }
}
