//! A local HTTP SMS provider for the tests, shaped like Twilio's messages endpoint: a form POST of
//! `To`, `From` and `Body` with HTTP basic auth, answered `201` with a JSON `sid`.
//!
//! It records every accepted message with the credentials and headers it came with, and can be told
//! to fail the next N requests with `500`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use tokio::sync::watch;
use uuid::Uuid;

use crate::mail_server::first_code;
use crate::wait_until;

/// The account every test SMS server URL names.
pub const TEST_SMS_ACCOUNT: &str = "ACtest0000";

/// One accepted message.
#[derive(Debug, Clone)]
pub struct CapturedSms {
    pub to: String,
    pub from: String,
    pub body: String,
    /// Basic-auth user and password, if the request carried them.
    pub account: Option<String>,
    pub token: Option<String>,
    /// The request's `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    pub content_type: String,
    pub path: String,
}

impl CapturedSms {
    /// The first run of exactly `digits` ASCII digits in the body (a one-time code).
    pub fn code(&self, digits: usize) -> Option<String> {
        first_code(&self.body, digits)
    }
}

struct Outbox {
    messages: Mutex<Vec<CapturedSms>>,
    arrived: watch::Sender<usize>,
    requests: AtomicUsize,
    fail_next: AtomicUsize,
}

impl Outbox {
    fn snapshot(&self) -> Vec<CapturedSms> {
        self.messages.lock().expect("sms lock").clone()
    }
}

/// A running HTTP SMS provider on 127.0.0.1.
pub struct SmsServer {
    port: u16,
    outbox: Arc<Outbox>,
    handle: ServerHandle,
}

impl Drop for SmsServer {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.handle.stop(false));
        }
    }
}

impl SmsServer {
    /// Starts a provider on a random free port.
    pub async fn start() -> SmsServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("SMS server bind: {e}"));
        let port = listener.local_addr().expect("local address").port();
        let (arrived, _) = watch::channel(0);
        let outbox = Arc::new(Outbox {
            messages: Mutex::new(Vec::new()),
            arrived,
            requests: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
        });
        let data = web::Data::from(Arc::clone(&outbox));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/{tail:.*}", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap_or_else(|e| panic!("SMS server listen: {e}"))
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        SmsServer {
            port,
            outbox,
            handle,
        }
    }

    /// The messages endpoint, Twilio-shaped.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2010-04-01/Accounts/{TEST_SMS_ACCOUNT}/Messages.json",
            self.port
        )
    }

    /// The next `n` requests are answered `500` and not recorded.
    pub fn fail_next(&self, n: usize) {
        self.outbox.fail_next.store(n, Ordering::SeqCst);
    }

    /// Requests received so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.outbox.requests.load(Ordering::SeqCst)
    }

    /// Every accepted message so far, in arrival order.
    pub fn all(&self) -> Vec<CapturedSms> {
        self.outbox.snapshot()
    }

    /// Every accepted message to `to`.
    pub fn sms_to(&self, to: &str) -> Vec<CapturedSms> {
        self.all().into_iter().filter(|m| m.to == to).collect()
    }

    /// Waits for the first message to `to`; panics after `timeout`.
    pub async fn wait_for_sms(&self, to: &str, timeout: Duration) -> CapturedSms {
        self.wait_for_sms_containing(to, "", timeout).await
    }

    /// Waits for the first message to `to` whose body contains `part`; panics after `timeout`.
    pub async fn wait_for_sms_containing(
        &self,
        to: &str,
        part: &str,
        timeout: Duration,
    ) -> CapturedSms {
        let found = wait_until(self.outbox.arrived.subscribe(), timeout, || {
            self.all()
                .into_iter()
                .find(|m| m.to == to && m.body.contains(part))
        })
        .await;
        found.unwrap_or_else(|| {
            let seen: Vec<String> = self.all().into_iter().map(|m| m.to).collect();
            panic!("no SMS to {to} containing {part:?} within {timeout:?}; received for: {seen:?}")
        })
    }
}

fn basic_auth(request: &HttpRequest) -> Option<(String, String)> {
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn receive(
    request: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    outbox: web::Data<Outbox>,
) -> HttpResponse {
    outbox.requests.fetch_add(1, Ordering::SeqCst);
    let failing = outbox
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return HttpResponse::InternalServerError()
            .json(serde_json::json!({"code": 20500, "message": "Internal Server Error"}));
    }
    let form = form.into_inner();
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (account, token) = match basic_auth(&request) {
        Some((account, token)) => (Some(account), Some(token)),
        None => (None, None),
    };
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let sms = CapturedSms {
        to: field("To"),
        from: field("From"),
        body: field("Body"),
        account,
        token,
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type").unwrap_or_default(),
        path: request.path().to_owned(),
    };
    let mut messages = outbox.messages.lock().expect("sms lock");
    messages.push(sms);
    let count = messages.len();
    drop(messages);
    outbox.arrived.send_replace(count);
    HttpResponse::Created().json(serde_json::json!({
        "sid": format!("SM{}", Uuid::now_v7().simple()),
        "status": "queued",
    }))
}
