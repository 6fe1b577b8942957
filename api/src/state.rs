//! What every handler can reach: the pool, the command stores, the feed, and the password pool.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use sqlx::PgPool;
use stratus_commands::catalog::Catalog;
use stratus_commands::discount_codes::DiscountCodes;
use stratus_commands::invoices::Invoices;
use stratus_commands::orders::Orders;
use stratus_commands::payments::webhook::WebhookVerifier;
use stratus_commands::secrets::ChallengeKeys;
use stratus_commands::wallets::{Gateways, Wallets};
use stratus_commands::{detached, AggregateStore, Appended, CommandMetadata};
use stratus_domain::account::AccountCommand;
use stratus_domain::AccountId;

use crate::error::{command_error, ApiError};
use stratus_domain::account::Account;
use stratus_projections::{Feed, FeedError, FeedPosition};

use crate::auth::Passwords;
use crate::rate_limit::RateLimiter;
use crate::settings::Settings;

/// How long a command endpoint waits for the projections it reads to catch up with its own
/// events before it answers anyway (DESIGN.md section 4).
pub const READ_YOUR_WRITES_TIMEOUT_MS: u64 = 2_000;
/// Response header set when a command answered before its projections caught up.
pub const CONSISTENCY_HEADER: &str = "stratus-consistency";

/// Shared application state.
pub struct AppState {
    pub pool: PgPool,
    pub accounts: AggregateStore<Account>,
    /// The wallets, in the settlement currency.
    pub wallets: Wallets,
    /// The payment gateways this deployment offers.
    pub gateways: Gateways,
    /// Invoices: drafted, numbered without gaps, issued, paid, voided.
    pub invoices: Invoices,
    /// Checks Stripe's webhook signatures; `None` when Stripe is not configured.
    pub webhook_verifier: Option<WebhookVerifier>,
    /// Derives codes, links and TOTP secrets (never printed).
    pub keys: ChallengeKeys,
    /// The per-IP budget of `/auth/*`.
    pub limiter: RateLimiter,
    pub feed: Arc<Feed>,
    pub passwords: Passwords,
    pub settings: Arc<Settings>,
    /// Discount codes: admin changes, and check, redeem and release for the orders flow.
    pub discount_codes: DiscountCodes,
    /// The catalog's write side (datacenters, images, plans), priced in the settlement currency.
    pub catalog: Catalog,
    /// Quotes and orders: pricing, placing, paying from the wallet, cancelling, expiring.
    pub orders: Orders,
    /// Session checks reused while the `accounts` projection stands still (at most a second).
    pub principals: crate::principals::PrincipalCache,
}

/// Whether the read models had caught up when a command answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    CaughtUp,
    Pending,
}

impl Consistency {
    pub fn header_value(self) -> &'static str {
        match self {
            Self::CaughtUp => "caught-up",
            Self::Pending => "pending",
        }
    }

    /// Sets the consistency header on a command's response.
    pub fn mark(self, mut response: actix_web::HttpResponse) -> actix_web::HttpResponse {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(CONSISTENCY_HEADER),
            actix_web::http::header::HeaderValue::from_static(self.header_value()),
        );
        response
    }
}

impl AppState {
    /// Waits (bounded) until `projections` have applied the event at `position`.
    pub async fn read_your_writes(
        &self,
        position: Option<FeedPosition>,
        projections: &[&str],
    ) -> Result<Consistency, FeedError> {
        let Some(position) = position else {
            return Ok(Consistency::CaughtUp);
        };
        let caught_up = self
            .feed
            .wait_for(
                projections,
                position,
                Duration::from_millis(READ_YOUR_WRITES_TIMEOUT_MS),
            )
            .await?;
        if caught_up {
            Ok(Consistency::CaughtUp)
        } else {
            tracing::warn!(%position, "answering before the read models caught up");
            Ok(Consistency::Pending)
        }
    }
}

/// Runs one command on an account, detached from the request (see [`detached`]), and maps a
/// failure once through the error table.
pub async fn run_account(
    state: &web::Data<AppState>,
    account_id: AccountId,
    command: AccountCommand,
    metadata: CommandMetadata,
) -> Result<Appended<Account>, ApiError> {
    let worker = state.clone();
    detached(async move {
        worker
            .accounts
            .execute(&account_id.to_string(), command, &metadata)
            .await
    })
    .await?
    .map_err(command_error)
}
