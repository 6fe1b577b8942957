//! The `Wallet` aggregate: one prepaid balance per account, kept as a ledger.
//!
//! Every event that moves money ([`WalletEvent::TopUpCompleted`], [`WalletEvent::WalletDebited`],
//! [`WalletEvent::WalletRefunded`], [`WalletEvent::WithdrawalPaidOut`]) records the amount and the
//! balance after it, so the log alone proves every balance ([`WalletEvent::balance_movement`]
//! reads that out for projections and `audit verify`).
//!
//! ## Rules
//!
//! - The wallet is opened once, in one currency; nothing else is accepted before that. Every
//!   amount must be in that currency, and every movement amount greater than zero.
//! - The balance never goes below `−credit_limit` (the credit limit defaults to zero, so by default
//!   it never goes negative). Billing may raise the limit, or lower it down to what is in use.
//! - Money that enters or leaves through a gateway (top-ups, withdrawals) is a whole number of the
//!   currency's minor unit; debits and refunds may be finer (hourly metering in micro-units).
//! - A top-up is settled once: completing it again is a no-op, failing a completed one (or
//!   completing a failed one) is refused. A Stripe top-up completes for exactly the amount
//!   initiated; a manual one (bank transfer) credits what was actually received.
//!
//! ## Withdrawals: reserved at request, paid out at payout
//!
//! A withdrawal request reserves its amount: `available = balance − reserved` must cover it (the
//! credit limit never funds a withdrawal, that would be lending cash). Debits respect reservations
//! too: a debit may take at most `balance − reserved + credit_limit`. The balance goes down only
//! when the payout is marked done ([`WalletEvent::WithdrawalPaidOut`]), not at approval: until the
//! bank transfer has left, the money is still the customer's and a rejection after approval (the
//! transfer bounced, the destination was wrong) only releases the reservation, without a
//! compensating credit in the ledger. Approval is a staff decision, not a money movement.
//!
//! ## Idempotency and the growth of the state
//!
//! Debits and refunds carry a [`LedgerReference`] chosen by the caller. The aggregate remembers
//! every reference it applied with its kind and amount ([`LedgerEntry`]): the same movement
//! asked again (same reference, same kind, same amount) is a no-op that records nothing; the same
//! reference with another kind or amount is refused as [`WalletError::ReferenceReused`]. Top-ups
//! and withdrawals are idempotent the same way by their ids. A refused command records nothing,
//! so a retry after a refusal (more funds arrived) can still succeed.
//!
//! That memory grows with every movement (an hourly VM adds ~720 references a month). It is kept
//! compact (micro-units, no currency, no text) but it is the reason issue 6 will add snapshots of
//! this aggregate; until then every command replays the whole stream.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, PaymentId, WithdrawalId};
use crate::values::{Currency, LedgerReference, Money, MoneyError};

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod tests;

/// Longest accepted withdrawal destination, in characters: an IBAN has at most 34, this leaves
/// room for a BIC and an account holder's name while keeping events small.
pub const WITHDRAWAL_DESTINATION_MAX_CHARS: usize = 200;

/// The state a wallet needs to decide on commands, rebuilt by applying its events in order.
/// `None` until [`WalletEvent::WalletOpened`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    open: Option<OpenWallet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenWallet {
    account_id: AccountId,
    currency: Currency,
    balance: Money,
    /// Sum of the withdrawals requested or approved and not yet paid out or rejected.
    reserved: Money,
    credit_limit: Money,
    low_balance_threshold: Money,
    top_ups: BTreeMap<PaymentId, TopUpState>,
    withdrawals: BTreeMap<WithdrawalId, WithdrawalState>,
    ledger: BTreeMap<LedgerReference, LedgerEntry>,
}

impl Wallet {
    /// Whether `WalletOpened` has been applied.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The account the wallet belongs to (its aggregate id is that account's id).
    pub fn account_id(&self) -> Option<AccountId> {
        self.open.as_ref().map(|w| w.account_id)
    }

    /// The one currency of the wallet.
    pub fn currency(&self) -> Option<Currency> {
        self.open.as_ref().map(|w| w.currency)
    }

    /// The balance after the last movement. Negative only down to `−credit_limit`.
    pub fn balance(&self) -> Option<Money> {
        self.open.as_ref().map(|w| w.balance)
    }

    /// What pending withdrawals hold back: never negative.
    pub fn reserved(&self) -> Option<Money> {
        self.open.as_ref().map(|w| w.reserved)
    }

    /// `balance − reserved`: what a new withdrawal may take.
    pub fn available(&self) -> Option<Money> {
        self.open
            .as_ref()
            .and_then(|w| w.balance.checked_sub(w.reserved).ok())
    }

    /// How far below zero debits may take the balance; zero unless billing raised it.
    pub fn credit_limit(&self) -> Option<Money> {
        self.open.as_ref().map(|w| w.credit_limit)
    }

    /// Below this balance the customer should be warned; zero unless set.
    pub fn low_balance_threshold(&self) -> Option<Money> {
        self.open.as_ref().map(|w| w.low_balance_threshold)
    }

    /// One top-up, whatever its status.
    pub fn top_up(&self, payment_id: &PaymentId) -> Option<&TopUpState> {
        self.open.as_ref()?.top_ups.get(payment_id)
    }

    /// One withdrawal, whatever its status.
    pub fn withdrawal(&self, withdrawal_id: &WithdrawalId) -> Option<&WithdrawalState> {
        self.open.as_ref()?.withdrawals.get(withdrawal_id)
    }

    /// What was applied under a debit or refund reference.
    pub fn ledger_entry(&self, reference: &LedgerReference) -> Option<&LedgerEntry> {
        self.open.as_ref()?.ledger.get(reference)
    }
}

/// What the wallet remembers about one top-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpState {
    amount: Money,
    gateway: PaymentGateway,
    status: TopUpStatus,
    amount_received: Option<Money>,
}

impl TopUpState {
    /// The amount the top-up was initiated for.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Who collects the money.
    pub fn gateway(&self) -> PaymentGateway {
        self.gateway
    }

    /// Pending, completed or failed.
    pub fn status(&self) -> TopUpStatus {
        self.status
    }

    /// What was credited, once completed (may differ from [`TopUpState::amount`] for manual
    /// top-ups).
    pub fn amount_received(&self) -> Option<Money> {
        self.amount_received
    }
}

/// The life cycle of a top-up. `Completed` and `Failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpStatus {
    /// Waiting for the gateway or for billing staff.
    Pending,
    /// The money arrived and was credited.
    Completed,
    /// The payment did not go through; nothing was credited.
    Failed,
}

/// What the wallet remembers about one withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalState {
    amount: Money,
    destination: String,
    status: WithdrawalStatus,
}

impl WithdrawalState {
    /// The amount requested (and reserved while pending).
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Where the money goes, as given (trimmed).
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Where the withdrawal is in its life cycle.
    pub fn status(&self) -> WithdrawalStatus {
        self.status
    }
}

/// The life cycle of a withdrawal: `Requested → Approved → PaidOut`, or `Rejected` from
/// `Requested` or `Approved`. `PaidOut` and `Rejected` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Reserved, waiting for billing staff.
    Requested,
    /// Approved by billing staff, still reserved, waiting for the transfer.
    Approved,
    /// Refused; the reservation was released.
    Rejected,
    /// The money left; the balance went down.
    PaidOut,
}

/// What one debit or refund reference was used for: kept compact (micro-units of the wallet's
/// currency) because the wallet remembers every reference it ever applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerEntry {
    /// A debit, and how much of it refunds that name it have given back so far.
    Debit {
        amount_micros: i64,
        refunded_micros: i64,
    },
    /// A refund (a credit).
    Refund { amount_micros: i64 },
}

/// Who collects a top-up. Stored in events by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentGateway {
    /// Card payment through Stripe; settled by its webhook for exactly the amount initiated.
    Stripe,
    /// Bank transfer confirmed by billing staff with the amount actually received.
    Manual,
}

impl PaymentGateway {
    /// Every gateway, in declaration order.
    pub const ALL: [PaymentGateway; 2] = [Self::Stripe, Self::Manual];

    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Manual => "manual",
        }
    }

    /// The gateway of a stored or wire name (exact match, as in a URL path segment); `None` for
    /// any other text.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|gateway| gateway.as_str() == name)
    }
}

/// What a debit pays for. Stored in events by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebitReason {
    /// Paying an order.
    Order,
    /// Settling an invoice.
    Invoice,
    /// Metered usage of a VM for one hour.
    VmHour,
    /// A correction by billing staff.
    Adjustment,
}

impl DebitReason {
    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Invoice => "invoice",
            Self::VmHour => "vm_hour",
            Self::Adjustment => "adjustment",
        }
    }
}

/// Why money is given back. Stored in events by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// An order was cancelled or failed.
    Order,
    /// An invoice was credited.
    Invoice,
    /// Metered VM usage was corrected.
    VmHour,
    /// A credit granted by support, not tied to a debit.
    Goodwill,
    /// A correction by billing staff.
    Adjustment,
}

impl RefundReason {
    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Invoice => "invoice",
            Self::VmHour => "vm_hour",
            Self::Goodwill => "goodwill",
            Self::Adjustment => "adjustment",
        }
    }
}

/// What can be asked of a wallet. Time, ids and references are chosen by the caller; amounts are
/// already parsed [`Money`].
#[derive(Debug, Clone)]
pub enum WalletCommand {
    /// Create the wallet of `account_id` (whose id is also the wallet's aggregate id).
    Open {
        account_id: AccountId,
        currency: Currency,
        occurred_at: DateTime<Utc>,
    },
    /// Record that a top-up was started. Idempotent by `payment_id`.
    InitiateTopUp {
        payment_id: PaymentId,
        amount: Money,
        gateway: PaymentGateway,
        /// The gateway's own id (a Stripe PaymentIntent, a bank-transfer reference).
        gateway_reference: Option<String>,
        occurred_at: DateTime<Utc>,
    },
    /// The money arrived: credit what was received. A no-op when already completed.
    CompleteTopUp {
        payment_id: PaymentId,
        amount_received: Money,
        occurred_at: DateTime<Utc>,
    },
    /// The payment did not go through. A no-op when already failed.
    FailTopUp {
        payment_id: PaymentId,
        reason: String,
        occurred_at: DateTime<Utc>,
    },
    /// Take money out for something the customer bought. Idempotent by `reference`.
    Debit {
        reference: LedgerReference,
        amount: Money,
        reason: DebitReason,
        occurred_at: DateTime<Utc>,
    },
    /// Give money back. Idempotent by `reference` (its own, not the debit's). When it names the
    /// debit it gives back (`refunds_debit`), all refunds naming that debit together may not
    /// exceed it.
    Refund {
        reference: LedgerReference,
        refunds_debit: Option<LedgerReference>,
        amount: Money,
        reason: RefundReason,
        occurred_at: DateTime<Utc>,
    },
    /// Ask for money to be paid out; reserves it. Idempotent by `withdrawal_id`.
    RequestWithdrawal {
        withdrawal_id: WithdrawalId,
        amount: Money,
        destination: String,
        occurred_at: DateTime<Utc>,
    },
    /// Billing staff accept a requested withdrawal.
    ApproveWithdrawal {
        withdrawal_id: WithdrawalId,
        approved_by: AccountId,
        occurred_at: DateTime<Utc>,
    },
    /// Billing staff refuse a requested or approved withdrawal; releases the reservation.
    RejectWithdrawal {
        withdrawal_id: WithdrawalId,
        reason: String,
        rejected_by: AccountId,
        occurred_at: DateTime<Utc>,
    },
    /// The transfer of an approved withdrawal left: the balance goes down.
    MarkWithdrawalPaidOut {
        withdrawal_id: WithdrawalId,
        occurred_at: DateTime<Utc>,
    },
    /// Warn the customer below this balance (zero or more).
    SetLowBalanceThreshold {
        amount: Money,
        occurred_at: DateTime<Utc>,
    },
    /// Billing staff allow debits to take the balance this far below zero (zero or more).
    SetCreditLimit {
        amount: Money,
        occurred_at: DateTime<Utc>,
    },
}

/// What happened to a wallet. A stored format: variant names, field names and versions are
/// pinned by tests and never change; evolve by adding a version and an upcaster.
///
/// Every event that moves the balance carries `amount` (always positive) and `balance_after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    /// The wallet was created with a zero balance, credit limit and low-balance threshold.
    WalletOpened {
        account_id: AccountId,
        currency: Currency,
        opened_at: DateTime<Utc>,
    },
    /// A top-up was started; nothing is credited yet.
    TopUpInitiated {
        payment_id: PaymentId,
        amount: Money,
        gateway: PaymentGateway,
        gateway_reference: Option<String>,
        initiated_at: DateTime<Utc>,
    },
    /// A top-up arrived. Movement: credit of `amount` (what was received).
    TopUpCompleted {
        payment_id: PaymentId,
        amount: Money,
        balance_after: Money,
        completed_at: DateTime<Utc>,
    },
    /// A top-up did not go through.
    TopUpFailed {
        payment_id: PaymentId,
        reason: String,
        failed_at: DateTime<Utc>,
    },
    /// Movement: debit of `amount`.
    WalletDebited {
        reference: LedgerReference,
        amount: Money,
        reason: DebitReason,
        balance_after: Money,
        debited_at: DateTime<Utc>,
    },
    /// Movement: credit of `amount`.
    WalletRefunded {
        reference: LedgerReference,
        refunds_debit: Option<LedgerReference>,
        amount: Money,
        reason: RefundReason,
        balance_after: Money,
        refunded_at: DateTime<Utc>,
    },
    /// A withdrawal was requested; `amount` is reserved, the balance is unchanged.
    WithdrawalRequested {
        withdrawal_id: WithdrawalId,
        amount: Money,
        destination: String,
        requested_at: DateTime<Utc>,
    },
    /// Billing staff approved a withdrawal; it stays reserved until paid out.
    WithdrawalApproved {
        withdrawal_id: WithdrawalId,
        approved_by: AccountId,
        approved_at: DateTime<Utc>,
    },
    /// Billing staff rejected a withdrawal; its reservation is released.
    WithdrawalRejected {
        withdrawal_id: WithdrawalId,
        reason: String,
        rejected_by: AccountId,
        rejected_at: DateTime<Utc>,
    },
    /// Movement: debit of `amount`, which leaves the reservation and the wallet.
    WithdrawalPaidOut {
        withdrawal_id: WithdrawalId,
        amount: Money,
        balance_after: Money,
        paid_out_at: DateTime<Utc>,
    },
    /// The low-balance warning threshold changed.
    LowBalanceThresholdChanged {
        threshold: Money,
        changed_at: DateTime<Utc>,
    },
    /// The credit limit changed.
    CreditLimitChanged {
        credit_limit: Money,
        changed_at: DateTime<Utc>,
    },
}

/// Every `event_type()` a [`WalletEvent`] can have, for upcasters and projections that filter by
/// type.
pub const WALLET_EVENT_TYPES: &[&str] = &[
    "WalletOpened",
    "TopUpInitiated",
    "TopUpCompleted",
    "TopUpFailed",
    "WalletDebited",
    "WalletRefunded",
    "WithdrawalRequested",
    "WithdrawalApproved",
    "WithdrawalRejected",
    "WithdrawalPaidOut",
    "LowBalanceThresholdChanged",
    "CreditLimitChanged",
];

/// The version every [`WalletEvent`] is currently written with.
const EVENT_VERSION: &str = "1";

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::WalletOpened { .. } => "WalletOpened",
            Self::TopUpInitiated { .. } => "TopUpInitiated",
            Self::TopUpCompleted { .. } => "TopUpCompleted",
            Self::TopUpFailed { .. } => "TopUpFailed",
            Self::WalletDebited { .. } => "WalletDebited",
            Self::WalletRefunded { .. } => "WalletRefunded",
            Self::WithdrawalRequested { .. } => "WithdrawalRequested",
            Self::WithdrawalApproved { .. } => "WithdrawalApproved",
            Self::WithdrawalRejected { .. } => "WithdrawalRejected",
            Self::WithdrawalPaidOut { .. } => "WithdrawalPaidOut",
            Self::LowBalanceThresholdChanged { .. } => "LowBalanceThresholdChanged",
            Self::CreditLimitChanged { .. } => "CreditLimitChanged",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Which way a movement moved the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MovementDirection {
    /// Money in: a completed top-up or a refund.
    Credit,
    /// Money out: a debit or a paid-out withdrawal.
    Debit,
}

/// One change of the balance, read out of an event: what a ledger line or a double-entry posting
/// is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceMovement {
    /// In or out.
    pub direction: MovementDirection,
    /// Always positive.
    pub amount: Money,
    /// The balance once this movement is applied.
    pub balance_after: Money,
}

impl BalanceMovement {
    /// The amount with its sign (credits positive), widened so that no sum of movements of
    /// `i64` amounts can overflow.
    pub fn signed_micros(&self) -> i128 {
        let micros = i128::from(self.amount.micros());
        match self.direction {
            MovementDirection::Credit => micros,
            MovementDirection::Debit => -micros,
        }
    }
}

impl WalletEvent {
    /// The movement this event records, if it moves the balance.
    pub fn balance_movement(&self) -> Option<BalanceMovement> {
        let (direction, amount, balance_after) = match self {
            Self::TopUpCompleted {
                amount,
                balance_after,
                ..
            }
            | Self::WalletRefunded {
                amount,
                balance_after,
                ..
            } => (MovementDirection::Credit, amount, balance_after),
            Self::WalletDebited {
                amount,
                balance_after,
                ..
            }
            | Self::WithdrawalPaidOut {
                amount,
                balance_after,
                ..
            } => (MovementDirection::Debit, amount, balance_after),
            Self::WalletOpened { .. }
            | Self::TopUpInitiated { .. }
            | Self::TopUpFailed { .. }
            | Self::WithdrawalRequested { .. }
            | Self::WithdrawalApproved { .. }
            | Self::WithdrawalRejected { .. }
            | Self::LowBalanceThresholdChanged { .. }
            | Self::CreditLimitChanged { .. } => return None,
        };
        Some(BalanceMovement {
            direction,
            amount: *amount,
            balance_after: *balance_after,
        })
    }
}

/// Why a command was refused. One variant per business rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// `Open` on a wallet that is already open.
    #[error("the wallet is already open")]
    WalletAlreadyOpen,
    /// Any command but `Open` before the wallet was opened.
    #[error("the wallet is not open")]
    WalletNotOpen,
    /// An amount in another currency than the wallet's.
    #[error("currency mismatch: the wallet holds {wallet}, the amount is in {given}")]
    CurrencyMismatch { wallet: Currency, given: Currency },
    /// A movement amount of zero or less.
    #[error("the amount must be greater than zero")]
    AmountNotPositive,
    /// A negative credit limit or low-balance threshold.
    #[error("the amount must not be negative")]
    AmountNegative,
    /// A top-up or withdrawal amount finer than the currency's minor unit.
    #[error("too many decimals: payments take at most {max_decimals}")]
    TooManyDecimals { max_decimals: u8 },
    /// The result would not fit in `i64` micro-units.
    #[error("the amount is too large")]
    AmountOverflow,
    /// A debit beyond `balance − reserved + credit_limit`, or a withdrawal beyond
    /// `balance − reserved`.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// A reference already used for another kind of movement or another amount.
    #[error("this reference was already used for a different movement")]
    ReferenceReused,
    /// A refund names a debit reference the wallet never debited.
    #[error("no debit with this reference")]
    DebitNotFound,
    /// A refund would give back more than is left of the debit it names.
    #[error("the refund exceeds what is left of the debit")]
    RefundExceedsDebit,
    /// `InitiateTopUp` with a payment id already used for another amount or gateway.
    #[error("a payment with this id already exists with other details")]
    PaymentAlreadyExists,
    /// No top-up with this payment id in this wallet.
    #[error("no such payment")]
    PaymentNotFound,
    /// Completing a failed top-up, or failing a completed one.
    #[error("the payment is already settled")]
    PaymentAlreadySettled,
    /// A Stripe top-up reported with another amount than initiated.
    #[error("the amount received does not match the amount charged")]
    TopUpAmountMismatch,
    /// `RequestWithdrawal` with an id already used for another amount or destination.
    #[error("a withdrawal with this id already exists with other details")]
    WithdrawalAlreadyExists,
    /// No withdrawal with this id in this wallet.
    #[error("no such withdrawal")]
    WithdrawalNotFound,
    /// Acting on a withdrawal that was already rejected or paid out.
    #[error("the withdrawal is already rejected or paid out")]
    WithdrawalAlreadySettled,
    /// Paying out a withdrawal that was not approved.
    #[error("the withdrawal has not been approved")]
    WithdrawalNotApproved,
    /// A blank or over-long withdrawal destination, or one with control characters.
    #[error("invalid destination: expected 1 to {max} characters without control characters", max = WITHDRAWAL_DESTINATION_MAX_CHARS)]
    InvalidDestination,
    /// A credit limit lower than what debits already use of it.
    #[error("the credit limit cannot go below what is already in use")]
    CreditLimitBelowUsage,
}

impl WalletError {
    /// Stable machine-readable code for API error bodies. Never change an existing code: clients
    /// branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WalletAlreadyOpen => "wallet_already_open",
            Self::WalletNotOpen => "wallet_not_open",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::AmountNotPositive => "amount_not_positive",
            Self::AmountNegative => "amount_negative",
            Self::TooManyDecimals { .. } => "too_many_decimals",
            Self::AmountOverflow => "amount_overflow",
            Self::InsufficientFunds => "insufficient_funds",
            Self::ReferenceReused => "reference_reused",
            Self::DebitNotFound => "debit_not_found",
            Self::RefundExceedsDebit => "refund_exceeds_debit",
            Self::PaymentAlreadyExists => "payment_already_exists",
            Self::PaymentNotFound => "payment_not_found",
            Self::PaymentAlreadySettled => "payment_already_settled",
            Self::TopUpAmountMismatch => "top_up_amount_mismatch",
            Self::WithdrawalAlreadyExists => "withdrawal_already_exists",
            Self::WithdrawalNotFound => "withdrawal_not_found",
            Self::WithdrawalAlreadySettled => "withdrawal_already_settled",
            Self::WithdrawalNotApproved => "withdrawal_not_approved",
            Self::InvalidDestination => "invalid_destination",
            Self::CreditLimitBelowUsage => "credit_limit_below_usage",
        }
    }

    /// A failed arithmetic step. The wallet checks currencies before it computes, so in practice
    /// only overflow reaches this; a mismatch is still reported as one.
    fn from_arithmetic(error: MoneyError) -> Self {
        match error {
            MoneyError::CurrencyMismatch { expected, found } => Self::CurrencyMismatch {
                wallet: expected,
                given: found,
            },
            _ => Self::AmountOverflow,
        }
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let Some(wallet) = &mut self.open {
            wallet.apply(event);
        } else if let WalletEvent::WalletOpened {
            account_id,
            currency,
            ..
        } = event
        {
            self.open = Some(OpenWallet::new(account_id, currency));
        }
        // Nothing but `WalletOpened` can come first: `handle` refuses everything else.
    }
}

impl Wallet {
    /// Every command yields one event, nothing (an idempotent repeat), or one refusal; kept
    /// synchronous and separate from `handle` so the rules read top to bottom without the sink.
    fn decide(&self, command: WalletCommand) -> Result<Option<WalletEvent>, WalletError> {
        match (&self.open, command) {
            (
                None,
                WalletCommand::Open {
                    account_id,
                    currency,
                    occurred_at,
                },
            ) => Ok(Some(WalletEvent::WalletOpened {
                account_id,
                currency,
                opened_at: occurred_at,
            })),
            (None, _) => Err(WalletError::WalletNotOpen),
            (Some(wallet), command) => wallet.decide(command),
        }
    }
}

impl OpenWallet {
    fn new(account_id: AccountId, currency: Currency) -> Self {
        Self {
            account_id,
            currency,
            balance: Money::zero(currency),
            reserved: Money::zero(currency),
            credit_limit: Money::zero(currency),
            low_balance_threshold: Money::zero(currency),
            top_ups: BTreeMap::new(),
            withdrawals: BTreeMap::new(),
            ledger: BTreeMap::new(),
        }
    }

    fn decide(&self, command: WalletCommand) -> Result<Option<WalletEvent>, WalletError> {
        match command {
            WalletCommand::Open { .. } => Err(WalletError::WalletAlreadyOpen),
            WalletCommand::InitiateTopUp {
                payment_id,
                amount,
                gateway,
                gateway_reference,
                occurred_at,
            } => {
                let amount = self.payable(amount)?;
                if let Some(existing) = self.top_ups.get(&payment_id) {
                    return if existing.amount == amount && existing.gateway == gateway {
                        Ok(None)
                    } else {
                        Err(WalletError::PaymentAlreadyExists)
                    };
                }
                Ok(Some(WalletEvent::TopUpInitiated {
                    payment_id,
                    amount,
                    gateway,
                    gateway_reference,
                    initiated_at: occurred_at,
                }))
            }
            WalletCommand::CompleteTopUp {
                payment_id,
                amount_received,
                occurred_at,
            } => {
                let top_up = self.top_up(&payment_id)?;
                match top_up.status {
                    TopUpStatus::Pending => {}
                    TopUpStatus::Completed => return Ok(None),
                    TopUpStatus::Failed => return Err(WalletError::PaymentAlreadySettled),
                }
                let received = self.payable(amount_received)?;
                if top_up.gateway == PaymentGateway::Stripe && received != top_up.amount {
                    return Err(WalletError::TopUpAmountMismatch);
                }
                Ok(Some(WalletEvent::TopUpCompleted {
                    payment_id,
                    amount: received,
                    balance_after: self.balance_plus(received)?,
                    completed_at: occurred_at,
                }))
            }
            WalletCommand::FailTopUp {
                payment_id,
                reason,
                occurred_at,
            } => {
                let top_up = self.top_up(&payment_id)?;
                match top_up.status {
                    TopUpStatus::Pending => Ok(Some(WalletEvent::TopUpFailed {
                        payment_id,
                        reason,
                        failed_at: occurred_at,
                    })),
                    TopUpStatus::Failed => Ok(None),
                    TopUpStatus::Completed => Err(WalletError::PaymentAlreadySettled),
                }
            }
            WalletCommand::Debit {
                reference,
                amount,
                reason,
                occurred_at,
            } => {
                let amount = self.movement_amount(amount)?;
                if let Some(entry) = self.ledger.get(&reference) {
                    return match *entry {
                        LedgerEntry::Debit { amount_micros, .. }
                            if amount_micros == amount.micros() =>
                        {
                            Ok(None)
                        }
                        _ => Err(WalletError::ReferenceReused),
                    };
                }
                if i128::from(amount.micros()) > self.spendable_micros() {
                    return Err(WalletError::InsufficientFunds);
                }
                Ok(Some(WalletEvent::WalletDebited {
                    reference,
                    amount,
                    reason,
                    balance_after: self.balance_minus(amount)?,
                    debited_at: occurred_at,
                }))
            }
            WalletCommand::Refund {
                reference,
                refunds_debit,
                amount,
                reason,
                occurred_at,
            } => {
                let amount = self.movement_amount(amount)?;
                if let Some(entry) = self.ledger.get(&reference) {
                    return match *entry {
                        LedgerEntry::Refund { amount_micros }
                            if amount_micros == amount.micros() =>
                        {
                            Ok(None)
                        }
                        _ => Err(WalletError::ReferenceReused),
                    };
                }
                if let Some(debit) = &refunds_debit {
                    let Some(LedgerEntry::Debit {
                        amount_micros,
                        refunded_micros,
                    }) = self.ledger.get(debit).copied()
                    else {
                        return Err(WalletError::DebitNotFound);
                    };
                    let left = i128::from(amount_micros) - i128::from(refunded_micros);
                    if i128::from(amount.micros()) > left {
                        return Err(WalletError::RefundExceedsDebit);
                    }
                }
                Ok(Some(WalletEvent::WalletRefunded {
                    reference,
                    refunds_debit,
                    amount,
                    reason,
                    balance_after: self.balance_plus(amount)?,
                    refunded_at: occurred_at,
                }))
            }
            WalletCommand::RequestWithdrawal {
                withdrawal_id,
                amount,
                destination,
                occurred_at,
            } => {
                let amount = self.payable(amount)?;
                let destination = checked_destination(&destination)?;
                if let Some(existing) = self.withdrawals.get(&withdrawal_id) {
                    return if existing.amount == amount && existing.destination == destination {
                        Ok(None)
                    } else {
                        Err(WalletError::WithdrawalAlreadyExists)
                    };
                }
                if i128::from(amount.micros()) > self.withdrawable_micros() {
                    return Err(WalletError::InsufficientFunds);
                }
                // The reservation must stay representable for `apply` to copy it.
                self.reserved
                    .checked_add(amount)
                    .map_err(WalletError::from_arithmetic)?;
                Ok(Some(WalletEvent::WithdrawalRequested {
                    withdrawal_id,
                    amount,
                    destination,
                    requested_at: occurred_at,
                }))
            }
            WalletCommand::ApproveWithdrawal {
                withdrawal_id,
                approved_by,
                occurred_at,
            } => match self.withdrawal(&withdrawal_id)?.status {
                WithdrawalStatus::Requested => Ok(Some(WalletEvent::WithdrawalApproved {
                    withdrawal_id,
                    approved_by,
                    approved_at: occurred_at,
                })),
                WithdrawalStatus::Approved => Ok(None),
                WithdrawalStatus::Rejected | WithdrawalStatus::PaidOut => {
                    Err(WalletError::WithdrawalAlreadySettled)
                }
            },
            WalletCommand::RejectWithdrawal {
                withdrawal_id,
                reason,
                rejected_by,
                occurred_at,
            } => match self.withdrawal(&withdrawal_id)?.status {
                WithdrawalStatus::Requested | WithdrawalStatus::Approved => {
                    Ok(Some(WalletEvent::WithdrawalRejected {
                        withdrawal_id,
                        reason,
                        rejected_by,
                        rejected_at: occurred_at,
                    }))
                }
                WithdrawalStatus::Rejected => Ok(None),
                WithdrawalStatus::PaidOut => Err(WalletError::WithdrawalAlreadySettled),
            },
            WalletCommand::MarkWithdrawalPaidOut {
                withdrawal_id,
                occurred_at,
            } => {
                let withdrawal = self.withdrawal(&withdrawal_id)?;
                match withdrawal.status {
                    WithdrawalStatus::Approved => {}
                    WithdrawalStatus::PaidOut => return Ok(None),
                    WithdrawalStatus::Requested => return Err(WalletError::WithdrawalNotApproved),
                    WithdrawalStatus::Rejected => {
                        return Err(WalletError::WithdrawalAlreadySettled)
                    }
                }
                // The amount was reserved, so this cannot take the balance below the limit.
                Ok(Some(WalletEvent::WithdrawalPaidOut {
                    withdrawal_id,
                    amount: withdrawal.amount,
                    balance_after: self.balance_minus(withdrawal.amount)?,
                    paid_out_at: occurred_at,
                }))
            }
            WalletCommand::SetLowBalanceThreshold {
                amount,
                occurred_at,
            } => {
                let threshold = self.setting_amount(amount)?;
                if threshold == self.low_balance_threshold {
                    return Ok(None);
                }
                Ok(Some(WalletEvent::LowBalanceThresholdChanged {
                    threshold,
                    changed_at: occurred_at,
                }))
            }
            WalletCommand::SetCreditLimit {
                amount,
                occurred_at,
            } => {
                let credit_limit = self.setting_amount(amount)?;
                if credit_limit == self.credit_limit {
                    return Ok(None);
                }
                if self.withdrawable_micros() + i128::from(credit_limit.micros()) < 0 {
                    return Err(WalletError::CreditLimitBelowUsage);
                }
                Ok(Some(WalletEvent::CreditLimitChanged {
                    credit_limit,
                    changed_at: occurred_at,
                }))
            }
        }
    }

    fn apply(&mut self, event: WalletEvent) {
        match event {
            // Only ever first; a second one is refused by `handle` and cannot be stored.
            WalletEvent::WalletOpened { .. } => {}
            WalletEvent::TopUpInitiated {
                payment_id,
                amount,
                gateway,
                ..
            } => {
                self.top_ups.insert(
                    payment_id,
                    TopUpState {
                        amount,
                        gateway,
                        status: TopUpStatus::Pending,
                        amount_received: None,
                    },
                );
            }
            WalletEvent::TopUpCompleted {
                payment_id,
                amount,
                balance_after,
                ..
            } => {
                self.balance = balance_after;
                if let Some(top_up) = self.top_ups.get_mut(&payment_id) {
                    top_up.status = TopUpStatus::Completed;
                    top_up.amount_received = Some(amount);
                }
            }
            WalletEvent::TopUpFailed { payment_id, .. } => {
                if let Some(top_up) = self.top_ups.get_mut(&payment_id) {
                    top_up.status = TopUpStatus::Failed;
                }
            }
            WalletEvent::WalletDebited {
                reference,
                amount,
                balance_after,
                ..
            } => {
                self.balance = balance_after;
                self.ledger.insert(
                    reference,
                    LedgerEntry::Debit {
                        amount_micros: amount.micros(),
                        refunded_micros: 0,
                    },
                );
            }
            WalletEvent::WalletRefunded {
                reference,
                refunds_debit,
                amount,
                balance_after,
                ..
            } => {
                self.balance = balance_after;
                self.ledger.insert(
                    reference,
                    LedgerEntry::Refund {
                        amount_micros: amount.micros(),
                    },
                );
                if let Some(LedgerEntry::Debit {
                    refunded_micros, ..
                }) = refunds_debit.and_then(|debit| self.ledger.get_mut(&debit))
                {
                    // `handle` kept the refunds within the debit, so this cannot saturate.
                    *refunded_micros = refunded_micros.saturating_add(amount.micros());
                }
            }
            WalletEvent::WithdrawalRequested {
                withdrawal_id,
                amount,
                destination,
                ..
            } => {
                self.reserve(amount.micros());
                self.withdrawals.insert(
                    withdrawal_id,
                    WithdrawalState {
                        amount,
                        destination,
                        status: WithdrawalStatus::Requested,
                    },
                );
            }
            WalletEvent::WithdrawalApproved { withdrawal_id, .. } => {
                self.set_withdrawal_status(&withdrawal_id, WithdrawalStatus::Approved);
            }
            WalletEvent::WithdrawalRejected { withdrawal_id, .. } => {
                if let Some(amount) =
                    self.set_withdrawal_status(&withdrawal_id, WithdrawalStatus::Rejected)
                {
                    self.release(amount.micros());
                }
            }
            WalletEvent::WithdrawalPaidOut {
                withdrawal_id,
                amount,
                balance_after,
                ..
            } => {
                self.balance = balance_after;
                self.set_withdrawal_status(&withdrawal_id, WithdrawalStatus::PaidOut);
                self.release(amount.micros());
            }
            WalletEvent::LowBalanceThresholdChanged { threshold, .. } => {
                self.low_balance_threshold = threshold;
            }
            WalletEvent::CreditLimitChanged { credit_limit, .. } => {
                self.credit_limit = credit_limit;
            }
        }
    }

    /// In the wallet's currency.
    fn own(&self, amount: Money) -> Result<Money, WalletError> {
        if amount.currency() == self.currency {
            Ok(amount)
        } else {
            Err(WalletError::CurrencyMismatch {
                wallet: self.currency,
                given: amount.currency(),
            })
        }
    }

    /// A debit or refund amount: in the wallet's currency and positive; any precision.
    fn movement_amount(&self, amount: Money) -> Result<Money, WalletError> {
        self.own(amount)?
            .require_positive()
            .map_err(|_| WalletError::AmountNotPositive)
    }

    /// A top-up or withdrawal amount: a movement amount a gateway can carry exactly.
    fn payable(&self, amount: Money) -> Result<Money, WalletError> {
        let amount = self.movement_amount(amount)?;
        if !amount.fits_minor_unit() {
            return Err(WalletError::TooManyDecimals {
                max_decimals: self.currency.minor_units(),
            });
        }
        Ok(amount)
    }

    /// A credit limit or threshold: in the wallet's currency, zero or more.
    fn setting_amount(&self, amount: Money) -> Result<Money, WalletError> {
        let amount = self.own(amount)?;
        if amount.is_negative() {
            return Err(WalletError::AmountNegative);
        }
        Ok(amount)
    }

    fn top_up(&self, payment_id: &PaymentId) -> Result<&TopUpState, WalletError> {
        self.top_ups
            .get(payment_id)
            .ok_or(WalletError::PaymentNotFound)
    }

    fn withdrawal(&self, withdrawal_id: &WithdrawalId) -> Result<&WithdrawalState, WalletError> {
        self.withdrawals
            .get(withdrawal_id)
            .ok_or(WalletError::WithdrawalNotFound)
    }

    /// `balance − reserved`, widened: what a withdrawal may take.
    fn withdrawable_micros(&self) -> i128 {
        i128::from(self.balance.micros()) - i128::from(self.reserved.micros())
    }

    /// `balance − reserved + credit_limit`, widened: what a debit may take.
    fn spendable_micros(&self) -> i128 {
        self.withdrawable_micros() + i128::from(self.credit_limit.micros())
    }

    fn balance_plus(&self, amount: Money) -> Result<Money, WalletError> {
        self.balance
            .checked_add(amount)
            .map_err(WalletError::from_arithmetic)
    }

    fn balance_minus(&self, amount: Money) -> Result<Money, WalletError> {
        self.balance
            .checked_sub(amount)
            .map_err(WalletError::from_arithmetic)
    }

    // `apply` never fails: `handle` checked that the reservation stays within `0..=i64::MAX`, so
    // saturation here is only a guard against a panic, never a value that is used.
    fn reserve(&mut self, micros: i64) {
        let reserved = self.reserved.micros().saturating_add(micros);
        self.reserved = Money::from_micros(reserved, self.currency);
    }

    fn release(&mut self, micros: i64) {
        let reserved = self.reserved.micros().saturating_sub(micros);
        self.reserved = Money::from_micros(reserved, self.currency);
    }

    /// Sets the status and returns the withdrawal's amount.
    fn set_withdrawal_status(
        &mut self,
        withdrawal_id: &WithdrawalId,
        status: WithdrawalStatus,
    ) -> Option<Money> {
        let withdrawal = self.withdrawals.get_mut(withdrawal_id)?;
        withdrawal.status = status;
        Some(withdrawal.amount)
    }
}

/// Trims a withdrawal destination and checks it.
fn checked_destination(destination: &str) -> Result<String, WalletError> {
    let destination = destination.trim();
    if destination.is_empty()
        || destination.chars().count() > WITHDRAWAL_DESTINATION_MAX_CHARS
        || destination.chars().any(char::is_control)
    {
        return Err(WalletError::InvalidDestination);
    }
    Ok(destination.to_owned())
}
