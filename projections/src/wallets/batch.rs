//! One batch of the wallets projection as a unit of work: read the rows the batch touches, apply
//! its events to them in memory, write back what changed.
//!
//! A batch costs two statements, however many events it holds: one `SELECT` of the `wallets` rows
//! it names and of the `wallet_transactions` rows its events create or update (each table as a
//! JSON array of rows), and one upsert of every row the batch created or changed, both tables in
//! one statement with each column bound as an array (`UNNEST`). That is three round trips, as the
//! load is planned afresh each time (see `load`). A batch without wallet events sends nothing;
//! one that changes nothing skips the write.
//!
//! The result is the one applying each event on its own would give:
//! - a wallet row appears only with `WalletOpened`; any other event on a wallet without a row
//!   changes nothing, and opening a wallet that has a row changes nothing either;
//! - a line appears with the event that creates it, unless a line with its id exists (the first
//!   one stays); an update of a line without a row changes nothing, so a rejected withdrawal
//!   without a line releases nothing from the reservation;
//! - every event but `WalletOpened` sets the wallet's `version` to its sequence and `updated_at`
//!   to its recording time; a line keeps the position and time of the event that created it.
//!
//! Rows created earlier in the batch are found in memory, which is what makes a batch that opens
//! a wallet, starts a top-up and completes it right. The load covers the lines the batch creates
//! too: creating a line whose id exists must leave that line alone, and only the database knows.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use stratus_domain::wallet::{Wallet, WalletEvent};
use stratus_domain::{LedgerReference, Money};
use uuid::Uuid;

use super::{
    line_id, KIND_DEBIT, KIND_REFUND, KIND_TOP_UP, KIND_WITHDRAWAL, STAGE_APPROVED, STAGE_PAID_OUT,
    STAGE_REJECTED, STAGE_REQUESTED, STATUS_COMPLETED, STATUS_FAILED, STATUS_PENDING,
    STATUS_REJECTED,
};
use crate::feed::SubscriberError;
use crate::rebuild::{CopyRows, Rebuild, ReplayedEvent};
use crate::stored_event::StoredEvent;

/// Every column of `wallets`, in table order.
macro_rules! wallet_columns {
    () => {
        "account_id, currency, balance_micros, reserved_micros, credit_limit_micros, \
         low_balance_threshold_micros, version, opened_at, updated_at"
    };
}

/// Every column of `wallet_transactions`, in table order.
macro_rules! line_columns {
    () => {
        "id, account_id, kind, status, stage, amount_micros, currency, balance_after_micros, \
         reference, reason, refunds_reference, gateway, failure_reason, decided_by, \
         created_position, created_at, updated_at"
    };
}

/// One round trip for both tables: the wallets named by `$1` and the lines named by `$2`, each
/// as a JSON array of rows (`[]` when none exists).
const LOAD: &str = concat!(
    "SELECT (SELECT COALESCE(json_agg(w), '[]') FROM (SELECT ",
    wallet_columns!(),
    " FROM wallets WHERE account_id = ANY($1)) w) AS wallets, \
     (SELECT COALESCE(json_agg(l), '[]') FROM (SELECT ",
    line_columns!(),
    " FROM wallet_transactions WHERE id = ANY($2)) l) AS lines"
);

/// One round trip for every change of the batch, each table's columns bound as arrays: the
/// wallets (`$1`–`$9`) and the lines (`$10`–`$26`) the batch created or changed. An upsert finds
/// the row to change through the primary key whatever the plan, and a row the batch created
/// meets a conflict only when another writer raced it (whose batch the checkpoint check then
/// rolls back).
const WRITE: &str = concat!(
    "WITH written_wallets AS (INSERT INTO wallets (",
    wallet_columns!(),
    ") SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], \
     $6::bigint[], $7::bigint[], $8::timestamptz[], $9::timestamptz[]) \
     ON CONFLICT (account_id) DO UPDATE SET currency = EXCLUDED.currency, \
     balance_micros = EXCLUDED.balance_micros, reserved_micros = EXCLUDED.reserved_micros, \
     credit_limit_micros = EXCLUDED.credit_limit_micros, \
     low_balance_threshold_micros = EXCLUDED.low_balance_threshold_micros, \
     version = EXCLUDED.version, opened_at = EXCLUDED.opened_at, \
     updated_at = EXCLUDED.updated_at) \
     INSERT INTO wallet_transactions (",
    line_columns!(),
    ") SELECT * FROM UNNEST($10::uuid[], $11::uuid[], $12::text[], $13::text[], $14::text[], \
     $15::bigint[], $16::text[], $17::bigint[], $18::text[], $19::text[], $20::text[], \
     $21::text[], $22::text[], $23::uuid[], $24::bigint[], $25::timestamptz[], \
     $26::timestamptz[]) \
     ON CONFLICT (id) DO UPDATE SET account_id = EXCLUDED.account_id, kind = EXCLUDED.kind, \
     status = EXCLUDED.status, stage = EXCLUDED.stage, amount_micros = EXCLUDED.amount_micros, \
     currency = EXCLUDED.currency, balance_after_micros = EXCLUDED.balance_after_micros, \
     reference = EXCLUDED.reference, reason = EXCLUDED.reason, \
     refunds_reference = EXCLUDED.refunds_reference, gateway = EXCLUDED.gateway, \
     failure_reason = EXCLUDED.failure_reason, decided_by = EXCLUDED.decided_by, \
     created_position = EXCLUDED.created_position, created_at = EXCLUDED.created_at, \
     updated_at = EXCLUDED.updated_at"
);

/// Applies the wallet events of `events` (others are skipped) as one unit of work.
pub(super) async fn apply(
    tx: &mut PgConnection,
    events: &[StoredEvent],
) -> Result<(), SubscriberError> {
    let decoded = decode(events)?;
    if decoded.is_empty() {
        return Ok(());
    }
    let mut work = load(tx, &decoded).await?;
    for event in decoded {
        work.apply(event)?;
    }
    work.write(tx).await?;
    Ok(())
}

/// Deletes lines a rebuild wrote out already and returns them, to fold a later event into them
/// (an unindexed scan of the fresh table, once per batch that needs it: only an event on a
/// settled line does, which a valid log does not hold).
const TAKE_BACK: &str = concat!(
    "WITH taken AS (DELETE FROM wallet_transactions WHERE id = ANY($1) RETURNING ",
    line_columns!(),
    ") SELECT COALESCE(json_agg(taken), '[]') FROM taken"
);

/// The wallets projection's rebuild (crate::rebuild): wallets and pending lines folded in memory
/// over the whole log and written once at the end, settled lines (most of them: debits and
/// refunds are settled from the start) written after the batch that settles them, all with
/// `COPY`. An event on a line written out already takes it back first, so the result is the one
/// of [`apply`]. Memory: the wallets, the pending lines, and the id of every line written.
pub(super) struct WalletsRebuild {
    work: UnitOfWork,
    /// The ids of the lines written out so far.
    written: HashSet<Uuid>,
}

impl WalletsRebuild {
    pub(super) fn new() -> Self {
        Self {
            work: UnitOfWork::new(Vec::new(), Vec::new()),
            written: HashSet::new(),
        }
    }

    async fn apply_batch(
        &mut self,
        tx: &mut PgConnection,
        events: &[ReplayedEvent],
    ) -> Result<(), SubscriberError> {
        let decoded = decode_replayed(events)?;
        let mut taken_back: Vec<Uuid> = decoded
            .iter()
            .filter_map(|d| d.line)
            .filter(|id| self.written.contains(id))
            .collect();
        if !taken_back.is_empty() {
            taken_back.sort_unstable();
            taken_back.dedup();
            let Json(lines): Json<Vec<LineRow>> = sqlx::query_scalar(TAKE_BACK)
                .bind(&taken_back)
                .fetch_one(&mut *tx)
                .await?;
            for line in lines {
                self.written.remove(&line.id);
                self.work.lines.insert_if_absent(line.id, || line);
            }
        }
        for event in decoded {
            self.work.apply(event)?;
        }
        let settled = self.work.lines.take_where(|l| l.status != STATUS_PENDING);
        self.written.extend(settled.iter().map(|l| l.id));
        copy_lines(tx, &settled).await?;
        Ok(())
    }

    async fn write_all(&mut self, tx: &mut PgConnection) -> Result<(), SubscriberError> {
        let wallets = self.work.wallets.take_where(|_| true);
        let mut rows = CopyRows::new("wallets", wallet_columns!());
        for w in &wallets {
            rows.row(9)
                .uuid(w.account_id)
                .text(&w.currency)
                .bigint(w.balance_micros)
                .bigint(w.reserved_micros)
                .bigint(w.credit_limit_micros)
                .bigint(w.low_balance_threshold_micros)
                .bigint(w.version)
                .timestamp(w.opened_at)
                .timestamp(w.updated_at);
            rows.end_row(tx).await?;
        }
        rows.finish(tx).await?;
        let lines = self.work.lines.take_where(|_| true);
        copy_lines(tx, &lines).await?;
        Ok(())
    }
}

impl Rebuild for WalletsRebuild {
    fn tables(&self) -> &'static [&'static str] {
        &["wallets", "wallet_transactions"]
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
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(self.write_all(tx))
    }
}

/// Appends `lines` to `wallet_transactions` with COPY.
async fn copy_lines(tx: &mut PgConnection, lines: &[LineRow]) -> Result<(), sqlx::Error> {
    let mut rows = CopyRows::new("wallet_transactions", line_columns!());
    for l in lines {
        rows.row(17)
            .uuid(l.id)
            .uuid(l.account_id)
            .text(&l.kind)
            .text(&l.status)
            .optional_text(l.stage.as_deref())
            .bigint(l.amount_micros)
            .text(&l.currency)
            .optional_bigint(l.balance_after_micros)
            .optional_text(l.reference.as_deref())
            .optional_text(l.reason.as_deref())
            .optional_text(l.refunds_reference.as_deref())
            .optional_text(l.gateway.as_deref())
            .optional_text(l.failure_reason.as_deref())
            .optional_uuid(l.decided_by)
            .bigint(l.created_position)
            .timestamp(l.created_at)
            .timestamp(l.updated_at);
        rows.end_row(tx).await?;
    }
    rows.finish(tx).await
}

/// A wallet event with what the batch needs to know before applying it.
struct Decoded<'a> {
    stored: &'a StoredEvent,
    account_id: Uuid,
    event: WalletEvent,
    /// The line the event creates or updates ([`line_of`], computed once: a UUIDv5 is a SHA-1).
    line: Option<Uuid>,
}

fn decode(events: &[StoredEvent]) -> Result<Vec<Decoded<'_>>, SubscriberError> {
    let mut decoded = Vec::with_capacity(events.len());
    for stored in events {
        if stored.aggregate_type != <Wallet as cqrs_es::Aggregate>::TYPE {
            continue;
        }
        // Deserialising from a borrowed `Value` spares a copy of every payload.
        let event = WalletEvent::deserialize(&stored.payload)
            .map_err(|e| SubscriberError::decode(stored, e))?;
        let account_id = Uuid::parse_str(&stored.aggregate_id)
            .map_err(|e| SubscriberError::decode(stored, e))?;
        decoded.push(Decoded {
            line: line_of(account_id, &event),
            stored,
            account_id,
            event,
        });
    }
    Ok(decoded)
}

/// [`decode`] for a rebuild: each payload deserialised from its text straight into the event.
fn decode_replayed(events: &[ReplayedEvent]) -> Result<Vec<Decoded<'_>>, SubscriberError> {
    let mut decoded = Vec::with_capacity(events.len());
    for replayed in events {
        let stored = &replayed.event;
        if stored.aggregate_type != <Wallet as cqrs_es::Aggregate>::TYPE {
            continue;
        }
        let event: WalletEvent = serde_json::from_str(&replayed.payload)
            .map_err(|e| SubscriberError::decode(stored, e))?;
        let account_id = Uuid::parse_str(&stored.aggregate_id)
            .map_err(|e| SubscriberError::decode(stored, e))?;
        decoded.push(Decoded {
            line: line_of(account_id, &event),
            stored,
            account_id,
            event,
        });
    }
    Ok(decoded)
}

/// The id of the line `event` creates or updates, if any.
fn line_of(account_id: Uuid, event: &WalletEvent) -> Option<Uuid> {
    match event {
        WalletEvent::TopUpInitiated { payment_id, .. }
        | WalletEvent::TopUpCompleted { payment_id, .. }
        | WalletEvent::TopUpFailed { payment_id, .. } => Some(payment_id.as_uuid()),
        WalletEvent::WalletDebited { reference, .. }
        | WalletEvent::WalletRefunded { reference, .. } => Some(line_id(account_id, reference)),
        WalletEvent::WithdrawalRequested { withdrawal_id, .. }
        | WalletEvent::WithdrawalApproved { withdrawal_id, .. }
        | WalletEvent::WithdrawalRejected { withdrawal_id, .. }
        | WalletEvent::WithdrawalPaidOut { withdrawal_id, .. } => Some(withdrawal_id.as_uuid()),
        WalletEvent::WalletOpened { .. }
        | WalletEvent::LowBalanceThresholdChanged { .. }
        | WalletEvent::CreditLimitChanged { .. } => None,
    }
}

/// Reads every row the batch touches that exists already: all its wallets, and all the lines its
/// events create or update (creations too, since creating a line that exists changes nothing).
async fn load(tx: &mut PgConnection, batch: &[Decoded<'_>]) -> Result<UnitOfWork, sqlx::Error> {
    let mut account_ids: Vec<Uuid> = batch.iter().map(|d| d.account_id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let mut line_ids: Vec<Uuid> = batch.iter().filter_map(|d| d.line).collect();
    line_ids.sort_unstable();
    line_ids.dedup();
    // Planned afresh for every batch: a cached generic plan made while the tables were small (a
    // rebuild into new tables) would keep scanning them whole as the rebuild fills them.
    let row = sqlx::query(LOAD)
        .persistent(false)
        .bind(account_ids)
        .bind(line_ids)
        .fetch_one(&mut *tx)
        .await?;
    let Json(wallets): Json<Vec<WalletRow>> = row.try_get("wallets")?;
    let Json(lines): Json<Vec<LineRow>> = row.try_get("lines")?;
    Ok(UnitOfWork::new(wallets, lines))
}

/// One `wallets` row, every column.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct WalletRow {
    account_id: Uuid,
    currency: String,
    balance_micros: i64,
    reserved_micros: i64,
    credit_limit_micros: i64,
    low_balance_threshold_micros: i64,
    version: i64,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// One `wallet_transactions` row, every column.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct LineRow {
    id: Uuid,
    account_id: Uuid,
    kind: String,
    status: String,
    stage: Option<String>,
    amount_micros: i64,
    currency: String,
    balance_after_micros: Option<i64>,
    reference: Option<String>,
    reason: Option<String>,
    refunds_reference: Option<String>,
    gateway: Option<String>,
    failure_reason: Option<String>,
    decided_by: Option<Uuid>,
    created_position: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl LineRow {
    /// A line created by `stored`, before any update.
    fn created(stored: &StoredEvent, account_id: Uuid, id: Uuid, new: NewLine) -> Self {
        Self {
            id,
            account_id,
            kind: new.kind.to_owned(),
            status: new.status.to_owned(),
            stage: new.stage.map(str::to_owned),
            amount_micros: new.amount.micros(),
            currency: new.amount.currency().code().to_owned(),
            balance_after_micros: new.balance_after.map(|m| m.micros()),
            reference: new.reference,
            reason: new.reason.map(str::to_owned),
            refunds_reference: new.refunds_reference,
            gateway: new.gateway.map(str::to_owned),
            failure_reason: None,
            decided_by: None,
            created_position: stored.position.global_position,
            created_at: stored.recorded_at,
            updated_at: stored.recorded_at,
        }
    }
}

/// What an event says about the line it creates.
struct NewLine {
    kind: &'static str,
    status: &'static str,
    stage: Option<&'static str>,
    amount: Money,
    balance_after: Option<Money>,
    reference: Option<String>,
    reason: Option<&'static str>,
    refunds_reference: Option<String>,
    gateway: Option<&'static str>,
}

/// The rows of one table that the batch touches, keyed by primary key; a key without an entry has
/// no row.
struct Rows<T> {
    rows: HashMap<Uuid, Entry<T>>,
}

struct Entry<T> {
    row: T,
    /// Created or updated by the batch.
    changed: bool,
}

impl<T> Rows<T> {
    fn new(loaded: impl IntoIterator<Item = (Uuid, T)>) -> Self {
        let rows = loaded
            .into_iter()
            .map(|(key, row)| {
                let entry = Entry {
                    row,
                    changed: false,
                };
                (key, entry)
            })
            .collect();
        Self { rows }
    }

    /// `INSERT … ON CONFLICT DO NOTHING`: adds the row unless one with its key exists.
    fn insert_if_absent(&mut self, key: Uuid, row: impl FnOnce() -> T) {
        self.rows.entry(key).or_insert_with(|| Entry {
            row: row(),
            changed: true,
        });
    }

    /// `UPDATE … WHERE key = $1`: changes the row if there is one, and says what `change` returned.
    fn update<R>(&mut self, key: Uuid, change: impl FnOnce(&mut T) -> R) -> Option<R> {
        let entry = self.rows.get_mut(&key)?;
        entry.changed = true;
        Some(change(&mut entry.row))
    }

    /// Removes and returns every row `pick` selects, whether changed or not.
    fn take_where(&mut self, mut pick: impl FnMut(&T) -> bool) -> Vec<T> {
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.rows)
            .into_iter()
            .partition(|(_, entry)| pick(&entry.row));
        self.rows = kept.into_iter().collect();
        taken.into_iter().map(|(_, entry)| entry.row).collect()
    }

    /// The rows created or updated, in key order (concurrent writers then lock rows in one order).
    fn into_changed(self) -> Vec<T> {
        let mut changed: Vec<(Uuid, T)> = self
            .rows
            .into_iter()
            .filter(|(_, entry)| entry.changed)
            .map(|(key, entry)| (key, entry.row))
            .collect();
        changed.sort_unstable_by_key(|(key, _)| *key);
        changed.into_iter().map(|(_, row)| row).collect()
    }
}

/// The touched rows of both tables, in memory while the batch is applied.
struct UnitOfWork {
    wallets: Rows<WalletRow>,
    lines: Rows<LineRow>,
}

impl UnitOfWork {
    fn new(wallets: Vec<WalletRow>, lines: Vec<LineRow>) -> Self {
        Self {
            wallets: Rows::new(wallets.into_iter().map(|w| (w.account_id, w))),
            lines: Rows::new(lines.into_iter().map(|l| (l.id, l))),
        }
    }

    fn apply(&mut self, decoded: Decoded<'_>) -> Result<(), SubscriberError> {
        let Decoded {
            stored,
            account_id,
            event,
            line,
        } = decoded;
        let at = stored.recorded_at;
        match event {
            WalletEvent::WalletOpened {
                currency,
                opened_at,
                ..
            } => {
                self.wallets.insert_if_absent(account_id, || WalletRow {
                    account_id,
                    currency: currency.code().to_owned(),
                    balance_micros: 0,
                    reserved_micros: 0,
                    credit_limit_micros: 0,
                    low_balance_threshold_micros: 0,
                    version: stored.sequence,
                    opened_at,
                    updated_at: opened_at,
                });
                return Ok(());
            }
            WalletEvent::TopUpInitiated {
                payment_id,
                amount,
                gateway,
                gateway_reference,
                ..
            } => {
                let new = NewLine {
                    kind: KIND_TOP_UP,
                    status: STATUS_PENDING,
                    stage: None,
                    amount,
                    balance_after: None,
                    reference: gateway_reference,
                    reason: None,
                    refunds_reference: None,
                    gateway: Some(gateway.as_str()),
                };
                self.create_line(stored, account_id, payment_id.as_uuid(), new);
            }
            WalletEvent::TopUpCompleted {
                payment_id,
                amount,
                balance_after,
                ..
            } => {
                // The line shows what was received, which a bank transfer may make differ from
                // what was asked for.
                self.lines.update(payment_id.as_uuid(), |l| {
                    l.status = STATUS_COMPLETED.to_owned();
                    l.amount_micros = amount.micros();
                    l.balance_after_micros = Some(balance_after.micros());
                    l.updated_at = at;
                });
                self.set_balance(account_id, balance_after);
            }
            WalletEvent::TopUpFailed {
                payment_id, reason, ..
            } => {
                self.lines.update(payment_id.as_uuid(), |l| {
                    l.status = STATUS_FAILED.to_owned();
                    l.failure_reason = Some(reason);
                    l.updated_at = at;
                });
            }
            WalletEvent::WalletDebited {
                reference,
                amount,
                reason,
                balance_after,
                ..
            } => {
                let new = NewLine {
                    kind: KIND_DEBIT,
                    status: STATUS_COMPLETED,
                    stage: None,
                    amount,
                    balance_after: Some(balance_after),
                    reference: Some(reference.as_str().to_owned()),
                    reason: Some(reason.as_str()),
                    refunds_reference: None,
                    gateway: None,
                };
                let id = line.unwrap_or_else(|| line_id(account_id, &reference));
                self.create_line(stored, account_id, id, new);
                self.set_balance(account_id, balance_after);
            }
            WalletEvent::WalletRefunded {
                reference,
                refunds_debit,
                amount,
                reason,
                balance_after,
                ..
            } => {
                let new = NewLine {
                    kind: KIND_REFUND,
                    status: STATUS_COMPLETED,
                    stage: None,
                    amount,
                    balance_after: Some(balance_after),
                    reference: Some(reference.as_str().to_owned()),
                    reason: Some(reason.as_str()),
                    refunds_reference: refunds_debit
                        .as_ref()
                        .map(LedgerReference::as_str)
                        .map(str::to_owned),
                    gateway: None,
                };
                let id = line.unwrap_or_else(|| line_id(account_id, &reference));
                self.create_line(stored, account_id, id, new);
                self.set_balance(account_id, balance_after);
            }
            WalletEvent::WithdrawalRequested {
                withdrawal_id,
                amount,
                destination,
                ..
            } => {
                let new = NewLine {
                    kind: KIND_WITHDRAWAL,
                    status: STATUS_PENDING,
                    stage: Some(STAGE_REQUESTED),
                    amount,
                    balance_after: None,
                    reference: Some(destination),
                    reason: None,
                    refunds_reference: None,
                    gateway: None,
                };
                self.create_line(stored, account_id, withdrawal_id.as_uuid(), new);
                self.reserve(stored, account_id, amount.micros())?;
            }
            WalletEvent::WithdrawalApproved {
                withdrawal_id,
                approved_by,
                ..
            } => {
                self.lines.update(withdrawal_id.as_uuid(), |l| {
                    l.stage = Some(STAGE_APPROVED.to_owned());
                    l.decided_by = Some(approved_by.as_uuid());
                    l.updated_at = at;
                });
            }
            WalletEvent::WithdrawalRejected {
                withdrawal_id,
                reason,
                rejected_by,
                ..
            } => {
                let released = self.lines.update(withdrawal_id.as_uuid(), |l| {
                    l.status = STATUS_REJECTED.to_owned();
                    l.stage = Some(STAGE_REJECTED.to_owned());
                    l.failure_reason = Some(reason);
                    l.decided_by = Some(rejected_by.as_uuid());
                    l.updated_at = at;
                    l.amount_micros
                });
                self.release(stored, account_id, released.unwrap_or(0))?;
            }
            WalletEvent::WithdrawalPaidOut {
                withdrawal_id,
                amount,
                balance_after,
                ..
            } => {
                self.lines.update(withdrawal_id.as_uuid(), |l| {
                    l.status = STATUS_COMPLETED.to_owned();
                    l.stage = Some(STAGE_PAID_OUT.to_owned());
                    l.balance_after_micros = Some(balance_after.micros());
                    l.updated_at = at;
                });
                self.release(stored, account_id, amount.micros())?;
                self.set_balance(account_id, balance_after);
            }
            WalletEvent::LowBalanceThresholdChanged { threshold, .. } => {
                self.wallets.update(account_id, |w| {
                    w.low_balance_threshold_micros = threshold.micros();
                });
            }
            WalletEvent::CreditLimitChanged { credit_limit, .. } => {
                self.wallets.update(account_id, |w| {
                    w.credit_limit_micros = credit_limit.micros();
                });
            }
        }
        self.wallets.update(account_id, |w| {
            w.version = stored.sequence;
            w.updated_at = at;
        });
        Ok(())
    }

    fn create_line(&mut self, stored: &StoredEvent, account_id: Uuid, id: Uuid, new: NewLine) {
        self.lines
            .insert_if_absent(id, || LineRow::created(stored, account_id, id, new));
    }

    fn set_balance(&mut self, account_id: Uuid, balance: Money) {
        self.wallets.update(account_id, |w| {
            w.balance_micros = balance.micros();
        });
    }

    fn reserve(
        &mut self,
        stored: &StoredEvent,
        account_id: Uuid,
        micros: i64,
    ) -> Result<(), SubscriberError> {
        self.move_reservation(stored, account_id, |reserved| reserved.checked_add(micros))
    }

    fn release(
        &mut self,
        stored: &StoredEvent,
        account_id: Uuid,
        micros: i64,
    ) -> Result<(), SubscriberError> {
        self.move_reservation(stored, account_id, |reserved| reserved.checked_sub(micros))
    }

    /// Changes the reserved amount; fails the batch where it leaves `bigint`, as the column would.
    fn move_reservation(
        &mut self,
        stored: &StoredEvent,
        account_id: Uuid,
        change: impl FnOnce(i64) -> Option<i64>,
    ) -> Result<(), SubscriberError> {
        let moved = self.wallets.update(account_id, |w| {
            let next = change(w.reserved_micros)?;
            w.reserved_micros = next;
            Some(())
        });
        match moved {
            Some(None) => Err(SubscriberError::decode(
                stored,
                "the reserved amount of the wallet leaves the range of bigint",
            )),
            Some(Some(())) | None => Ok(()),
        }
    }

    /// Writes the changed rows back in one statement.
    async fn write(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let wallets = self.wallets.into_changed();
        let lines = self.lines.into_changed();
        if wallets.is_empty() && lines.is_empty() {
            return Ok(());
        }
        let query = bind_wallets(sqlx::query(WRITE), wallets);
        bind_lines(query, lines).execute(&mut *tx).await?;
        Ok(())
    }
}

type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// Binds `rows` as the nine column arrays of `wallets`.
fn bind_wallets(query: Statement<'_>, rows: Vec<WalletRow>) -> Statement<'_> {
    let n = rows.len();
    let mut account_id = Vec::with_capacity(n);
    let mut currency = Vec::with_capacity(n);
    let mut balance = Vec::with_capacity(n);
    let mut reserved = Vec::with_capacity(n);
    let mut credit_limit = Vec::with_capacity(n);
    let mut threshold = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut opened_at = Vec::with_capacity(n);
    let mut updated_at = Vec::with_capacity(n);
    for w in rows {
        account_id.push(w.account_id);
        currency.push(w.currency);
        balance.push(w.balance_micros);
        reserved.push(w.reserved_micros);
        credit_limit.push(w.credit_limit_micros);
        threshold.push(w.low_balance_threshold_micros);
        version.push(w.version);
        opened_at.push(w.opened_at);
        updated_at.push(w.updated_at);
    }
    query
        .bind(account_id)
        .bind(currency)
        .bind(balance)
        .bind(reserved)
        .bind(credit_limit)
        .bind(threshold)
        .bind(version)
        .bind(opened_at)
        .bind(updated_at)
}

/// Binds `rows` as the seventeen column arrays of `wallet_transactions`.
fn bind_lines(query: Statement<'_>, rows: Vec<LineRow>) -> Statement<'_> {
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut account_id = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut stage = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let mut currency = Vec::with_capacity(n);
    let mut balance_after = Vec::with_capacity(n);
    let mut reference = Vec::with_capacity(n);
    let mut reason = Vec::with_capacity(n);
    let mut refunds_reference = Vec::with_capacity(n);
    let mut gateway = Vec::with_capacity(n);
    let mut failure_reason = Vec::with_capacity(n);
    let mut decided_by = Vec::with_capacity(n);
    let mut created_position = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut updated_at = Vec::with_capacity(n);
    for l in rows {
        id.push(l.id);
        account_id.push(l.account_id);
        kind.push(l.kind);
        status.push(l.status);
        stage.push(l.stage);
        amount.push(l.amount_micros);
        currency.push(l.currency);
        balance_after.push(l.balance_after_micros);
        reference.push(l.reference);
        reason.push(l.reason);
        refunds_reference.push(l.refunds_reference);
        gateway.push(l.gateway);
        failure_reason.push(l.failure_reason);
        decided_by.push(l.decided_by);
        created_position.push(l.created_position);
        created_at.push(l.created_at);
        updated_at.push(l.updated_at);
    }
    query
        .bind(id)
        .bind(account_id)
        .bind(kind)
        .bind(status)
        .bind(stage)
        .bind(amount)
        .bind(currency)
        .bind(balance_after)
        .bind(reference)
        .bind(reason)
        .bind(refunds_reference)
        .bind(gateway)
        .bind(failure_reason)
        .bind(decided_by)
        .bind(created_position)
        .bind(created_at)
        .bind(updated_at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{Duration, TimeZone};
    use stratus_domain::wallet::{DebitReason, PaymentGateway};
    use stratus_domain::{AccountId, Currency, PaymentId, WithdrawalId};

    use super::*;
    use crate::position::FeedPosition;

    fn account() -> Uuid {
        Uuid::from_u128(0x0190_f3a1_7c2e_7d3b_9a4e_2f1c_5b8d_6e70)
    }

    fn staff() -> AccountId {
        AccountId::from_uuid(Uuid::from_u128(99))
    }

    fn eur(micros: i64) -> Money {
        Money::from_micros(micros, Currency::EUR)
    }

    /// The recording time of the event at `position`.
    fn time(position: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap() + Duration::seconds(position)
    }

    /// `events` of the wallet of `account()` as the log stores them, the first with `sequence`
    /// and position `sequence`.
    fn stored(sequence: i64, events: &[WalletEvent]) -> Vec<StoredEvent> {
        events
            .iter()
            .zip(sequence..)
            .map(|(event, n)| StoredEvent {
                aggregate_type: "wallet".to_owned(),
                aggregate_id: account().to_string(),
                sequence: n,
                event_type: cqrs_es::DomainEvent::event_type(event),
                event_version: "1".to_owned(),
                payload: serde_json::to_value(event).unwrap(),
                metadata: serde_json::json!({}),
                position: FeedPosition {
                    transaction_id: 1,
                    global_position: n,
                },
                recorded_at: time(n),
            })
            .collect()
    }

    fn run(
        wallets: Vec<WalletRow>,
        lines: Vec<LineRow>,
        events: &[StoredEvent],
    ) -> Result<(Vec<WalletRow>, Vec<LineRow>), SubscriberError> {
        let mut work = UnitOfWork::new(wallets, lines);
        for event in decode(events)? {
            work.apply(event)?;
        }
        Ok((work.wallets.into_changed(), work.lines.into_changed()))
    }

    fn existing_wallet(reserved_micros: i64) -> WalletRow {
        WalletRow {
            account_id: account(),
            currency: "EUR".to_owned(),
            balance_micros: 40_000_000,
            reserved_micros,
            credit_limit_micros: 0,
            low_balance_threshold_micros: 0,
            version: 4,
            opened_at: time(1),
            updated_at: time(4),
        }
    }

    fn existing_withdrawal(id: Uuid, amount_micros: i64) -> LineRow {
        LineRow {
            id,
            account_id: account(),
            kind: KIND_WITHDRAWAL.to_owned(),
            status: STATUS_PENDING.to_owned(),
            stage: Some(STAGE_REQUESTED.to_owned()),
            amount_micros,
            currency: "EUR".to_owned(),
            balance_after_micros: None,
            reference: Some("DE89370400440532013000".to_owned()),
            reason: None,
            refunds_reference: None,
            gateway: None,
            failure_reason: None,
            decided_by: None,
            created_position: 4,
            created_at: time(4),
            updated_at: time(4),
        }
    }

    #[test]
    fn a_batch_that_opens_a_wallet_and_settles_a_top_up_creates_each_row_once_in_its_final_state() {
        let payment = PaymentId::from_uuid(Uuid::from_u128(7));
        let events = stored(
            1,
            &[
                WalletEvent::WalletOpened {
                    account_id: AccountId::from_uuid(account()),
                    currency: Currency::EUR,
                    opened_at: time(0),
                },
                WalletEvent::TopUpInitiated {
                    payment_id: payment,
                    amount: eur(25_000_000),
                    gateway: PaymentGateway::Manual,
                    gateway_reference: Some("STR-7".to_owned()),
                    initiated_at: time(2),
                },
                WalletEvent::TopUpCompleted {
                    payment_id: payment,
                    amount: eur(24_500_000),
                    balance_after: eur(24_500_000),
                    completed_at: time(3),
                },
            ],
        );

        let (wallets, lines) = run(vec![], vec![], &events).unwrap();

        let wallet = &wallets[..];
        assert_eq!(wallet.len(), 1);
        assert_eq!(wallet[0].balance_micros, 24_500_000);
        assert_eq!(wallet[0].version, 3);
        assert_eq!(wallet[0].opened_at, time(0));
        assert_eq!(wallet[0].updated_at, time(3));
        assert_eq!(
            lines,
            vec![LineRow {
                id: payment.as_uuid(),
                account_id: account(),
                kind: KIND_TOP_UP.to_owned(),
                status: STATUS_COMPLETED.to_owned(),
                stage: None,
                amount_micros: 24_500_000,
                currency: "EUR".to_owned(),
                balance_after_micros: Some(24_500_000),
                reference: Some("STR-7".to_owned()),
                reason: None,
                refunds_reference: None,
                gateway: Some("manual".to_owned()),
                failure_reason: None,
                decided_by: None,
                created_position: 2,
                created_at: time(2),
                updated_at: time(3),
            }]
        );
    }

    #[test]
    fn events_on_a_wallet_without_a_row_change_nothing_until_it_is_opened() {
        let events = stored(
            1,
            &[
                WalletEvent::CreditLimitChanged {
                    credit_limit: eur(10_000_000),
                    changed_at: time(1),
                },
                WalletEvent::TopUpCompleted {
                    payment_id: PaymentId::from_uuid(Uuid::from_u128(8)),
                    amount: eur(1_000_000),
                    balance_after: eur(1_000_000),
                    completed_at: time(2),
                },
                WalletEvent::WalletOpened {
                    account_id: AccountId::from_uuid(account()),
                    currency: Currency::EUR,
                    opened_at: time(0),
                },
            ],
        );

        let (wallets, lines) = run(vec![], vec![], &events).unwrap();

        assert_eq!(wallets.len(), 1);
        let wallet = &wallets[0];
        assert_eq!((wallet.balance_micros, wallet.credit_limit_micros), (0, 0));
        assert_eq!((wallet.version, wallet.updated_at), (3, time(0)));
        assert!(lines.is_empty());
    }

    #[test]
    fn opening_an_open_wallet_or_creating_a_line_that_exists_keeps_the_rows_as_they_were() {
        let reference = LedgerReference::parse("order:1").unwrap();
        let taken = LineRow {
            kind: KIND_DEBIT.to_owned(),
            ..existing_withdrawal(line_id(account(), &reference), 3_000_000)
        };
        let events = stored(
            5,
            &[
                WalletEvent::WalletOpened {
                    account_id: AccountId::from_uuid(account()),
                    currency: Currency::USD,
                    opened_at: time(5),
                },
                WalletEvent::WalletDebited {
                    reference,
                    amount: eur(1_000_000),
                    reason: DebitReason::Order,
                    balance_after: eur(39_000_000),
                    debited_at: time(6),
                },
            ],
        );

        let (wallets, lines) = run(vec![existing_wallet(0)], vec![taken], &events).unwrap();

        assert_eq!(
            wallets,
            vec![WalletRow {
                balance_micros: 39_000_000,
                version: 6,
                updated_at: time(6),
                ..existing_wallet(0)
            }]
        );
        assert!(lines.is_empty(), "the line that exists stays as it was");
    }

    #[test]
    fn a_rejection_releases_what_its_line_holds_and_nothing_without_a_line() {
        let held = WithdrawalId::from_uuid(Uuid::from_u128(21));
        let unknown = WithdrawalId::from_uuid(Uuid::from_u128(22));
        let reject = |withdrawal_id| WalletEvent::WithdrawalRejected {
            withdrawal_id,
            reason: "name mismatch".to_owned(),
            rejected_by: staff(),
            rejected_at: time(5),
        };
        let events = stored(5, &[reject(held), reject(unknown)]);
        let loaded = vec![existing_withdrawal(held.as_uuid(), 5_000_000)];

        let (wallets, lines) = run(vec![existing_wallet(5_000_000)], loaded, &events).unwrap();

        assert_eq!(wallets.len(), 1);
        assert_eq!(wallets[0].reserved_micros, 0);
        assert_eq!(wallets[0].version, 6);
        assert_eq!(lines.len(), 1, "no line for the unknown withdrawal");
        let line = &lines[0];
        assert_eq!(line.id, held.as_uuid());
        assert_eq!(line.status, STATUS_REJECTED);
        assert_eq!(line.stage.as_deref(), Some(STAGE_REJECTED));
        assert_eq!(line.failure_reason.as_deref(), Some("name mismatch"));
        assert_eq!(line.decided_by, Some(staff().as_uuid()));
        assert_eq!(line.updated_at, time(5));
    }

    #[test]
    fn a_withdrawal_requested_approved_and_paid_out_in_one_batch_leaves_nothing_reserved() {
        let id = WithdrawalId::from_uuid(Uuid::from_u128(23));
        let events = stored(
            5,
            &[
                WalletEvent::WithdrawalRequested {
                    withdrawal_id: id,
                    amount: eur(2_000_000),
                    destination: "DE02120300000000202051".to_owned(),
                    requested_at: time(5),
                },
                WalletEvent::WithdrawalApproved {
                    withdrawal_id: id,
                    approved_by: staff(),
                    approved_at: time(6),
                },
                WalletEvent::WithdrawalPaidOut {
                    withdrawal_id: id,
                    amount: eur(2_000_000),
                    balance_after: eur(38_000_000),
                    paid_out_at: time(7),
                },
            ],
        );

        let (wallets, lines) = run(vec![existing_wallet(1_000_000)], vec![], &events).unwrap();

        let wallet = &wallets[0];
        assert_eq!(
            (wallet.reserved_micros, wallet.balance_micros),
            (1_000_000, 38_000_000)
        );
        let line = &lines[0];
        assert_eq!(line.status, STATUS_COMPLETED);
        assert_eq!(line.stage.as_deref(), Some(STAGE_PAID_OUT));
        assert_eq!(line.balance_after_micros, Some(38_000_000));
        assert_eq!(line.decided_by, Some(staff().as_uuid()));
        assert_eq!((line.created_position, line.updated_at), (5, time(7)));
    }

    #[test]
    fn a_reservation_beyond_the_range_of_bigint_fails_the_batch() {
        let events = stored(
            5,
            &[WalletEvent::WithdrawalRequested {
                withdrawal_id: WithdrawalId::from_uuid(Uuid::from_u128(24)),
                amount: eur(2),
                destination: "DE02120300000000202051".to_owned(),
                requested_at: time(5),
            }],
        );

        let result = run(vec![existing_wallet(i64::MAX - 1)], vec![], &events);

        assert!(matches!(result, Err(SubscriberError::Decode { .. })));
    }

    #[test]
    fn other_aggregates_are_skipped_and_a_payload_that_is_no_wallet_event_fails_the_batch() {
        let mut events = stored(
            1,
            &[WalletEvent::LowBalanceThresholdChanged {
                threshold: eur(1),
                changed_at: time(1),
            }],
        );
        let mut other = events[0].clone();
        other.aggregate_type = "account".to_owned();
        other.payload = serde_json::json!({"Registered": {}});

        assert!(decode(std::slice::from_ref(&other)).unwrap().is_empty());
        events[0].payload = serde_json::json!({"Registered": {}});
        assert!(matches!(
            decode(&events),
            Err(SubscriberError::Decode { .. })
        ));
    }
}
