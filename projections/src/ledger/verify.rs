//! `stratus audit verify`: the ledger and the wallets read model checked against a fresh replay
//! of the log, with every difference listed in an [`AuditReport`].
//!
//! ## What is compared
//!
//! 1. **The chain.** Every `wallet` event is read from `events` in commit order and replayed per
//!    wallet through the domain's `Wallet::apply`, never through a read model. Sequences must run
//!    1, 2, 3…, the first event must open the wallet, and each movement's `balance_after` must be
//!    the balance before it plus or minus its amount (checked [`Money`] arithmetic in the wallet's
//!    currency). `apply` copies `balance_after`, so one broken link is reported once and the
//!    replay goes on from the recorded balance.
//! 2. **The postings.** The postings each event should have produced are computed from the
//!    replay with [`super::postings`], taking the gateway of a completed top-up from the replayed
//!    wallet (not from the ledger's own `ledger_top_ups`), and compared with `ledger_entries`
//!    row by row: a missing, an extra and a different row are each a difference.
//! 3. **Zero sum**: the stored postings of each currency sum to zero.
//! 4. **Wallet totals**: the stored postings of `wallet:<id>` sum to the replayed balance.
//! 5. **The wallets read model**: currency, balance, reserved amount, credit limit and low-balance
//!    threshold of every replayed wallet against its `wallets` row; a missing row, or a row for a
//!    wallet the log does not have, is a difference.
//! 6. **Coverage**: with [`VerifyOptions::required_position`], a projection whose checkpoint is
//!    behind that position is a difference (the check would not cover the whole log).
//!
//! The posting rule itself is shared with the projection, so a wrong rule would be expected and
//! stored alike; checks 3 and 4 do not depend on it and catch a rule that loses or invents money.
//!
//! ## Consistency: one snapshot, each read model at its own checkpoint
//!
//! Everything is read in one `REPEATABLE READ, READ ONLY` transaction, so events, postings,
//! wallet rows and checkpoints come from the same instant. A projection writes its rows and moves
//! its checkpoint in one transaction, so within that snapshot `ledger_entries` holds exactly the
//! postings of the events at or before the ledger's checkpoint (in feed order), and `wallets`
//! the state at the wallets projection's checkpoint. Each read model is compared with the replay
//! *at its own checkpoint*: a projection that is merely behind, or a server appending while the
//! check runs, never shows up as a false difference, and the check needs no lock and writes
//! nothing (a read-only transaction takes no transaction id, so it does not hold the feed's fence
//! back either). Being behind is reported separately: the CLI first catches `ledger` and `wallets`
//! up to the head of the log, then asks for that head as the required position.
//!
//! The `wallets` table belongs to the wallets projection ([`WALLETS_SUBSCRIBER`]). When no
//! subscriber of that name has ever run on the database (it has no checkpoint row), the table is
//! not maintained and the report says it was not compared instead of listing every wallet as
//! missing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::wallet::{MovementDirection, Wallet, WalletEvent};
use stratus_domain::{Currency, Money, MICROS_PER_UNIT};
use uuid::Uuid;

use super::{ledger_row_of, postings, LedgerRow, PostingError, LEDGER_COLUMNS, NAME};
use crate::position::FeedPosition;
use crate::stored_event::{StoredEvent, EVENT_COLUMNS, FEED_ORDER};

/// The subscriber that maintains the `wallets` table (its checkpoint row tells how far it is).
pub const WALLETS_SUBSCRIBER: &str = "wallets";

/// What a verification must cover beyond the consistency of each read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// When set, a projection whose checkpoint is below this feed position is a difference.
    pub required_position: Option<FeedPosition>,
}

/// One disagreement between the log and what was built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A wallet stream whose sequence does not continue by one.
    SequenceGap {
        aggregate_id: String,
        expected: i64,
        found: i64,
    },
    /// An event that is not a readable wallet event, or a stream id that is not an account id.
    Undecodable {
        aggregate_id: String,
        sequence: i64,
        message: String,
    },
    /// A wallet event before the wallet was opened.
    NotOpen { aggregate_id: String, sequence: i64 },
    /// A movement whose `balance_after` is not the balance before it plus or minus its amount.
    BrokenChain {
        aggregate_id: String,
        sequence: i64,
        balance_before: Money,
        signed_amount_micros: i128,
        amount_currency: Currency,
        balance_after: Money,
    },
    /// An event the posting rule cannot post.
    PostingRule {
        aggregate_id: String,
        sequence: i64,
        error: PostingError,
    },
    /// A posting the log calls for that `ledger_entries` does not have.
    MissingPosting { expected: LedgerRow },
    /// A row of `ledger_entries` that no event calls for.
    ExtraPosting { found: LedgerRow },
    /// A row of `ledger_entries` that differs from the posting its event calls for.
    DifferentPosting {
        expected: LedgerRow,
        found: LedgerRow,
    },
    /// The stored postings of a currency do not sum to zero.
    UnbalancedCurrency {
        currency: String,
        total_micros: i128,
    },
    /// The stored postings of a wallet do not sum to its replayed balance.
    WalletLedgerTotal {
        account_id: Uuid,
        ledger_total_micros: i128,
        replayed_balance: Money,
    },
    /// A wallet of the log without a `wallets` row.
    WalletRowMissing { account_id: Uuid },
    /// A `wallets` row for a wallet the log does not have (at the projection's checkpoint).
    WalletRowUnexpected { account_id: Uuid },
    /// A `wallets` column that differs from the replay.
    WalletField {
        account_id: Uuid,
        field: &'static str,
        read_model: String,
        replayed: String,
    },
    /// A projection that has not reached the required position.
    ProjectionBehind {
        subscriber: &'static str,
        checkpoint: FeedPosition,
        required: FeedPosition,
    },
}

/// How far one read model reaches into the log, and how much of it was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// The projection's checkpoint in the snapshot.
    pub checkpoint: FeedPosition,
    /// Wallet events at or before the checkpoint: those the read model was compared on.
    pub events_applied: usize,
    /// Wallet events after the checkpoint: not yet in the read model.
    pub events_pending: usize,
    /// Rows of the read model that were read.
    pub rows: usize,
}

/// The stored postings of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrencySummary {
    pub currency: String,
    pub postings: usize,
    /// Sum of all postings; zero when the currency balances.
    pub total_micros: i128,
    /// Total per ledger account, with every `wallet:<id>` summed under `wallet:*`.
    pub accounts: BTreeMap<String, i128>,
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Wallet streams in the log.
    pub wallets: usize,
    /// Wallet events in the log.
    pub wallet_events: usize,
    /// Of those, the events that move the balance.
    pub movements: usize,
    /// The ledger's reach.
    pub ledger: Coverage,
    /// The wallets read model's reach; `None` when no wallets projection has ever run here.
    pub wallets_read_model: Option<Coverage>,
    /// Stored postings per currency, ordered by currency code.
    pub currencies: Vec<CurrencySummary>,
    /// Every disagreement, in the order found; empty when everything matches.
    pub differences: Vec<Difference>,
}

impl AuditReport {
    /// Whether the log, the ledger and the read model agree.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Replays the log and compares the ledger and the wallets read model with it, in one snapshot.
///
/// # Errors
/// Only a failing database; everything found in the data is a [`Difference`] in the report.
pub async fn verify(pool: &PgPool, options: &VerifyOptions) -> Result<AuditReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let ledger_at = stored_checkpoint(&mut tx, NAME)
        .await?
        .unwrap_or(FeedPosition::START);
    let wallets_at = stored_checkpoint(&mut tx, WALLETS_SUBSCRIBER).await?;
    let mut audit = Audit::new(ledger_at, wallets_at);
    {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 ORDER BY {FEED_ORDER}"
        );
        let mut rows = sqlx::query(&sql).bind(Wallet::TYPE).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            audit.replay(&StoredEvent::from_row(&row)?);
        }
    }
    {
        let sql =
            format!("SELECT {LEDGER_COLUMNS} FROM ledger_entries ORDER BY global_position, line");
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            audit.check_posting(ledger_row_of(&row)?);
        }
    }
    if wallets_at.is_some() {
        let mut rows = sqlx::query(
            "SELECT account_id, currency, balance_micros, reserved_micros, credit_limit_micros, \
             low_balance_threshold_micros FROM wallets ORDER BY account_id",
        )
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            audit.check_wallet_row(&WalletFigures::of_row(&row)?);
        }
    }
    tx.commit().await?;
    Ok(audit.finish(options))
}

async fn stored_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<FeedPosition>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM subscriber_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(|(tx, pos)| {
        FeedPosition::from_db(&tx, pos).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    })
    .transpose()
}

/// The figures of a wallet that the `wallets` read model holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WalletFigures {
    account_id: Uuid,
    currency: String,
    balance_micros: i64,
    reserved_micros: i64,
    credit_limit_micros: i64,
    low_balance_threshold_micros: i64,
}

impl WalletFigures {
    fn of_wallet(account_id: Uuid, wallet: &Wallet) -> Option<Self> {
        Some(Self {
            account_id,
            currency: wallet.currency()?.code().to_owned(),
            balance_micros: wallet.balance()?.micros(),
            reserved_micros: wallet.reserved()?.micros(),
            credit_limit_micros: wallet.credit_limit()?.micros(),
            low_balance_threshold_micros: wallet.low_balance_threshold()?.micros(),
        })
    }

    fn of_row(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            account_id: row.try_get("account_id")?,
            currency: row.try_get("currency")?,
            balance_micros: row.try_get("balance_micros")?,
            reserved_micros: row.try_get("reserved_micros")?,
            credit_limit_micros: row.try_get("credit_limit_micros")?,
            low_balance_threshold_micros: row.try_get("low_balance_threshold_micros")?,
        })
    }

    /// `(column, value)` of every compared column.
    fn columns(&self) -> [(&'static str, String); 5] {
        [
            ("currency", self.currency.clone()),
            ("balance_micros", self.balance_micros.to_string()),
            ("reserved_micros", self.reserved_micros.to_string()),
            ("credit_limit_micros", self.credit_limit_micros.to_string()),
            (
                "low_balance_threshold_micros",
                self.low_balance_threshold_micros.to_string(),
            ),
        ]
    }
}

/// One wallet as replayed from the log.
#[derive(Default)]
struct Replay {
    wallet: Wallet,
    last_sequence: i64,
    /// The balance once the events at or before the ledger's checkpoint are applied.
    at_ledger: Option<Money>,
    /// The figures once the events at or before the wallets projection's checkpoint are applied.
    at_wallets: Option<WalletFigures>,
}

/// The state of one verification while the snapshot is read.
struct Audit {
    ledger_at: FeedPosition,
    wallets_at: Option<FeedPosition>,
    replays: BTreeMap<Uuid, Replay>,
    wallet_events: usize,
    movements: usize,
    ledger: Coverage,
    wallets: Option<Coverage>,
    /// Postings the log calls for and the ledger has not shown yet, by `(position, line)`.
    expected: BTreeMap<(i64, i16), LedgerRow>,
    currencies: BTreeMap<String, CurrencySummary>,
    wallet_totals: BTreeMap<Uuid, i128>,
    wallet_rows: BTreeSet<Uuid>,
    differences: Vec<Difference>,
}

impl Audit {
    fn new(ledger_at: FeedPosition, wallets_at: Option<FeedPosition>) -> Self {
        let coverage = |checkpoint| Coverage {
            checkpoint,
            events_applied: 0,
            events_pending: 0,
            rows: 0,
        };
        Self {
            ledger_at,
            wallets_at,
            replays: BTreeMap::new(),
            wallet_events: 0,
            movements: 0,
            ledger: coverage(ledger_at),
            wallets: wallets_at.map(coverage),
            expected: BTreeMap::new(),
            currencies: BTreeMap::new(),
            wallet_totals: BTreeMap::new(),
            wallet_rows: BTreeSet::new(),
            differences: Vec::new(),
        }
    }

    /// Applies one event (in commit order) to its wallet, checking the chain and recording the
    /// postings it calls for.
    fn replay(&mut self, stored: &StoredEvent) {
        self.wallet_events += 1;
        let in_ledger = stored.position <= self.ledger_at;
        count(&mut self.ledger, in_ledger);
        let in_wallets = self.wallets_at.map(|at| stored.position <= at);
        if let (Some(coverage), Some(applied)) = (self.wallets.as_mut(), in_wallets) {
            count(coverage, applied);
        }
        let undecodable = |message: String| Difference::Undecodable {
            aggregate_id: stored.aggregate_id.clone(),
            sequence: stored.sequence,
            message,
        };
        let account_id = match Uuid::parse_str(&stored.aggregate_id) {
            Ok(id) => id,
            Err(e) => return self.differences.push(undecodable(e.to_string())),
        };
        let replay = self.replays.entry(account_id).or_default();
        let expected_sequence = replay.last_sequence.saturating_add(1);
        if stored.sequence != expected_sequence {
            self.differences.push(Difference::SequenceGap {
                aggregate_id: stored.aggregate_id.clone(),
                expected: expected_sequence,
                found: stored.sequence,
            });
        }
        replay.last_sequence = stored.sequence;
        let event: WalletEvent = match serde_json::from_value(stored.payload.clone()) {
            Ok(event) => event,
            Err(e) => return self.differences.push(undecodable(e.to_string())),
        };
        let opens = matches!(event, WalletEvent::WalletOpened { .. });
        if !replay.wallet.is_open() && !opens {
            return self.differences.push(Difference::NotOpen {
                aggregate_id: stored.aggregate_id.clone(),
                sequence: stored.sequence,
            });
        }
        if event.balance_movement().is_some() {
            self.movements += 1;
            if let Some(broken) = broken_link(stored, &replay.wallet, &event) {
                self.differences.push(broken);
            }
        }
        if in_ledger {
            let gateway = match &event {
                WalletEvent::TopUpCompleted { payment_id, .. } => {
                    replay.wallet.top_up(payment_id).map(|t| t.gateway())
                }
                _ => None,
            };
            match postings(account_id, &event, gateway) {
                Ok(postings) => {
                    for posting in &postings {
                        let row = LedgerRow::of(stored, posting);
                        self.expected.insert(row.key(), row);
                    }
                }
                Err(error) => self.differences.push(Difference::PostingRule {
                    aggregate_id: stored.aggregate_id.clone(),
                    sequence: stored.sequence,
                    error,
                }),
            }
        }
        replay.wallet.apply(event);
        if in_ledger {
            replay.at_ledger = replay.wallet.balance();
        }
        if in_wallets == Some(true) {
            replay.at_wallets = WalletFigures::of_wallet(account_id, &replay.wallet);
        }
    }

    /// Compares one stored posting with the one its event calls for and adds it to the sums.
    fn check_posting(&mut self, found: LedgerRow) {
        self.ledger.rows += 1;
        let amount = i128::from(found.amount_micros);
        let summary = self
            .currencies
            .entry(found.currency.clone())
            .or_insert_with(|| CurrencySummary {
                currency: found.currency.clone(),
                ..CurrencySummary::default()
            });
        summary.postings += 1;
        summary.total_micros += amount;
        let account = if found.account_id.is_some() {
            format!("{}*", super::WALLET_ACCOUNT_PREFIX)
        } else {
            found.ledger_account.clone()
        };
        *summary.accounts.entry(account).or_default() += amount;
        if let Some(account_id) = found.account_id {
            *self.wallet_totals.entry(account_id).or_default() += amount;
        }
        match self.expected.remove(&found.key()) {
            None => self.differences.push(Difference::ExtraPosting { found }),
            Some(expected) if expected != found => self
                .differences
                .push(Difference::DifferentPosting { expected, found }),
            Some(_) => {}
        }
    }

    /// Compares one `wallets` row with the replay at the projection's checkpoint.
    fn check_wallet_row(&mut self, row: &WalletFigures) {
        if let Some(coverage) = self.wallets.as_mut() {
            coverage.rows += 1;
        }
        self.wallet_rows.insert(row.account_id);
        let replayed = self
            .replays
            .get(&row.account_id)
            .and_then(|r| r.at_wallets.as_ref());
        let Some(replayed) = replayed else {
            return self.differences.push(Difference::WalletRowUnexpected {
                account_id: row.account_id,
            });
        };
        for ((field, read_model), (_, replayed)) in
            row.columns().into_iter().zip(replayed.columns())
        {
            if read_model != replayed {
                self.differences.push(Difference::WalletField {
                    account_id: row.account_id,
                    field,
                    read_model,
                    replayed,
                });
            }
        }
    }

    fn finish(mut self, options: &VerifyOptions) -> AuditReport {
        let missing = std::mem::take(&mut self.expected);
        self.differences.extend(
            missing
                .into_values()
                .map(|expected| Difference::MissingPosting { expected }),
        );
        for summary in self.currencies.values() {
            if summary.total_micros != 0 {
                self.differences.push(Difference::UnbalancedCurrency {
                    currency: summary.currency.clone(),
                    total_micros: summary.total_micros,
                });
            }
        }
        for (account_id, replay) in &self.replays {
            let Some(balance) = replay.at_ledger else {
                continue;
            };
            let total = self.wallet_totals.get(account_id).copied().unwrap_or(0);
            if total != i128::from(balance.micros()) {
                self.differences.push(Difference::WalletLedgerTotal {
                    account_id: *account_id,
                    ledger_total_micros: total,
                    replayed_balance: balance,
                });
            }
        }
        if self.wallets.is_some() {
            for (account_id, replay) in &self.replays {
                if replay.at_wallets.is_some() && !self.wallet_rows.contains(account_id) {
                    self.differences.push(Difference::WalletRowMissing {
                        account_id: *account_id,
                    });
                }
            }
        }
        if let Some(required) = options.required_position {
            let mut behind = vec![(NAME, self.ledger.checkpoint)];
            behind.extend(self.wallets.map(|w| (WALLETS_SUBSCRIBER, w.checkpoint)));
            for (subscriber, checkpoint) in behind {
                if checkpoint < required {
                    self.differences.push(Difference::ProjectionBehind {
                        subscriber,
                        checkpoint,
                        required,
                    });
                }
            }
        }
        AuditReport {
            wallets: self.replays.len(),
            wallet_events: self.wallet_events,
            movements: self.movements,
            ledger: self.ledger,
            wallets_read_model: self.wallets,
            currencies: self.currencies.into_values().collect(),
            differences: self.differences,
        }
    }
}

fn count(coverage: &mut Coverage, applied: bool) {
    if applied {
        coverage.events_applied += 1;
    } else {
        coverage.events_pending += 1;
    }
}

/// The difference a movement makes when its `balance_after` does not follow from the balance
/// before it, `None` when the link holds.
fn broken_link(stored: &StoredEvent, wallet: &Wallet, event: &WalletEvent) -> Option<Difference> {
    let movement = event.balance_movement()?;
    let before = wallet.balance()?;
    let signed = movement.signed_micros();
    let follows = match movement.direction {
        MovementDirection::Credit => before.checked_add(movement.amount),
        MovementDirection::Debit => before.checked_sub(movement.amount),
    };
    if follows == Ok(movement.balance_after) {
        return None;
    }
    Some(Difference::BrokenChain {
        aggregate_id: stored.aggregate_id.clone(),
        sequence: stored.sequence,
        balance_before: before,
        signed_amount_micros: signed,
        amount_currency: movement.amount.currency(),
        balance_after: movement.balance_after,
    })
}

/// `-12.345600`: exact decimal form of a micro-unit amount of any size.
pub fn decimal(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let per_unit = u128::from(MICROS_PER_UNIT.unsigned_abs());
    format!("{sign}{}.{:06}", magnitude / per_unit, magnitude % per_unit)
}

fn posting(row: &LedgerRow) -> String {
    format!(
        "{}/{}: {} {} {} ({}, wallet {} event #{}, recorded {})",
        row.global_position,
        row.line,
        row.ledger_account,
        decimal(i128::from(row.amount_micros)),
        row.currency,
        row.kind,
        row.aggregate_id,
        row.sequence,
        row.recorded_at.to_rfc3339(),
    )
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SequenceGap {
                aggregate_id,
                expected,
                found,
            } => write!(
                f,
                "wallet {aggregate_id}: event #{found} where #{expected} was due"
            ),
            Self::Undecodable {
                aggregate_id,
                sequence,
                message,
            } => write!(
                f,
                "wallet {aggregate_id} event #{sequence} cannot be read: {message}"
            ),
            Self::NotOpen {
                aggregate_id,
                sequence,
            } => write!(
                f,
                "wallet {aggregate_id} event #{sequence} comes before the wallet was opened"
            ),
            Self::BrokenChain {
                aggregate_id,
                sequence,
                balance_before,
                signed_amount_micros,
                amount_currency,
                balance_after,
            } => write!(
                f,
                "wallet {aggregate_id} event #{sequence}: broken chain, balance {balance_before} \
                 {sign}{amount} {amount_currency} does not give the recorded balance_after {balance_after}",
                sign = if *signed_amount_micros < 0 { "" } else { "+" },
                amount = decimal(*signed_amount_micros),
            ),
            Self::PostingRule {
                aggregate_id,
                sequence,
                error,
            } => write!(f, "wallet {aggregate_id} event #{sequence}: {error}"),
            Self::MissingPosting { expected } => {
                write!(f, "missing posting {}", posting(expected))
            }
            Self::ExtraPosting { found } => write!(f, "extra posting {}", posting(found)),
            Self::DifferentPosting { expected, found } => write!(
                f,
                "different posting: ledger has {}, the log calls for {}",
                posting(found),
                posting(expected)
            ),
            Self::UnbalancedCurrency {
                currency,
                total_micros,
            } => write!(
                f,
                "{currency} postings sum to {} instead of zero",
                decimal(*total_micros)
            ),
            Self::WalletLedgerTotal {
                account_id,
                ledger_total_micros,
                replayed_balance,
            } => write!(
                f,
                "wallet {account_id}: ledger total {} but the replayed balance is {replayed_balance}",
                decimal(*ledger_total_micros)
            ),
            Self::WalletRowMissing { account_id } => {
                write!(f, "wallet {account_id} has no row in the wallets read model")
            }
            Self::WalletRowUnexpected { account_id } => write!(
                f,
                "the wallets read model has a row for {account_id}, which the log has no open wallet for"
            ),
            Self::WalletField {
                account_id,
                field,
                read_model,
                replayed,
            } => write!(
                f,
                "wallet {account_id}: wallets.{field} is {read_model}, the replay gives {replayed}"
            ),
            Self::ProjectionBehind {
                subscriber,
                checkpoint,
                required,
            } => write!(
                f,
                "projection {subscriber} is at {checkpoint}, behind the head of the log {required}"
            ),
        }
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "audit verify: {} wallets, {} wallet events, {} movements",
            self.wallets, self.wallet_events, self.movements
        )?;
        let ledger = &self.ledger;
        writeln!(
            f,
            "ledger at position {}: {} wallet events applied, {} pending, {} postings",
            ledger.checkpoint, ledger.events_applied, ledger.events_pending, ledger.rows
        )?;
        for summary in &self.currencies {
            writeln!(
                f,
                "  {}: {} postings, sum {}",
                summary.currency,
                summary.postings,
                decimal(summary.total_micros)
            )?;
            for (account, total) in &summary.accounts {
                writeln!(f, "    {account:<24} {:>24}", decimal(*total))?;
            }
        }
        match &self.wallets_read_model {
            Some(wallets) => writeln!(
                f,
                "wallets read model at position {}: {} rows, {} wallet events applied, {} pending",
                wallets.checkpoint, wallets.rows, wallets.events_applied, wallets.events_pending
            )?,
            None => writeln!(
                f,
                "wallets read model: not compared (no `{WALLETS_SUBSCRIBER}` projection has run on this database)"
            )?,
        }
        if self.is_clean() {
            let read_model = if self.wallets_read_model.is_some() {
                ", the wallets read model matches the replay"
            } else {
                ""
            };
            writeln!(
                f,
                "OK: the postings match the log, every currency sums to zero, every wallet's \
                 postings equal its replayed balance{read_model}"
            )
        } else {
            writeln!(f, "FAILED: {} differences", self.differences.len())?;
            for difference in &self.differences {
                writeln!(f, "  - {difference}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_exactly_with_six_decimals() {
        assert_eq!(decimal(0), "0.000000");
        assert_eq!(decimal(-13_889), "-0.013889");
        assert_eq!(decimal(25_000_000), "25.000000");
        assert_eq!(decimal(i128::from(i64::MIN) * 3), "-27670116110564.327424");
    }
}
