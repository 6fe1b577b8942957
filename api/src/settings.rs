//! One typed configuration, loaded once: defaults, then an optional TOML file, then environment.
//!
//! This is the only module that reads environment variables. The names of DESIGN.md section 8 are
//! fixed because operators and scripts rely on them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
pub use stratus_commands::outbox::SmtpTls;
pub use stratus_commands::secret::Secret;

pub use crate::invoice_settings::InvoiceSettings;
use crate::invoice_settings::InvoicingFileLayer;
use crate::order_settings::{OrderSettings, OrdersFileLayer};
pub use crate::payment_settings::PaymentSettings;
use crate::payment_settings::{PaymentsFileLayer, PendingAmounts};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines, for development.
    Pretty,
    /// One JSON object per line, for production log shipping.
    Json,
}

/// Every setting of a Stratus process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`: an existing PostgreSQL server; unset means the private cluster.
    pub database_url: Option<Secret>,
    /// `STRATUS_DATA_DIR`: the private cluster, generated secrets and local mail live here.
    pub data_dir: PathBuf,
    /// `STRATUS_HOST`, `STRATUS_PORT`: where the API listens.
    pub host: String,
    pub port: u16,
    /// `STRATUS_ADMIN_EMAIL`, `STRATUS_ADMIN_PASSWORD`: the first admin, created once.
    pub admin_email: String,
    pub admin_password: Option<Secret>,
    /// `STRATUS_JWT_SECRET`: HMAC key of access tokens; generated into the data dir when unset.
    pub jwt_secret: Option<Secret>,
    /// `STRATUS_LOG`: a tracing filter such as `info` or `stratus=debug,sqlx=warn`.
    pub log: String,
    /// `STRATUS_LOG_FORMAT`: `pretty` or `json`.
    pub log_format: LogFormat,
    /// `STRATUS_ACCESS_TOKEN_TTL_SECONDS`: lifetime of an access token.
    pub access_token_ttl_seconds: i64,
    /// `STRATUS_REFRESH_TOKEN_TTL_SECONDS`: how long a session lives without being refreshed.
    pub refresh_token_ttl_seconds: i64,
    /// `STRATUS_DB_MAX_CONNECTIONS`: size of the connection pool.
    pub db_max_connections: u32,
    /// `STRATUS_PASSWORD_HASHING_THREADS`: argon2 hashes computed at once; unset means half the
    /// cores (at least one), so that a login flood can never take every core from other requests.
    pub password_hashing_threads: Option<u32>,
    /// `STRATUS_CHALLENGE_SECRET`: key of one-time codes, email links and TOTP secrets; generated
    /// into the data dir when unset. Changing it voids outstanding codes and every 2FA enrolment.
    pub challenge_secret: Option<Secret>,
    /// `STRATUS_PUBLIC_URL`: the address customers reach the API at, for links in messages
    /// (default `http://{host}:{port}`).
    pub public_url: Option<String>,
    /// `STRATUS_AUTH_RATE_LIMIT_PER_MINUTE`: requests to `/auth/*` one client IP may make per
    /// minute (a burst of the same size is allowed).
    pub auth_rate_limit_per_minute: u32,
    /// `STRATUS_SMTP_HOST`: the SMTP relay; unset writes each email into [`Settings::mail_dir`].
    pub smtp_host: Option<String>,
    /// `STRATUS_SMTP_PORT`: the relay's port.
    pub smtp_port: u16,
    /// `STRATUS_SMTP_TLS`: `none`, `starttls` or `tls` (implicit TLS).
    pub smtp_tls: SmtpTls,
    /// `STRATUS_SMTP_USERNAME`, `STRATUS_SMTP_PASSWORD`: AUTH credentials; unset sends without AUTH.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// `STRATUS_MAIL_FROM`: the `From` mailbox of every email.
    pub mail_from: String,
    /// `STRATUS_SMS_URL`: the SMS provider's messages endpoint (a Twilio-style form post); unset
    /// writes each text message into [`Settings::sms_dir`].
    pub sms_url: Option<String>,
    /// `STRATUS_SMS_ACCOUNT`, `STRATUS_SMS_TOKEN`: the provider's basic-auth credentials.
    pub sms_account: Option<String>,
    pub sms_token: Option<Secret>,
    /// `STRATUS_SMS_FROM`: the sender number or name; required with `STRATUS_SMS_URL`.
    pub sms_from: Option<String>,
    /// The settlement currency, top-up bounds and payment gateways (see [`PaymentSettings`]).
    pub payments: PaymentSettings,
    /// The payment window of orders, the expiry sweep and VAT (see [`OrderSettings`]).
    pub orders: OrderSettings,
    /// `STRATUS_IDEMPOTENCY_TTL_HOURS`: how long an `Idempotency-Key` and the answer it got are
    /// kept; a retry after that runs again.
    pub idempotency_ttl_hours: u32,
    /// `STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS`: how long a request may hold a key without
    /// finishing before a retry with the same key may take it over (its process has crashed).
    pub idempotency_lock_timeout_seconds: u32,
    /// The seller printed on invoices (see [`InvoiceSettings`]).
    pub invoicing: InvoiceSettings,
    /// `STRATUS_DEMO_CATALOG`: on the first start (no datacenter yet), `serve` seeds a demo
    /// catalog (two datacenters, four images, four plans) so that a fresh install can be tried.
    pub demo_catalog: bool,
}

/// Default lifetime of an access token: short, because a stolen one cannot be recalled.
pub const DEFAULT_ACCESS_TOKEN_TTL_SECONDS: i64 = 15 * 60;
/// Default lifetime of a session between refreshes.
pub const DEFAULT_REFRESH_TOKEN_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Default budget of `/auth/*` requests per client IP and minute: a person never needs more, a
/// password-guessing script is slowed to a crawl.
pub const DEFAULT_AUTH_RATE_LIMIT_PER_MINUTE: u32 = 30;
/// Default pool size: enough for 2 cores serving many concurrent requests, well under the private
/// cluster's `max_connections` of 200 so that tests and tools fit beside it.
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 32;
/// Default SMTP port: the message submission port (RFC 6409), where relays expect STARTTLS.
pub const DEFAULT_SMTP_PORT: u16 = 587;
/// Default sender: a name and an address under a reserved-looking local domain, so development
/// mail is recognisable and never looks like a real provider's.
pub const DEFAULT_MAIL_FROM: &str = "Stratus <no-reply@stratus.local>";
/// Default life of an idempotency key: a day, as Stripe keeps them, covers a client retrying
/// through an outage or overnight, and bounds the table.
pub const DEFAULT_IDEMPOTENCY_TTL_HOURS: u32 = 24;
/// Default idempotency lock timeout: far above the slowest handler (password hashing, command
/// retries and the 2 s read-your-writes wait), so a live request is never taken over.
pub const DEFAULT_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS: u32 = 60;

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: None,
            data_dir: PathBuf::from(".stratus"),
            host: "127.0.0.1".to_owned(),
            port: 8080,
            admin_email: "admin@stratus.local".to_owned(),
            admin_password: None,
            jwt_secret: None,
            log: "info".to_owned(),
            log_format: LogFormat::Pretty,
            access_token_ttl_seconds: DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
            refresh_token_ttl_seconds: DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
            db_max_connections: DEFAULT_DB_MAX_CONNECTIONS,
            password_hashing_threads: None,
            challenge_secret: None,
            public_url: None,
            auth_rate_limit_per_minute: DEFAULT_AUTH_RATE_LIMIT_PER_MINUTE,
            smtp_host: None,
            smtp_port: DEFAULT_SMTP_PORT,
            smtp_tls: SmtpTls::StartTls,
            smtp_username: None,
            smtp_password: None,
            mail_from: DEFAULT_MAIL_FROM.to_owned(),
            sms_url: None,
            sms_account: None,
            sms_token: None,
            sms_from: None,
            payments: PaymentSettings::default(),
            orders: OrderSettings::default(),
            idempotency_ttl_hours: DEFAULT_IDEMPOTENCY_TTL_HOURS,
            idempotency_lock_timeout_seconds: DEFAULT_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS,
            invoicing: InvoiceSettings::default(),
            demo_catalog: true,
        }
    }
}

/// The optional file layer: same names as the fields, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    database_url: Option<Secret>,
    data_dir: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    admin_email: Option<String>,
    admin_password: Option<Secret>,
    jwt_secret: Option<Secret>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    access_token_ttl_seconds: Option<i64>,
    refresh_token_ttl_seconds: Option<i64>,
    db_max_connections: Option<u32>,
    password_hashing_threads: Option<u32>,
    challenge_secret: Option<Secret>,
    public_url: Option<String>,
    auth_rate_limit_per_minute: Option<u32>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_tls: Option<SmtpTls>,
    smtp_username: Option<String>,
    smtp_password: Option<Secret>,
    mail_from: Option<String>,
    sms_url: Option<String>,
    sms_account: Option<String>,
    sms_token: Option<Secret>,
    sms_from: Option<String>,
    payments: Option<PaymentsFileLayer>,
    orders: Option<OrdersFileLayer>,
    idempotency_ttl_hours: Option<u32>,
    idempotency_lock_timeout_seconds: Option<u32>,
    invoicing: Option<InvoicingFileLayer>,
    demo_catalog: Option<bool>,
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the settings file {path} is not valid: {message}")]
    FileFormat { path: PathBuf, message: String },
    #[error("{name} is not valid: {message}")]
    Variable { name: &'static str, message: String },
}

/// `STRATUS_CONFIG` names the TOML file; without it `stratus.toml` in the working directory is
/// read when it exists.
pub const CONFIG_FILE_VARIABLE: &str = "STRATUS_CONFIG";
const DEFAULT_CONFIG_FILE: &str = "stratus.toml";

impl Settings {
    /// Loads the settings of this process from its environment and optional file.
    pub fn load() -> Result<Self, SettingsError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match env.get(CONFIG_FILE_VARIABLE) {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        Self::from_sources(file.as_deref(), &env)
    }

    /// Layers defaults, the file (when given) and the variables in `env`.
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let mut s = Settings::default();
        let mut amounts = PendingAmounts::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::File {
                path: path.to_owned(),
                source,
            })?;
            let mut layer: FileLayer =
                toml::from_str(&text).map_err(|e| SettingsError::FileFormat {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            if let Some(payments) = layer.payments.take() {
                s.payments.apply_file(payments, &mut amounts)?;
            }
            if let Some(orders) = layer.orders.take() {
                s.orders.apply_file(orders)?;
            }
            if let Some(invoicing) = layer.invoicing.take() {
                s.invoicing.apply_file(invoicing);
            }
            s.apply_file(layer);
        }
        s.apply_env(env)?;
        let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        s.payments.apply_env(&get, &mut amounts)?;
        s.payments.finish(amounts)?;
        s.orders.apply_env(&get)?;
        s.orders.check()?;
        s.invoicing.apply_env(&get);
        s.invoicing.check()?;
        s.check()?;
        Ok(s)
    }

    fn apply_file(&mut self, f: FileLayer) {
        if f.database_url.is_some() {
            self.database_url = f.database_url;
        }
        if let Some(v) = f.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = f.host {
            self.host = v;
        }
        if let Some(v) = f.port {
            self.port = v;
        }
        if let Some(v) = f.admin_email {
            self.admin_email = v;
        }
        if f.admin_password.is_some() {
            self.admin_password = f.admin_password;
        }
        if f.jwt_secret.is_some() {
            self.jwt_secret = f.jwt_secret;
        }
        if let Some(v) = f.log {
            self.log = v;
        }
        if let Some(v) = f.log_format {
            self.log_format = v;
        }
        if let Some(v) = f.access_token_ttl_seconds {
            self.access_token_ttl_seconds = v;
        }
        if let Some(v) = f.refresh_token_ttl_seconds {
            self.refresh_token_ttl_seconds = v;
        }
        if let Some(v) = f.db_max_connections {
            self.db_max_connections = v;
        }
        if f.password_hashing_threads.is_some() {
            self.password_hashing_threads = f.password_hashing_threads;
        }
        if f.challenge_secret.is_some() {
            self.challenge_secret = f.challenge_secret;
        }
        if f.public_url.is_some() {
            self.public_url = f.public_url;
        }
        if let Some(v) = f.auth_rate_limit_per_minute {
            self.auth_rate_limit_per_minute = v;
        }
        if f.smtp_host.is_some() {
            self.smtp_host = f.smtp_host;
        }
        if let Some(v) = f.smtp_port {
            self.smtp_port = v;
        }
        if let Some(v) = f.smtp_tls {
            self.smtp_tls = v;
        }
        if f.smtp_username.is_some() {
            self.smtp_username = f.smtp_username;
        }
        if f.smtp_password.is_some() {
            self.smtp_password = f.smtp_password;
        }
        if let Some(v) = f.mail_from {
            self.mail_from = v;
        }
        if f.sms_url.is_some() {
            self.sms_url = f.sms_url;
        }
        if f.sms_account.is_some() {
            self.sms_account = f.sms_account;
        }
        if f.sms_token.is_some() {
            self.sms_token = f.sms_token;
        }
        if f.sms_from.is_some() {
            self.sms_from = f.sms_from;
        }
        if let Some(v) = f.idempotency_ttl_hours {
            self.idempotency_ttl_hours = v;
        }
        if let Some(v) = f.idempotency_lock_timeout_seconds {
            self.idempotency_lock_timeout_seconds = v;
        }
        if let Some(v) = f.demo_catalog {
            self.demo_catalog = v;
        }
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), SettingsError> {
        let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = Some(Secret::new(v));
        }
        if let Some(v) = get("STRATUS_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("STRATUS_HOST") {
            self.host = v;
        }
        if let Some(v) = get("STRATUS_PORT") {
            self.port = parse("STRATUS_PORT", &v)?;
        }
        if let Some(v) = get("STRATUS_ADMIN_EMAIL") {
            self.admin_email = v;
        }
        if let Some(v) = get("STRATUS_ADMIN_PASSWORD") {
            self.admin_password = Some(Secret::new(v));
        }
        if let Some(v) = get("STRATUS_JWT_SECRET") {
            self.jwt_secret = Some(Secret::new(v));
        }
        if let Some(v) = get("STRATUS_LOG") {
            self.log = v;
        }
        if let Some(v) = get("STRATUS_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                _ => {
                    return Err(SettingsError::Variable {
                        name: "STRATUS_LOG_FORMAT",
                        message: "expected `pretty` or `json`".to_owned(),
                    })
                }
            };
        }
        if let Some(v) = get("STRATUS_ACCESS_TOKEN_TTL_SECONDS") {
            self.access_token_ttl_seconds = parse("STRATUS_ACCESS_TOKEN_TTL_SECONDS", &v)?;
        }
        if let Some(v) = get("STRATUS_REFRESH_TOKEN_TTL_SECONDS") {
            self.refresh_token_ttl_seconds = parse("STRATUS_REFRESH_TOKEN_TTL_SECONDS", &v)?;
        }
        if let Some(v) = get("STRATUS_DB_MAX_CONNECTIONS") {
            self.db_max_connections = parse("STRATUS_DB_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("STRATUS_PASSWORD_HASHING_THREADS") {
            self.password_hashing_threads = Some(parse("STRATUS_PASSWORD_HASHING_THREADS", &v)?);
        }
        if let Some(v) = get("STRATUS_CHALLENGE_SECRET") {
            self.challenge_secret = Some(Secret::new(v));
        }
        if let Some(v) = get("STRATUS_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("STRATUS_AUTH_RATE_LIMIT_PER_MINUTE") {
            self.auth_rate_limit_per_minute = parse("STRATUS_AUTH_RATE_LIMIT_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("STRATUS_SMTP_HOST") {
            self.smtp_host = Some(v);
        }
        if let Some(v) = get("STRATUS_SMTP_PORT") {
            self.smtp_port = parse("STRATUS_SMTP_PORT", &v)?;
        }
        if let Some(v) = get("STRATUS_SMTP_TLS") {
            self.smtp_tls = SmtpTls::parse(&v).ok_or_else(|| SettingsError::Variable {
                name: "STRATUS_SMTP_TLS",
                message: "expected `none`, `starttls` or `tls`".to_owned(),
            })?;
        }
        if let Some(v) = get("STRATUS_SMTP_USERNAME") {
            self.smtp_username = Some(v);
        }
        if let Some(v) = get("STRATUS_SMTP_PASSWORD") {
            self.smtp_password = Some(Secret::new(v));
        }
        if let Some(v) = get("STRATUS_MAIL_FROM") {
            self.mail_from = v;
        }
        if let Some(v) = get("STRATUS_SMS_URL") {
            self.sms_url = Some(v);
        }
        if let Some(v) = get("STRATUS_SMS_ACCOUNT") {
            self.sms_account = Some(v);
        }
        if let Some(v) = get("STRATUS_SMS_TOKEN") {
            self.sms_token = Some(Secret::new(v));
        }
        if let Some(v) = get("STRATUS_SMS_FROM") {
            self.sms_from = Some(v);
        }
        if let Some(v) = get("STRATUS_IDEMPOTENCY_TTL_HOURS") {
            self.idempotency_ttl_hours = parse("STRATUS_IDEMPOTENCY_TTL_HOURS", &v)?;
        }
        if let Some(v) = get("STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS") {
            self.idempotency_lock_timeout_seconds =
                parse("STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", &v)?;
        }
        if let Some(v) = get("STRATUS_DEMO_CATALOG") {
            self.demo_catalog = parse("STRATUS_DEMO_CATALOG", &v)?;
        }
        Ok(())
    }

    fn check(&self) -> Result<(), SettingsError> {
        if self.access_token_ttl_seconds <= 0 {
            return Err(SettingsError::Variable {
                name: "STRATUS_ACCESS_TOKEN_TTL_SECONDS",
                message: "must be positive".to_owned(),
            });
        }
        if self.refresh_token_ttl_seconds <= 0 {
            return Err(SettingsError::Variable {
                name: "STRATUS_REFRESH_TOKEN_TTL_SECONDS",
                message: "must be positive".to_owned(),
            });
        }
        if self.db_max_connections == 0 {
            return Err(SettingsError::Variable {
                name: "STRATUS_DB_MAX_CONNECTIONS",
                message: "must be at least 1".to_owned(),
            });
        }
        if self.password_hashing_threads == Some(0) {
            return Err(SettingsError::Variable {
                name: "STRATUS_PASSWORD_HASHING_THREADS",
                message: "must be at least 1".to_owned(),
            });
        }
        if self.auth_rate_limit_per_minute == 0 {
            return Err(SettingsError::Variable {
                name: "STRATUS_AUTH_RATE_LIMIT_PER_MINUTE",
                message: "must be at least 1".to_owned(),
            });
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::Variable {
                    name: "STRATUS_PUBLIC_URL",
                    message: "must start with http:// or https://".to_owned(),
                });
            }
        }
        if let Some(secret) = &self.challenge_secret {
            if secret.expose().len() < MIN_JWT_SECRET_BYTES {
                return Err(SettingsError::Variable {
                    name: "STRATUS_CHALLENGE_SECRET",
                    message: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                });
            }
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.expose().len() < MIN_JWT_SECRET_BYTES {
                return Err(SettingsError::Variable {
                    name: "STRATUS_JWT_SECRET",
                    message: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                });
            }
        }
        self.check_messaging()?;
        self.check_idempotency()
    }

    fn check_idempotency(&self) -> Result<(), SettingsError> {
        if self.idempotency_ttl_hours == 0 {
            return Err(SettingsError::Variable {
                name: "STRATUS_IDEMPOTENCY_TTL_HOURS",
                message: "must be at least 1".to_owned(),
            });
        }
        if self.idempotency_lock_timeout_seconds == 0
            || i64::from(self.idempotency_lock_timeout_seconds) >= self.idempotency_ttl_seconds()
        {
            return Err(SettingsError::Variable {
                name: "STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS",
                message: "must be at least 1 and shorter than the key's lifetime".to_owned(),
            });
        }
        Ok(())
    }

    /// [`Settings::idempotency_ttl_hours`] in seconds.
    pub fn idempotency_ttl_seconds(&self) -> i64 {
        i64::from(self.idempotency_ttl_hours) * 3_600
    }

    fn check_messaging(&self) -> Result<(), SettingsError> {
        if !stratus_commands::outbox::email::is_valid_sender(&self.mail_from) {
            return Err(SettingsError::Variable {
                name: "STRATUS_MAIL_FROM",
                message: "expected a mailbox such as `Stratus <no-reply@example.com>`".to_owned(),
            });
        }
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return Err(SettingsError::Variable {
                name: "STRATUS_SMTP_USERNAME",
                message: "must be set with STRATUS_SMTP_PASSWORD".to_owned(),
            });
        }
        if self.sms_url.is_some() && self.sms_from.is_none() {
            return Err(SettingsError::Variable {
                name: "STRATUS_SMS_FROM",
                message: "must be set with STRATUS_SMS_URL".to_owned(),
            });
        }
        if self.sms_token.is_some() && self.sms_account.is_none() {
            return Err(SettingsError::Variable {
                name: "STRATUS_SMS_ACCOUNT",
                message: "must be set with STRATUS_SMS_TOKEN".to_owned(),
            });
        }
        Ok(())
    }

    /// The development mailbox: one `.eml` file per email when no SMTP relay is set.
    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// The development SMS folder: one `.txt` file per text message when no provider is set.
    pub fn sms_dir(&self) -> PathBuf {
        self.data_dir.join("sms")
    }
}

impl Settings {
    /// The base of links in messages, without a trailing slash.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.host, self.port),
        }
    }
}

/// HS256 keys shorter than the hash output weaken it (RFC 7518 section 3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, SettingsError>
where
    T::Err: fmt::Display,
{
    value.parse().map_err(|e: T::Err| SettingsError::Variable {
        name,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn with_nothing_set_the_documented_defaults_apply() {
        let s = Settings::from_sources(None, &HashMap::new()).unwrap();
        assert!(s.database_url.is_none());
        assert_eq!(s.data_dir, PathBuf::from(".stratus"));
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8080));
        assert_eq!(s.log, "info");
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("stratus-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stratus.toml");
        std::fs::write(&file, "port = 9000\nhost = \"0.0.0.0\"\nlog = \"debug\"\n").unwrap();
        let s = Settings::from_sources(Some(&file), &env(&[("STRATUS_PORT", "9100")])).unwrap();
        assert_eq!(s.port, 9100);
        assert_eq!(s.host, "0.0.0.0");
        assert_eq!(s.log, "debug");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = Settings::from_sources(None, &env(&[("STRATUS_PORT", "eighty")])).unwrap_err();
        assert!(err.to_string().contains("STRATUS_PORT"));
        let err =
            Settings::from_sources(None, &env(&[("STRATUS_JWT_SECRET", "short")])).unwrap_err();
        assert!(err.to_string().contains("STRATUS_JWT_SECRET"));
    }

    #[test]
    fn without_mail_or_sms_settings_messages_go_to_folders_in_the_data_dir() {
        let s = Settings::from_sources(None, &env(&[("STRATUS_DATA_DIR", "/var/tmp/st")])).unwrap();
        assert!(s.smtp_host.is_none());
        assert_eq!((s.smtp_port, s.smtp_tls), (587, SmtpTls::StartTls));
        assert_eq!(s.mail_from, "Stratus <no-reply@stratus.local>");
        assert!(s.sms_url.is_none());
        assert_eq!(s.mail_dir(), PathBuf::from("/var/tmp/st/mail"));
        assert_eq!(s.sms_dir(), PathBuf::from("/var/tmp/st/sms"));
    }

    #[test]
    fn mail_and_sms_settings_come_from_the_file_and_the_environment() {
        let dir =
            std::env::temp_dir().join(format!("stratus-settings-mail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stratus.toml");
        std::fs::write(
            &file,
            "smtp_host = \"smtp.example.com\"\nsmtp_tls = \"tls\"\nsms_from = \"Stratus\"\n",
        )
        .unwrap();
        let s = Settings::from_sources(
            Some(&file),
            &env(&[
                ("STRATUS_SMTP_PORT", "465"),
                ("STRATUS_SMTP_USERNAME", "mailer"),
                ("STRATUS_SMTP_PASSWORD", "mail-pass"),
                ("STRATUS_MAIL_FROM", "Ops <ops@example.com>"),
                ("STRATUS_SMS_URL", "https://sms.example.com/Messages.json"),
                ("STRATUS_SMS_ACCOUNT", "AC1"),
                ("STRATUS_SMS_TOKEN", "sms-token"),
            ]),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(s.smtp_host.as_deref(), Some("smtp.example.com"));
        assert_eq!((s.smtp_port, s.smtp_tls), (465, SmtpTls::Tls));
        assert_eq!(s.smtp_username.as_deref(), Some("mailer"));
        assert_eq!(
            s.smtp_password.as_ref().map(Secret::expose),
            Some("mail-pass")
        );
        assert_eq!(s.mail_from, "Ops <ops@example.com>");
        assert_eq!(
            s.sms_url.as_deref(),
            Some("https://sms.example.com/Messages.json")
        );
        assert_eq!(s.sms_account.as_deref(), Some("AC1"));
        assert_eq!(s.sms_token.as_ref().map(Secret::expose), Some("sms-token"));
        assert_eq!(s.sms_from.as_deref(), Some("Stratus"));
    }

    #[test]
    fn an_incomplete_or_bad_mail_or_sms_setting_names_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("STRATUS_SMTP_TLS", "ssl")], "STRATUS_SMTP_TLS"),
            (&[("STRATUS_SMTP_PORT", "smtp")], "STRATUS_SMTP_PORT"),
            (&[("STRATUS_MAIL_FROM", "nobody")], "STRATUS_MAIL_FROM"),
            (&[("STRATUS_SMTP_PASSWORD", "p")], "STRATUS_SMTP_USERNAME"),
            (
                &[("STRATUS_SMS_URL", "https://sms.example.com")],
                "STRATUS_SMS_FROM",
            ),
            (&[("STRATUS_SMS_TOKEN", "t")], "STRATUS_SMS_ACCOUNT"),
        ];
        for (pairs, name) in cases {
            let err = Settings::from_sources(None, &env(pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn idempotency_lifetimes_have_defaults_and_are_checked() {
        let s = Settings::from_sources(None, &HashMap::new()).unwrap();
        assert_eq!(s.idempotency_ttl_seconds(), 24 * 3_600);
        assert_eq!(s.idempotency_lock_timeout_seconds, 60);
        let s = Settings::from_sources(
            None,
            &env(&[
                ("STRATUS_IDEMPOTENCY_TTL_HOURS", "48"),
                ("STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", "120"),
            ]),
        )
        .unwrap();
        assert_eq!(s.idempotency_ttl_seconds(), 48 * 3_600);
        assert_eq!(s.idempotency_lock_timeout_seconds, 120);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("STRATUS_IDEMPOTENCY_TTL_HOURS", "0")],
                "STRATUS_IDEMPOTENCY_TTL_HOURS",
            ),
            (
                &[("STRATUS_IDEMPOTENCY_TTL_HOURS", "a day")],
                "STRATUS_IDEMPOTENCY_TTL_HOURS",
            ),
            (
                &[("STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", "0")],
                "STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS",
            ),
            (
                &[
                    ("STRATUS_IDEMPOTENCY_TTL_HOURS", "1"),
                    ("STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", "3600"),
                ],
                "STRATUS_IDEMPOTENCY_LOCK_TIMEOUT_SECONDS",
            ),
        ];
        for (pairs, name) in cases {
            let err = Settings::from_sources(None, &env(pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_sources(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://u:hunter2@h/db"),
                ("STRATUS_ADMIN_PASSWORD", "hunter2hunter2"),
                ("STRATUS_SMTP_USERNAME", "mailer"),
                ("STRATUS_SMTP_PASSWORD", "hunter2-smtp"),
                ("STRATUS_SMS_ACCOUNT", "AC1"),
                ("STRATUS_SMS_TOKEN", "hunter2-sms"),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn identity_settings_have_defaults_and_are_checked() {
        let s = Settings::from_sources(None, &HashMap::new()).unwrap();
        assert_eq!(
            s.auth_rate_limit_per_minute,
            DEFAULT_AUTH_RATE_LIMIT_PER_MINUTE
        );
        assert_eq!(s.public_base_url(), "http://127.0.0.1:8080");
        let s = Settings::from_sources(
            None,
            &env(&[
                ("STRATUS_PUBLIC_URL", "https://cloud.example.com/"),
                ("STRATUS_AUTH_RATE_LIMIT_PER_MINUTE", "100"),
            ]),
        )
        .unwrap();
        assert_eq!(s.public_base_url(), "https://cloud.example.com");
        assert_eq!(s.auth_rate_limit_per_minute, 100);
        for (name, value) in [
            ("STRATUS_PUBLIC_URL", "cloud.example.com"),
            ("STRATUS_AUTH_RATE_LIMIT_PER_MINUTE", "0"),
            ("STRATUS_CHALLENGE_SECRET", "short"),
        ] {
            let err = Settings::from_sources(None, &env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn password_hashing_threads_default_to_half_the_cores_and_zero_is_refused() {
        let s = Settings::from_sources(None, &HashMap::new()).unwrap();
        assert_eq!(s.password_hashing_threads, None);
        let s = Settings::from_sources(None, &env(&[("STRATUS_PASSWORD_HASHING_THREADS", "3")]))
            .unwrap();
        assert_eq!(s.password_hashing_threads, Some(3));
        let err = Settings::from_sources(None, &env(&[("STRATUS_PASSWORD_HASHING_THREADS", "0")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("STRATUS_PASSWORD_HASHING_THREADS"),
            "{err}"
        );
        assert!(crate::lifecycle::default_hashing_threads() >= 1);
    }

    #[test]
    fn the_demo_catalog_is_on_by_default_and_switched_off_by_setting() {
        let s = Settings::from_sources(None, &HashMap::new()).unwrap();
        assert!(s.demo_catalog);
        let s = Settings::from_sources(None, &env(&[("STRATUS_DEMO_CATALOG", "false")])).unwrap();
        assert!(!s.demo_catalog);
        let err =
            Settings::from_sources(None, &env(&[("STRATUS_DEMO_CATALOG", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("STRATUS_DEMO_CATALOG"), "{err}");
    }
}
