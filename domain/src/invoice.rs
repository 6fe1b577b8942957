//! The `Invoice` aggregate: the bill of one order (or any other sale), from draft to paid or void.
//!
//! ## Life cycle
//!
//! ```text
//! Draft ──Issue(number)──▶ Issued ──MarkPaid──▶ Paid
//!   │                        │
//!   └────────Void────────────┴──▶ Void            (never from Paid)
//! ```
//!
//! - A draft holds the customer's [`BillTo`] snapshot and the [`Quote`] that priced the sale. The
//!   quote's amounts must be final: whole minor units that add up (Σ lines = subtotal,
//!   subtotal − discount = net, net × rate = tax, net + tax = total). [`crate::pricing::quote`]
//!   makes them so; anything else is refused, so a printed invoice always adds up.
//! - Issuing gives the invoice its [`InvoiceNumber`]. The number is allocated outside the
//!   aggregate (gapless per year, see ADR 0012) and its year must be the year of `issued_at`.
//!   Issuing again with the same number is a no-op; another number is refused.
//! - Paying records the payment reference (for example the wallet ledger reference); the same
//!   reference again is a no-op, another one is refused.
//! - Voiding is a no-op on a void invoice and refused on a paid one. A void invoice keeps its
//!   number: the sequence of numbers stays without gaps.
//!
//! Every repeat of an accepted command records nothing, so retries and reactors are safe.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, InvoiceId, OrderId};
use crate::pricing::Quote;
use crate::values::{Country, Currency, Email, Money, PersonName, Reason};

#[cfg(test)]
mod tests;

/// The smallest year an invoice number can carry (four digits).
pub const INVOICE_YEAR_MIN: i32 = 1000;
/// The largest year an invoice number can carry (four digits).
pub const INVOICE_YEAR_MAX: i32 = 9999;
/// The largest sequence number of one year: six digits, far above what one provider issues in a
/// year, and the width every number is printed with.
pub const INVOICE_SEQUENCE_MAX: u32 = 999_999;
/// Longest payment reference, in characters: a ledger reference or a gateway id is far shorter.
pub const PAYMENT_REFERENCE_MAX_CHARS: usize = 200;

/// The number of an issued invoice: its year and its place in that year's gapless sequence,
/// written `2026-000042`. Serialised as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InvoiceNumber {
    year: i32,
    sequence: u32,
}

/// Why an invoice number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceNumberError {
    /// Not `YYYY-NNNNNN`: four digits, a hyphen, six digits.
    #[error("not an invoice number: expected four digits, '-', six digits, such as 2026-000042")]
    Malformed,
    /// The year does not have four digits.
    #[error(
        "the year of an invoice number has four digits ({INVOICE_YEAR_MIN} to {INVOICE_YEAR_MAX})"
    )]
    YearOutOfRange,
    /// The sequence is zero or above [`INVOICE_SEQUENCE_MAX`].
    #[error("the sequence of an invoice number is 1 to {INVOICE_SEQUENCE_MAX}")]
    SequenceOutOfRange,
}

impl InvoiceNumberError {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "invalid_invoice_number",
            Self::YearOutOfRange => "invoice_year_out_of_range",
            Self::SequenceOutOfRange => "invoice_sequence_out_of_range",
        }
    }
}

impl InvoiceNumber {
    /// The number `sequence` of `year`.
    ///
    /// # Errors
    /// [`InvoiceNumberError::YearOutOfRange`] unless the year has four digits,
    /// [`InvoiceNumberError::SequenceOutOfRange`] unless `1 ≤ sequence ≤ 999 999`.
    pub fn new(year: i32, sequence: i64) -> Result<Self, InvoiceNumberError> {
        if !(INVOICE_YEAR_MIN..=INVOICE_YEAR_MAX).contains(&year) {
            return Err(InvoiceNumberError::YearOutOfRange);
        }
        let sequence = u32::try_from(sequence)
            .ok()
            .filter(|s| (1..=INVOICE_SEQUENCE_MAX).contains(s))
            .ok_or(InvoiceNumberError::SequenceOutOfRange)?;
        Ok(Self { year, sequence })
    }

    /// Parses exactly `YYYY-NNNNNN` (`2026-000042`).
    ///
    /// # Errors
    /// [`InvoiceNumberError::Malformed`] for any other shape, then the range errors of
    /// [`InvoiceNumber::new`].
    pub fn parse(input: &str) -> Result<Self, InvoiceNumberError> {
        let (year, sequence) = input.split_once('-').ok_or(InvoiceNumberError::Malformed)?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(sequence, 6) {
            return Err(InvoiceNumberError::Malformed);
        }
        let year: i32 = year.parse().map_err(|_| InvoiceNumberError::Malformed)?;
        let sequence: i64 = sequence
            .parse()
            .map_err(|_| InvoiceNumberError::Malformed)?;
        Self::new(year, sequence)
    }

    /// The year the number belongs to (the year of issue, UTC).
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The place in the year's sequence, from 1.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:06}", self.year, self.sequence)
    }
}

impl TryFrom<String> for InvoiceNumber {
    type Error = InvoiceNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<InvoiceNumber> for String {
    fn from(value: InvoiceNumber) -> Self {
        value.to_string()
    }
}

/// Who the invoice is addressed to: a snapshot taken when it is drafted, so that a later change
/// of the account's name or email does not rewrite an invoice already sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillTo {
    pub name: PersonName,
    pub email: Email,
    /// The country the tax was computed for, when known.
    pub country: Option<Country>,
}

/// Where an invoice is in its life cycle. Stored in the read model by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Priced, not numbered yet.
    Draft,
    /// Numbered and sent; waiting for payment.
    Issued,
    /// Settled.
    Paid,
    /// Cancelled; keeps its number if it had one.
    Void,
}

impl InvoiceStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [InvoiceStatus; 4] = [Self::Draft, Self::Issued, Self::Paid, Self::Void];

    /// The stored and wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Issued => "issued",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }

    /// The status of a stored or wire name; `None` for any other text.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

/// The state an invoice needs to decide on commands. `None` until [`InvoiceEvent::InvoiceDrafted`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    drafted: Option<DraftedInvoice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DraftedInvoice {
    invoice_id: InvoiceId,
    account_id: AccountId,
    order_id: Option<OrderId>,
    bill_to: BillTo,
    quote: Quote,
    status: InvoiceStatus,
    number: Option<InvoiceNumber>,
    payment_reference: Option<String>,
}

impl Invoice {
    /// Whether the invoice has been drafted (it exists).
    pub fn is_drafted(&self) -> bool {
        self.drafted.is_some()
    }

    /// Its status; `None` before it was drafted.
    pub fn status(&self) -> Option<InvoiceStatus> {
        self.drafted.as_ref().map(|d| d.status)
    }

    /// Its number, once issued (a void invoice keeps it).
    pub fn number(&self) -> Option<InvoiceNumber> {
        self.drafted.as_ref().and_then(|d| d.number)
    }

    /// Its id, as drafted.
    pub fn invoice_id(&self) -> Option<InvoiceId> {
        self.drafted.as_ref().map(|d| d.invoice_id)
    }

    /// The account billed.
    pub fn account_id(&self) -> Option<AccountId> {
        self.drafted.as_ref().map(|d| d.account_id)
    }

    /// The order it bills, if any.
    pub fn order_id(&self) -> Option<OrderId> {
        self.drafted.as_ref().and_then(|d| d.order_id)
    }

    /// The priced lines and totals.
    pub fn quote(&self) -> Option<&Quote> {
        self.drafted.as_ref().map(|d| &d.quote)
    }

    /// The reference it was paid with, once paid.
    pub fn payment_reference(&self) -> Option<&str> {
        self.drafted
            .as_ref()
            .and_then(|d| d.payment_reference.as_deref())
    }
}

/// What can be asked of an invoice. Times, ids and the number are chosen by the caller.
#[derive(Debug, Clone)]
pub enum InvoiceCommand {
    /// Create the invoice from a final quote. The same draft again (same account, order, bill-to
    /// and quote) is a no-op, whatever the invoice's status.
    Draft {
        invoice_id: InvoiceId,
        account_id: AccountId,
        order_id: Option<OrderId>,
        customer: BillTo,
        /// Boxed: a quote is far larger than the other commands.
        quote: Box<Quote>,
        occurred_at: DateTime<Utc>,
    },
    /// Give the draft its number (allocated beforehand, see ADR 0012).
    Issue {
        number: InvoiceNumber,
        issued_at: DateTime<Utc>,
    },
    /// Record the payment of an issued invoice.
    MarkPaid {
        payment_reference: String,
        paid_at: DateTime<Utc>,
    },
    /// Cancel a draft or an issued invoice.
    Void { reason: Reason, at: DateTime<Utc> },
}

/// What happened to an invoice. A stored format: variant names, field names and versions are
/// pinned by tests and never change; evolve by adding a version and an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceEvent {
    /// The invoice was created from a final quote.
    InvoiceDrafted {
        invoice_id: InvoiceId,
        account_id: AccountId,
        order_id: Option<OrderId>,
        bill_to: BillTo,
        /// Boxed: a quote is far larger than the other events (serialised as the quote itself).
        quote: Box<Quote>,
        drafted_at: DateTime<Utc>,
    },
    /// The invoice got its number.
    InvoiceIssued {
        number: InvoiceNumber,
        issued_at: DateTime<Utc>,
    },
    /// The invoice was paid.
    InvoicePaid {
        payment_reference: String,
        paid_at: DateTime<Utc>,
    },
    /// The invoice was cancelled.
    InvoiceVoided {
        reason: Reason,
        voided_at: DateTime<Utc>,
    },
}

/// Every `event_type()` an [`InvoiceEvent`] can have, for projections that filter by type.
pub const INVOICE_EVENT_TYPES: &[&str] = &[
    "InvoiceDrafted",
    "InvoiceIssued",
    "InvoicePaid",
    "InvoiceVoided",
];

/// The version every [`InvoiceEvent`] is currently written with.
const EVENT_VERSION: &str = "1";

impl DomainEvent for InvoiceEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::InvoiceDrafted { .. } => "InvoiceDrafted",
            Self::InvoiceIssued { .. } => "InvoiceIssued",
            Self::InvoicePaid { .. } => "InvoicePaid",
            Self::InvoiceVoided { .. } => "InvoiceVoided",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why a command was refused. One variant per business rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// Any command but `Draft` before the invoice was drafted.
    #[error("no such invoice")]
    NotDrafted,
    /// `Draft` on an invoice that was drafted with other details.
    #[error("an invoice with this id already exists with other details")]
    AlreadyDrafted,
    /// A quote without lines.
    #[error("an invoice needs at least one line")]
    NoLines,
    /// An amount of the quote in another currency than the quote's.
    #[error("every amount of an invoice must be in the invoice's currency")]
    CurrencyMismatch,
    /// A line amount or total finer than the currency's minor unit.
    #[error("the invoice's amounts must be whole minor units (rounded by pricing)")]
    NotInMinorUnits,
    /// A negative price, amount, discount, tax or total.
    #[error("an invoice's amounts must not be negative")]
    NegativeAmount,
    /// A line whose amount is not its quantity times its unit price, rounded.
    #[error("a line's amount must be its quantity times its unit price, rounded")]
    LineAmountMismatch,
    /// The totals do not add up: Σ lines ≠ subtotal, subtotal − discount ≠ net or
    /// net + tax ≠ total.
    #[error("the invoice's totals do not add up")]
    TotalsDoNotAddUp,
    /// The tax is not the net amount times the rate, rounded.
    #[error("the tax must be the net amount times the tax rate, rounded")]
    TaxDoesNotMatchRate,
    /// `Issue` on an invoice that already has another number.
    #[error("the invoice already has another number")]
    AlreadyNumbered,
    /// `Issue` with a number of another year than the issue date's.
    #[error("the number's year must be the year the invoice is issued")]
    NumberYearMismatch,
    /// `MarkPaid` on a draft.
    #[error("the invoice has not been issued")]
    NotIssued,
    /// Issuing or paying a void invoice.
    #[error("the invoice is void")]
    InvoiceVoid,
    /// `MarkPaid` on an invoice already paid with another reference.
    #[error("the invoice is already paid")]
    AlreadyPaid,
    /// `Void` on a paid invoice (credit it instead).
    #[error("a paid invoice cannot be voided")]
    PaidInvoiceCannotBeVoided,
    /// A blank, over-long or control-character payment reference.
    #[error("invalid payment reference: 1 to {max} characters without control characters", max = PAYMENT_REFERENCE_MAX_CHARS)]
    InvalidPaymentReference,
}

impl InvoiceError {
    /// Stable machine-readable code for API error bodies. Never change an existing code: clients
    /// branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotDrafted => "invoice_not_found",
            Self::AlreadyDrafted => "invoice_already_exists",
            Self::NoLines => "invoice_without_lines",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::NotInMinorUnits => "amount_not_in_minor_units",
            Self::NegativeAmount => "amount_negative",
            Self::LineAmountMismatch => "line_amount_mismatch",
            Self::TotalsDoNotAddUp => "totals_do_not_add_up",
            Self::TaxDoesNotMatchRate => "tax_does_not_match_rate",
            Self::AlreadyNumbered => "invoice_already_numbered",
            Self::NumberYearMismatch => "number_year_mismatch",
            Self::NotIssued => "invoice_not_issued",
            Self::InvoiceVoid => "invoice_void",
            Self::AlreadyPaid => "invoice_already_paid",
            Self::PaidInvoiceCannotBeVoided => "invoice_paid",
            Self::InvalidPaymentReference => "invalid_payment_reference",
        }
    }
}

impl Aggregate for Invoice {
    const TYPE: &'static str = "invoice";
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    type Error = InvoiceError;
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
        match (&mut self.drafted, event) {
            (
                None,
                InvoiceEvent::InvoiceDrafted {
                    invoice_id,
                    account_id,
                    order_id,
                    bill_to,
                    quote,
                    ..
                },
            ) => {
                self.drafted = Some(DraftedInvoice {
                    invoice_id,
                    account_id,
                    order_id,
                    bill_to,
                    quote: *quote,
                    status: InvoiceStatus::Draft,
                    number: None,
                    payment_reference: None,
                });
            }
            // Only ever first; `handle` refuses anything else before it.
            (None, _) | (Some(_), InvoiceEvent::InvoiceDrafted { .. }) => {}
            (Some(invoice), InvoiceEvent::InvoiceIssued { number, .. }) => {
                invoice.number = Some(number);
                // `decide_issue` numbers drafts only; the guard keeps `apply` total anyway.
                if invoice.status == InvoiceStatus::Draft {
                    invoice.status = InvoiceStatus::Issued;
                }
            }
            (
                Some(invoice),
                InvoiceEvent::InvoicePaid {
                    payment_reference, ..
                },
            ) => {
                invoice.status = InvoiceStatus::Paid;
                invoice.payment_reference = Some(payment_reference);
            }
            (Some(invoice), InvoiceEvent::InvoiceVoided { .. }) => {
                invoice.status = InvoiceStatus::Void;
            }
        }
    }
}

impl Invoice {
    /// Every command yields one event, nothing (an idempotent repeat), or one refusal.
    fn decide(&self, command: InvoiceCommand) -> Result<Option<InvoiceEvent>, InvoiceError> {
        match (&self.drafted, command) {
            (
                None,
                InvoiceCommand::Draft {
                    invoice_id,
                    account_id,
                    order_id,
                    customer,
                    quote,
                    occurred_at,
                },
            ) => {
                check_quote(&quote)?;
                Ok(Some(InvoiceEvent::InvoiceDrafted {
                    invoice_id,
                    account_id,
                    order_id,
                    bill_to: customer,
                    quote,
                    drafted_at: occurred_at,
                }))
            }
            (None, _) => Err(InvoiceError::NotDrafted),
            (
                Some(invoice),
                InvoiceCommand::Draft {
                    invoice_id,
                    account_id,
                    order_id,
                    customer,
                    quote,
                    ..
                },
            ) => {
                let same = invoice.invoice_id == invoice_id
                    && invoice.account_id == account_id
                    && invoice.order_id == order_id
                    && invoice.bill_to == customer
                    && invoice.quote == *quote;
                if same {
                    Ok(None)
                } else {
                    Err(InvoiceError::AlreadyDrafted)
                }
            }
            (Some(invoice), InvoiceCommand::Issue { number, issued_at }) => {
                invoice.decide_issue(number, issued_at)
            }
            (
                Some(invoice),
                InvoiceCommand::MarkPaid {
                    payment_reference,
                    paid_at,
                },
            ) => invoice.decide_paid(payment_reference, paid_at),
            (Some(invoice), InvoiceCommand::Void { reason, at }) => match invoice.status {
                InvoiceStatus::Void => Ok(None),
                InvoiceStatus::Paid => Err(InvoiceError::PaidInvoiceCannotBeVoided),
                InvoiceStatus::Draft | InvoiceStatus::Issued => {
                    Ok(Some(InvoiceEvent::InvoiceVoided {
                        reason,
                        voided_at: at,
                    }))
                }
            },
        }
    }
}

impl DraftedInvoice {
    fn decide_issue(
        &self,
        number: InvoiceNumber,
        issued_at: DateTime<Utc>,
    ) -> Result<Option<InvoiceEvent>, InvoiceError> {
        match (self.number, self.status) {
            (Some(held), _) if held == number => Ok(None),
            (Some(_), _) => Err(InvoiceError::AlreadyNumbered),
            (None, InvoiceStatus::Draft) => {
                if number.year() != issued_at.year() {
                    return Err(InvoiceError::NumberYearMismatch);
                }
                Ok(Some(InvoiceEvent::InvoiceIssued { number, issued_at }))
            }
            // A void draft is never numbered: its number would sit on no issued invoice.
            (None, _) => Err(InvoiceError::InvoiceVoid),
        }
    }

    fn decide_paid(
        &self,
        payment_reference: String,
        paid_at: DateTime<Utc>,
    ) -> Result<Option<InvoiceEvent>, InvoiceError> {
        let reference = payment_reference.trim();
        let chars = reference.chars().count();
        if chars == 0
            || chars > PAYMENT_REFERENCE_MAX_CHARS
            || reference.chars().any(char::is_control)
        {
            return Err(InvoiceError::InvalidPaymentReference);
        }
        match self.status {
            InvoiceStatus::Draft => Err(InvoiceError::NotIssued),
            InvoiceStatus::Void => Err(InvoiceError::InvoiceVoid),
            InvoiceStatus::Paid if self.payment_reference.as_deref() == Some(reference) => Ok(None),
            InvoiceStatus::Paid => Err(InvoiceError::AlreadyPaid),
            InvoiceStatus::Issued => Ok(Some(InvoiceEvent::InvoicePaid {
                payment_reference: reference.to_owned(),
                paid_at,
            })),
        }
    }
}

/// The rules a quote must meet to become an invoice: one currency, whole minor units, nothing
/// negative, and every total adding up exactly as [`crate::pricing::quote`] computes it.
fn check_quote(quote: &Quote) -> Result<(), InvoiceError> {
    if quote.lines.is_empty() {
        return Err(InvoiceError::NoLines);
    }
    let currency = quote.currency;
    let totals = [
        quote.subtotal,
        quote.discount,
        quote.net,
        quote.tax_amount,
        quote.total,
    ];
    let amounts: Vec<Money> = quote
        .lines
        .iter()
        .map(|line| line.amount)
        .chain(totals)
        .collect();
    let prices: Vec<Money> = quote.lines.iter().map(|line| line.unit_price).collect();
    let everything = || amounts.iter().chain(prices.iter());
    if everything().any(|m| m.currency() != currency) {
        return Err(InvoiceError::CurrencyMismatch);
    }
    if everything().any(Money::is_negative) {
        return Err(InvoiceError::NegativeAmount);
    }
    // Unit prices may be finer (an hourly vCPU); what is charged may not.
    if !amounts.iter().all(Money::fits_minor_unit) {
        return Err(InvoiceError::NotInMinorUnits);
    }
    for line in &quote.lines {
        let expected = line
            .unit_price
            .checked_mul(i64::from(line.quantity))
            .and_then(Money::round_to_minor_unit)
            .map_err(|_| InvoiceError::LineAmountMismatch)?;
        if expected != line.amount {
            return Err(InvoiceError::LineAmountMismatch);
        }
    }
    let adds_up = sums_match(quote, currency).unwrap_or(false);
    if !adds_up {
        return Err(InvoiceError::TotalsDoNotAddUp);
    }
    let tax = quote
        .tax
        .rate
        .of(quote.net)
        .and_then(Money::round_to_minor_unit)
        .map_err(|_| InvoiceError::TaxDoesNotMatchRate)?;
    if tax != quote.tax_amount {
        return Err(InvoiceError::TaxDoesNotMatchRate);
    }
    Ok(())
}

/// Σ lines = subtotal, subtotal − discount = net, net + tax = total; `Err` on overflow.
fn sums_match(quote: &Quote, currency: Currency) -> Result<bool, crate::values::MoneyError> {
    let lines = quote
        .lines
        .iter()
        .try_fold(Money::zero(currency), |sum, line| {
            sum.checked_add(line.amount)
        })?;
    Ok(lines == quote.subtotal
        && quote.subtotal.checked_sub(quote.discount)? == quote.net
        && quote.net.checked_add(quote.tax_amount)? == quote.total)
}
