//! The message outbox: email and SMS leave the system through the `outbox` table.
//!
//! Reactors call [`enqueue`] inside the feed's transaction, so a message exists exactly when the
//! event that caused it has been applied; its `dedup_key` makes a replay or a retry enqueue nothing
//! new. Messages are rendered at enqueue time ([`templates`]) and stored as they will be sent.
//!
//! The [`dispatcher::Dispatcher`] claims due messages under a lease, sends them through the
//! transports ([`email::EmailTransport`], [`sms::SmsTransport`]), and marks them sent or schedules a
//! retry with exponential backoff. Delivery is at least once: the only way a message is sent twice
//! is a crash (or a lease running out) between "sent" and "marked sent".
//!
//! Bodies carry codes and links: nothing here logs a body, only the message id, channel, dedup key
//! and at most the recipient's domain.

pub mod dispatcher;
pub mod email;
pub mod sms;
pub mod templates;

use std::path::{Path, PathBuf};

use sqlx::PgConnection;
use uuid::Uuid;

pub use dispatcher::{DispatchError, Dispatcher, DispatcherConfig, Transports, NOTIFY_CHANNEL};
pub use email::{EmailTransport, SmtpConfig, SmtpTls};
pub use sms::{HttpSmsConfig, SmsTransport};
pub use templates::Rendered;

/// One message to send, fully rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Identifies the message across retries and replays, e.g. `verify-email:{event id}`. The same
    /// key is enqueued once; later enqueues of it are ignored.
    pub dedup_key: String,
    pub kind: MessageKind,
}

/// What is sent, and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// An email with a plain-text body and, usually, an HTML alternative.
    Email {
        to: String,
        subject: String,
        text: String,
        html: Option<String>,
    },
    /// A text message to a phone number in E.164 form.
    Sms { to: String, body: String },
}

impl OutboxMessage {
    /// An email rendered from a template.
    pub fn email(dedup_key: impl Into<String>, to: impl Into<String>, rendered: Rendered) -> Self {
        Self {
            dedup_key: dedup_key.into(),
            kind: MessageKind::Email {
                to: to.into(),
                subject: rendered.subject,
                text: rendered.text,
                html: Some(rendered.html),
            },
        }
    }

    /// A text message.
    pub fn sms(
        dedup_key: impl Into<String>,
        to: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            dedup_key: dedup_key.into(),
            kind: MessageKind::Sms {
                to: to.into(),
                body: body.into(),
            },
        }
    }
}

/// The `channel` column of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// Reads a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

impl MessageKind {
    /// The channel the message leaves through.
    pub fn channel(&self) -> Channel {
        match self {
            Self::Email { .. } => Channel::Email,
            Self::Sms { .. } => Channel::Sms,
        }
    }
}

/// Stores `msg` for sending, unless a message with its dedup key already exists. Returns whether
/// it was new.
///
/// Runs on the caller's connection, so inside a transaction it commits or rolls back with it; a
/// reactor passes the feed's transaction. Dispatchers are woken by `NOTIFY stratus_outbox` on commit.
pub async fn enqueue(conn: &mut PgConnection, msg: &OutboxMessage) -> Result<bool, sqlx::Error> {
    let (recipient, subject, text, html) = match &msg.kind {
        MessageKind::Email {
            to,
            subject,
            text,
            html,
        } => (to, Some(subject), text, html.as_ref()),
        MessageKind::Sms { to, body } => (to, None, body, None),
    };
    let inserted = sqlx::query(
        "INSERT INTO outbox (id, dedup_key, channel, recipient, subject, body_text, body_html) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(&msg.dedup_key)
    .bind(msg.kind.channel().as_str())
    .bind(recipient)
    .bind(subject)
    .bind(text)
    .bind(html)
    .execute(conn)
    .await?;
    let new = inserted.rows_affected() == 1;
    tracing::debug!(
        dedup_key = %msg.dedup_key,
        channel = msg.kind.channel().as_str(),
        new,
        "message enqueued"
    );
    Ok(new)
}

/// Why one message could not be sent this time.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The recipient cannot be parsed as an address (the address itself is not repeated: errors
    /// end up in logs).
    #[error("the recipient is not a valid address")]
    InvalidRecipient,
    #[error("the message cannot be built: {0}")]
    Build(String),
    #[error("the stored message is malformed: {0}")]
    Malformed(&'static str),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the SMS provider answered HTTP {status}")]
    ProviderStatus { status: u16 },
    #[error("cannot reach the SMS provider: {0}")]
    Http(reqwest::Error),
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no answer within {0} ms")]
    Timeout(u64),
}

impl DeliveryError {
    /// A failure that no retry can cure: the message is given up at once.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::InvalidRecipient | Self::Build(_) | Self::Malformed(_)
        )
    }
}

/// A transport that cannot be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum TransportConfigError {
    #[error(
        "the sender {0:?} is not a valid mailbox (expected e.g. `Stratus <no-reply@example.com>`)"
    )]
    Sender(String),
    #[error("cannot set up TLS for the SMTP host {host}: {source}")]
    Tls {
        host: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("the SMS provider URL {0:?} is not a valid http(s) URL")]
    SmsUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(reqwest::Error),
}

/// Writes a local message file in `dir` without ever showing a half-written one (write aside,
/// then rename), and returns its absolute path. Writing the same name again replaces the file, so a
/// re-sent message leaves one copy.
async fn write_message_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, DeliveryError> {
    let path = dir.join(name);
    let file_error = |source| DeliveryError::File {
        path: path.clone(),
        source,
    };
    tokio::fs::create_dir_all(dir).await.map_err(file_error)?;
    let aside = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&aside, bytes).await.map_err(file_error)?;
    tokio::fs::rename(&aside, &path).await.map_err(file_error)?;
    Ok(std::path::absolute(&path).unwrap_or(path))
}

/// The part of an address that may appear in logs: the domain of an email address, nothing of a
/// phone number.
pub fn loggable_recipient(channel: Channel, recipient: &str) -> &str {
    match channel {
        Channel::Email => recipient
            .rsplit_once('@')
            .map(|(_, domain)| domain)
            .unwrap_or(""),
        Channel::Sms => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_domain_of_an_email_recipient_and_nothing_of_a_phone_number_is_loggable() {
        assert_eq!(
            loggable_recipient(Channel::Email, "ada@example.com"),
            "example.com"
        );
        assert_eq!(loggable_recipient(Channel::Email, "no-at-sign"), "");
        assert_eq!(loggable_recipient(Channel::Sms, "+447700900123"), "");
    }

    #[test]
    fn a_channel_reads_back_its_stored_name() {
        for channel in [Channel::Email, Channel::Sms] {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        assert_eq!(Channel::parse("fax"), None);
    }
}
