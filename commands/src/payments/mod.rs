//! The payment gateway port: how a top-up asks an outside party to collect money.
//!
//! One trait, [`PaymentGateway`], with one adapter per way of paying ([`GatewayKind`]):
//!
//! - [`stripe`]: card payments through Stripe PaymentIntents, over our own small HTTP client
//!   ([`stripe::StripeClient`]); Stripe reports the outcome by signed webhooks, verified by
//!   [`webhook::WebhookVerifier`].
//! - [`manual`]: bank transfers. Nothing remote: the customer gets bank details and a reference a
//!   human can type ([`manual::BankReference`]); billing staff confirm the amount that arrived.
//!
//! The port only talks to the gateway. It never records anything: the wallet aggregate decides,
//! and the code that wires a gateway to a route (a later step) turns answers into wallet commands.
//! Nothing here retries either; [`GatewayError::is_retryable`] tells the caller whether it may.

pub mod manual;
pub mod stripe;
pub mod webhook;

use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;
use stratus_domain::{AccountId, Money, MoneyError, PaymentId};

pub use crate::secret::Secret;
pub use stratus_domain::wallet::PaymentGateway as GatewayKind;

/// Longest gateway object id accepted, in characters. Stripe documents ids of up to 255
/// characters; ours (bank references) are much shorter.
pub const INTENT_ID_MAX_CHARS: usize = 255;
/// Longest idempotency key, in characters: Stripe's documented limit.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

/// A gateway that can be asked to collect a payment. Object-safe: the composition root holds one
/// `Arc<dyn PaymentGateway>` per [`GatewayKind`].
pub trait PaymentGateway: Send + Sync {
    /// Which gateway this is (the stored name of the top-up's gateway).
    fn kind(&self) -> GatewayKind;

    /// Starts collecting `request.amount`. Safe to repeat with the same request: the gateway
    /// returns the intent it already made for that idempotency key (Stripe), or derives the same
    /// one again (manual).
    fn create_intent(&self, request: IntentRequest) -> BoxFuture<'_, Result<Intent, GatewayError>>;

    /// The gateway's current view of an intent.
    fn retrieve_intent<'a>(
        &'a self,
        id: &'a IntentId,
    ) -> BoxFuture<'a, Result<Intent, GatewayError>>;

    /// Stops an intent that has not been paid, so that it can no longer be paid.
    fn cancel_intent<'a>(&'a self, id: &'a IntentId)
        -> BoxFuture<'a, Result<Intent, GatewayError>>;
}

/// What a top-up asks a gateway for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest {
    /// The top-up being paid; Stripe keeps it in the intent's metadata so that its webhooks name
    /// it, and the bank reference is derived from it.
    pub payment_id: PaymentId,
    /// Positive, and a whole number of the currency's minor unit.
    pub amount: Money,
    /// The Stratus account that pays, kept in the intent's metadata for support staff.
    pub customer_reference: AccountId,
    /// Sent as Stripe's `Idempotency-Key`; the same key always for the same top-up.
    pub idempotency_key: IdempotencyKey,
}

/// A gateway's payment attempt for one top-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The gateway's id (a Stripe PaymentIntent `pi_…`, a bank reference `STR-…`).
    pub id: IntentId,
    /// Where the payment stands.
    pub status: IntentStatus,
    /// The amount asked for.
    pub amount: Money,
    /// The top-up this intent pays, as recorded with the gateway (`None` for an intent that was
    /// not made by Stratus, such as one created by hand in Stripe's dashboard).
    pub payment_id: Option<PaymentId>,
    /// What the customer needs to finish paying, when the gateway gave it.
    pub checkout: Option<Checkout>,
}

/// What the customer's side needs to finish a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// Stripe: the PaymentIntent's client secret, with which the browser confirms the card payment
    /// (Stripe.js). Only for the customer who owns the top-up.
    ClientSecret(Secret),
    /// A bank transfer: where to send the money and which reference to quote.
    BankTransfer(manual::BankTransferInstructions),
}

/// Where a payment stands, in Stripe's vocabulary (the manual gateway uses the same words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for the customer to give a payment method (or the last one failed).
    RequiresPaymentMethod,
    /// A payment method is attached; the payment has not been confirmed yet.
    RequiresConfirmation,
    /// The customer must do something: 3-D Secure, or send the bank transfer.
    RequiresAction,
    /// The payment is being processed; the outcome will follow.
    Processing,
    /// Authorised, waiting to be captured (not used by top-ups, which capture at once).
    RequiresCapture,
    /// Paid.
    Succeeded,
    /// Stopped; it can no longer be paid.
    Canceled,
}

impl IntentStatus {
    const ALL: [IntentStatus; 7] = [
        Self::RequiresPaymentMethod,
        Self::RequiresConfirmation,
        Self::RequiresAction,
        Self::Processing,
        Self::RequiresCapture,
        Self::Succeeded,
        Self::Canceled,
    ];

    /// Stripe's name of the status (`"requires_payment_method"`, `"succeeded"`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }

    /// The status of a Stripe name; `None` for a name this code does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// Whether the intent can still change: not paid and not canceled.
    pub fn is_open(&self) -> bool {
        !matches!(self, Self::Succeeded | Self::Canceled)
    }
}

/// A gateway's id of an intent. Checked because it is put into URL paths: 1 to
/// [`INTENT_ID_MAX_CHARS`] ASCII letters, digits, `_` or `-`, so it can never add a path segment
/// or a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct IntentId(String);

impl IntentId {
    /// Checks an id from a gateway, a webhook or storage.
    ///
    /// # Errors
    /// [`InvalidIntentId`] when it is empty, too long or has any other character.
    pub fn parse(input: &str) -> Result<Self, InvalidIntentId> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if input.is_empty() || input.len() > INTENT_ID_MAX_CHARS || !input.bytes().all(allowed) {
            return Err(InvalidIntentId);
        }
        Ok(Self(input.to_owned()))
    }

    /// The id as the gateway spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<IntentId> for String {
    fn from(id: IntentId) -> Self {
        id.0
    }
}

/// A text offered as an [`IntentId`] has a character outside `A-Z a-z 0-9 _ -`, or a bad length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a payment intent id: expected 1 to 255 letters, digits, '_' or '-'")]
pub struct InvalidIntentId;

/// The key that makes a repeated create return the first intent instead of a second one.
/// 1 to [`IDEMPOTENCY_KEY_MAX_CHARS`] printable ASCII characters without spaces (it travels in an
/// HTTP header).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of a top-up's intent: `top_up:<payment id>`. Every attempt for the same top-up
    /// uses it, so a retry after a lost answer cannot open a second intent.
    pub fn for_top_up(payment_id: &PaymentId) -> Self {
        Self(format!("top_up:{payment_id}"))
    }

    /// Checks a caller-made key.
    ///
    /// # Errors
    /// [`InvalidIdempotencyKey`] when it is empty, too long, or not printable ASCII without
    /// spaces.
    pub fn parse(input: &str) -> Result<Self, InvalidIdempotencyKey> {
        if input.is_empty()
            || input.len() > IDEMPOTENCY_KEY_MAX_CHARS
            || !input.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(InvalidIdempotencyKey);
        }
        Ok(Self(input.to_owned()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A text offered as an [`IdempotencyKey`] is empty, too long, or not printable ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an idempotency key: expected 1 to 255 printable ASCII characters without spaces")]
pub struct InvalidIdempotencyKey;

/// Why a gateway call did not give an intent. Retryable failures (the gateway could not be
/// reached or asked us to come back) are kept apart from permanent ones (it refused, or the
/// request could never be sent), see [`GatewayError::is_retryable`].
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No complete answer: connection refused or reset, DNS, TLS, or a timeout. The request may
    /// or may not have been carried out; retry with the same idempotency key to find out.
    #[error("the payment gateway could not be reached")]
    Unreachable(#[source] reqwest::Error),
    /// The gateway answered that it cannot serve now (5xx, 429 rate limit, 409 concurrent use of
    /// the idempotency key, or Stripe's `Stripe-Should-Retry: true`).
    #[error("the payment gateway is unavailable (HTTP {status})")]
    Unavailable {
        /// The HTTP status it answered.
        status: u16,
        /// Its error body, when it sent one.
        detail: ApiErrorDetail,
    },
    /// The gateway refused the request (4xx, or `Stripe-Should-Retry: false`): the same request
    /// will be refused again. Includes a declined card, an unknown intent and a wrong API key.
    #[error("the payment gateway refused the request (HTTP {status}): {detail}")]
    Refused {
        /// The HTTP status it answered.
        status: u16,
        /// Its error body: Stripe's `type`, `code`, `decline_code`, `message`, `param`.
        detail: ApiErrorDetail,
    },
    /// A successful answer that this code cannot read (not JSON, a missing field, an unknown
    /// status or currency). A bug or an API change; retrying does not help.
    #[error("unexpected answer from the payment gateway: {reason}")]
    UnexpectedResponse {
        /// What was wrong with it.
        reason: String,
    },
    /// The amount cannot be charged: zero or negative, or finer than the currency's minor unit.
    /// Nothing was sent.
    #[error("the amount cannot be charged by a payment gateway")]
    AmountNotChargeable(#[source] MoneyError),
    /// This gateway has no such operation (the manual gateway keeps no remote intents).
    #[error("the {} gateway cannot {operation}", gateway.as_str())]
    Unsupported {
        /// The gateway asked.
        gateway: GatewayKind,
        /// What it was asked (`"retrieve_intent"`, `"cancel_intent"`).
        operation: &'static str,
    },
}

impl GatewayError {
    /// Whether the same call may succeed later: true for [`GatewayError::Unreachable`] and
    /// [`GatewayError::Unavailable`], false for the rest.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Unavailable { .. })
    }

    /// Stable machine-readable code for logs and API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "gateway_unreachable",
            Self::Unavailable { .. } => "gateway_unavailable",
            Self::Refused { .. } => "gateway_refused",
            Self::UnexpectedResponse { .. } => "gateway_unexpected_response",
            Self::AmountNotChargeable(_) => "amount_not_chargeable",
            Self::Unsupported { .. } => "gateway_operation_unsupported",
        }
    }
}

/// The error object a gateway sent back (Stripe's `{"error": {…}}`), every field optional because
/// gateways and fakes fill in different ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ApiErrorDetail {
    /// Stripe's error `type`: `card_error`, `invalid_request_error`, `api_error`, ….
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Stripe's error `code`: `card_declined`, `resource_missing`, `idempotency_key_in_use`, ….
    pub code: Option<String>,
    /// For a declined card, the issuer's reason (`insufficient_funds`, …).
    pub decline_code: Option<String>,
    /// A human-readable message, for logs and staff; not meant for customers as is.
    pub message: Option<String>,
    /// The request parameter the error is about.
    pub param: Option<String>,
}

impl fmt::Display for ApiErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.as_deref().unwrap_or("no code");
        match &self.message {
            Some(message) => write!(f, "{code}: {message}"),
            None => f.write_str(code),
        }
    }
}

/// Checks that an amount can be sent to a gateway and gives it in minor units.
fn chargeable_minor_units(amount: Money) -> Result<i64, GatewayError> {
    let amount = amount
        .require_positive()
        .map_err(GatewayError::AmountNotChargeable)?;
    amount
        .to_minor_units()
        .map_err(GatewayError::AmountNotChargeable)
}

#[cfg(test)]
mod tests;
