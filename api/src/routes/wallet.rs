//! `/wallet*` and `/payments/webhooks/{gateway}`: a customer's balance and history, top-ups through
//! a gateway, withdrawals, and the gateway's signed reports of payments.
//!
//! Money in and out is `{"amount": "25.00", "currency": "EUR"}`; a bare decimal string is read in
//! the deployment's settlement currency. Amount problems are field errors on `amount`.

use actix_web::http::StatusCode;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_commands::detached;
use stratus_commands::payments::webhook::STRIPE_SIGNATURE_HEADER;
use stratus_commands::payments::Checkout;
use stratus_commands::wallets::{self, SettleError, StartedTopUp, TopUpError, WebhookOutcome};
use stratus_domain::wallet::{PaymentGateway, WalletCommand, WITHDRAWAL_DESTINATION_MAX_CHARS};
use stratus_domain::{AccountId, Currency, Money, MoneyError, WithdrawalId};
use stratus_projections::wallets::{
    self as wallet_model, TransactionFilter, TransactionView, WalletView,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{command_error, ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::routes::admin_accounts::one_of;
use crate::routes::audit::page_limit;
use crate::state::{AppState, Consistency};

/// The read models wallet commands wait for before answering.
pub(crate) const READS: &[&str] = &[wallet_model::NAME];

/// Reads an amount from a request body: `{"amount": "…", "currency": "…"}` or a bare decimal
/// string in `settlement`. Pushes a field error on `field` (or `field.currency`) and answers
/// `None` when it is missing or refused.
pub(crate) fn money_field(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&Value>,
    settlement: Currency,
) -> Option<Money> {
    amount_field(errors, field, value, settlement, false)
}

fn amount_field(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&Value>,
    settlement: Currency,
    zero_allowed: bool,
) -> Option<Money> {
    let refuse = |errors: &mut Vec<FieldError>, name: String, err: MoneyError| {
        errors.push(FieldError::new(name, err.code(), err.to_string()));
        None
    };
    let (text, currency) = match value {
        None | Some(Value::Null) => {
            errors.push(FieldError::required(field));
            return None;
        }
        Some(Value::String(text)) => (text.as_str(), settlement),
        Some(Value::Object(object)) => {
            let Some(Value::String(text)) = object.get("amount") else {
                errors.push(FieldError::new(
                    format!("{field}.amount"),
                    "invalid_amount",
                    "the amount is a decimal string such as \"25.00\"",
                ));
                return None;
            };
            let currency = match object.get("currency") {
                None | Some(Value::Null) => settlement,
                Some(Value::String(code)) => match Currency::parse(code) {
                    Ok(currency) => currency,
                    Err(e) => return refuse(errors, format!("{field}.currency"), e),
                },
                Some(_) => {
                    errors.push(FieldError::new(
                        format!("{field}.currency"),
                        "invalid_currency",
                        "the currency is an ISO 4217 code such as \"EUR\"",
                    ));
                    return None;
                }
            };
            (text.as_str(), currency)
        }
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_amount",
                "the amount is {\"amount\": \"25.00\", \"currency\": \"EUR\"}, never a JSON number",
            ));
            return None;
        }
    };
    if currency != settlement {
        return refuse(
            errors,
            format!("{field}.currency"),
            MoneyError::CurrencyMismatch {
                expected: settlement,
                found: currency,
            },
        );
    }
    let parsed = Money::from_client_input(text, currency).and_then(|money| {
        if zero_allowed && money.is_zero() {
            Ok(money)
        } else {
            money.require_positive()
        }
    });
    match parsed {
        Ok(money) => Some(money),
        Err(e) => refuse(errors, field.to_owned(), e),
    }
}

/// A wallet as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletBody {
    pub account_id: Uuid,
    #[schema(value_type = Object)]
    pub balance: Money,
    pub currency: String,
    #[schema(value_type = Object)]
    pub low_balance_threshold: Money,
    /// Held for withdrawals not yet paid out.
    #[schema(value_type = Object)]
    pub reserved: Money,
    /// What purchases may still take: balance − reserved + credit limit.
    #[schema(value_type = Object)]
    pub spendable: Money,
    #[schema(value_type = Object)]
    pub credit_limit: Money,
    pub below_threshold: bool,
    pub updated_at: DateTime<Utc>,
}

impl From<WalletView> for WalletBody {
    fn from(w: WalletView) -> Self {
        Self {
            account_id: w.account_id,
            balance: w.balance,
            currency: w.currency.code().to_owned(),
            low_balance_threshold: w.low_balance_threshold,
            reserved: w.reserved,
            spendable: w.spendable,
            credit_limit: w.credit_limit,
            below_threshold: w.below_threshold,
            updated_at: w.updated_at,
        }
    }
}

/// The wallet of `account_id`; one the opener reactor has not reached yet is opened now.
pub(crate) async fn wallet_of(
    state: &web::Data<AppState>,
    account_id: AccountId,
) -> Result<WalletView, ApiError> {
    if let Some(wallet) = wallet_model::get_wallet(&state.pool, account_id.as_uuid()).await? {
        return Ok(wallet);
    }
    let worker = state.clone();
    let position = detached(async move {
        let metadata = stratus_commands::CommandMetadata::system(
            Uuid::now_v7(),
            "a wallet was read before it was opened",
        );
        worker.wallets.open(account_id, &metadata).await
    })
    .await?
    .map_err(command_error)?;
    state.read_your_writes(position, READS).await?;
    wallet_model::get_wallet(&state.pool, account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the wallet"))
}

/// The caller's balance, threshold and limits.
#[utoipa::path(get, path = "/api/v1/wallet", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = WalletBody)))]
#[get("/wallet")]
pub async fn get_wallet(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let wallet = wallet_of(&state, caller.account_id).await?;
    Ok(HttpResponse::Ok().json(WalletBody::from(wallet)))
}

/// Runs one wallet command detached from the request and waits for the wallets read model.
pub(crate) async fn run_wallet(
    state: &web::Data<AppState>,
    account_id: AccountId,
    command: WalletCommand,
    metadata: stratus_commands::CommandMetadata,
) -> Result<Consistency, ApiError> {
    let worker = state.clone();
    let appended =
        detached(async move { worker.wallets.execute(account_id, command, &metadata).await })
            .await?
            .map_err(command_error)?;
    Ok(state.read_your_writes(appended.position, READS).await?)
}

/// `PUT /wallet/low-balance-threshold`, `PUT /admin/wallets/{id}/credit-limit`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AmountRequest {
    /// `{"amount": "10.00", "currency": "EUR"}`; zero is allowed.
    #[schema(value_type = Object)]
    pub amount: Option<Value>,
}

/// Reads a limit from `body.amount`: like [`money_field`], but zero is allowed (it switches the
/// limit off).
pub(crate) fn limit_field(state: &AppState, body: &AmountRequest) -> Result<Money, ApiError> {
    let mut errors = Vec::new();
    amount_field(
        &mut errors,
        "amount",
        body.amount.as_ref(),
        state.wallets.settlement_currency(),
        true,
    )
    .ok_or_else(|| ApiError::validation(errors))
}

/// Sets the balance below which the customer is warned (zero switches the warning off).
#[utoipa::path(put, path = "/api/v1/wallet/low-balance-threshold", tag = "wallet", security(("bearer" = [])),
    request_body = AmountRequest, responses((status = 200, body = WalletBody), (status = 422, body = crate::error::Problem)))]
#[put("/wallet/low-balance-threshold")]
pub async fn set_threshold(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<AmountRequest>,
) -> Result<HttpResponse, ApiError> {
    let amount = limit_field(&state, &body.0)?;
    let command = WalletCommand::SetLowBalanceThreshold {
        amount,
        occurred_at: Utc::now(),
    };
    let consistency = run_wallet(&state, caller.account_id, command, caller.metadata()).await?;
    let wallet = wallet_of(&state, caller.account_id).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(WalletBody::from(wallet))))
}

/// Filters of a transaction list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TransactionQuery {
    /// `top_up`, `debit`, `refund` or `withdrawal`.
    pub kind: Option<String>,
    /// `pending`, `completed`, `failed` or `rejected`.
    pub status: Option<String>,
    /// Only lines created at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only lines created before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of transaction lines, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionPage {
    #[schema(value_type = Vec<Object>)]
    pub transactions: Vec<TransactionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn encode_position(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("t{position}"))
}

pub(crate) fn decode_position(errors: &mut Vec<FieldError>, cursor: Option<&str>) -> Option<i64> {
    let cursor = cursor?;
    let decoded = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix('t').and_then(|n| n.parse().ok()));
    if decoded.is_none() {
        errors.push(FieldError::new(
            "cursor",
            "invalid_cursor",
            "not a cursor from this API",
        ));
    }
    decoded
}

/// Builds the common part of a transaction filter from a query, collecting field errors.
pub(crate) fn transaction_filter(
    errors: &mut Vec<FieldError>,
    query: TransactionQuery,
) -> Result<TransactionFilter, ApiError> {
    let limit = page_limit(query.limit)?;
    let kind = one_of(errors, "kind", query.kind, &wallet_model::KINDS);
    let status = one_of(errors, "status", query.status, &wallet_model::STATUSES);
    let before = decode_position(errors, query.cursor.as_deref());
    Ok(TransactionFilter {
        kind,
        status,
        from: query.from,
        to: query.to,
        before,
        limit,
        ..TransactionFilter::default()
    })
}

/// One page of lines and the cursor of the next.
pub(crate) async fn transaction_page(
    state: &AppState,
    filter: &TransactionFilter,
) -> Result<TransactionPage, ApiError> {
    let found = wallet_model::list_transactions(&state.pool, filter).await?;
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == filter.limit;
    let next_cursor = found
        .last()
        .filter(|_| full)
        .map(|line| encode_position(line.position));
    Ok(TransactionPage {
        transactions: found,
        next_cursor,
    })
}

/// The caller's ledger lines, newest first.
#[utoipa::path(get, path = "/api/v1/wallet/transactions", tag = "wallet", security(("bearer" = [])),
    params(TransactionQuery), responses((status = 200, body = TransactionPage), (status = 422, body = crate::error::Problem)))]
#[get("/wallet/transactions")]
pub async fn transactions(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TransactionQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let mut filter = transaction_filter(&mut errors, query.into_inner())?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    filter.account_id = Some(caller.account_id.as_uuid());
    Ok(HttpResponse::Ok().json(transaction_page(&state, &filter).await?))
}

/// One of the caller's lines (for example a top-up, to see whether it was paid).
#[utoipa::path(get, path = "/api/v1/wallet/transactions/{id}", tag = "wallet", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
#[get("/wallet/transactions/{id}")]
pub async fn transaction(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let line = wallet_model::get_transaction(&state.pool, path.into_inner())
        .await?
        .filter(|line| line.account_id == caller.account_id.as_uuid())
        .ok_or_else(|| ApiError::not_found("the transaction"))?;
    Ok(HttpResponse::Ok().json(line))
}

/// `POST /wallet/top-ups`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TopUpRequest {
    #[schema(value_type = Object)]
    pub amount: Option<Value>,
    /// `stripe` or `manual` (bank transfer).
    pub gateway: Option<String>,
}

/// What the client needs to finish paying.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckoutBody {
    /// Confirm the card payment with Stripe.js.
    Stripe {
        payment_intent: String,
        client_secret: String,
        publishable_key: Option<String>,
    },
    /// Transfer the amount to this account quoting the reference.
    BankTransfer {
        beneficiary: String,
        iban: String,
        bic: String,
        #[schema(value_type = Object)]
        amount: Money,
        reference: String,
    },
}

/// A started top-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpBody {
    pub payment_id: Uuid,
    pub status: &'static str,
    pub gateway: &'static str,
    #[schema(value_type = Object)]
    pub amount: Money,
    pub checkout: Option<CheckoutBody>,
}

fn checkout_body(state: &AppState, started: &StartedTopUp) -> Option<CheckoutBody> {
    match started.checkout.as_ref()? {
        Checkout::ClientSecret(secret) => Some(CheckoutBody::Stripe {
            payment_intent: started.intent_id.as_str().to_owned(),
            client_secret: secret.expose().to_owned(),
            publishable_key: state.settings.payments.stripe_publishable_key.clone(),
        }),
        Checkout::BankTransfer(instructions) => Some(CheckoutBody::BankTransfer {
            beneficiary: instructions.beneficiary.clone(),
            iban: instructions.iban.clone(),
            bic: instructions.bic.clone(),
            amount: instructions.amount,
            reference: instructions.reference.as_str().to_owned(),
        }),
    }
}

fn top_up_error(err: TopUpError) -> ApiError {
    match err {
        TopUpError::GatewayNotConfigured(kind) => ApiError::validation(vec![FieldError::new(
            "gateway",
            "gateway_not_configured",
            format!(
                "this provider does not accept payments by {}",
                kind.as_str()
            ),
        )]),
        TopUpError::Gateway(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "the payment gateway is unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_unavailable",
                "the payment provider cannot be reached; retry shortly",
            )
            .retry_after(5)
        }
        TopUpError::Gateway(e) => {
            tracing::error!(error = %e, "the payment gateway refused a top-up");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                e.code(),
                "the payment provider refused the payment",
            )
        }
        TopUpError::Wallet(e) => command_error(e),
        TopUpError::Claim(e) => ApiError::internal(&e),
    }
}

/// Starts a top-up: a Stripe payment to confirm in the browser, or bank-transfer instructions.
/// Nothing is credited until the gateway reports the money (a signed webhook) or billing staff
/// confirm the transfer.
#[utoipa::path(post, path = "/api/v1/wallet/top-ups", tag = "wallet", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = TopUpRequest, responses((status = 201, body = TopUpBody), (status = 422, body = crate::error::Problem),
        (status = 503, description = "gateway_unavailable", body = crate::error::Problem)))]
#[post("/wallet/top-ups", wrap = "Idempotent::new()")]
pub async fn top_up(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<TopUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let payments = &state.settings.payments;
    let mut errors = Vec::new();
    let amount = money_field(
        &mut errors,
        "amount",
        body.amount.as_ref(),
        payments.currency,
    );
    if let Some(amount) = amount {
        if amount.micros() < payments.top_up_min.micros() {
            errors.push(FieldError::new(
                "amount",
                "amount_below_minimum",
                format!("the smallest top-up is {}", payments.top_up_min),
            ));
        } else if amount.micros() > payments.top_up_max.micros() {
            errors.push(FieldError::new(
                "amount",
                "amount_above_maximum",
                format!("the largest top-up is {}", payments.top_up_max),
            ));
        }
    }
    let gateway = match body.gateway.as_deref() {
        None => {
            errors.push(FieldError::required("gateway"));
            None
        }
        Some(name) => {
            let gateway = PaymentGateway::from_name(name);
            if gateway.is_none() {
                errors.push(FieldError::new(
                    "gateway",
                    "invalid_gateway",
                    "gateway is stripe or manual",
                ));
            }
            gateway
        }
    };
    let (Some(amount), Some(gateway), true) = (amount, gateway, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let worker = state.clone();
    let account_id = caller.account_id;
    let metadata = caller.metadata();
    let started = detached(async move {
        wallets::start_top_up(
            &worker.wallets,
            &worker.gateways,
            &worker.pool,
            account_id,
            amount,
            gateway,
            &metadata,
        )
        .await
    })
    .await?
    .map_err(top_up_error)?;
    let consistency = state.read_your_writes(started.position, READS).await?;
    let body = TopUpBody {
        payment_id: started.payment_id.as_uuid(),
        status: wallet_model::STATUS_PENDING,
        gateway: started.gateway.as_str(),
        amount: started.amount,
        checkout: checkout_body(&state, &started),
    };
    Ok(consistency.mark(
        HttpResponse::Created()
            .insert_header((
                "Location",
                format!("/api/v1/wallet/transactions/{}", body.payment_id),
            ))
            .json(body),
    ))
}

/// `POST /wallet/withdrawals`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WithdrawalRequest {
    #[schema(value_type = Object)]
    pub amount: Option<Value>,
    /// Where to pay out: an IBAN or another account description billing staff can act on.
    pub destination: Option<String>,
}

/// Asks for money to be paid out. The amount is reserved at once; billing staff approve or
/// reject, and the balance goes down when the transfer is marked paid out.
#[utoipa::path(post, path = "/api/v1/wallet/withdrawals", tag = "wallet", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = WithdrawalRequest, responses((status = 201, body = Object), (status = 402, description = "insufficient_funds", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[post("/wallet/withdrawals", wrap = "Idempotent::new()")]
pub async fn withdraw(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<WithdrawalRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    let amount = money_field(
        &mut errors,
        "amount",
        body.amount.as_ref(),
        state.wallets.settlement_currency(),
    );
    let destination = match body.destination.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(FieldError::required("destination"));
            None
        }
        Some(text)
            if text.chars().count() > WITHDRAWAL_DESTINATION_MAX_CHARS
                || text.chars().any(char::is_control) =>
        {
            errors.push(FieldError::new(
                "destination",
                "invalid_destination",
                format!("1 to {WITHDRAWAL_DESTINATION_MAX_CHARS} characters of text"),
            ));
            None
        }
        Some(text) => Some(text.to_owned()),
    };
    let (Some(amount), Some(destination), true) = (amount, destination, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let withdrawal_id = WithdrawalId::from_uuid(Uuid::now_v7());
    let command = WalletCommand::RequestWithdrawal {
        withdrawal_id,
        amount,
        destination,
        occurred_at: Utc::now(),
    };
    let consistency = run_wallet(&state, caller.account_id, command, caller.metadata()).await?;
    let line = wallet_model::get_transaction(&state.pool, withdrawal_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the withdrawal"))?;
    Ok(consistency.mark(
        HttpResponse::Created()
            .insert_header((
                "Location",
                format!("/api/v1/wallet/transactions/{withdrawal_id}"),
            ))
            .json(line),
    ))
}

/// What a webhook delivery was answered with.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// `credited`, `failed`, `already_applied` or `ignored`.
    pub outcome: &'static str,
    pub payment_id: Option<Uuid>,
}

/// Receives a gateway's signed report of a payment. Only `stripe` sends them. Redelivered and
/// concurrent deliveries of one event credit once.
#[utoipa::path(post, path = "/api/v1/payments/webhooks/{gateway}", tag = "wallet",
    params(("gateway" = String, Path)), request_body(content = String, description = "the gateway's signed event, as sent"),
    responses((status = 200, body = WebhookReceipt), (status = 400, description = "missing_signature, malformed_signature, signature_mismatch, timestamp_out_of_tolerance, malformed_payload", body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
#[post("/payments/webhooks/{gateway}")]
pub async fn webhook(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let gateway = path.into_inner();
    let verifier = match (PaymentGateway::from_name(&gateway), &state.webhook_verifier) {
        (Some(PaymentGateway::Stripe), Some(verifier)) => verifier,
        _ => return Err(ApiError::not_found("a webhook endpoint for this gateway")),
    };
    let signature = request
        .headers()
        .get(STRIPE_SIGNATURE_HEADER)
        .map(|v| v.as_bytes());
    let event = verifier.verify(signature, &body, Utc::now()).map_err(|e| {
        tracing::warn!(error = %e, "refused a webhook delivery");
        ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
    })?;
    let worker = state.clone();
    let outcome = detached(async move {
        match wallets::settle_stripe_event(&worker.wallets, &worker.pool, &event).await {
            // The top-up may be recorded but not yet projected: catch up once and try again.
            Err(SettleError::UnknownPayment(_)) => {
                let head = worker
                    .feed
                    .head()
                    .await
                    .map_err(|e| SettleError::Database(sqlx::Error::Protocol(e.to_string())))?;
                worker
                    .feed
                    .wait_for(
                        READS,
                        head,
                        std::time::Duration::from_millis(crate::state::READ_YOUR_WRITES_TIMEOUT_MS),
                    )
                    .await
                    .map_err(|e| SettleError::Database(sqlx::Error::Protocol(e.to_string())))?;
                wallets::settle_stripe_event(&worker.wallets, &worker.pool, &event).await
            }
            other => other,
        }
    })
    .await?
    .map_err(|err| match err {
        SettleError::UnknownPayment(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "payment_not_found",
            format!("no top-up {id}; deliver again later"),
        ),
        SettleError::Wallet(e) => command_error(e),
        SettleError::Database(e) => ApiError::internal(&e),
    })?;
    let (outcome, payment_id, changed) = match outcome {
        WebhookOutcome::Credited { payment_id } => ("credited", Some(payment_id), true),
        WebhookOutcome::Failed { payment_id } => ("failed", Some(payment_id), true),
        WebhookOutcome::AlreadyApplied { payment_id } => {
            ("already_applied", Some(payment_id), false)
        }
        WebhookOutcome::Ignored(why) => {
            tracing::debug!(why, "ignored a webhook event");
            ("ignored", None, false)
        }
    };
    // Like every command route: answer once the wallet read model shows what the delivery did
    // (the settlement does not hand back its position, so wait for the head of the log).
    let consistency = if changed {
        let head = state.feed.head().await?;
        state.read_your_writes(Some(head), READS).await?
    } else {
        Consistency::CaughtUp
    };
    Ok(consistency.mark(HttpResponse::Ok().json(WebhookReceipt {
        outcome,
        payment_id: payment_id.map(|p| p.as_uuid()),
    })))
}
