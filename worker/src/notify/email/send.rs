//! Sending one message over SMTP with lettre: the transport is built once from
//! `PULSE_SMTP_URL` (`smtp://`, `smtps://`, STARTTLS by `?tls=required`, credentials in the
//! URL) with a pool of connections, and each message gets a text and an HTML part, the
//! outbox's `Message-ID`, and `From` = `PULSE_SMTP_FROM`.
//!
//! A failure is permanent when the server answered with a 5xx (the address or the message is
//! refused: retrying will not help), transient otherwise (4xx, connection, timeout, TLS).

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use pulse_shared::config::EmailConfig;

use super::claim::Claimed;

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub struct SendError {
    /// Retrying cannot succeed (a 5xx reply, an address that does not parse).
    pub permanent: bool,
    pub message: String,
}

/// The SMTP transport and the sender address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Builds the transport; an unusable `PULSE_SMTP_URL` or `PULSE_SMTP_FROM` is an error
    /// naming it (nothing is contacted yet).
    pub fn new(config: &EmailConfig) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.as_str())
            .map_err(|error| format!("PULSE_SMTP_URL: {error}"))?
            .timeout(Some(config.timeout))
            .build();
        let from = config
            .from
            .parse()
            .map_err(|error| format!("PULSE_SMTP_FROM: {:?} is not a mailbox ({error})", config.from))?;
        Ok(Self { transport, from })
    }

    /// Sends `message` once.
    pub async fn send(&self, message: &Claimed) -> Result<(), SendError> {
        let email = self.build(message)?;
        self.transport.send(email).await.map(|_| ()).map_err(|error| SendError {
            permanent: error.is_permanent(),
            message: error.to_string(),
        })
    }

    fn build(&self, message: &Claimed) -> Result<Message, SendError> {
        let to: Mailbox = message.recipient.parse().map_err(|error| SendError {
            permanent: true,
            message: format!("recipient {:?} is not an address ({error})", message.recipient),
        })?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .message_id(Some(format!("<{}>", message.message_id)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(message.text_body.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(message.html_body.clone()),
                    ),
            )
            .map_err(|error| SendError {
                permanent: true,
                message: format!("the message could not be built ({error})"),
            })
    }
}
