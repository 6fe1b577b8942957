//! SMS delivery: an HTTP provider adapter, or the development folder.
//!
//! The first provider shape is Twilio's: an `application/x-www-form-urlencoded` POST of `To`,
//! `From` and `Body` to a configurable URL, with HTTP basic auth (account, token). Any answer but
//! 2xx is a failure to retry, with the status in the error; the provider's body is not kept, since
//! it may repeat the phone number.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use super::{write_message_file, DeliveryError, TransportConfigError};

/// Longest wait for the provider's answer to one message; past it the message is retried later.
pub const SMS_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Longest wait to connect to the provider: a provider that does not accept a connection this fast
/// is treated as down.
pub const SMS_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Header carrying the outbox id, for providers that deduplicate retried requests by it.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Where and how to reach the SMS provider.
#[derive(Clone)]
pub struct HttpSmsConfig {
    /// The messages endpoint, e.g. `https://api.twilio.com/2010-04-01/Accounts/AC…/Messages.json`.
    pub url: String,
    /// Basic-auth user (Twilio: the account SID); none means no authentication.
    pub account: Option<String>,
    /// Basic-auth password (Twilio: the auth token).
    pub token: Option<String>,
    /// The sender number or name (`From`).
    pub from: String,
}

impl fmt::Debug for HttpSmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSmsConfig")
            .field("url", &self.url)
            .field("account", &self.account)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

/// The HTTP adapter: a client with timeouts and the provider's coordinates.
pub struct HttpSms {
    client: reqwest::Client,
    url: reqwest::Url,
    config: HttpSmsConfig,
}

/// How text messages leave this process.
pub enum SmsTransport {
    /// Posted to an HTTP provider.
    Http(Box<HttpSms>),
    /// Written into a local folder, one `.txt` file per message, for development.
    Files(PathBuf),
}

impl SmsTransport {
    /// The HTTP adapter for `config`.
    pub fn http(config: HttpSmsConfig) -> Result<Self, TransportConfigError> {
        let url = reqwest::Url::parse(&config.url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| TransportConfigError::SmsUrl(config.url.clone()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(SMS_REQUEST_TIMEOUT_MS))
            .connect_timeout(Duration::from_millis(SMS_CONNECT_TIMEOUT_MS))
            .build()
            .map_err(TransportConfigError::HttpClient)?;
        Ok(Self::Http(Box::new(HttpSms {
            client,
            url,
            config,
        })))
    }

    /// The development transport: each message becomes `<dir>/<outbox id>.txt`.
    pub fn files(dir: impl Into<PathBuf>) -> Self {
        Self::Files(dir.into())
    }

    /// Where messages go, for the startup log (never a credential).
    pub fn describe(&self) -> String {
        match self {
            Self::Http(http) => format!(
                "SMS provider {}://{}{}",
                http.url.scheme(),
                http.url.host_str().unwrap_or(""),
                http.url
                    .port()
                    .map(|port| format!(":{port}"))
                    .unwrap_or_default()
            ),
            Self::Files(dir) => format!("SMS folder {}", dir.display()),
        }
    }

    /// Sends one text message. `id` is the outbox id.
    pub async fn send(&self, id: Uuid, to: &str, body: &str) -> Result<(), DeliveryError> {
        match self {
            Self::Http(http) => http.post(id, to, body).await,
            Self::Files(dir) => {
                let content = format!("To: {to}\n\n{body}\n");
                let path =
                    write_message_file(dir, &format!("{id}.txt"), content.as_bytes()).await?;
                tracing::info!(
                    %id,
                    path = %path.display(),
                    "text message written to the development SMS folder"
                );
                Ok(())
            }
        }
    }
}

impl HttpSms {
    async fn post(&self, id: Uuid, to: &str, body: &str) -> Result<(), DeliveryError> {
        let form = [
            ("To", to),
            ("From", self.config.from.as_str()),
            ("Body", body),
        ];
        let mut request = self
            .client
            .post(self.url.clone())
            .header(IDEMPOTENCY_HEADER, id.to_string())
            .form(&form);
        if let Some(account) = &self.config.account {
            request = request.basic_auth(account, self.config.token.as_ref());
        }
        // `without_url`: the URL may carry the account id, and errors end up in logs.
        let response = request
            .send()
            .await
            .map_err(|e| DeliveryError::Http(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::ProviderStatus {
                status: status.as_u16(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn config(url: &str) -> HttpSmsConfig {
        HttpSmsConfig {
            url: url.to_owned(),
            account: Some("AC123".to_owned()),
            token: Some("hunter2".to_owned()),
            from: "+15005550006".to_owned(),
        }
    }

    #[test]
    fn a_url_that_is_not_http_is_refused() {
        for url in ["not a url", "ftp://example.com/sms"] {
            let err = SmsTransport::http(config(url)).err().unwrap();
            assert!(matches!(err, TransportConfigError::SmsUrl(_)), "{url}");
        }
    }

    #[test]
    fn the_token_never_prints_and_the_description_shows_only_the_host() {
        let config = config("https://api.example.com/2010-04-01/Accounts/AC123/Messages.json");
        let transport = SmsTransport::http(config.clone()).unwrap();

        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(transport.describe(), "SMS provider https://api.example.com");
    }

    #[tokio::test]
    async fn the_files_transport_writes_one_text_file_named_after_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let transport = SmsTransport::files(dir.path());
        let id = Uuid::now_v7();

        transport
            .send(id, "+447700900123", "Your code is 123456")
            .await
            .unwrap();

        let text = std::fs::read_to_string(dir.path().join(format!("{id}.txt"))).unwrap();
        assert_eq!(text, "To: +447700900123\n\nYour code is 123456\n");
    }
}
