//! Starting and stopping one Stratus process: state, feed runners, outbox dispatcher, HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use sqlx::PgPool;
use stratus_commands::account_messages::AccountMessages;
use stratus_commands::catalog::Catalog;
use stratus_commands::discount_codes::DiscountCodes;
use stratus_commands::invoice_issuer::InvoiceIssuer;
use stratus_commands::invoices::Invoices;
use stratus_commands::order_settlement::OrderSettlement;
use stratus_commands::orders::{start_expiry_sweep, OrderPolicy, Orders};
use stratus_commands::outbox::{
    Dispatcher, DispatcherConfig, EmailTransport, HttpSmsConfig, SmsTransport, SmtpConfig,
    TransportConfigError, Transports,
};
use stratus_commands::payments::manual::ManualGateway;
use stratus_commands::payments::stripe::StripeClient;
use stratus_commands::payments::webhook::WebhookVerifier;
use stratus_commands::secrets::ChallengeKeys;
use stratus_commands::wallet_opener::WalletOpener;
use stratus_commands::wallets::{Gateways, Wallets};
use stratus_commands::AggregateStore;
use stratus_domain::account::AccountServices;
use stratus_projections::accounts::AccountsProjection;
use stratus_projections::catalog::CatalogProjection;
use stratus_projections::discount_codes::DiscountCodesProjection;
use stratus_projections::invoices::InvoicesProjection;
use stratus_projections::ledger::LedgerProjection;
use stratus_projections::orders::OrdersProjection;
use stratus_projections::wallets::WalletsProjection;
use stratus_projections::{Feed, Subscriber};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{Passwords, Tokens};
use crate::rate_limit::RateLimiter;
use crate::settings::{Secret, Settings};
use crate::state::AppState;

/// How long stopping waits for each feed runner to finish its batch.
pub const FEED_STOP_TIMEOUT_MS: u64 = 5_000;
/// How long stopping waits for the outbox dispatcher to finish the sends in flight. A send still
/// running after that is abandoned: its lease runs out and another process sends it again.
pub const OUTBOX_STOP_TIMEOUT_MS: u64 = 5_000;

/// The keys of one process.
#[derive(Clone)]
pub struct Keys {
    /// HMAC key of access tokens.
    pub jwt: Secret,
    /// Key of one-time codes, signed links and TOTP secrets.
    pub challenge: Secret,
}

/// Failures while starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Password(#[from] crate::auth::PasswordError),
    #[error("cannot serve HTTP: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot set up outgoing messages: {0}")]
    Outbox(#[from] TransportConfigError),
    #[error("cannot set up the payment gateways: {0}")]
    Payments(String),
}

/// The command services of one process, built once. The HTTP routes and the reactors share them,
/// so each aggregate has one cache and one command queue in the process: a reactor's command and
/// a route's command on the same wallet are decided one after the other on one cached state, and
/// a wallet is held in memory once, not once per user of it.
#[derive(Clone)]
pub struct Services {
    pub wallets: Wallets,
    pub invoices: Invoices,
    pub discount_codes: DiscountCodes,
    pub orders: Orders,
}

impl Services {
    pub fn new(settings: &Settings, pool: &PgPool) -> Self {
        let wallets = Wallets::new(pool.clone(), settings.payments.currency);
        let invoices = Invoices::new(pool.clone());
        let discount_codes = DiscountCodes::new(pool.clone(), settings.payments.currency);
        let orders = orders(
            settings,
            pool,
            discount_codes.clone(),
            invoices.clone(),
            wallets.clone(),
        );
        Self {
            wallets,
            invoices,
            discount_codes,
            orders,
        }
    }
}

/// Every subscriber of the feed, in one place (add new projections and reactors here). The
/// reactors command through `services`, the same instances the routes use.
pub fn subscribers(
    settings: &Settings,
    keys: &Keys,
    services: &Services,
) -> Vec<Arc<dyn Subscriber>> {
    let challenge_keys = ChallengeKeys::new(keys.challenge.expose().as_bytes());
    vec![
        Arc::new(AccountsProjection),
        Arc::new(AccountMessages::new(
            challenge_keys,
            settings.public_base_url(),
        )),
        Arc::new(WalletsProjection),
        Arc::new(WalletOpener::new(services.wallets.clone())),
        Arc::new(LedgerProjection),
        Arc::new(DiscountCodesProjection),
        Arc::new(InvoicesProjection),
        Arc::new(InvoiceIssuer::new(services.invoices.clone())),
        // Catalog
        Arc::new(CatalogProjection),
        Arc::new(OrdersProjection),
        Arc::new(OrderSettlement::new(
            services.orders.clone(),
            services.invoices.clone(),
            services.discount_codes.clone(),
        )),
    ]
}

/// The ordering use cases, sharing the given services (and so their per-aggregate locks).
pub fn orders(
    settings: &Settings,
    pool: &PgPool,
    discount_codes: DiscountCodes,
    invoices: Invoices,
    wallets: Wallets,
) -> Orders {
    Orders::new(
        pool.clone(),
        discount_codes,
        invoices,
        wallets,
        OrderPolicy {
            payment_window: settings.orders.payment_window(),
            tax: settings.orders.tax_policy(),
            currency: settings.payments.currency,
        },
    )
}

/// The payment gateways the settings configure, and the verifier of Stripe's webhooks.
pub fn gateways(settings: &Settings) -> Result<(Gateways, Option<WebhookVerifier>), StartError> {
    let payments = &settings.payments;
    let mut gateways = Gateways::default();
    let mut verifier = None;
    if let Some(key) = &payments.stripe_secret_key {
        let client = match &payments.stripe_api_base {
            Some(base) => StripeClient::with_base_url(key.clone(), base),
            None => StripeClient::new(key.clone()),
        }
        .map_err(|e| StartError::Payments(e.to_string()))?;
        gateways.stripe = Some(Arc::new(client));
        verifier = Some(
            WebhookVerifier::new(payments.stripe_webhook_secrets.clone())
                .map_err(|e| StartError::Payments(e.to_string()))?,
        );
    }
    if let Some(account) = payments
        .bank_account()
        .map_err(|e| StartError::Payments(e.to_string()))?
    {
        gateways.manual = Some(Arc::new(ManualGateway::new(account)));
    }
    Ok((gateways, verifier))
}

/// A running process.
pub struct Running {
    pub state: web::Data<AppState>,
    pub local_addr: SocketAddr,
    server: ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    /// Stops the feed runners and the outbox dispatcher.
    background_shutdown: watch::Sender<bool>,
    feed_tasks: Vec<JoinHandle<()>>,
    outbox_task: JoinHandle<()>,
    /// Expires unpaid orders past their deadline.
    expiry_task: JoinHandle<()>,
}

/// Cores available to this process, for worker counts and the hashing pool.
/// Argon2 hashes at once when not configured: half the cores, at least one. Each hash keeps a
/// core busy for tens of milliseconds; the other half stays free for every other request.
pub fn default_hashing_threads() -> usize {
    (cores() / 2).max(1)
}

pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The outbox transports the settings ask for: the SMTP relay and the HTTP SMS provider when they
/// are set, otherwise the development folders under the data dir.
pub fn outbox_transports(settings: &Settings) -> Result<Transports, TransportConfigError> {
    let email = match &settings.smtp_host {
        Some(host) => EmailTransport::smtp(&SmtpConfig {
            host: host.clone(),
            port: settings.smtp_port,
            tls: settings.smtp_tls,
            username: settings.smtp_username.clone(),
            password: settings
                .smtp_password
                .as_ref()
                .map(|p| p.expose().to_owned()),
            from: settings.mail_from.clone(),
        })?,
        None => EmailTransport::mailbox(settings.mail_dir(), &settings.mail_from)?,
    };
    let sms = match (&settings.sms_url, &settings.sms_from) {
        (Some(url), Some(from)) => SmsTransport::http(HttpSmsConfig {
            url: url.clone(),
            account: settings.sms_account.clone(),
            token: settings.sms_token.as_ref().map(|t| t.expose().to_owned()),
            from: from.clone(),
        })?,
        _ => SmsTransport::files(settings.sms_dir()),
    };
    Ok(Transports { email, sms })
}

/// Builds the state, starts the feed runners and the outbox dispatcher, and serves HTTP on
/// `listener`.
pub async fn start(
    settings: Arc<Settings>,
    pool: PgPool,
    keys: &Keys,
    listener: TcpListener,
    workers: usize,
) -> Result<Running, StartError> {
    let hashing_threads = settings
        .password_hashing_threads
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_else(default_hashing_threads);
    let passwords = tokio::task::spawn_blocking(move || Passwords::new(hashing_threads))
        .await
        .map_err(|e| crate::auth::PasswordError::Task(e.to_string()))??;
    let transports = outbox_transports(&settings)?;
    let (gateways, webhook_verifier) = gateways(&settings)?;
    let shared = Services::new(&settings, &pool);
    let feed = Feed::new(pool.clone(), subscribers(&settings, keys, &shared));
    let (background_shutdown, background_stop) = watch::channel(false);
    let feed_tasks = feed.start(background_stop.clone());
    let dispatcher = Dispatcher::new(pool.clone(), transports, DispatcherConfig::default());
    let outbox_task = dispatcher.start(background_stop.clone());
    let tokens = web::Data::new(Tokens::new(
        keys.jwt.expose().as_bytes(),
        settings.access_token_ttl_seconds,
    ));
    let challenge_keys = ChallengeKeys::new(keys.challenge.expose().as_bytes());
    let services = AccountServices {
        secrets: Arc::new(challenge_keys.clone()),
    };
    let catalog = Catalog::new(pool.clone(), settings.payments.currency);
    let Services {
        wallets,
        invoices,
        discount_codes,
        orders,
    } = shared;
    let expiry_task = start_expiry_sweep(
        orders.clone(),
        settings.orders.expiry_sweep(),
        background_stop,
    );
    let state = web::Data::new(AppState {
        accounts: AggregateStore::new(pool.clone(), services),
        wallets,
        gateways,
        invoices,
        orders,
        webhook_verifier,
        limiter: RateLimiter::per_minute(settings.auth_rate_limit_per_minute),
        keys: challenge_keys,
        pool,
        feed,
        passwords,
        discount_codes,
        settings,
        catalog,
        principals: crate::principals::PrincipalCache::default(),
    });
    let local_addr = listener.local_addr()?;
    let server = crate::http::server(state.clone(), tokens, listener, workers)?;
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    Ok(Running {
        state,
        local_addr,
        server: handle,
        server_task,
        background_shutdown,
        feed_tasks,
        outbox_task,
        expiry_task,
    })
}

impl Running {
    /// Resolves when the HTTP server stops by itself (it should not).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.server_task).await;
    }

    /// Graceful stop: in-flight requests finish, then the feed runners end their batch and the
    /// outbox dispatcher its sends, and only then does the pool close.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.server_task.await;
        let _ = self.background_shutdown.send(true);
        for task in self.feed_tasks {
            if tokio::time::timeout(Duration::from_millis(FEED_STOP_TIMEOUT_MS), task)
                .await
                .is_err()
            {
                tracing::warn!("a feed runner did not stop in time");
            }
        }
        if tokio::time::timeout(
            Duration::from_millis(OUTBOX_STOP_TIMEOUT_MS),
            self.outbox_task,
        )
        .await
        .is_err()
        {
            tracing::warn!(
                "the outbox dispatcher did not stop in time; its sends in flight will be retried"
            );
        }
        if self.expiry_task.await.is_err() {
            tracing::warn!("the order expiry sweep ended abnormally");
        }
        self.state.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn without_a_relay_or_provider_messages_go_to_the_data_dir_folders() {
        let settings = Settings {
            data_dir: "/var/tmp/stratus-x".into(),
            ..Settings::default()
        };

        let transports = outbox_transports(&settings).unwrap();

        assert_eq!(
            transports.email.describe(),
            "mailbox folder /var/tmp/stratus-x/mail"
        );
        assert_eq!(
            transports.sms.describe(),
            "SMS folder /var/tmp/stratus-x/sms"
        );
    }

    #[tokio::test]
    async fn a_configured_relay_and_provider_are_used() {
        let settings = Settings {
            smtp_host: Some("smtp.example.com".to_owned()),
            sms_url: Some("https://sms.example.com/Messages.json".to_owned()),
            sms_from: Some("Stratus".to_owned()),
            ..Settings::default()
        };

        let transports = outbox_transports(&settings).unwrap();

        assert_eq!(
            transports.email.describe(),
            "SMTP relay smtp.example.com:587 (starttls)"
        );
        assert_eq!(
            transports.sms.describe(),
            "SMS provider https://sms.example.com"
        );
    }
}
