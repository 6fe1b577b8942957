//! The double-entry ledger: every wallet event that moves money becomes two postings in
//! `ledger_entries`, one on the wallet and one on the account on the other side, and the queries
//! the API runs on them (trial balance, per-wallet and per-currency totals).
//!
//! ## Chart of accounts and signs
//!
//! Convention: *a wallet account's postings sum to its balance*. What Stratus owes a customer is
//! positive on `wallet:<account id>`, so every counter posting carries the opposite sign:
//!
//! | event | wallet line (1) | counter line (2) |
//! |---|---|---|
//! | `TopUpCompleted` | `wallet:<id>` +X | `clearing:<gateway>` −X (the gateway holds the money for us) |
//! | `WalletDebited` | `wallet:<id>` −X | `revenue:<reason>` +X |
//! | `WalletRefunded` | `wallet:<id>` +X | `refunds:<reason>` −X |
//! | `WithdrawalPaidOut` | `wallet:<id>` −X | `payouts` +X |
//!
//! Other wallet events post nothing. The two lines of one event sum to zero by construction
//! ([`postings`] computes the counter line as the checked negation of the wallet line), so the
//! postings of each currency sum to zero, and the postings of `wallet:<id>` sum to that wallet's
//! balance as long as the wallet's own chain of `balance_after` is intact. [`verify`] checks all
//! of that against a fresh replay of the log (`stratus audit verify`); docs/adr/0007.
//!
//! ## What the projection keeps
//!
//! `TopUpCompleted` does not name its gateway; `TopUpInitiated` does. The projection remembers
//! the gateway of each top-up in its own table `ledger_top_ups`, written in the same transaction
//! as its checkpoint, so the ledger never depends on another projection's tables or progress.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::wallet::{DebitReason, PaymentGateway, RefundReason, Wallet, WalletEvent};
use stratus_domain::{Currency, Money, PaymentId};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::rebuild::{CopyRows, Rebuild, ReplayedEvent};
use crate::stored_event::StoredEvent;

pub mod verify;

/// The subscriber name of this projection.
pub const NAME: &str = "ledger";
/// The line number of the posting on the wallet.
pub const WALLET_LINE: i16 = 1;
/// The line number of the posting on the counter account.
pub const COUNTER_LINE: i16 = 2;
/// Prefix of a wallet's ledger account; the account id follows.
pub const WALLET_ACCOUNT_PREFIX: &str = "wallet:";

/// What kind of movement a posting belongs to (column `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// A completed top-up: money in through a gateway.
    TopUp,
    /// A debit: the customer paid for something.
    Debit,
    /// A refund: money given back.
    Refund,
    /// A paid-out withdrawal: money out through the bank.
    Payout,
}

impl MovementKind {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TopUp => "top_up",
            Self::Debit => "debit",
            Self::Refund => "refund",
            Self::Payout => "payout",
        }
    }
}

/// The account on the other side of a wallet movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterAccount {
    /// `clearing:<gateway>`: what a gateway collected for us.
    Clearing(PaymentGateway),
    /// `revenue:<reason>`: what customers paid for.
    Revenue(DebitReason),
    /// `refunds:<reason>`: what was given back.
    Refunds(RefundReason),
    /// `payouts`: what left through withdrawals.
    Payouts,
}

impl CounterAccount {
    /// The ledger account name.
    pub fn name(&self) -> String {
        match self {
            Self::Clearing(gateway) => format!("clearing:{}", gateway.as_str()),
            Self::Revenue(reason) => format!("revenue:{}", reason.as_str()),
            Self::Refunds(reason) => format!("refunds:{}", reason.as_str()),
            Self::Payouts => "payouts".to_owned(),
        }
    }
}

/// The ledger account name of the wallet of `account_id`.
pub fn wallet_account(account_id: Uuid) -> String {
    format!("{WALLET_ACCOUNT_PREFIX}{}", account_id.hyphenated())
}

/// One posting of one event; the event supplies its position, stream and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// [`WALLET_LINE`] or [`COUNTER_LINE`].
    pub line: i16,
    pub ledger_account: String,
    /// The wallet's account, on the wallet line only.
    pub account_id: Option<Uuid>,
    pub currency: Currency,
    /// Signed micro-units, never zero.
    pub amount_micros: i64,
    pub kind: MovementKind,
}

/// Why an event could not be turned into postings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    /// A completed top-up whose gateway is unknown (no `TopUpInitiated` before it).
    #[error("TopUpCompleted for payment {0} without a TopUpInitiated before it")]
    UnknownTopUp(PaymentId),
    /// The amount has no negation in `i64` (cannot happen for a positive movement amount).
    #[error("the amount does not fit in a posting")]
    AmountOverflow,
    /// The domain says the event moves the balance and the ledger has no rule for it, or the
    /// other way round: the chart of accounts must be extended before the event can be posted.
    #[error("the ledger has no posting rule matching the domain's movement of {0}")]
    NoRule(&'static str),
}

/// The postings of one wallet event of the wallet of `account_id`: two that sum to zero, or none
/// for an event that does not move money. `top_up_gateway` is the gateway of the top-up a
/// `TopUpCompleted` settles (ignored for other events).
///
/// # Errors
/// [`PostingError`] when a completed top-up's gateway is unknown, or the event and the chart of
/// accounts disagree.
pub fn postings(
    account_id: Uuid,
    event: &WalletEvent,
    top_up_gateway: Option<PaymentGateway>,
) -> Result<Vec<Posting>, PostingError> {
    let rule = match event {
        WalletEvent::TopUpCompleted { payment_id, .. } => {
            let gateway = top_up_gateway.ok_or(PostingError::UnknownTopUp(*payment_id))?;
            Some((MovementKind::TopUp, CounterAccount::Clearing(gateway)))
        }
        WalletEvent::WalletDebited { reason, .. } => {
            Some((MovementKind::Debit, CounterAccount::Revenue(*reason)))
        }
        WalletEvent::WalletRefunded { reason, .. } => {
            Some((MovementKind::Refund, CounterAccount::Refunds(*reason)))
        }
        WalletEvent::WithdrawalPaidOut { .. } => {
            Some((MovementKind::Payout, CounterAccount::Payouts))
        }
        WalletEvent::WalletOpened { .. }
        | WalletEvent::TopUpInitiated { .. }
        | WalletEvent::TopUpFailed { .. }
        | WalletEvent::WithdrawalRequested { .. }
        | WalletEvent::WithdrawalApproved { .. }
        | WalletEvent::WithdrawalRejected { .. }
        | WalletEvent::LowBalanceThresholdChanged { .. }
        | WalletEvent::CreditLimitChanged { .. } => None,
    };
    let (kind, counter, movement) = match (rule, event.balance_movement()) {
        (None, None) => return Ok(Vec::new()),
        (Some((kind, counter)), Some(movement)) => (kind, counter, movement),
        (Some((kind, _)), None) => return Err(PostingError::NoRule(kind.as_str())),
        (None, Some(_)) => return Err(PostingError::NoRule("an event without a rule")),
    };
    let currency = movement.amount.currency();
    let wallet_micros =
        i64::try_from(movement.signed_micros()).map_err(|_| PostingError::AmountOverflow)?;
    let counter_micros = wallet_micros
        .checked_neg()
        .ok_or(PostingError::AmountOverflow)?;
    Ok(vec![
        Posting {
            line: WALLET_LINE,
            ledger_account: wallet_account(account_id),
            account_id: Some(account_id),
            currency,
            amount_micros: wallet_micros,
            kind,
        },
        Posting {
            line: COUNTER_LINE,
            ledger_account: counter.name(),
            account_id: None,
            currency,
            amount_micros: counter_micros,
            kind,
        },
    ])
}

/// A row of `ledger_entries`: a posting with the place of its event. Currency and kind are kept
/// as stored text, so that [`verify`] can report a row whatever was written into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    pub global_position: i64,
    pub line: i16,
    pub aggregate_id: String,
    pub sequence: i64,
    pub ledger_account: String,
    pub account_id: Option<Uuid>,
    pub currency: String,
    pub amount_micros: i64,
    pub kind: String,
    pub recorded_at: DateTime<Utc>,
}

impl LedgerRow {
    /// The row `posting` of `event` becomes.
    pub fn of(event: &StoredEvent, posting: &Posting) -> Self {
        Self {
            global_position: event.position.global_position,
            line: posting.line,
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            ledger_account: posting.ledger_account.clone(),
            account_id: posting.account_id,
            currency: posting.currency.code().to_owned(),
            amount_micros: posting.amount_micros,
            kind: posting.kind.as_str().to_owned(),
            recorded_at: event.recorded_at,
        }
    }

    /// The primary key `(global_position, line)`.
    pub fn key(&self) -> (i64, i16) {
        (self.global_position, self.line)
    }
}

/// The columns of [`LedgerRow`], in the order [`ledger_row_of`] reads them.
pub(crate) const LEDGER_COLUMNS: &str = "global_position, line, aggregate_id, sequence, \
     ledger_account, account_id, currency, amount_micros, kind, recorded_at";

pub(crate) fn ledger_row_of(row: &sqlx::postgres::PgRow) -> Result<LedgerRow, sqlx::Error> {
    Ok(LedgerRow {
        global_position: row.try_get("global_position")?,
        line: row.try_get("line")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        ledger_account: row.try_get("ledger_account")?,
        account_id: row.try_get("account_id")?,
        currency: row.try_get("currency")?,
        amount_micros: row.try_get("amount_micros")?,
        kind: row.try_get("kind")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// Projects wallet movements into `ledger_entries`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LedgerProjection;

impl Subscriber for LedgerProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Wallet as cqrs_es::Aggregate>::TYPE];
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
        Box::pin(async move {
            let mut rows = Vec::new();
            // Top-ups initiated earlier in this batch: their rows are written but the lookup
            // would cost a round trip per completion.
            let mut gateways: HashMap<(String, PaymentId), PaymentGateway> = HashMap::new();
            for event in events {
                if event.aggregate_type != <Wallet as cqrs_es::Aggregate>::TYPE {
                    continue;
                }
                let decoded: WalletEvent = serde_json::from_value(event.payload.clone())
                    .map_err(|e| SubscriberError::decode(event, e))?;
                let account_id = Uuid::parse_str(&event.aggregate_id)
                    .map_err(|e| SubscriberError::decode(event, e))?;
                let gateway = match &decoded {
                    WalletEvent::TopUpInitiated {
                        payment_id,
                        gateway,
                        ..
                    } => {
                        remember_gateway(tx, &event.aggregate_id, *payment_id, *gateway).await?;
                        gateways.insert((event.aggregate_id.clone(), *payment_id), *gateway);
                        None
                    }
                    WalletEvent::TopUpCompleted { payment_id, .. } => {
                        match gateways.get(&(event.aggregate_id.clone(), *payment_id)) {
                            Some(gateway) => Some(*gateway),
                            None => {
                                recalled_gateway(tx, event, &event.aggregate_id, *payment_id)
                                    .await?
                            }
                        }
                    }
                    _ => None,
                };
                let postings = postings(account_id, &decoded, gateway)
                    .map_err(|e| SubscriberError::decode(event, e))?;
                rows.extend(postings.iter().map(|p| LedgerRow::of(event, p)));
            }
            insert_rows(tx, &rows).await?;
            Ok(())
        })
    }

    fn rebuilder(&self) -> Option<Box<dyn Rebuild>> {
        Some(Box::new(LedgerRebuild::default()))
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for table in ["ledger_entries", "ledger_top_ups"] {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
}

/// The ledger's rebuild (crate::rebuild): postings and top-ups appended with `COPY`, the gateway
/// of every top-up kept in memory (it is what `ledger_top_ups` holds, the table being rebuilt
/// alongside), so a completion never costs a lookup. A top-up initiated twice leaves two rows,
/// and the primary key built at the end fails the rebuild, as the live insert fails.
#[derive(Debug, Default)]
struct LedgerRebuild {
    gateways: HashMap<(String, PaymentId), PaymentGateway>,
}

impl LedgerRebuild {
    async fn apply_batch(
        &mut self,
        tx: &mut PgConnection,
        events: &[ReplayedEvent],
    ) -> Result<(), SubscriberError> {
        let mut entries = CopyRows::new("ledger_entries", LEDGER_COLUMNS);
        let mut top_ups = CopyRows::new("ledger_top_ups", "aggregate_id, payment_id, gateway");
        for replayed in events {
            let event = &replayed.event;
            if event.aggregate_type != <Wallet as cqrs_es::Aggregate>::TYPE {
                continue;
            }
            let decoded: WalletEvent = serde_json::from_str(&replayed.payload)
                .map_err(|e| SubscriberError::decode(event, e))?;
            let account_id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|e| SubscriberError::decode(event, e))?;
            let gateway = match &decoded {
                WalletEvent::TopUpInitiated {
                    payment_id,
                    gateway,
                    ..
                } => {
                    top_ups
                        .row(3)
                        .text(&event.aggregate_id)
                        .uuid(payment_id.as_uuid())
                        .text(gateway.as_str());
                    top_ups.end_row(tx).await?;
                    self.gateways
                        .insert((event.aggregate_id.clone(), *payment_id), *gateway);
                    None
                }
                WalletEvent::TopUpCompleted { payment_id, .. } => self
                    .gateways
                    .get(&(event.aggregate_id.clone(), *payment_id))
                    .copied(),
                _ => None,
            };
            let postings = postings(account_id, &decoded, gateway)
                .map_err(|e| SubscriberError::decode(event, e))?;
            for posting in &postings {
                entries
                    .row(10)
                    .bigint(event.position.global_position)
                    .smallint(posting.line)
                    .text(&event.aggregate_id)
                    .bigint(event.sequence)
                    .text(&posting.ledger_account)
                    .optional_uuid(posting.account_id)
                    .text(posting.currency.code())
                    .bigint(posting.amount_micros)
                    .text(posting.kind.as_str())
                    .timestamp(event.recorded_at);
                entries.end_row(tx).await?;
            }
        }
        top_ups.finish(tx).await?;
        entries.finish(tx).await?;
        Ok(())
    }
}

impl Rebuild for LedgerRebuild {
    fn tables(&self) -> &'static [&'static str] {
        &["ledger_entries", "ledger_top_ups"]
    }

    fn apply<'a>(
        &'a mut self,
        tx: &'a mut PgConnection,
        events: &'a [ReplayedEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(self.apply_batch(tx, events))
    }

    fn finish<'a>(
        &'a mut self,
        _tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        // Every batch wrote all it made.
        Box::pin(async { Ok(()) })
    }
}

async fn remember_gateway(
    tx: &mut PgConnection,
    aggregate_id: &str,
    payment_id: PaymentId,
    gateway: PaymentGateway,
) -> Result<(), sqlx::Error> {
    // A plain insert: the wallet initiates a payment id once, so a second row is a fault that
    // must stop the projection rather than be papered over.
    sqlx::query(
        "INSERT INTO ledger_top_ups (aggregate_id, payment_id, gateway) VALUES ($1, $2, $3)",
    )
    .bind(aggregate_id)
    .bind(payment_id.as_uuid())
    .bind(gateway.as_str())
    .execute(tx)
    .await?;
    Ok(())
}

async fn recalled_gateway(
    tx: &mut PgConnection,
    event: &StoredEvent,
    aggregate_id: &str,
    payment_id: PaymentId,
) -> Result<Option<PaymentGateway>, SubscriberError> {
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT gateway FROM ledger_top_ups WHERE aggregate_id = $1 AND payment_id = $2",
    )
    .bind(aggregate_id)
    .bind(payment_id.as_uuid())
    .fetch_optional(tx)
    .await?;
    stored
        .map(|name| {
            PaymentGateway::from_name(&name).ok_or_else(|| {
                SubscriberError::decode(
                    event,
                    format!("unknown gateway {name:?} in ledger_top_ups"),
                )
            })
        })
        .transpose()
}

/// Inserts a batch's postings in one statement.
async fn insert_rows(tx: &mut PgConnection, rows: &[LedgerRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&LedgerRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let text = |f: fn(&LedgerRow) -> &str| rows.iter().map(|r| f(r).to_owned()).collect::<Vec<_>>();
    sqlx::query(&format!(
        "INSERT INTO ledger_entries ({LEDGER_COLUMNS}) SELECT * FROM UNNEST(\
         $1::bigint[], $2::smallint[], $3::text[], $4::bigint[], $5::text[], $6::uuid[], \
         $7::text[], $8::bigint[], $9::text[], $10::timestamptz[])"
    ))
    .bind(column(|r| r.global_position))
    .bind(rows.iter().map(|r| r.line).collect::<Vec<_>>())
    .bind(text(|r| &r.aggregate_id))
    .bind(column(|r| r.sequence))
    .bind(text(|r| &r.ledger_account))
    .bind(rows.iter().map(|r| r.account_id).collect::<Vec<_>>())
    .bind(text(|r| &r.currency))
    .bind(column(|r| r.amount_micros))
    .bind(text(|r| &r.kind))
    .bind(rows.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(())
}

/// The sum of a group of postings. Sums are kept in `i128`: no sum of `i64` postings overflows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerTotal {
    /// The ledger account (`wallet:<id>`, `revenue:order`, …); `None` in [`currency_totals`].
    pub ledger_account: Option<String>,
    /// The wallet's account, in [`wallet_totals`] only.
    pub account_id: Option<Uuid>,
    #[serde(serialize_with = "serialize_currency")]
    pub currency: Currency,
    /// Signed sum in micro-units.
    pub total_micros: i128,
    /// How many postings were summed.
    pub postings: i64,
}

fn serialize_currency<S: serde::Serializer>(currency: &Currency, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(currency.code())
}

impl LedgerTotal {
    /// The total as money, when it fits in `i64` micro-units.
    pub fn total(&self) -> Option<Money> {
        i64::try_from(self.total_micros)
            .ok()
            .map(|micros| Money::from_micros(micros, self.currency))
    }
}

/// Which postings a total groups by.
#[derive(Debug, Clone, Copy)]
enum Grouping {
    LedgerAccount,
    Wallet,
    Currency,
}

/// The trial balance: the total of every ledger account in every currency, ordered by account
/// then currency. The totals of one currency sum to zero.
pub async fn trial_balance(pool: &PgPool) -> Result<Vec<LedgerTotal>, sqlx::Error> {
    totals(pool, Grouping::LedgerAccount, None).await
}

/// The total of every wallet's postings (which equals its balance), ordered by account id.
pub async fn wallet_totals(pool: &PgPool) -> Result<Vec<LedgerTotal>, sqlx::Error> {
    totals(pool, Grouping::Wallet, None).await
}

/// The total of one wallet's postings, `None` when it has none.
pub async fn wallet_total(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<LedgerTotal>, sqlx::Error> {
    Ok(totals(pool, Grouping::Wallet, Some(account_id))
        .await?
        .into_iter()
        .next())
}

/// The total of all postings per currency: zero for every currency when the ledger balances.
pub async fn currency_totals(pool: &PgPool) -> Result<Vec<LedgerTotal>, sqlx::Error> {
    totals(pool, Grouping::Currency, None).await
}

async fn totals(
    pool: &PgPool,
    grouping: Grouping,
    wallet: Option<Uuid>,
) -> Result<Vec<LedgerTotal>, sqlx::Error> {
    let (keys, filter) = match grouping {
        Grouping::LedgerAccount => ("ledger_account, NULL::uuid AS account_id, currency", ""),
        Grouping::Wallet => (
            "ledger_account, account_id, currency",
            "WHERE account_id IS NOT NULL AND ($1::uuid IS NULL OR account_id = $1)",
        ),
        Grouping::Currency => (
            "NULL::text AS ledger_account, NULL::uuid AS account_id, currency",
            "",
        ),
    };
    let group = match grouping {
        Grouping::LedgerAccount => "ledger_account, currency",
        Grouping::Wallet => "account_id, ledger_account, currency",
        Grouping::Currency => "currency",
    };
    // The sum is read as text: Postgres sums bigints as numeric, which sqlx decodes only with an
    // extra feature, and the exact digits parse into i128.
    let sql = format!(
        "SELECT {keys}, sum(amount_micros)::text AS total, count(*) AS postings \
         FROM ledger_entries {filter} GROUP BY {group} ORDER BY {group}"
    );
    let mut query = sqlx::query(&sql);
    if matches!(grouping, Grouping::Wallet) {
        query = query.bind(wallet);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let total: String = row.try_get("total")?;
            let currency: String = row.try_get("currency")?;
            Ok(LedgerTotal {
                ledger_account: row.try_get("ledger_account")?,
                account_id: row.try_get("account_id")?,
                currency: Currency::parse(&currency)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                total_micros: total
                    .parse()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                postings: row.try_get("postings")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
