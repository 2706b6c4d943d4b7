//! Password reset end to end: a real `pulse-api` on a real PostgreSQL, and for the mail a real
//! `pulse-worker notify` sending the outbox over SMTP to a real SMTP server
//! (`pulse_testkit::SmtpCapture`). The tests that need no mail read the token from the outbox
//! row the api wrote (`email_messages`), which is what the worker would send.

use std::time::Duration;

use pulse_testkit::management::{Answer, ManagementStack as Stack, User, PASSWORD};
use pulse_testkit::{eventually, PulseProcess, SmtpCapture};
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const REQUEST: &str = "/v1/auth/password-reset";
const CONFIRM: &str = "/v1/auth/password-reset/confirm";
const NEW_PASSWORD: &str = "a brand new password";
/// The one answer of a reset request, known account or not.
const REQUESTED: &str = "if an account has this email, a reset link is on its way";

fn token_in(text: &str) -> Option<String> {
    let pattern = regex_lite::Regex::new(r"prt_[A-Za-z0-9_-]{43}").expect("pattern");
    pattern.find(text).map(|found| found.as_str().to_owned())
}

async fn request_reset(stack: &Stack, email: &str) -> Answer {
    stack.post(REQUEST, None, json!({"email": email})).await
}

async fn confirm(stack: &Stack, token: &str, password: &str) -> Answer {
    stack
        .post(CONFIRM, None, json!({"token": token, "password": password}))
        .await
}

async fn login(stack: &Stack, email: &str, password: &str) -> Answer {
    stack
        .post("/v1/auth/login", None, json!({"email": email, "password": password}))
        .await
}

async fn refresh(stack: &Stack, refresh_token: &str) -> Answer {
    stack
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh_token}))
        .await
}

/// The token of the newest reset mail in the outbox for `recipient`.
async fn outbox_token(stack: &Stack, recipient: &str) -> String {
    let client = stack.db.client().await;
    let row = client
        .query_one(
            "SELECT text_body FROM email_messages WHERE recipient = $1 AND kind = 'password_reset'
             ORDER BY created_at DESC, id DESC LIMIT 1",
            &[&recipient],
        )
        .await
        .expect("a reset mail in the outbox");
    let text: String = row.get(0);
    token_in(&text).unwrap_or_else(|| panic!("no token in the mail: {text}"))
}

async fn count(stack: &Stack, sql: &str) -> i64 {
    let client = stack.db.client().await;
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

fn email() -> String {
    format!("reset-{}@example.com", Uuid::new_v4().simple())
}

fn assert_requested(answer: Answer, what: &str) {
    let body = answer.expect(202, what);
    assert_eq!(body, json!({"message": REQUESTED}), "{what}");
}

/// The whole journey with the real mail: request, the mail arrives over SMTP with the token,
/// confirm, then only the new password logs in and every old session is gone.
#[tokio::test]
async fn reset_by_mail_end_to_end() {
    let smtp = SmtpCapture::start().await;
    let url = smtp.url();
    let stack = Stack::start(&[
        ("PULSE_SMTP_URL", url.as_str()),
        ("PULSE_SMTP_FROM", "Pulse <pulse@mail.test>"),
        ("PULSE_PUBLIC_URL", "http://pulse.test:8080/"),
        ("PULSE_EMAIL_RETRY_SCHEDULE", "1,1,1,1,1"),
    ])
    .await;
    let _notify = PulseProcess::notify_worker(&stack.env).await;

    // An address with characters HTML must escape.
    let address = format!("o'neil&co-{}@example.com", Uuid::new_v4().simple());
    let user: User = stack.register(&address).await;
    let second_session = login(&stack, &address, PASSWORD).await.expect(200, "second login");
    let second_refresh = second_session["refresh_token"].as_str().expect("refresh").to_owned();

    // Nobody has this email: the same answer, and no mail (checked below: only one arrives).
    assert_requested(request_reset(&stack, &email()).await, "unknown email");
    // Case and surrounding whitespace do not matter.
    let typed = format!("  {}  ", address.to_uppercase());
    assert_requested(request_reset(&stack, &typed).await, "known email");

    let messages = smtp.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(messages.len(), 1, "one mail arrives: {messages:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "nothing for the unknown email: {messages:?}");
    let mail = &messages[0];
    assert_eq!(mail.recipients, vec![address.clone()]);
    assert_eq!(mail.subject, "Reset your Pulse password");
    assert!(
        mail.message_id.starts_with("<password_reset.") && mail.message_id.ends_with(".0@mail.test>"),
        "{}",
        mail.message_id
    );
    assert!(mail.from.contains("pulse@mail.test"), "{}", mail.from);
    let token = token_in(&mail.text).unwrap_or_else(|| panic!("no token in {}", mail.text));
    assert_eq!(token_in(&mail.html).as_deref(), Some(token.as_str()), "{}", mail.html);
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("60 minutes"), "{part}");
        assert!(
            part.contains("POST http://pulse.test:8080/v1/auth/password-reset/confirm"),
            "{part}"
        );
    }
    assert!(mail.text.contains(&address), "{}", mail.text);
    assert!(
        mail.text.contains(&format!(r#"{{"token": "{token}", "password": "#)),
        "{}",
        mail.text
    );
    let escaped = address.replace('&', "&amp;").replace('\'', "&#39;");
    assert!(mail.html.contains(&escaped), "{}", mail.html);
    assert!(!mail.html.contains(&address), "{}", mail.html);

    // Once sent, the outbox no longer keeps the token in clear.
    let client = stack.db.client().await;
    let redacted = eventually(Duration::from_secs(30), || async {
        let row = client
            .query_one("SELECT status, text_body, html_body FROM email_messages", &[])
            .await
            .expect("the outbox row");
        let (status, text, html): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        (status == "sent").then_some((text, html))
    })
    .await
    .expect("the outbox row is marked sent");
    assert!(
        !redacted.0.contains(&token) && !redacted.1.contains(&token),
        "{redacted:?}"
    );

    confirm(&stack, &token, NEW_PASSWORD).await.expect(204, "confirm");

    login(&stack, &address, NEW_PASSWORD)
        .await
        .expect(200, "the new password");
    let old = login(&stack, &address, PASSWORD).await;
    assert_eq!(
        (old.status, old.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
    );
    for session in [&user.refresh, &second_refresh] {
        let refused = refresh(&stack, session).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN"),
            "{}",
            refused.body
        );
    }
    let again = confirm(&stack, &token, "yet another password").await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN")
    );
}

/// A known and an unknown email get the same answer; only the known one writes a token (as
/// its SHA-256, with the configured lifetime) and its mail, in the outbox.
#[tokio::test]
async fn unknown_email_gets_the_same_answer_and_nothing_is_written() {
    let stack = Stack::start(&[]).await;
    let address = email();
    let user = stack.register(&address).await;

    let unknown = request_reset(&stack, &email()).await;
    let known = request_reset(&stack, &address).await;
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.body, known.body);
    assert_eq!(unknown.headers.get("content-type"), known.headers.get("content-type"));
    assert_requested(unknown, "unknown");
    assert_requested(known, "known");

    assert_eq!(count(&stack, "SELECT count(*) FROM password_resets").await, 1);
    assert_eq!(count(&stack, "SELECT count(*) FROM email_messages").await, 1);

    let token = outbox_token(&stack, &address).await;
    let client = stack.db.client().await;
    let row = client
        .query_one(
            "SELECT r.token_hash, r.user_id, extract(epoch FROM r.expires_at - r.created_at)::float8,
                    r.used_at IS NULL, m.kind, m.project_id IS NULL, m.subject, m.message_id, m.status
             FROM password_resets r, email_messages m",
            &[],
        )
        .await
        .expect("rows");
    let stored: Vec<u8> = row.get(0);
    assert_eq!(
        stored,
        Sha256::digest(token.as_bytes()).to_vec(),
        "SHA-256 of the token"
    );
    assert_eq!(row.get::<_, Uuid>(1), user.id);
    let lifetime: f64 = row.get(2);
    assert!(
        (lifetime - 3600.0).abs() < 5.0,
        "PULSE_PASSWORD_RESET_TTL_SECS default: {lifetime}"
    );
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, String>(4), "password_reset");
    assert!(row.get::<_, bool>(5), "about an account, not a project");
    assert_eq!(row.get::<_, String>(6), "Reset your Pulse password");
    let message_id: String = row.get(7);
    assert!(
        message_id.starts_with("password_reset.") && message_id.ends_with(".0@localhost"),
        "{message_id}"
    );
    assert_eq!(row.get::<_, String>(8), "pending", "waits for the notify worker");

    // Each request is a token of its own, with a mail of its own.
    assert_requested(request_reset(&stack, &address).await, "again");
    assert_eq!(count(&stack, "SELECT count(*) FROM password_resets").await, 2);
    assert_eq!(
        count(&stack, "SELECT count(DISTINCT message_id) FROM email_messages").await,
        2
    );

    // Bad bodies are 400 like anywhere else.
    for (body, code) in [
        (json!({}), "INVALID_JSON"),
        (json!({"email": 42}), "INVALID_JSON"),
        (json!({"email": address, "extra": 1}), "INVALID_JSON"),
        (json!({"email": "not-an-email"}), "INVALID_FIELD"),
        (json!({"email": "nul\u{0}@example.com"}), "INVALID_FIELD"),
    ] {
        let answer = stack.post(REQUEST, None, body.clone()).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    let raw = stack
        .http
        .post(format!("{}{REQUEST}", stack.api.base_url()))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(count(&stack, "SELECT count(*) FROM password_resets").await, 2);
}

/// Two confirms racing with the same token: exactly one wins; the token never works again.
#[tokio::test]
async fn a_token_works_once_even_when_raced() {
    let stack = Stack::start(&[]).await;
    let address = email();
    stack.register(&address).await;
    assert_requested(request_reset(&stack, &address).await, "request");
    let token = outbox_token(&stack, &address).await;

    let (first, second) = tokio::join!(
        confirm(&stack, &token, "first new password"),
        confirm(&stack, &token, "second new password"),
    );
    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 400], "{} / {}", first.body, second.body);
    let (winner, loser) = if first.status == StatusCode::NO_CONTENT {
        ("first new password", &second)
    } else {
        ("second new password", &first)
    };
    assert_eq!(loser.code(), "INVALID_RESET_TOKEN", "{}", loser.body);
    login(&stack, &address, winner)
        .await
        .expect(200, "the winner's password");

    let again = confirm(&stack, &token, "third new password").await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN")
    );
    login(&stack, &address, winner)
        .await
        .expect(200, "still the winner's password");
    assert_eq!(
        count(&stack, "SELECT count(*) FROM password_resets WHERE used_at IS NOT NULL").await,
        1
    );
}

/// A token past `PULSE_PASSWORD_RESET_TTL_SECS` is refused, and the password stays; the mail
/// says how long the token lasts.
#[tokio::test]
async fn an_expired_token_is_refused() {
    let stack = Stack::start(&[("PULSE_PASSWORD_RESET_TTL_SECS", "2")]).await;
    let address = email();
    stack.register(&address).await;
    assert_requested(request_reset(&stack, &address).await, "request");
    let token = outbox_token(&stack, &address).await;
    let text: String = stack
        .db
        .client()
        .await
        .query_one("SELECT text_body FROM email_messages", &[])
        .await
        .expect("mail")
        .get(0);
    assert!(text.contains("expires in 2 seconds"), "{text}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = confirm(&stack, &token, NEW_PASSWORD).await;
    assert_eq!(
        (expired.status, expired.code()),
        (StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN"),
        "{}",
        expired.body
    );
    login(&stack, &address, PASSWORD)
        .await
        .expect(200, "the old password stays");
    assert_eq!(
        count(&stack, "SELECT count(*) FROM password_resets WHERE used_at IS NOT NULL").await,
        0
    );
}

/// The new password follows the registration rules; a refused one leaves the token usable.
/// Malformed and unknown tokens are `INVALID_RESET_TOKEN`.
#[tokio::test]
async fn confirm_checks_the_password_and_the_token() {
    let stack = Stack::start(&[]).await;
    let address = email();
    stack.register(&address).await;
    assert_requested(request_reset(&stack, &address).await, "request");
    let token = outbox_token(&stack, &address).await;

    for weak in ["short", &"x".repeat(1025)] {
        let refused = confirm(&stack, &token, weak).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, "INVALID_FIELD"),
            "{}",
            refused.body
        );
        assert_eq!(refused.body["error"]["details"]["field"], "password");
    }
    let unknown = format!("prt_{}", "A".repeat(43));
    for bad in ["", "prt_short", "rt_nope", unknown.as_str(), &token[..token.len() - 1]] {
        let refused = confirm(&stack, bad, NEW_PASSWORD).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN"),
            "{bad}: {}",
            refused.body
        );
        assert!(refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("request a new one")));
    }
    for body in [
        json!({"token": token}),
        json!({"password": NEW_PASSWORD}),
        json!({"token": token, "password": NEW_PASSWORD, "email": address}),
    ] {
        let refused = stack.post(CONFIRM, None, body.clone()).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, "INVALID_JSON"),
            "{body}"
        );
    }

    login(&stack, &address, PASSWORD)
        .await
        .expect(200, "nothing changed yet");
    confirm(&stack, &token, NEW_PASSWORD)
        .await
        .expect(204, "the token still works");
    login(&stack, &address, NEW_PASSWORD)
        .await
        .expect(200, "the new password");
}

/// Confirming one token expires the user's other outstanding tokens (not other users') and
/// revokes every refresh token of the user.
#[tokio::test]
async fn confirm_ends_other_tokens_and_every_session() {
    let stack = Stack::start(&[]).await;
    let address = email();
    let user = stack.register(&address).await;
    let other_address = email();
    let other = stack.register(&other_address).await;
    let mut sessions = vec![user.refresh.clone()];
    for _ in 0..2 {
        let session = login(&stack, &address, PASSWORD).await.expect(200, "login");
        sessions.push(session["refresh_token"].as_str().expect("refresh").to_owned());
    }
    assert_requested(request_reset(&stack, &address).await, "first");
    let first = outbox_token(&stack, &address).await;
    assert_requested(request_reset(&stack, &address).await, "second");
    let second = outbox_token(&stack, &address).await;
    assert_ne!(first, second);
    assert_requested(request_reset(&stack, &other_address).await, "other user");
    let others = outbox_token(&stack, &other_address).await;

    confirm(&stack, &second, NEW_PASSWORD)
        .await
        .expect(204, "confirm the second");
    let stale = confirm(&stack, &first, "yet another password").await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::BAD_REQUEST, "INVALID_RESET_TOKEN"),
        "the first token is expired by the reset"
    );
    for session in &sessions {
        let refused = refresh(&stack, session).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    }
    let live: i64 = stack
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
            &[&user.id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(live, 0);

    // The other user is untouched: their session and their token still work.
    refresh(&stack, &other.refresh)
        .await
        .expect(200, "other user's session");
    confirm(&stack, &others, NEW_PASSWORD)
        .await
        .expect(204, "other user's token");
}

/// Requests share login's limiter: per account and per IP, with login; confirm counts against
/// the IP's budget.
#[tokio::test]
async fn requests_are_rate_limited_like_login() {
    let stack = Stack::start(&[
        ("PULSE_LOGIN_RATE_PER_MIN_IP", "5"),
        ("PULSE_LOGIN_RATE_PER_MIN_ACCOUNT", "2"),
    ])
    .await;
    let address = email();
    let wrong = login(&stack, &address, "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_requested(request_reset(&stack, &address).await, "second attempt for the account");
    let limited = request_reset(&stack, &address).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
    );
    assert!(limited.headers.get("retry-after").is_some());
    assert_requested(request_reset(&stack, &email()).await, "another account");
    assert_requested(request_reset(&stack, &email()).await, "the IP's fifth");
    let by_ip = request_reset(&stack, &email()).await;
    assert_eq!(by_ip.status, StatusCode::TOO_MANY_REQUESTS, "{}", by_ip.body);
    let unknown = format!("prt_{}", "A".repeat(43));
    let confirm_limited = confirm(&stack, &unknown, NEW_PASSWORD).await;
    assert_eq!(
        confirm_limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        confirm_limited.body
    );
}
