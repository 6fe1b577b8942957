//! `stratus-tests`: the harness of the black-box tests.
//!
//! One throwaway PostgreSQL cluster per test process (started on first use from the machine's
//! PostgreSQL binaries, removed by its watchdog when the process ends), a template database migrated
//! once, and a fresh database per test cloned from it. [`TestApp`] runs the real application on a
//! random port and talks to it over real HTTP. Each app gets its own real SMTP server
//! ([`MailServer`]) and HTTP SMS provider ([`SmsServer`]) on loopback, so tests read the codes and
//! links that the app sends out of the delivered messages (`app.mail`, `app.sms`). [`localstripe`]
//! runs the fake Stripe server and the webhook inbox of the payment tests. [`wallets`] drives
//! wallets through the write side.
//!
//! Set `STRATUS_TEST_LOG=debug` (any tracing filter) to see the application's logs in a test run.
// A harness whose setup fails should fail the test loudly, so panicking is the intended behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod identity;
pub mod mail_server;
pub mod sms_server;
pub mod wallets;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use stratus_api::cluster::{ephemeral_dir, ClusterOptions, PrivateCluster};
use stratus_api::lifecycle::{self, Running};
use stratus_api::settings::{Secret, Settings, SmtpTls};
use tokio::sync::{watch, OnceCell};
use uuid::Uuid;

pub use mail_server::{CapturedEmail, MailServer};
pub use sms_server::{CapturedSms, SmsServer, TEST_SMS_ACCOUNT};
pub mod localstripe;

/// The migrated database every test database is cloned from.
pub const TEMPLATE_DATABASE: &str = "stratus_template";
/// The JWT key of test apps (tests forge tokens with it and with others).
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
/// The challenge key of test apps (tests derive codes and links with it where they do not read
/// them from delivered messages).
pub const TEST_CHALLENGE_SECRET: &str = "test-challenge-secret-0123456789-abcdefghij";
/// Per-IP budget of `/auth/*` in test apps: every test client is 127.0.0.1, so the production
/// default would throttle ordinary tests; the rate-limit test sets its own.
pub const TEST_AUTH_RATE_LIMIT_PER_MINUTE: u32 = 100_000;
/// The admin every test app can log in as.
pub const ADMIN_EMAIL: &str = "admin@stratus.test";
pub const ADMIN_PASSWORD: &str = "operator passphrase for tests";
/// Pool size of a test app: small, since one cluster serves every test of the process at once.
pub const TEST_POOL_CONNECTIONS: u32 = 8;
/// HTTP workers of a test app.
pub const TEST_WORKERS: usize = 2;
/// The SMTP credentials a test app authenticates with (the test server records them).
pub const TEST_SMTP_USERNAME: &str = "stratus-mailer";
pub const TEST_SMTP_PASSWORD: &str = "smtp password for tests";
/// The SMS provider credentials and sender of a test app.
pub const TEST_SMS_TOKEN: &str = "sms token for tests";
pub const TEST_SMS_FROM: &str = "+15005550006";
/// The sender of a test app's emails.
pub const TEST_MAIL_FROM: &str = "Stratus <no-reply@stratus.test>";
/// How long a test waits for a message the app sends (delivery is asynchronous, through the outbox).
pub const MESSAGE_WAIT_MS: u64 = 10_000;

/// The default wait for a delivered message.
pub fn message_wait() -> Duration {
    Duration::from_millis(MESSAGE_WAIT_MS)
}

/// Calls `probe` until it finds something, each time `changes` moves, for at most `timeout`.
pub(crate) async fn wait_until<T>(
    mut changes: watch::Receiver<usize>,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        changes.borrow_and_update();
        if let Some(found) = probe() {
            return Some(found);
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            _ => return probe(),
        }
    }
}

struct Shared {
    cluster: PrivateCluster,
}

static SHARED: OnceCell<Result<Shared, String>> = OnceCell::const_new();

async fn shared() -> &'static Shared {
    let result = SHARED
        .get_or_init(|| async {
            let dir = ephemeral_dir().map_err(|e| e.to_string())?;
            let cluster = tokio::task::spawn_blocking(move || {
                PrivateCluster::start(ClusterOptions {
                    data_dir: dir,
                    ephemeral: true,
                })
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let mut admin = PgConnection::connect(&cluster.url("postgres"))
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query(&format!("CREATE DATABASE {TEMPLATE_DATABASE}"))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
            admin.close().await.map_err(|e| e.to_string())?;
            let mut template = PgConnection::connect(&cluster.url(TEMPLATE_DATABASE))
                .await
                .map_err(|e| e.to_string())?;
            stratus_projections::MIGRATOR
                .run(&mut template)
                .await
                .map_err(|e| e.to_string())?;
            template.close().await.map_err(|e| e.to_string())?;
            Ok(Shared { cluster })
        })
        .await;
    match result {
        Ok(shared) => shared,
        Err(e) => panic!("the test PostgreSQL cluster could not start: {e}"),
    }
}

/// A fresh, migrated database of its own for one test.
pub async fn fresh_database_url() -> String {
    let shared = shared().await;
    let name = format!("test_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&shared.cluster.url("postgres"))
        .await
        .unwrap_or_else(|e| panic!("connect to the test cluster: {e}"));
    sqlx::query(&format!(
        "CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE}"
    ))
    .execute(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("create the test database: {e}"));
    let _ = admin.close().await;
    shared.cluster.url(&name)
}

/// A pool on a fresh test database.
pub async fn fresh_pool() -> PgPool {
    let url = fresh_database_url().await;
    stratus_api::database::connect(&Secret::new(url), TEST_POOL_CONNECTIONS)
        .await
        .unwrap_or_else(|e| panic!("pool on the test database: {e}"))
}

/// Settings of a test app.
pub fn test_settings(database_url: &str) -> Settings {
    let log = std::env::var("STRATUS_TEST_LOG").unwrap_or_else(|_| "off".to_owned());
    Settings {
        database_url: Some(Secret::new(database_url)),
        data_dir: std::env::temp_dir().join("stratus-test-data"),
        admin_email: ADMIN_EMAIL.to_owned(),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        jwt_secret: Some(Secret::new(TEST_JWT_SECRET)),
        challenge_secret: Some(Secret::new(TEST_CHALLENGE_SECRET)),
        auth_rate_limit_per_minute: TEST_AUTH_RATE_LIMIT_PER_MINUTE,
        log,
        db_max_connections: TEST_POOL_CONNECTIONS,
        payments: test_payment_settings(),
        ..Settings::default()
    }
}

/// The bank account of test apps (the manual gateway is on; Stripe is off unless a test points
/// it at localstripe with [`with_stripe`]).
pub const TEST_BANK_IBAN: &str = "DE89370400440532013000";
/// The signing secret of the Stripe webhooks test apps accept.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_stratus_test";

fn test_payment_settings() -> stratus_api::settings::PaymentSettings {
    stratus_api::settings::PaymentSettings {
        bank_beneficiary: Some("Stratus Test Hosting".to_owned()),
        bank_iban: Some(TEST_BANK_IBAN.to_owned()),
        bank_bic: Some("COBADEFFXXX".to_owned()),
        ..Default::default()
    }
}

/// Points a test app's Stripe gateway at `stripe` and accepts webhooks signed with
/// [`TEST_WEBHOOK_SECRET`].
pub fn with_stripe(settings: &mut Settings, stripe: &localstripe::LocalStripe) {
    settings.payments.stripe_secret_key = Some(Secret::new(localstripe::LOCALSTRIPE_SECRET_KEY));
    settings.payments.stripe_api_base = Some(stripe.base_url.clone());
    settings.payments.stripe_webhook_secrets = vec![Secret::new(TEST_WEBHOOK_SECRET)];
}

/// The keys of test apps.
pub fn test_keys() -> lifecycle::Keys {
    lifecycle::Keys {
        jwt: Secret::new(TEST_JWT_SECRET),
        challenge: Secret::new(TEST_CHALLENGE_SECRET),
    }
}

/// Settings of a test app whose email goes to `mail` (SMTP without TLS, with AUTH) and whose SMS
/// go to `sms` (form posts with basic auth).
pub fn test_settings_with_peers(
    database_url: &str,
    mail: &MailServer,
    sms: &SmsServer,
) -> Settings {
    Settings {
        smtp_host: Some("127.0.0.1".to_owned()),
        smtp_port: mail.port(),
        smtp_tls: SmtpTls::None,
        smtp_username: Some(TEST_SMTP_USERNAME.to_owned()),
        smtp_password: Some(Secret::new(TEST_SMTP_PASSWORD)),
        mail_from: TEST_MAIL_FROM.to_owned(),
        sms_url: Some(sms.url()),
        sms_account: Some(TEST_SMS_ACCOUNT.to_owned()),
        sms_token: Some(Secret::new(TEST_SMS_TOKEN)),
        sms_from: Some(TEST_SMS_FROM.to_owned()),
        ..test_settings(database_url)
    }
}

/// The real application on a random port, over a fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub root: String,
    /// The database this app runs on (a second app can share it).
    pub database_url: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub running: Option<Running>,
    /// The SMTP server this app sends its email to.
    pub mail: MailServer,
    /// The SMS provider this app posts its text messages to.
    pub sms: SmsServer,
}

/// A response with its status, headers and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `content-type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
    }

    /// Whether the answer is a replay of a kept one (`Idempotent-Replayed: true`).
    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }

    /// The field names of a validation problem.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Starts the app on a fresh database with the test admin.
    pub async fn spawn() -> TestApp {
        let url = fresh_database_url().await;
        Self::spawn_on(&url).await
    }

    /// Starts the app on an existing database (a second process on the same log), with mail and
    /// SMS servers of its own.
    pub async fn spawn_on(url: &str) -> TestApp {
        Self::spawn_with(url, |_| {}).await
    }

    /// Starts the app on `url` with settings adjusted by `adjust`, with mail and SMS servers of
    /// its own.
    pub async fn spawn_with(url: &str, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mail = MailServer::start().await;
        let sms = SmsServer::start().await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let mut settings = test_settings_with_peers(url, &mail, &sms);
        // Links in messages point at this app, so a test can follow them.
        settings.public_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        adjust(&mut settings);
        stratus_api::telemetry::init(&settings);
        let pool = stratus_api::database::connect(&Secret::new(url), TEST_POOL_CONNECTIONS)
            .await
            .unwrap_or_else(|e| panic!("pool: {e}"));
        let running = lifecycle::start(
            Arc::new(settings),
            pool.clone(),
            &test_keys(),
            listener,
            TEST_WORKERS,
        )
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
        stratus_api::bootstrap::ensure_admin(&running.state)
            .await
            .unwrap_or_else(|e| panic!("admin: {e}"));
        TestApp {
            root: format!("http://{}", running.local_addr),
            database_url: url.to_owned(),
            pool,
            client: reqwest::Client::new(),
            running: Some(running),
            mail,
            sms,
        }
    }

    /// The address of an `/api/v1` path.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.root, path)
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POSTs JSON to an `/api/v1` path, with a bearer token when given.
    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        Self::reply(response).await
    }

    /// POSTs JSON to an `/api/v1` path with an `Idempotency-Key`, and a bearer token when given.
    pub async fn post_with_key(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self
            .client
            .post(self.url(path))
            .header("idempotency-key", key)
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// GETs an `/api/v1` path, with a bearer token when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        Self::reply(response).await
    }

    /// Sends any prepared request.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request: {e}"));
        Self::reply(response).await
    }

    /// Registers an account and returns its id.
    pub async fn register(&self, name: &str, email: &str, password: &str) -> String {
        let reply = self
            .post(
                "/auth/register",
                &json!({"name": name, "email": email, "password": password}),
                None,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register: {}",
            reply.body
        );
        reply.body["account_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no account_id in {}", reply.body))
            .to_owned()
    }

    /// Logs in and returns the token pair body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let reply = self
            .post(
                "/auth/login",
                &json!({"email": email, "password": password}),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login: {}", reply.body);
        reply.body
    }

    /// Registers a customer with a unique email and returns (email, access token, refresh token).
    pub async fn customer(&self) -> Customer {
        let email = format!("c{}@example.com", Uuid::now_v7().simple());
        let password = "correct horse battery staple".to_owned();
        let account_id = self.register("Test Customer", &email, &password).await;
        let tokens = self.login(&email, &password).await;
        Customer {
            account_id,
            email,
            password,
            access_token: tokens["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            refresh_token: tokens["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Creates an account with `roles` directly through the write side (roles administration has no
    /// route yet) and returns its access token.
    pub async fn staff_token(&self, roles: Vec<stratus_domain::Role>) -> String {
        let state = &self.running.as_ref().expect("the app is running").state;
        let email = format!("staff{}@example.com", Uuid::now_v7().simple());
        let password = "staff member passphrase";
        let account = stratus_api::registration::NewAccount {
            name: stratus_domain::PersonName::parse("Staff").expect("name"),
            email: stratus_domain::Email::parse(&email).expect("email"),
            phone: None,
            password: password.to_owned(),
            roles,
        };
        let metadata = |_| stratus_commands::CommandMetadata::system(Uuid::now_v7(), "test");
        stratus_api::registration::register(state, account, metadata)
            .await
            .expect("register staff");
        self.login(&email, password).await["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An access token of the test admin.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Rows of a query as JSON objects (for assertions on tables).
    pub async fn rows(&self, sql: &str) -> Vec<HashMap<String, Value>> {
        let rows: Vec<(Value,)> = sqlx::query_as(&format!("SELECT to_jsonb(t) FROM ({sql}) t"))
            .fetch_all(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .map(|(v,)| serde_json::from_value(v).unwrap_or_default())
            .collect()
    }
}

/// A registered, logged-in customer.
#[derive(Debug, Clone)]
pub struct Customer {
    pub account_id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}
