//! `/admin/wallets*`, `/admin/payments*`, `/admin/withdrawals*`: billing staff watch wallets,
//! confirm bank transfers, decide withdrawals, set credit limits and book adjustments.
//!
//! Reading is open to `billing`, `admin`, `support` (who answer customers' payment questions) and
//! `auditor`; every change is `billing` or `admin`.

use actix_web::{get, post, put, web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_commands::detached;
use stratus_commands::wallets;
use stratus_domain::wallet::{DebitReason, PaymentGateway, RefundReason, WalletCommand};
use stratus_domain::{AccountId, LedgerReference, PaymentId, Reason, Role, WithdrawalId};
use stratus_projections::wallets::{self as wallet_model, StaffWalletView, WalletFilter};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{command_error, ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::routes::admin_accounts::{decode_cursor, encode_time_cursor, one_of};
use crate::routes::audit::page_limit;
use crate::routes::wallet::{
    decode_position, limit_field, money_field, run_wallet, transaction_filter, transaction_page,
    wallet_of, AmountRequest, TransactionQuery, WalletBody, READS,
};
use crate::state::AppState;

/// Who may read wallets and payments.
const READERS: &[Role] = &[Role::Billing, Role::Admin, Role::Support, Role::Auditor];
/// Who may move money or change limits.
const WRITERS: &[Role] = &[Role::Billing, Role::Admin];

/// Filters of `GET /admin/wallets`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct WalletQuery {
    /// Part of the owner's email or name, case-insensitive.
    pub query: Option<String>,
    pub currency: Option<String>,
    /// Only wallets below their low-balance threshold.
    pub below_threshold: Option<bool>,
    /// Only wallets with a negative balance (using their credit limit).
    pub negative: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A page of wallets, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletPage {
    #[schema(value_type = Vec<Object>)]
    pub wallets: Vec<StaffWalletView>,
    pub next_cursor: Option<String>,
}

fn encode_wallet_cursor(wallet: &StaffWalletView) -> String {
    encode_time_cursor(wallet.wallet.opened_at, wallet.wallet.account_id)
}

/// Wallets with their owners.
#[utoipa::path(get, path = "/api/v1/admin/wallets", tag = "billing", security(("bearer" = [])), params(WalletQuery),
    responses((status = 200, body = WalletPage), (status = 403, body = crate::error::Problem)))]
#[get("/admin/wallets")]
pub async fn list_wallets(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<WalletQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "cursor",
                "invalid_cursor",
                "not a cursor from this API",
            )])
        })?),
    };
    let filter = WalletFilter {
        currency: query.currency.filter(|c| !c.is_empty()),
        below_threshold: query.below_threshold.unwrap_or(false),
        negative: query.negative.unwrap_or(false),
        query: query.query.filter(|q| !q.trim().is_empty()),
        before,
        limit,
    };
    let found = wallet_model::list_wallets(&state.pool, &filter).await?;
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == limit;
    let next_cursor = found.last().filter(|_| full).map(encode_wallet_cursor);
    Ok(HttpResponse::Ok().json(WalletPage {
        wallets: found,
        next_cursor,
    }))
}

/// The staff view of one wallet, opening it if the account has none yet.
async fn staff_wallet(
    state: &web::Data<AppState>,
    account_id: Uuid,
) -> Result<WalletBody, ApiError> {
    crate::routes::admin_accounts::account_exists(state, account_id).await?;
    Ok(WalletBody::from(
        wallet_of(state, AccountId::from_uuid(account_id)).await?,
    ))
}

/// One wallet.
#[utoipa::path(get, path = "/api/v1/admin/wallets/{account_id}", tag = "billing", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)), responses((status = 200, body = WalletBody), (status = 404, body = crate::error::Problem)))]
#[get("/admin/wallets/{account_id}")]
pub async fn get_wallet(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    Ok(HttpResponse::Ok().json(staff_wallet(&state, path.into_inner()).await?))
}

/// One wallet's lines, newest first.
#[utoipa::path(get, path = "/api/v1/admin/wallets/{account_id}/transactions", tag = "billing", security(("bearer" = [])),
    params(("account_id" = Uuid, Path), TransactionQuery), responses((status = 200, body = crate::routes::wallet::TransactionPage)))]
#[get("/admin/wallets/{account_id}/transactions")]
pub async fn wallet_transactions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<TransactionQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let mut errors = Vec::new();
    let mut filter = transaction_filter(&mut errors, query.into_inner())?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    filter.account_id = Some(path.into_inner());
    Ok(HttpResponse::Ok().json(transaction_page(&state, &filter).await?))
}

/// Sets how far below zero purchases may take a wallet (zero: not at all).
#[utoipa::path(put, path = "/api/v1/admin/wallets/{account_id}/credit-limit", tag = "billing", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)), request_body = AmountRequest,
    responses((status = 200, body = WalletBody), (status = 422, description = "credit_limit_below_usage", body = crate::error::Problem)))]
#[put("/admin/wallets/{account_id}/credit-limit")]
pub async fn set_credit_limit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<AmountRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let target = path.into_inner();
    let amount = limit_field(&state, &body.0)?;
    staff_wallet(&state, target).await?;
    let command = WalletCommand::SetCreditLimit {
        amount,
        occurred_at: Utc::now(),
    };
    let account_id = AccountId::from_uuid(target);
    let consistency = run_wallet(&state, account_id, command, caller.metadata()).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(staff_wallet(&state, target).await?)))
}

/// `POST /admin/wallets/{id}/adjustments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdjustmentRequest {
    #[schema(value_type = Object)]
    pub amount: Option<Value>,
    /// `credit` (a goodwill credit) or `debit` (a manual charge).
    pub direction: Option<String>,
    /// The caller's unique reference for this adjustment: sending it again changes nothing.
    pub reference: Option<String>,
}

/// Books a manual credit or charge. Idempotent by `reference`; a charge cannot take the wallet
/// past its credit limit.
#[utoipa::path(post, path = "/api/v1/admin/wallets/{account_id}/adjustments", tag = "billing", security(("bearer" = [])),
    params(("account_id" = Uuid, Path), IdempotencyKeyHeader), request_body = AdjustmentRequest,
    responses((status = 200, body = Object), (status = 402, description = "insufficient_funds", body = crate::error::Problem),
        (status = 409, description = "reference_reused", body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
#[post("/admin/wallets/{account_id}/adjustments", wrap = "Idempotent::new()")]
pub async fn adjust(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<AdjustmentRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let target = path.into_inner();
    let body = body.0;
    let mut errors = Vec::new();
    let amount = money_field(
        &mut errors,
        "amount",
        body.amount.as_ref(),
        state.wallets.settlement_currency(),
    );
    let credit = match body.direction.as_deref() {
        Some("credit") => Some(true),
        Some("debit") => Some(false),
        None => {
            errors.push(FieldError::required("direction"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "direction",
                "invalid_direction",
                "direction is credit or debit",
            ));
            None
        }
    };
    let reference = crate::error::required_field(
        &mut errors,
        "reference",
        body.reference.as_deref(),
        LedgerReference::parse,
    );
    let (Some(amount), Some(credit), Some(reference), true) =
        (amount, credit, reference, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    let account_id = AccountId::from_uuid(target);
    // A wallet this process has seen open belongs to an existing account: the two lookups (and
    // the opening of a wallet the reactor has not opened yet) are only needed otherwise.
    if !state.wallets.known_open(account_id) {
        staff_wallet(&state, target).await?;
    }
    let metadata = caller.metadata();
    let worker = state.clone();
    let receipt = detached(async move {
        if credit {
            worker
                .wallets
                .refund(
                    account_id,
                    reference,
                    None,
                    amount,
                    RefundReason::Goodwill,
                    &metadata,
                )
                .await
        } else {
            worker
                .wallets
                .debit(
                    account_id,
                    reference,
                    amount,
                    DebitReason::Adjustment,
                    &metadata,
                )
                .await
        }
    })
    .await?
    .map_err(command_error)?;
    let consistency = state.read_your_writes(receipt.position, READS).await?;
    let line_id = wallet_model::line_id(target, &receipt.reference);
    let line = wallet_model::get_transaction(&state.pool, line_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the adjustment"))?;
    Ok(consistency.mark(HttpResponse::Ok().json(line)))
}

/// Filters of `GET /admin/payments`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PaymentQuery {
    /// `pending`, `completed` or `failed`.
    pub status: Option<String>,
    /// `stripe` or `manual`.
    pub gateway: Option<String>,
    /// The gateway's reference (a bank-transfer reference `STR-…`, a Stripe `pi_…`).
    pub reference: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Top-ups of every wallet, newest first: find a bank transfer by the reference on the statement.
#[utoipa::path(get, path = "/api/v1/admin/payments", tag = "billing", security(("bearer" = [])), params(PaymentQuery),
    responses((status = 200, body = crate::routes::wallet::TransactionPage), (status = 422, body = crate::error::Problem)))]
#[get("/admin/payments")]
pub async fn list_payments(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PaymentQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let mut errors = Vec::new();
    let limit = page_limit(query.limit)?;
    let status = one_of(&mut errors, "status", query.status, &wallet_model::STATUSES);
    let gateways: Vec<&str> = PaymentGateway::ALL.iter().map(|g| g.as_str()).collect();
    let gateway = one_of(&mut errors, "gateway", query.gateway, &gateways);
    let before = decode_position(&mut errors, query.cursor.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = wallet_model::TransactionFilter {
        kind: Some(wallet_model::KIND_TOP_UP.to_owned()),
        status,
        gateway,
        reference: query
            .reference
            .map(|r| r.trim().to_uppercase())
            .filter(|r| !r.is_empty()),
        before,
        limit,
        ..wallet_model::TransactionFilter::default()
    };
    Ok(HttpResponse::Ok().json(transaction_page(&state, &filter).await?))
}

/// The owner of a top-up that billing staff act on, checking it is a bank transfer.
async fn manual_payment_owner(state: &AppState, payment_id: Uuid) -> Result<AccountId, ApiError> {
    let line = wallet_model::get_transaction(&state.pool, payment_id)
        .await?
        .filter(|line| line.kind == wallet_model::KIND_TOP_UP)
        .ok_or_else(|| ApiError::not_found("the payment"))?;
    if line.gateway.as_deref() != Some(PaymentGateway::Manual.as_str()) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "not_a_bank_transfer",
            "only bank-transfer top-ups are settled by staff; card payments settle through the gateway",
        ));
    }
    Ok(AccountId::from_uuid(line.account_id))
}

/// `POST /admin/payments/{id}/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmRequest {
    /// The amount that arrived (may differ from the amount asked for).
    #[schema(value_type = Object)]
    pub amount: Option<Value>,
}

async fn answer_line(
    state: &web::Data<AppState>,
    consistency: crate::state::Consistency,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let line = wallet_model::get_transaction(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("the transaction"))?;
    Ok(consistency.mark(HttpResponse::Ok().json(line)))
}

/// Credits a pending bank transfer with the amount received. Confirming again changes nothing.
#[utoipa::path(post, path = "/api/v1/admin/payments/{payment_id}/confirm", tag = "billing", security(("bearer" = [])),
    params(("payment_id" = Uuid, Path), IdempotencyKeyHeader), request_body = ConfirmRequest,
    responses((status = 200, body = Object), (status = 409, description = "payment_already_settled, not_a_bank_transfer", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[post("/admin/payments/{payment_id}/confirm", wrap = "Idempotent::new()")]
pub async fn confirm_payment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let payment_id = path.into_inner();
    let mut errors = Vec::new();
    let amount = money_field(
        &mut errors,
        "amount",
        body.0.amount.as_ref(),
        state.wallets.settlement_currency(),
    )
    .ok_or_else(|| ApiError::validation(errors))?;
    let owner = manual_payment_owner(&state, payment_id).await?;
    let command = WalletCommand::CompleteTopUp {
        payment_id: PaymentId::from_uuid(payment_id),
        amount_received: amount,
        occurred_at: Utc::now(),
    };
    let consistency = run_wallet(&state, owner, command, caller.metadata()).await?;
    answer_line(&state, consistency, payment_id).await
}

/// A reason for failing a payment or rejecting a withdrawal.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReasonRequest {
    pub reason: Option<String>,
}

fn reason(body: &ReasonRequest) -> Result<Reason, ApiError> {
    let mut errors = Vec::new();
    crate::error::required_field(&mut errors, "reason", body.reason.as_deref(), Reason::parse)
        .ok_or_else(|| ApiError::validation(errors))
}

/// Gives up on a pending bank transfer that never arrived.
#[utoipa::path(post, path = "/api/v1/admin/payments/{payment_id}/fail", tag = "billing", security(("bearer" = [])),
    params(("payment_id" = Uuid, Path)), request_body = ReasonRequest,
    responses((status = 200, body = Object), (status = 409, description = "payment_already_settled", body = crate::error::Problem)))]
#[post("/admin/payments/{payment_id}/fail")]
pub async fn fail_payment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let payment_id = path.into_inner();
    let reason = reason(&body.0)?;
    let owner = manual_payment_owner(&state, payment_id).await?;
    let command = WalletCommand::FailTopUp {
        payment_id: PaymentId::from_uuid(payment_id),
        reason: reason.as_str().to_owned(),
        occurred_at: Utc::now(),
    };
    let consistency = run_wallet(&state, owner, command, caller.metadata()).await?;
    answer_line(&state, consistency, payment_id).await
}

/// Filters of `GET /admin/withdrawals`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct WithdrawalQuery {
    /// `requested`, `approved`, `paid_out` or `rejected`.
    pub stage: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Withdrawals of every wallet, newest first.
#[utoipa::path(get, path = "/api/v1/admin/withdrawals", tag = "billing", security(("bearer" = [])), params(WithdrawalQuery),
    responses((status = 200, body = crate::routes::wallet::TransactionPage)))]
#[get("/admin/withdrawals")]
pub async fn list_withdrawals(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<WithdrawalQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let mut errors = Vec::new();
    let limit = page_limit(query.limit)?;
    let stage = one_of(&mut errors, "stage", query.stage, &wallet_model::STAGES);
    let before = decode_position(&mut errors, query.cursor.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = wallet_model::TransactionFilter {
        kind: Some(wallet_model::KIND_WITHDRAWAL.to_owned()),
        stage,
        before,
        limit,
        ..wallet_model::TransactionFilter::default()
    };
    Ok(HttpResponse::Ok().json(transaction_page(&state, &filter).await?))
}

async fn withdrawal_command(
    state: &web::Data<AppState>,
    caller: &Caller,
    withdrawal_id: Uuid,
    command: WalletCommand,
) -> Result<HttpResponse, ApiError> {
    let owner = wallets::withdrawal_owner(&state.pool, WithdrawalId::from_uuid(withdrawal_id))
        .await?
        .ok_or_else(|| ApiError::not_found("the withdrawal"))?;
    let consistency = run_wallet(state, owner, command, caller.metadata()).await?;
    answer_line(state, consistency, withdrawal_id).await
}

/// Approves a requested withdrawal; the money stays reserved until it is marked paid out.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{withdrawal_id}/approve", tag = "billing", security(("bearer" = [])),
    params(("withdrawal_id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 409, description = "withdrawal_already_settled", body = crate::error::Problem)))]
#[post("/admin/withdrawals/{withdrawal_id}/approve")]
pub async fn approve_withdrawal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let id = path.into_inner();
    let command = WalletCommand::ApproveWithdrawal {
        withdrawal_id: WithdrawalId::from_uuid(id),
        approved_by: caller.account_id,
        occurred_at: Utc::now(),
    };
    withdrawal_command(&state, &caller, id, command).await
}

/// Rejects a requested or approved withdrawal and releases its reservation.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{withdrawal_id}/reject", tag = "billing", security(("bearer" = [])),
    params(("withdrawal_id" = Uuid, Path)), request_body = ReasonRequest,
    responses((status = 200, body = Object), (status = 409, description = "withdrawal_already_settled", body = crate::error::Problem)))]
#[post("/admin/withdrawals/{withdrawal_id}/reject")]
pub async fn reject_withdrawal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let id = path.into_inner();
    let reason = reason(&body.0)?;
    let command = WalletCommand::RejectWithdrawal {
        withdrawal_id: WithdrawalId::from_uuid(id),
        reason: reason.as_str().to_owned(),
        rejected_by: caller.account_id,
        occurred_at: Utc::now(),
    };
    withdrawal_command(&state, &caller, id, command).await
}

/// Records that the transfer of an approved withdrawal left: the balance goes down.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{withdrawal_id}/paid-out", tag = "billing", security(("bearer" = [])),
    params(("withdrawal_id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 409, description = "withdrawal_not_approved", body = crate::error::Problem)))]
#[post("/admin/withdrawals/{withdrawal_id}/paid-out")]
pub async fn mark_paid_out(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let id = path.into_inner();
    let command = WalletCommand::MarkWithdrawalPaidOut {
        withdrawal_id: WithdrawalId::from_uuid(id),
        occurred_at: Utc::now(),
    };
    withdrawal_command(&state, &caller, id, command).await
}
