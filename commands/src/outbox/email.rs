//! Email delivery: SMTP through lettre (rustls, no OpenSSL), or the development mailbox folder.
//!
//! Both build the same RFC 5322 message: `multipart/alternative` with the plain-text body first and
//! the HTML body second, and a `Message-ID` made from the outbox id, so that a message re-sent after
//! a crash carries the same id and a receiver can recognise the duplicate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use uuid::Uuid;

use super::{write_message_file, DeliveryError, TransportConfigError};

/// Longest wait for one SMTP reply (connect, greeting, each command): a relay slower than this is
/// treated as down and the message is retried later.
pub const SMTP_COMMAND_TIMEOUT_MS: u64 = 30_000;

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain TCP: only for a relay on the same host or a test server.
    None,
    /// Plain TCP upgraded with STARTTLS, which is required (usually port 587).
    #[serde(rename = "starttls")]
    StartTls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

impl SmtpTls {
    /// Reads the setting's spelling: `none`, `starttls` or `tls`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "starttls" => Some(Self::StartTls),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }

    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Tls => "tls",
        }
    }
}

/// Where and how to reach the SMTP relay.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Credentials for AUTH (PLAIN or LOGIN, whichever the relay offers); none means no AUTH.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` mailbox, e.g. `Stratus <no-reply@stratus.example>`.
    pub from: String,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

/// How emails leave this process.
pub enum EmailTransport {
    /// Over SMTP to a relay.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        /// `host:port (tls)`, for the startup log.
        endpoint: String,
    },
    /// Into a local folder, one `.eml` file per message, for development.
    Mailbox { dir: PathBuf, from: Mailbox },
}

/// Whether `from` can be the `From` of an email (`Name <user@domain>` or `user@domain`).
pub fn is_valid_sender(from: &str) -> bool {
    parse_sender(from).is_ok()
}

fn parse_sender(from: &str) -> Result<Mailbox, TransportConfigError> {
    from.parse()
        .map_err(|_| TransportConfigError::Sender(from.to_owned()))
}

impl EmailTransport {
    /// An SMTP transport; connections are opened on first use and pooled. Call it inside a Tokio
    /// runtime: the pool starts its idle-connection reaper task right away.
    pub fn smtp(config: &SmtpConfig) -> Result<Self, TransportConfigError> {
        let from = parse_sender(&config.from)?;
        let tls_parameters = || {
            TlsParameters::new(config.host.clone()).map_err(|source| TransportConfigError::Tls {
                host: config.host.clone(),
                source,
            })
        };
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        // `builder_dangerous` only means "no TLS preset": the TLS mode is set explicitly right here.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(SMTP_COMMAND_TIMEOUT_MS)));
        if let Some(username) = &config.username {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Self::Smtp {
            transport: builder.build(),
            from,
            endpoint: format!("{}:{} ({})", config.host, config.port, config.tls.as_str()),
        })
    }

    /// The development transport: each message becomes `<dir>/<outbox id>.eml`.
    pub fn mailbox(dir: impl Into<PathBuf>, from: &str) -> Result<Self, TransportConfigError> {
        Ok(Self::Mailbox {
            dir: dir.into(),
            from: parse_sender(from)?,
        })
    }

    /// Where messages go, for the startup log (never a credential).
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { endpoint, .. } => format!("SMTP relay {endpoint}"),
            Self::Mailbox { dir, .. } => format!("mailbox folder {}", dir.display()),
        }
    }

    /// Sends one email. `id` is the outbox id; it becomes the `Message-ID` and the file name.
    pub async fn send(
        &self,
        id: Uuid,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), DeliveryError> {
        match self {
            Self::Smtp {
                transport, from, ..
            } => {
                let message = build_message(from, id, to, subject, text, html)?;
                transport.send(message).await?;
                Ok(())
            }
            Self::Mailbox { dir, from } => {
                let message = build_message(from, id, to, subject, text, html)?;
                let path =
                    write_message_file(dir, &format!("{id}.eml"), &message.formatted()).await?;
                tracing::info!(
                    %id,
                    link = %format!("file://{}", path.display()),
                    "email written to the development mailbox"
                );
                Ok(())
            }
        }
    }
}

/// The RFC 5322 message: `multipart/alternative` (text, then HTML) or plain text alone.
fn build_message(
    from: &Mailbox,
    id: Uuid,
    to: &str,
    subject: &str,
    text: &str,
    html: Option<&str>,
) -> Result<Message, DeliveryError> {
    let to: Mailbox = to.parse().map_err(|_| DeliveryError::InvalidRecipient)?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{id}@{}>", from.email.domain())));
    let built = match html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        )),
        None => builder.singlepart(SinglePart::plain(text.to_owned())),
    };
    built.map_err(|e| DeliveryError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sender() -> Mailbox {
        "Stratus <no-reply@stratus.test>".parse().unwrap()
    }

    #[test]
    fn an_email_with_html_is_multipart_alternative_with_the_text_part_first() {
        let id = Uuid::now_v7();

        let message = build_message(
            &sender(),
            id,
            "ada@example.com",
            "Hello",
            "plain body",
            Some("<p>html body</p>"),
        )
        .unwrap();

        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        let text_at = raw.find("text/plain").unwrap();
        let html_at = raw.find("text/html").unwrap();
        assert!(text_at < html_at, "{raw}");
        assert!(
            raw.contains(&format!("Message-ID: <{id}@stratus.test>")),
            "{raw}"
        );
        assert!(raw.contains("Subject: Hello"));
    }

    #[test]
    fn a_malformed_recipient_is_a_permanent_failure_that_does_not_repeat_the_address() {
        let err =
            build_message(&sender(), Uuid::now_v7(), "not an address", "s", "t", None).unwrap_err();

        assert!(err.is_permanent());
        assert!(!err.to_string().contains("not an address"));
    }

    #[test]
    fn a_bad_sender_is_refused_when_the_transport_is_built() {
        let err = EmailTransport::mailbox("/tmp", "nobody").err().unwrap();
        assert!(matches!(err, TransportConfigError::Sender(_)));
        assert!(!is_valid_sender("Stratus <no-reply@>"));
        assert!(is_valid_sender("Stratus <no-reply@stratus.local>"));
        assert!(is_valid_sender("no-reply@stratus.local"));
    }

    #[tokio::test]
    async fn the_smtp_password_never_prints() {
        let config = SmtpConfig {
            host: "smtp.example.com".to_owned(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: Some("mailer".to_owned()),
            password: Some("hunter2".to_owned()),
            from: "Stratus <no-reply@example.com>".to_owned(),
        };
        let transport = EmailTransport::smtp(&config).unwrap();

        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!transport.describe().contains("hunter2"));
        assert_eq!(
            transport.describe(),
            "SMTP relay smtp.example.com:587 (starttls)"
        );
    }

    #[test]
    fn each_tls_spelling_reads_back() {
        for tls in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Tls] {
            assert_eq!(SmtpTls::parse(tls.as_str()), Some(tls));
        }
        assert_eq!(SmtpTls::parse("ssl"), None);
    }

    #[tokio::test]
    async fn the_mailbox_transport_writes_one_eml_file_named_after_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let transport =
            EmailTransport::mailbox(dir.path(), "Stratus <no-reply@stratus.test>").unwrap();
        let id = Uuid::now_v7();

        transport
            .send(
                id,
                "ada@example.com",
                "Subject",
                "text",
                Some("<p>html</p>"),
            )
            .await
            .unwrap();
        transport
            .send(
                id,
                "ada@example.com",
                "Subject",
                "text",
                Some("<p>html</p>"),
            )
            .await
            .unwrap();

        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("{id}.eml")]);
        let raw = std::fs::read_to_string(dir.path().join(format!("{id}.eml"))).unwrap();
        assert!(raw.contains("To: ada@example.com"), "{raw}");
    }
}
