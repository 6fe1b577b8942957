//! Invoice use cases: draft an invoice from a final quote and issue it with a gapless number,
//! mark it paid, void it.
//!
//! The number is allocated in SQL before the `Issue` command ([`numbers::allocate`], keyed by
//! invoice id), then the aggregate records it. Every step is idempotent: a repeated draft, an
//! issue with the number already held, a payment with the same reference and a second void record
//! nothing, so the orders flow may retry [`Invoices::create_and_issue`] freely and the
//! [`crate::invoice_issuer`] reactor may race it. ADR 0012 explains why no number is lost.

pub mod numbers;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use stratus_domain::invoice::{
    BillTo, Invoice, InvoiceCommand, InvoiceError, InvoiceNumber, InvoiceStatus,
};
use stratus_domain::pricing::Quote;
use stratus_domain::{AccountId, InvoiceId, OrderId, Reason};
use stratus_projections::FeedPosition;
use uuid::Uuid;

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;
use numbers::NumberingError;

/// The store of invoices.
pub type InvoiceStore = AggregateStore<Invoice>;
/// What an invoice use case answers.
pub type InvoiceResult<T> = Result<T, CommandError<InvoiceError>>;

/// Namespace of the command ids of the steps one call runs (draft, issue, void), derived from the
/// caller's command id so that a retry derives the same ones.
const STEP_NAMESPACE: Uuid = Uuid::from_u128(0x6b3e_92d1_0f4c_4a57_b8e2_19d7_c5a0_3f64);

/// The invoices of one deployment.
#[derive(Clone)]
pub struct Invoices {
    store: Arc<InvoiceStore>,
    pool: PgPool,
}

/// An invoice with its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedInvoice {
    pub invoice_id: InvoiceId,
    pub number: InvoiceNumber,
    /// When it was issued: the instant its number was allocated (`None` only for an invoice
    /// numbered without the allocator, which only tests do).
    pub issued_at: Option<DateTime<Utc>>,
    /// Nothing was appended by this call: the invoice already had its number.
    pub replayed: bool,
    /// The feed position of the invoice's newest event, for read-your-writes.
    pub position: FeedPosition,
}

/// What [`Invoices::mark_paid`] and [`Invoices::void`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceChange {
    pub invoice_id: InvoiceId,
    pub status: InvoiceStatus,
    /// The number, when the invoice has one (a void invoice keeps it).
    pub number: Option<InvoiceNumber>,
    /// Nothing was appended by this call: the change had already been made.
    pub replayed: bool,
    /// The feed position of the invoice's newest event, for read-your-writes.
    pub position: FeedPosition,
}

impl Invoices {
    /// Invoices on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            store: Arc::new(AggregateStore::new(pool.clone(), ())),
            pool,
        }
    }

    /// The underlying store (for tools and tests).
    pub fn store(&self) -> &InvoiceStore {
        &self.store
    }

    /// Drafts the invoice `invoice_id` from a final quote and issues it with the next number of
    /// the year. Idempotent: calling it again for the same invoice (with the same details)
    /// returns the same number and appends nothing.
    ///
    /// # Errors
    /// `Refused` with the aggregate's rule (a quote that does not add up, another invoice under
    /// this id, a void invoice), `Conflict`, or `Infrastructure`.
    pub async fn create_and_issue(
        &self,
        invoice_id: InvoiceId,
        account_id: AccountId,
        order_id: Option<OrderId>,
        customer: BillTo,
        quote: Quote,
        metadata: &CommandMetadata,
    ) -> InvoiceResult<IssuedInvoice> {
        let drafted = self
            .draft(invoice_id, account_id, order_id, customer, quote, metadata)
            .await?;
        let mut issued = self.issue(invoice_id, metadata).await?;
        issued.replayed = issued.replayed && drafted.events.is_empty();
        Ok(issued)
    }

    /// The first step of [`Invoices::create_and_issue`]: the draft alone, without a number. The
    /// `invoice-issuer` reactor issues a draft left alone (for example by a crash).
    pub async fn draft(
        &self,
        invoice_id: InvoiceId,
        account_id: AccountId,
        order_id: Option<OrderId>,
        customer: BillTo,
        quote: Quote,
        metadata: &CommandMetadata,
    ) -> InvoiceResult<Appended<Invoice>> {
        let command = InvoiceCommand::Draft {
            invoice_id,
            account_id,
            order_id,
            customer,
            quote: Box::new(quote),
            occurred_at: Utc::now(),
        };
        self.store
            .execute(&invoice_id.to_string(), command, &step(metadata, "draft"))
            .await
    }

    /// The second step: allocates the invoice's number (or finds the one it has) and issues the
    /// draft with it. An invoice that already has a number answers that number.
    pub async fn issue(
        &self,
        invoice_id: InvoiceId,
        metadata: &CommandMetadata,
    ) -> InvoiceResult<IssuedInvoice> {
        let id = invoice_id.to_string();
        let state = self.store.load(&id).await?;
        match (state.status(), state.number()) {
            (None, _) => return Err(CommandError::Refused(InvoiceError::NotDrafted)),
            (Some(_), Some(number)) => {
                let allocation = self.allocated(invoice_id).await?;
                return Ok(IssuedInvoice {
                    invoice_id,
                    number,
                    issued_at: allocation.map(|a| a.allocated_at),
                    replayed: true,
                    position: self.latest_position(invoice_id).await?,
                });
            }
            (Some(InvoiceStatus::Void), None) => {
                return Err(CommandError::Refused(InvoiceError::InvoiceVoid))
            }
            (Some(_), None) => {}
        }
        let allocation = numbers::allocate(&self.pool, invoice_id, Utc::now())
            .await
            .map_err(numbering_error)?;
        let command = InvoiceCommand::Issue {
            number: allocation.number,
            issued_at: allocation.allocated_at,
        };
        let appended = self
            .store
            .execute(&id, command, &step(metadata, "issue"))
            .await?;
        let replayed = appended.events.is_empty();
        Ok(IssuedInvoice {
            invoice_id,
            number: allocation.number,
            issued_at: Some(allocation.allocated_at),
            replayed,
            position: self.position_after(invoice_id, &appended).await?,
        })
    }

    /// Records the payment of an issued invoice under `payment_reference` (for example the wallet
    /// ledger reference of the debit that paid it). The same reference again changes nothing.
    pub async fn mark_paid(
        &self,
        invoice_id: InvoiceId,
        payment_reference: String,
        metadata: &CommandMetadata,
    ) -> InvoiceResult<InvoiceChange> {
        let command = InvoiceCommand::MarkPaid {
            payment_reference,
            paid_at: Utc::now(),
        };
        let appended = self
            .store
            .execute(&invoice_id.to_string(), command, metadata)
            .await?;
        self.change(invoice_id, appended).await
    }

    /// Voids a draft or an issued invoice; a void invoice stays void, a paid one is refused. A
    /// draft is numbered first, so a number allocated for it (by a call that crashed) is never
    /// left off the sequence.
    pub async fn void(
        &self,
        invoice_id: InvoiceId,
        reason: Reason,
        metadata: &CommandMetadata,
    ) -> InvoiceResult<InvoiceChange> {
        let id = invoice_id.to_string();
        let state = self.store.load(&id).await?;
        if state.status() == Some(InvoiceStatus::Draft) {
            self.issue(invoice_id, metadata).await?;
        }
        let command = InvoiceCommand::Void {
            reason,
            at: Utc::now(),
        };
        let appended = self
            .store
            .execute(&id, command, &step(metadata, "void"))
            .await?;
        self.change(invoice_id, appended).await
    }

    async fn change(
        &self,
        invoice_id: InvoiceId,
        appended: Appended<Invoice>,
    ) -> InvoiceResult<InvoiceChange> {
        let state = self.store.load(&invoice_id.to_string()).await?;
        let status = state
            .status()
            .ok_or(CommandError::Refused(InvoiceError::NotDrafted))?;
        Ok(InvoiceChange {
            invoice_id,
            status,
            number: state.number(),
            replayed: appended.events.is_empty(),
            position: self.position_after(invoice_id, &appended).await?,
        })
    }

    async fn position_after(
        &self,
        invoice_id: InvoiceId,
        appended: &Appended<Invoice>,
    ) -> InvoiceResult<FeedPosition> {
        match appended.position {
            Some(position) => Ok(position),
            None => self.latest_position(invoice_id).await,
        }
    }

    /// The number allocated to the invoice, on a connection given back before returning (a task
    /// never holds two pooled connections at once: under load that would deadlock the pool).
    async fn allocated(&self, invoice_id: InvoiceId) -> InvoiceResult<Option<numbers::Allocation>> {
        let mut conn = self.pool.acquire().await.map_err(CommandError::infra)?;
        numbers::allocated(&mut conn, invoice_id)
            .await
            .map_err(numbering_error)
    }

    /// The feed position of the newest event of the invoice.
    async fn latest_position(&self, invoice_id: InvoiceId) -> InvoiceResult<FeedPosition> {
        self.store
            .latest_position(&invoice_id.to_string())
            .await?
            .ok_or(CommandError::Refused(InvoiceError::NotDrafted))
    }
}

/// The metadata of one step of a call: the caller's, with a command id derived from theirs.
fn step(metadata: &CommandMetadata, name: &str) -> CommandMetadata {
    let mut step = metadata.clone();
    step.command_id = Uuid::new_v5(
        &STEP_NAMESPACE,
        format!("{}:{name}", metadata.command_id).as_bytes(),
    );
    step
}

fn numbering_error(err: NumberingError) -> CommandError<InvoiceError> {
    match err {
        NumberingError::NotDrafted(_) => CommandError::Refused(InvoiceError::NotDrafted),
        NumberingError::Exhausted { year } => {
            tracing::error!(year, "the invoice numbers of the year are exhausted");
            CommandError::infra(NumberingError::Exhausted { year })
        }
        other => CommandError::infra(other),
    }
}
