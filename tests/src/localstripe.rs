//! Peers of the payment tests: localstripe, a fake Stripe server (PyPI `localstripe`), and a
//! webhook inbox that records what localstripe delivers.
//!
//! [`LocalStripe::start`] runs `tests/src/localstripe_launcher.py` with `python3`: localstripe on
//! a free port of 127.0.0.1, its state in memory, killed when the value is dropped. It needs the
//! version pinned in `tests/localstripe-requirements.txt`, which `.ci/run` installs; without it the
//! tests fail and say how to install it.
//!
//! What localstripe does and does not do, as far as these tests rely on it (1.15.10):
//! PaymentIntents can be created, retrieved, updated, confirmed and canceled; the test cards
//! `pm_card_visa` (succeeds) and `pm_card_chargeCustomerFail` (declined at charge time) work;
//! confirming with a `payment_method` parameter does not (it answers 500), so the payment method
//! is attached by an update first. It ignores `Idempotency-Key`: a repeated create makes a second
//! intent. It sends signed webhooks (`Stripe-Signature: t=…,v1=…`, one secret per endpoint) a
//! second after `payment_intent.succeeded` and `payment_intent.payment_failed`, but none for a
//! cancellation.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use stratus_commands::payments::stripe::StripeClient;
use stratus_commands::payments::{IntentId, Secret};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The launcher, passed to `python3 -c`.
const LAUNCHER: &str = include_str!("localstripe_launcher.py");
/// The pinned requirements; the harness checks the localstripe version named there.
const REQUIREMENTS: &str = include_str!("../localstripe-requirements.txt");
/// How long localstripe may take to answer after start: Python importing aiohttp on a busy
/// two-core machine takes a few seconds at worst.
pub const LOCALSTRIPE_START_TIMEOUT_MS: u64 = 30_000;
/// Pause between two readiness probes.
const READY_POLL_INTERVAL_MS: u64 = 50;
/// The secret key the tests use: localstripe accepts any key that starts with `sk_`.
pub const LOCALSTRIPE_SECRET_KEY: &str = "sk_test_stratus";
/// How long to wait for a webhook: localstripe sends one a second after the event.
pub const WEBHOOK_WAIT_MS: u64 = 15_000;

/// A running localstripe, killed on drop.
pub struct LocalStripe {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    /// A plain HTTP client, for what the customer's browser or Stripe's dashboard would do.
    pub http: reqwest::Client,
    _process: Child,
    _stdout: BufReader<ChildStdout>,
}

impl LocalStripe {
    /// Starts localstripe and waits until it answers. Panics, saying how to install it, when
    /// `python3` or the pinned localstripe is missing.
    pub async fn start() -> LocalStripe {
        let version = pinned_version();
        let mut process = Command::new("python3")
            .arg("-c")
            .arg(LAUNCHER)
            .arg(&version)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run python3 for localstripe: {e}{}",
                    how_to_install()
                )
            });
        let stdout = process
            .stdout
            .take()
            .expect("the launcher's stdout is piped");
        let mut stdout = BufReader::new(stdout);
        let mut first_line = String::new();
        let timeout = Duration::from_millis(LOCALSTRIPE_START_TIMEOUT_MS);
        tokio::time::timeout(timeout, stdout.read_line(&mut first_line))
            .await
            .unwrap_or_else(|_| panic!("localstripe did not start within {timeout:?}"))
            .unwrap_or_else(|e| panic!("reading the localstripe launcher: {e}"));
        let port = match first_line.trim().strip_prefix("port ") {
            Some(port) => port.to_owned(),
            None => panic!(
                "localstripe could not start: {}{}",
                first_line.trim(),
                how_to_install()
            ),
        };
        let localstripe = LocalStripe {
            base_url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _process: process,
            _stdout: stdout,
        };
        localstripe.wait_until_ready(timeout).await;
        localstripe
    }

    async fn wait_until_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let probe = self
                .http
                .get(format!("{}/v1/payment_intents", self.base_url))
                .bearer_auth(LOCALSTRIPE_SECRET_KEY)
                .send()
                .await;
            match probe {
                Ok(response) if response.status() == StatusCode::OK => return,
                _ if tokio::time::Instant::now() >= deadline => {
                    panic!(
                        "localstripe at {} did not answer within {timeout:?}",
                        self.base_url
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(READY_POLL_INTERVAL_MS)).await,
            }
        }
    }

    /// Stratus's Stripe client, pointed at this localstripe.
    pub fn client(&self) -> StripeClient {
        StripeClient::with_base_url(Secret::new(LOCALSTRIPE_SECRET_KEY), &self.base_url)
            .unwrap_or_else(|e| panic!("Stripe client for localstripe: {e}"))
    }

    /// A form POST to localstripe with the test key; the status and the JSON body.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(LOCALSTRIPE_SECRET_KEY)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} to localstripe: {e}"));
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// What the customer's browser does with Stripe.js: attach a payment method to the intent
    /// and confirm it. The confirmation's status and body (402 for a declined card).
    pub async fn pay(&self, intent: &IntentId, payment_method: &str) -> (StatusCode, Value) {
        let path = format!("/v1/payment_intents/{intent}");
        let (status, body) = self
            .post(&path, &[("payment_method", payment_method)])
            .await;
        assert_eq!(status, StatusCode::OK, "attach {payment_method}: {body}");
        self.post(&format!("{path}/confirm"), &[]).await
    }

    /// Has localstripe deliver every event to `url`, signed with `secret`.
    pub async fn send_webhooks_to(&self, url: &str, secret: &str) {
        let response = self
            .http
            .post(format!("{}/_config/webhooks/stratus", self.base_url))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("configure localstripe webhooks: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "configure webhooks");
    }
}

fn pinned_version() -> String {
    REQUIREMENTS
        .lines()
        .find_map(|line| line.trim().strip_prefix("localstripe=="))
        .map(str::to_owned)
        .expect("tests/localstripe-requirements.txt pins localstripe")
}

fn how_to_install() -> String {
    format!(
        "\nThe payment tests need localstripe {}: python3 -m pip install -r \
         tests/localstripe-requirements.txt (.ci/run installs it)",
        pinned_version()
    )
}

/// One webhook delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The raw `Stripe-Signature` header, if any.
    pub signature: Option<Vec<u8>>,
    /// The exact body.
    pub body: Vec<u8>,
}

/// An HTTP endpoint on 127.0.0.1 that answers every request with 200 and hands over what it got.
/// Enough HTTP for localstripe's deliveries (one request per connection, `Content-Length`
/// bodies); stopped on drop.
pub struct WebhookInbox {
    /// `http://127.0.0.1:PORT/webhooks`
    pub url: String,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    server: JoinHandle<()>,
}

impl WebhookInbox {
    /// Starts listening.
    pub async fn start() -> WebhookInbox {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind the webhook inbox: {e}"));
        let url = format!(
            "http://{}/webhooks",
            listener.local_addr().expect("a bound address")
        );
        let (sender, deliveries) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    if let Some(delivery) = receive(stream).await {
                        let _ = sender.send(delivery);
                    }
                });
            }
        });
        WebhookInbox {
            url,
            deliveries,
            server,
        }
    }

    /// The next delivery; panics after [`WEBHOOK_WAIT_MS`].
    pub async fn next(&mut self) -> Delivery {
        let wait = Duration::from_millis(WEBHOOK_WAIT_MS);
        tokio::time::timeout(wait, self.deliveries.recv())
            .await
            .unwrap_or_else(|_| panic!("no webhook arrived within {wait:?}"))
            .expect("the inbox is running")
    }
}

impl Drop for WebhookInbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads one request, answers 200 and closes.
async fn receive(mut stream: tokio::net::TcpStream) -> Option<Delivery> {
    let mut received = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let _ = stream.shutdown().await;
    Some(Delivery {
        signature: header("stripe-signature").map(String::into_bytes),
        body: received[head_end..head_end + length].to_vec(),
    })
}
