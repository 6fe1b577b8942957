//! The wallets projection: `wallets` (one row per wallet) and `wallet_transactions` (one line per
//! top-up, debit, refund and withdrawal, updated as it settles), and the queries the API runs on
//! them.
//!
//! Balances are copied from the events' `balance_after`, never recomputed here: the aggregate is
//! the only place that does arithmetic on money, and `stratus audit verify` checks that the copy
//! matches a fresh replay.
//!
//! A batch of events is applied as one unit of work (`wallets/batch.rs`): the rows it touches
//! are read once, the events applied to them in memory, and what changed is written back: two
//! statements per batch whatever its size. A rebuild folds the whole log instead and writes each
//! row once with `COPY` into fresh tables (`WalletsRebuild`, crate::rebuild).

mod batch;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::{Currency, LedgerReference, Money};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::rebuild::Rebuild;
use crate::stored_event::StoredEvent;

/// The subscriber name of this projection.
pub const NAME: &str = "wallets";

/// Kinds of transaction lines.
pub const KIND_TOP_UP: &str = "top_up";
pub const KIND_DEBIT: &str = "debit";
pub const KIND_REFUND: &str = "refund";
pub const KIND_WITHDRAWAL: &str = "withdrawal";
/// Every kind, for validating filters.
pub const KINDS: [&str; 4] = [KIND_TOP_UP, KIND_DEBIT, KIND_REFUND, KIND_WITHDRAWAL];

/// Statuses of transaction lines.
pub const STATUS_PENDING: &str = "pending";
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_FAILED: &str = "failed";
pub const STATUS_REJECTED: &str = "rejected";
/// Every status, for validating filters.
pub const STATUSES: [&str; 4] = [
    STATUS_PENDING,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_REJECTED,
];

/// Stages of a withdrawal line.
pub const STAGE_REQUESTED: &str = "requested";
pub const STAGE_APPROVED: &str = "approved";
pub const STAGE_PAID_OUT: &str = "paid_out";
pub const STAGE_REJECTED: &str = "rejected";
/// Every stage, for validating filters.
pub const STAGES: [&str; 4] = [
    STAGE_REQUESTED,
    STAGE_APPROVED,
    STAGE_PAID_OUT,
    STAGE_REJECTED,
];

/// Namespace of the line ids of debits and refunds (UUIDv5 of the wallet and the reference).
const LINE_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_7a1e_2b4d_4c8e_9a63_0d2f_8e71_b5c4);

/// The id of the transaction line of a debit or refund with `reference` in the wallet of
/// `account_id`. Deterministic, so that a rebuild gives every line the id it had.
pub fn line_id(account_id: Uuid, reference: &LedgerReference) -> Uuid {
    let name = format!("{account_id}:{}", reference.as_str());
    Uuid::new_v5(&LINE_NAMESPACE, name.as_bytes())
}

/// Projects Wallet events into `wallets` and `wallet_transactions`.
#[derive(Debug, Default, Clone, Copy)]
pub struct WalletsProjection;

impl Subscriber for WalletsProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<stratus_domain::wallet::Wallet as cqrs_es::Aggregate>::TYPE];
        Some(TYPES)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(batch::apply(tx, events))
    }

    fn rebuilder(&self) -> Option<Box<dyn Rebuild>> {
        Some(Box::new(batch::WalletsRebuild::new()))
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM wallet_transactions")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM wallets").execute(&mut *tx).await?;
            Ok(())
        })
    }
}

/// One wallet as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WalletView {
    pub account_id: Uuid,
    pub currency: Currency,
    pub balance: Money,
    /// Held for withdrawals that are not paid out yet.
    pub reserved: Money,
    /// What debits may still take: `balance − reserved + credit_limit`.
    pub spendable: Money,
    pub credit_limit: Money,
    pub low_balance_threshold: Money,
    /// The balance is below the low-balance threshold.
    pub below_threshold: bool,
    /// Wallet events applied so far.
    pub version: i64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A wallet with its owner, for staff lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffWalletView {
    #[serde(flatten)]
    pub wallet: WalletView,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// One transaction line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionView {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: String,
    /// `credit` (money in) or `debit` (money out).
    pub direction: &'static str,
    pub status: String,
    /// Withdrawals: requested, approved, paid_out or rejected.
    pub stage: Option<String>,
    /// Always positive; `direction` says which way it moves the balance.
    pub amount: Money,
    pub balance_after: Option<Money>,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub refunds_reference: Option<String>,
    pub gateway: Option<String>,
    pub failure_reason: Option<String>,
    pub decided_by: Option<Uuid>,
    /// Newest-first order key; also the paging cursor.
    #[serde(skip)]
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of a transaction list; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub account_id: Option<Uuid>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub stage: Option<String>,
    pub gateway: Option<String>,
    /// Exact match on the line's reference (a bank-transfer reference, a ledger reference).
    pub reference: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only lines older than this position (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Filters of the staff wallet list.
#[derive(Debug, Clone, Default)]
pub struct WalletFilter {
    pub currency: Option<String>,
    /// Only wallets whose balance is below their low-balance threshold.
    pub below_threshold: bool,
    /// Only wallets with a negative balance (using credit).
    pub negative: bool,
    /// Only wallets whose owner's email or name contains this.
    pub query: Option<String>,
    /// Only wallets opened before this one, by `(opened_at, account_id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

const WALLET_COLUMNS: &str = "w.account_id, w.currency, w.balance_micros, w.reserved_micros, \
     w.credit_limit_micros, w.low_balance_threshold_micros, w.version, w.opened_at, w.updated_at";

const LINE_COLUMNS: &str = "id, account_id, kind, status, stage, amount_micros, currency, \
     balance_after_micros, reference, reason, refunds_reference, gateway, failure_reason, \
     decided_by, created_position, created_at, updated_at";

fn decode_error(err: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(err))
}

fn money_of(micros: i64, currency: Currency) -> Money {
    Money::from_micros(micros, currency)
}

fn wallet_of(row: &PgRow) -> Result<WalletView, sqlx::Error> {
    let code: String = row.try_get("currency")?;
    let currency = Currency::parse(&code).map_err(decode_error)?;
    let balance: i64 = row.try_get("balance_micros")?;
    let reserved: i64 = row.try_get("reserved_micros")?;
    let credit_limit: i64 = row.try_get("credit_limit_micros")?;
    let threshold: i64 = row.try_get("low_balance_threshold_micros")?;
    // The aggregate keeps all three far inside i64; saturate rather than fail a read.
    let spendable = balance
        .saturating_sub(reserved)
        .saturating_add(credit_limit);
    Ok(WalletView {
        account_id: row.try_get("account_id")?,
        currency,
        balance: money_of(balance, currency),
        reserved: money_of(reserved, currency),
        spendable: money_of(spendable, currency),
        credit_limit: money_of(credit_limit, currency),
        low_balance_threshold: money_of(threshold, currency),
        below_threshold: balance < threshold,
        version: row.try_get("version")?,
        opened_at: row.try_get("opened_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn line_of(row: &PgRow) -> Result<TransactionView, sqlx::Error> {
    let code: String = row.try_get("currency")?;
    let currency = Currency::parse(&code).map_err(decode_error)?;
    let kind: String = row.try_get("kind")?;
    let direction = if kind == KIND_TOP_UP || kind == KIND_REFUND {
        "credit"
    } else {
        "debit"
    };
    let balance_after: Option<i64> = row.try_get("balance_after_micros")?;
    Ok(TransactionView {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        kind,
        direction,
        status: row.try_get("status")?,
        stage: row.try_get("stage")?,
        amount: money_of(row.try_get("amount_micros")?, currency),
        balance_after: balance_after.map(|m| money_of(m, currency)),
        reference: row.try_get("reference")?,
        reason: row.try_get("reason")?,
        refunds_reference: row.try_get("refunds_reference")?,
        gateway: row.try_get("gateway")?,
        failure_reason: row.try_get("failure_reason")?,
        decided_by: row.try_get("decided_by")?,
        position: row.try_get("created_position")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The wallet of one account.
pub async fn get_wallet(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<WalletView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {WALLET_COLUMNS} FROM wallets w WHERE w.account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(wallet_of).transpose()
}

/// Wallets for staff, newest first, with their owners.
pub async fn list_wallets(
    pool: &PgPool,
    filter: &WalletFilter,
) -> Result<Vec<StaffWalletView>, sqlx::Error> {
    let pattern = filter.query.as_ref().map(|q| {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = sqlx::query(&format!(
        "SELECT {WALLET_COLUMNS}, a.email, a.name FROM wallets w \
         LEFT JOIN accounts a ON a.account_id = w.account_id \
         WHERE ($1::text IS NULL OR w.currency = $1) \
           AND (NOT $2 OR w.balance_micros < w.low_balance_threshold_micros) \
           AND (NOT $3 OR w.balance_micros < 0) \
           AND ($4::text IS NULL OR a.email ILIKE $4 OR a.name ILIKE $4) \
           AND ($5::timestamptz IS NULL OR (w.opened_at, w.account_id) < ($5, $6)) \
         ORDER BY w.opened_at DESC, w.account_id DESC LIMIT $7"
    ))
    .bind(&filter.currency)
    .bind(filter.below_threshold)
    .bind(filter.negative)
    .bind(pattern)
    .bind(filter.before.map(|b| b.0))
    .bind(filter.before.map(|b| b.1))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StaffWalletView {
                wallet: wallet_of(row)?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
            })
        })
        .collect()
}

/// Transaction lines, newest first.
pub async fn list_transactions(
    pool: &PgPool,
    filter: &TransactionFilter,
) -> Result<Vec<TransactionView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {LINE_COLUMNS} FROM wallet_transactions \
         WHERE ($1::uuid IS NULL OR account_id = $1) \
           AND ($2::text IS NULL OR kind = $2) \
           AND ($3::text IS NULL OR status = $3) \
           AND ($4::text IS NULL OR stage = $4) \
           AND ($5::text IS NULL OR gateway = $5) \
           AND ($6::timestamptz IS NULL OR created_at >= $6) \
           AND ($7::timestamptz IS NULL OR created_at < $7) \
           AND ($8::bigint IS NULL OR created_position < $8) \
           AND ($10::text IS NULL OR reference = $10) \
         ORDER BY created_position DESC LIMIT $9"
    ))
    .bind(filter.account_id)
    .bind(&filter.kind)
    .bind(&filter.status)
    .bind(&filter.stage)
    .bind(&filter.gateway)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.before)
    .bind(filter.limit)
    .bind(&filter.reference)
    .fetch_all(pool)
    .await?;
    rows.iter().map(line_of).collect()
}

/// One transaction line by id.
pub async fn get_transaction(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<TransactionView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {LINE_COLUMNS} FROM wallet_transactions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(line_of).transpose()
}
