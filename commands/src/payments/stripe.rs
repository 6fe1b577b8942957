//! Stripe PaymentIntents over Stripe's HTTP API, with our own small client.
//!
//! Three calls, all form-encoded with the secret key as a bearer token: create
//! (`POST /v1/payment_intents`, with an `Idempotency-Key`), retrieve
//! (`GET /v1/payment_intents/{id}`) and cancel (`POST /v1/payment_intents/{id}/cancel`). Amounts
//! travel in the currency's minor unit (2500 for 25.00 EUR) with a lowercase currency code; the
//! top-up's [`PaymentId`] travels in `metadata[payment_id]`, so that Stripe's webhooks name it.
//!
//! The customer confirms the payment in the browser with the intent's client secret (Stripe.js);
//! this client never sees card details. Why our own client rather than an SDK crate:
//! `docs/adr/0005-payment-gateways.md`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use stratus_domain::{Currency, Money, PaymentId};
use tracing::Instrument;

use super::{
    chargeable_minor_units, ApiErrorDetail, Checkout, GatewayError, GatewayKind, Intent, IntentId,
    IntentRequest, IntentStatus, PaymentGateway, Secret,
};

/// Stripe's API, the default base URL (tests point the client at localstripe instead).
pub const STRIPE_API_BASE_URL: &str = "https://api.stripe.com";
/// The API version the shapes read here were checked against, sent as `Stripe-Version` so that a
/// change of the account's default version cannot change what this client receives.
pub const STRIPE_API_VERSION: &str = "2024-06-20";
/// Time to open a connection: a reachable API answers a TCP and TLS handshake well within this,
/// and failing fast lets the caller retry instead of holding a request open.
pub const STRIPE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Time for a whole call, body included: creating an intent takes Stripe well under a second;
/// this bounds how long a customer's top-up request can hang on a slow gateway.
pub const STRIPE_REQUEST_TIMEOUT_MS: u64 = 20_000;
/// The metadata key that carries the top-up's [`PaymentId`].
pub const METADATA_PAYMENT_ID: &str = "payment_id";
/// The metadata key that carries the paying account, for support staff in Stripe's dashboard.
pub const METADATA_CUSTOMER_REFERENCE: &str = "customer_reference";
/// Top-ups are card payments (DESIGN: a Stripe top-up settles for exactly the amount initiated);
/// naming the method keeps delayed methods such as SEPA debits out whatever the account enables.
const PAYMENT_METHOD_TYPE: &str = "card";
const PAYMENT_INTENTS_PATH: &str = "/v1/payment_intents";
/// Stripe's hint on whether a failed request may be retried (`true` or `false`).
const SHOULD_RETRY_HEADER: &str = "stripe-should-retry";
/// Stripe's id of a request, worth logging for its support.
const REQUEST_ID_HEADER: &str = "request-id";

/// A Stripe API client for PaymentIntents. Cheap to clone (the HTTP connection pool is shared).
#[derive(Debug, Clone)]
pub struct StripeClient {
    /// Scheme, host and port, without a trailing `/`.
    base_url: String,
    secret_key: Secret,
    http: reqwest::Client,
}

/// Why a [`StripeClient`] could not be built. A configuration problem, found at startup.
#[derive(Debug, thiserror::Error)]
pub enum StripeSetupError {
    /// The base URL does not parse, or has a path, query, fragment or credentials.
    #[error("the Stripe base URL must be a plain origin such as https://api.stripe.com: {reason}")]
    InvalidBaseUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// Plain `http` to a host that is not this machine would send the secret key in the clear.
    #[error("the Stripe base URL must use https (plain http only to a loopback address)")]
    InsecureBaseUrl,
    /// The HTTP client could not be set up (TLS roots).
    #[error("the HTTP client for Stripe could not be built")]
    HttpClient(#[source] reqwest::Error),
}

impl StripeClient {
    /// A client of Stripe's API with the account's secret key (`sk_live_…`, `sk_test_…`).
    ///
    /// # Errors
    /// [`StripeSetupError::HttpClient`] when the HTTP client cannot be built.
    pub fn new(secret_key: Secret) -> Result<Self, StripeSetupError> {
        Self::with_base_url(secret_key, STRIPE_API_BASE_URL)
    }

    /// A client of another server that speaks Stripe's API, such as localstripe in tests.
    ///
    /// # Errors
    /// [`StripeSetupError::InvalidBaseUrl`] for anything but a bare origin,
    /// [`StripeSetupError::InsecureBaseUrl`] for plain `http` to a host other than a loopback
    /// address, [`StripeSetupError::HttpClient`] when the HTTP client cannot be built.
    pub fn with_base_url(secret_key: Secret, base_url: &str) -> Result<Self, StripeSetupError> {
        let base_url = checked_base_url(base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(STRIPE_CONNECT_TIMEOUT_MS))
            .timeout(Duration::from_millis(STRIPE_REQUEST_TIMEOUT_MS))
            // Stripe's API does not redirect; following one could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(StripeSetupError::HttpClient)?;
        Ok(Self {
            base_url,
            secret_key,
            http,
        })
    }

    /// The origin this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn create(&self, request: &IntentRequest) -> Result<Intent, GatewayError> {
        let minor_units = chargeable_minor_units(request.amount)?;
        let form = [
            ("amount", minor_units.to_string()),
            (
                "currency",
                request.amount.currency().code().to_ascii_lowercase(),
            ),
            ("payment_method_types[0]", PAYMENT_METHOD_TYPE.to_owned()),
            ("metadata[payment_id]", request.payment_id.to_string()),
            (
                "metadata[customer_reference]",
                request.customer_reference.to_string(),
            ),
        ];
        let call = self
            .request(Method::POST, PAYMENT_INTENTS_PATH.to_owned())
            .header("Idempotency-Key", request.idempotency_key.as_str())
            .form(&form);
        let intent = self.send(call).await?;
        // Stripe answers a reused key with other parameters by an error; an intent for another
        // amount or payment here means something between us and Stripe is wrong.
        if intent.amount != request.amount || intent.payment_id != Some(request.payment_id) {
            return Err(GatewayError::UnexpectedResponse {
                reason: format!(
                    "intent {} is not for payment {} of {}",
                    intent.id, request.payment_id, request.amount
                ),
            });
        }
        Ok(intent)
    }

    async fn retrieve(&self, id: &IntentId) -> Result<Intent, GatewayError> {
        let call = self.request(Method::GET, format!("{PAYMENT_INTENTS_PATH}/{id}"));
        self.send(call).await
    }

    async fn cancel(&self, id: &IntentId) -> Result<Intent, GatewayError> {
        let call = self
            .request(Method::POST, format!("{PAYMENT_INTENTS_PATH}/{id}/cancel"))
            .form(&[] as &[(&str, &str)]);
        self.send(call).await
    }

    fn request(&self, method: Method, path: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.secret_key.expose())
            .header("Stripe-Version", STRIPE_API_VERSION)
    }

    async fn send(&self, call: reqwest::RequestBuilder) -> Result<Intent, GatewayError> {
        let response = call.send().await.map_err(GatewayError::Unreachable)?;
        let status = response.status();
        let headers = response.headers();
        let should_retry = headers
            .get(SHOULD_RETRY_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| match value {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            });
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().await.map_err(GatewayError::Unreachable)?;
        tracing::debug!(status = status.as_u16(), request_id, "stripe answered");
        if status.is_success() {
            parse_intent(&body)
        } else {
            Err(classify_failure(status, should_retry, &body))
        }
    }
}

impl PaymentGateway for StripeClient {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Stripe
    }

    fn create_intent(&self, request: IntentRequest) -> BoxFuture<'_, Result<Intent, GatewayError>> {
        let span = tracing::info_span!(
            "stripe.create_intent",
            payment_id = %request.payment_id,
            amount = %request.amount,
        );
        Box::pin(async move { self.create(&request).await }.instrument(span))
    }

    fn retrieve_intent<'a>(
        &'a self,
        id: &'a IntentId,
    ) -> BoxFuture<'a, Result<Intent, GatewayError>> {
        let span = tracing::info_span!("stripe.retrieve_intent", intent_id = %id);
        Box::pin(self.retrieve(id).instrument(span))
    }

    fn cancel_intent<'a>(
        &'a self,
        id: &'a IntentId,
    ) -> BoxFuture<'a, Result<Intent, GatewayError>> {
        let span = tracing::info_span!("stripe.cancel_intent", intent_id = %id);
        Box::pin(self.cancel(id).instrument(span))
    }
}

fn checked_base_url(input: &str) -> Result<String, StripeSetupError> {
    let invalid = |reason: &str| StripeSetupError::InvalidBaseUrl {
        reason: reason.to_owned(),
    };
    let url = Url::parse(input).map_err(|e| invalid(&e.to_string()))?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a path, a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it has credentials"));
    }
    let host = url.host_str().ok_or_else(|| invalid("it has no host"))?;
    // An IPv6 host comes back in brackets (`[::1]`).
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(StripeSetupError::InsecureBaseUrl),
        _ => return Err(invalid("the scheme is neither https nor http")),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Sorts a failed answer into retryable and permanent: Stripe's `Stripe-Should-Retry` decides
/// when present; otherwise 409 (the idempotency key is in use by a concurrent request), 429 and
/// 5xx may be retried and other 4xx may not.
fn classify_failure(status: StatusCode, should_retry: Option<bool>, body: &[u8]) -> GatewayError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .map(|body| body.error)
        .unwrap_or_default();
    let retryable = should_retry.unwrap_or(
        status == StatusCode::CONFLICT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error(),
    );
    if retryable {
        GatewayError::Unavailable {
            status: status.as_u16(),
            detail,
        }
    } else if status.is_client_error() || status.is_server_error() {
        GatewayError::Refused {
            status: status.as_u16(),
            detail,
        }
    } else {
        GatewayError::UnexpectedResponse {
            reason: format!("HTTP {status} is neither a success nor an error"),
        }
    }
}

fn parse_intent(body: &[u8]) -> Result<Intent, GatewayError> {
    let unexpected = |reason: String| GatewayError::UnexpectedResponse { reason };
    let object: IntentObject =
        serde_json::from_slice(body).map_err(|e| unexpected(format!("payment intent: {e}")))?;
    object
        .into_parts(true)
        .map(|(intent, _)| intent)
        .map_err(unexpected)
}

/// Stripe's error envelope: `{"error": {"type": …, "code": …, "message": …}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ApiErrorDetail,
}

/// The fields of a Stripe PaymentIntent object that Stratus reads, in API answers and in webhook
/// events alike. Unknown fields are ignored.
#[derive(Deserialize)]
pub(super) struct IntentObject {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    last_payment_error: Option<ApiErrorDetail>,
}

impl IntentObject {
    /// The intent, and the error of its last payment attempt. The client secret is kept only
    /// when asked: a webhook handler has no use for it and should not carry it around.
    ///
    /// # Errors
    /// What is wrong with the object, when an id, status, currency or payment id is not one
    /// Stratus accepts.
    pub(super) fn into_parts(
        self,
        keep_client_secret: bool,
    ) -> Result<(Intent, Option<ApiErrorDetail>), String> {
        let id = IntentId::parse(&self.id).map_err(|e| format!("id {:?}: {e}", self.id))?;
        let status = IntentStatus::from_name(&self.status)
            .ok_or_else(|| format!("intent {id}: unknown status {:?}", self.status))?;
        let currency = Currency::parse(&self.currency.to_ascii_uppercase())
            .map_err(|e| format!("intent {id}: currency {:?}: {e}", self.currency))?;
        let amount = Money::from_minor_units(self.amount, currency)
            .map_err(|e| format!("intent {id}: amount {}: {e}", self.amount))?;
        let payment_id = self
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.get(METADATA_PAYMENT_ID))
            .map(|text| {
                text.parse::<PaymentId>()
                    .map_err(|e| format!("intent {id}: metadata.payment_id {text:?}: {e}"))
            })
            .transpose()?;
        let checkout = self
            .client_secret
            .filter(|_| keep_client_secret)
            .map(|secret| Checkout::ClientSecret(Secret::new(secret)));
        let intent = Intent {
            id,
            status,
            amount,
            payment_id,
            checkout,
        };
        Ok((intent, self.last_payment_error))
    }
}

#[cfg(test)]
mod tests;
