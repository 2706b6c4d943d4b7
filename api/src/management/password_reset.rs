//! Password reset for a user who forgot theirs: `POST /v1/auth/password-reset` mails a one-time
//! token, `POST /v1/auth/password-reset/confirm` trades it for a new password.
//!
//! Request. Always `202` with the same body, whether or not an account has the email, so the
//! route cannot be used to learn who has an account. It shares the login limiter (per client IP
//! and per account, `PULSE_LOGIN_RATE_PER_MIN_*`), so it is no faster a probe or a mail cannon
//! than login. For an existing account the token (`prt_` + 43 base64url characters, 256 bits
//! from the thread CSPRNG) is stored as its SHA-256 in `password_resets`, valid for
//! `PULSE_PASSWORD_RESET_TTL_SECS`, and the mail carrying it is written into the email outbox
//! in the same transaction, so a reset row never exists without its mail, nor a mail without
//! its row; `pulse-worker notify` sends it (and blanks the bodies once sent, so the token is in
//! clear in the outbox only until then). Each request is a new token; earlier ones stay valid
//! until one is used. Both answers do the same work up to the database (token, hash and mail
//! are made either way; neither runs argon2), and both look the account up in a transaction;
//! what differs is the two inserts and the commit that writes them, a few milliseconds.
//!
//! Confirm. The new password must pass the registration rules, checked before anything else (a
//! weak password does not use the token up). A token that is malformed, unknown, used or
//! expired is `400 INVALID_RESET_TOKEN`, and is refused before the argon2 hash is computed, so
//! bad tokens cost no hashing. Then one transaction: the token is marked used by an
//! `UPDATE … WHERE used_at IS NULL AND expires_at > now() RETURNING user_id` (the row lock makes
//! it single-use under concurrency: a second confirm waits, re-checks and finds it used), the
//! new hash is written, every refresh token of the user is revoked (every session ends; access
//! tokens already issued lapse within `PULSE_ACCESS_TOKEN_TTL_SECS`, as after change-password)
//! and the user's other outstanding reset tokens are expired. Confirm counts against the
//! per-IP login budget too: it is an unauthenticated route that hashes a password, like register.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use pulse_shared::email::{self, Email, PASSWORD_RESET};
use pulse_shared::keys;
use pulse_shared::schema::{password_resets, users as users_table};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::accounts::{revoke_sessions, Sessions};
use super::fields::normalize_email;
use super::json::Json;
use super::{passwords, MailSettings, ManagementState};
use crate::error::ApiError;

/// Every password-reset token starts with this.
pub const RESET_PREFIX: &str = "prt_";

/// Characters of a token: the prefix and 43 base64url characters (256 bits).
pub const RESET_TOKEN_CHARS: usize = RESET_PREFIX.len() + 43;

/// The OpenAPI `pattern` of a token, the shape [`keys::has_token_shape`] checks.
pub fn reset_token_pattern() -> String {
    format!(
        "^{RESET_PREFIX}[A-Za-z0-9_-]{{{}}}$",
        RESET_TOKEN_CHARS - RESET_PREFIX.len()
    )
}

/// The one answer of a reset request.
pub const REQUESTED_MESSAGE: &str = "if an account has this email, a reset link is on its way";

/// The path the mail tells the user to call.
const CONFIRM_PATH: &str = "/v1/auth/password-reset/confirm";

/// `POST /v1/auth/password-reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com"}))]
pub struct PasswordResetRequest {
    /// The account's email (case and surrounding whitespace do not matter).
    pub email: String,
}

/// `POST /v1/auth/password-reset/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "prt_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gcGxlYXNl", "password": "battery staple horse correct"}))]
pub struct PasswordResetConfirm {
    /// The token from the reset mail (`prt_…`), usable once.
    pub token: String,
    /// The new password: the same rules as at registration.
    pub password: String,
}

/// Answer of a reset request, the same whether or not the email has an account.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": REQUESTED_MESSAGE}))]
pub struct ResetRequested {
    pub message: &'static str,
}

fn client_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|addr| addr.ip())
}

/// Mails a password-reset token to the account with this email, if there is one.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset",
    tag = "accounts",
    operation_id = "password_reset_request",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted, whether or not an account has this email (the answer does not say): if one has, a mail with a reset token is in the outbox", body = ResetRequested),
        (status = 400, description = "INVALID_JSON (missing email, unknown field) or INVALID_FIELD: email is not an address"),
        (status = 429, description = "RATE_LIMITED: too many attempts from this IP or for this account (the login budget); see Retry-After"),
        (status = 503, description = "DATABASE_UNAVAILABLE: retry after Retry-After"),
    )
)]
pub async fn request(
    req: HttpRequest,
    state: web::Data<ManagementState>,
    body: Json<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    state.login_limiter.check_ip(client_ip(&req))?;
    let email = normalize_email(&body.into_inner().email)?;
    state.login_limiter.check_account(&email)?;

    // Made either way, so an unknown email costs what a known one does up to the database.
    let token = keys::secret_token(RESET_PREFIX);
    let expires_at =
        Utc::now() + ChronoDuration::from_std(state.password_reset_ttl).unwrap_or(ChronoDuration::hours(1));
    let message_id = email::message_id(PASSWORD_RESET, Uuid::now_v7(), 0, &state.mail.message_id_domain);
    let mail = reset_mail(&state.mail, &email, &token.plain, state.password_reset_ttl, message_id);

    let mut conn = state.conn().await?;
    let user = conn
        .transaction::<_, ApiError, _>(|conn| {
            let (email, mail) = (email.clone(), mail.clone());
            async move {
                let found: Option<(Uuid, String)> = users_table::table
                    .filter(users_table::email.eq(&email))
                    .select((users_table::id, users_table::email))
                    .first(conn)
                    .await
                    .optional()?;
                let Some((user_id, address)) = found else {
                    return Ok(None);
                };
                diesel::insert_into(password_resets::table)
                    .values((
                        password_resets::token_hash.eq(&token.hash),
                        password_resets::user_id.eq(user_id),
                        password_resets::expires_at.eq(expires_at),
                    ))
                    .execute(conn)
                    .await?;
                email::enqueue(conn, &mail, &[address]).await?;
                Ok(Some(user_id))
            }
            .scope_boxed()
        })
        .await?;
    match user {
        Some(user_id) => tracing::info!(user_id = %user_id, "Password reset requested; mail queued"),
        None => tracing::info!("Password reset requested for an email without an account; nothing sent"),
    }
    Ok(HttpResponse::Accepted().json(ResetRequested {
        message: REQUESTED_MESSAGE,
    }))
}

/// Sets a new password with a token from a reset mail and ends every session of the account.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset/confirm",
    tag = "accounts",
    operation_id = "password_reset_confirm",
    request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "Password changed; the token is used up, the account's other reset tokens no longer work, and every session of the account is revoked (log in again)"),
        (status = 400, description = "INVALID_RESET_TOKEN: the token is unknown, already used or expired (request a new one); INVALID_FIELD: password breaks the rules (the token stays usable); INVALID_JSON"),
        (status = 429, description = "RATE_LIMITED: too many attempts from this IP (the login budget); see Retry-After"),
        (status = 503, description = "DATABASE_UNAVAILABLE: retry after Retry-After"),
    )
)]
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<ManagementState>,
    body: Json<PasswordResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    state.login_limiter.check_ip(client_ip(&req))?;
    let body = body.into_inner();
    passwords::check_rules(&body.password)?;
    if !keys::has_token_shape(RESET_PREFIX, &body.token) {
        return Err(ApiError::InvalidResetToken);
    }
    let hash = keys::hash(&body.token);
    let mut conn = state.conn().await?;

    // A look before the argon2 work, so unknown tokens cost no hashing; the transaction below
    // decides.
    let live: Option<Uuid> = password_resets::table
        .find(&hash)
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(diesel::dsl::now))
        .select(password_resets::user_id)
        .first(&mut conn)
        .await
        .optional()?;
    if live.is_none() {
        return Err(ApiError::InvalidResetToken);
    }
    let new_hash = passwords::hash(body.password).await?;

    let (user_id, revoked) = conn
        .transaction::<_, ApiError, _>(|conn| {
            async move {
                let used: Option<Uuid> = diesel::update(password_resets::table.find(&hash))
                    .filter(password_resets::used_at.is_null())
                    .filter(password_resets::expires_at.gt(diesel::dsl::now))
                    .set(password_resets::used_at.eq(diesel::dsl::now))
                    .returning(password_resets::user_id)
                    .get_result(conn)
                    .await
                    .optional()?;
                // Used or expired since the look above (another confirm won the race).
                let Some(user_id) = used else {
                    return Err(ApiError::InvalidResetToken);
                };
                let changed = diesel::update(users_table::table.find(user_id))
                    .set((
                        users_table::password_hash.eq(&new_hash),
                        users_table::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    // Not expected: deleting an account deletes its reset rows (cascade).
                    return Err(ApiError::InvalidResetToken);
                }
                let revoked = revoke_sessions(conn, Sessions::AllOfUser(user_id)).await?;
                diesel::update(password_resets::table)
                    .filter(password_resets::user_id.eq(user_id))
                    .filter(password_resets::used_at.is_null())
                    .filter(password_resets::expires_at.gt(diesel::dsl::now))
                    .set(password_resets::expires_at.eq(diesel::dsl::now))
                    .execute(conn)
                    .await?;
                Ok((user_id, revoked))
            }
            .scope_boxed()
        })
        .await?;
    tracing::info!(user_id = %user_id, revoked_refresh_tokens = revoked, "Password reset; every session revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// "N minutes" (or seconds, under two minutes that are not whole ones).
fn lifetime(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    let (count, unit) = if secs < 120 && secs % 60 != 0 {
        (secs, "second")
    } else {
        (secs / 60, "minute")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The reset mail for `address`, carrying `token`: what it is, how long it lasts, how to use
/// it, and what to do when it was not asked for.
fn reset_mail(mail: &MailSettings, address: &str, token: &str, ttl: Duration, message_id: String) -> Email {
    let url = format!("{}{CONFIRM_PATH}", mail.public_url);
    let lifetime = lifetime(ttl);
    let body = format!(r#"{{"token": "{token}", "password": "<your new password>"}}"#);
    let text_body = format!(
        "Someone, hopefully you, asked to reset the password of the Pulse account {address}.\n\
         \n\
         Your reset token (it expires in {lifetime} and works once):\n\
         \n\
         \x20   {token}\n\
         \n\
         To choose a new password, send it with the token:\n\
         \n\
         \x20   POST {url}\n\
         \x20   Content-Type: application/json\n\
         \n\
         \x20   {body}\n\
         \n\
         for example:\n\
         \n\
         \x20   curl -X POST {url} -H 'content-type: application/json' \\\n\
         \x20     -d '{body}'\n\
         \n\
         This ends every session of the account: log in again with the new password.\n\
         \n\
         If you did not ask for this, ignore this mail: your password stays as it is.\n"
    );
    let (address, token, url, body) = (
        escape_html(address),
        escape_html(token),
        escape_html(&url),
        escape_html(&body),
    );
    let html_body = format!(
        "<!DOCTYPE html>\n<html><body>\n\
         <p>Someone, hopefully you, asked to reset the password of the Pulse account <b>{address}</b>.</p>\n\
         <p>Your reset token (it expires in {lifetime} and works once):</p>\n\
         <pre><code>{token}</code></pre>\n\
         <p>To choose a new password, send it with the token:</p>\n\
         <pre><code>POST {url}\nContent-Type: application/json\n\n{body}</code></pre>\n\
         <p>This ends every session of the account: log in again with the new password.</p>\n\
         <p>If you did not ask for this, ignore this mail: your password stays as it is.</p>\n\
         </body></html>\n"
    );
    Email {
        project_id: None,
        kind: PASSWORD_RESET,
        message_id,
        subject: "Reset your Pulse password".to_owned(),
        text_body,
        html_body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MailSettings {
        MailSettings {
            public_url: "https://pulse.example.com/a?x=1&y=<2>".into(),
            message_id_domain: "example.com".into(),
        }
    }

    #[test]
    fn the_mail_carries_the_token_and_how_to_use_it() {
        let token = keys::secret_token(RESET_PREFIX);
        assert!(keys::has_token_shape(RESET_PREFIX, &token.plain), "{}", token.plain);
        let mail = reset_mail(
            &settings(),
            "o'neil&co@example.com",
            &token.plain,
            Duration::from_secs(3600),
            "id@example.com".into(),
        );
        assert_eq!(mail.kind, PASSWORD_RESET);
        assert_eq!(mail.project_id, None);
        for part in [&mail.text_body, &mail.html_body] {
            assert!(part.contains(&token.plain), "{part}");
            assert!(part.contains("60 minutes"), "{part}");
        }
        assert!(mail
            .text_body
            .contains("POST https://pulse.example.com/a?x=1&y=<2>/v1/auth/password-reset/confirm"));
        assert!(mail
            .text_body
            .contains(&format!(r#"{{"token": "{}", "password""#, token.plain)));
        assert!(
            mail.html_body.contains("o&#39;neil&amp;co@example.com"),
            "{}",
            mail.html_body
        );
        assert!(mail
            .html_body
            .contains("a?x=1&amp;y=&lt;2&gt;/v1/auth/password-reset/confirm"));
        assert!(mail.html_body.contains("{&quot;token&quot;: &quot;prt_"));
        assert!(!mail.html_body.contains("<2>") && !mail.html_body.contains("o'neil"));
    }

    #[test]
    fn the_documented_pattern_is_the_checked_shape() {
        let pattern = regex_lite::Regex::new(&reset_token_pattern()).expect("pattern");
        let token = keys::secret_token(RESET_PREFIX).plain;
        assert_eq!(token.chars().count(), RESET_TOKEN_CHARS);
        assert!(pattern.is_match(&token) && keys::has_token_shape(RESET_PREFIX, &token));
        for other in ["rt_x", &token[1..], &format!("{token}A"), &token.replace('p', "q")] {
            assert!(
                !pattern.is_match(other) && !keys::has_token_shape(RESET_PREFIX, other),
                "{other}"
            );
        }
    }

    #[test]
    fn lifetimes_read_well() {
        assert_eq!(lifetime(Duration::from_secs(3600)), "60 minutes");
        assert_eq!(lifetime(Duration::from_secs(60)), "1 minute");
        assert_eq!(lifetime(Duration::from_secs(90)), "90 seconds");
        assert_eq!(lifetime(Duration::from_secs(1)), "1 second");
        assert_eq!(lifetime(Duration::from_secs(150)), "2 minutes");
    }
}
