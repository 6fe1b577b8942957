//! The invoices projection: one row per invoice in `invoices`, with its number, status, totals,
//! lines and bill-to snapshot, and the queries the API runs on it.
//!
//! Amounts are copied from the drafted quote, never recomputed: the aggregate checked that they
//! add up. Every column comes from the events (their times and positions), so a rebuild writes
//! the same rows.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::invoice::{BillTo, Invoice, InvoiceEvent, InvoiceStatus};
use stratus_domain::pricing::{Percent, QuoteLine};
use stratus_domain::{Currency, Money};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::stored_event::StoredEvent;

/// The subscriber name of this projection.
pub const NAME: &str = "invoices";

/// Projects Invoice events into `invoices`.
#[derive(Debug, Default, Clone, Copy)]
pub struct InvoicesProjection;

impl Subscriber for InvoicesProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Invoice as cqrs_es::Aggregate>::TYPE];
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
            for event in events {
                if event.aggregate_type != <Invoice as cqrs_es::Aggregate>::TYPE {
                    continue;
                }
                let decoded: InvoiceEvent = serde_json::from_value(event.payload.clone())
                    .map_err(|e| SubscriberError::decode(event, e))?;
                apply_one(tx, event, decoded).await?;
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM invoices")
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

async fn apply_one(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    event: InvoiceEvent,
) -> Result<(), SubscriberError> {
    let id =
        Uuid::parse_str(&stored.aggregate_id).map_err(|e| SubscriberError::decode(stored, e))?;
    let at = stored.recorded_at;
    match event {
        InvoiceEvent::InvoiceDrafted {
            account_id,
            order_id,
            bill_to,
            quote,
            drafted_at,
            ..
        } => {
            let lines = serde_json::to_value(&quote.lines)
                .map_err(|e| SubscriberError::decode(stored, e))?;
            let bill_to =
                serde_json::to_value(&bill_to).map_err(|e| SubscriberError::decode(stored, e))?;
            sqlx::query(
                "INSERT INTO invoices (id, account_id, order_id, status, currency, billing_period, \
                 subtotal_micros, discount_micros, discount_code, net_micros, tax_country, \
                 tax_rate_basis_points, tax_micros, total_micros, lines, bill_to, created_at, \
                 updated_at, created_position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(account_id.as_uuid())
            .bind(order_id.map(|o| o.as_uuid()))
            .bind(InvoiceStatus::Draft.as_str())
            .bind(quote.currency.code())
            .bind(quote.billing_period.as_str())
            .bind(quote.subtotal.micros())
            .bind(quote.discount.micros())
            .bind(&quote.discount_code)
            .bind(quote.net.micros())
            .bind(quote.tax.country.as_ref().map(|c| c.as_str().to_owned()))
            .bind(i32::try_from(quote.tax.rate.basis_points()).unwrap_or(i32::MAX))
            .bind(quote.tax_amount.micros())
            .bind(quote.total.micros())
            .bind(lines)
            .bind(bill_to)
            .bind(drafted_at)
            .bind(at)
            .bind(stored.position.global_position)
            .execute(&mut *tx)
            .await?;
        }
        InvoiceEvent::InvoiceIssued { number, issued_at } => {
            sqlx::query(
                "UPDATE invoices SET number = $2, year = $3, sequence = $4, issued_at = $5, \
                 status = CASE WHEN status = $6 THEN $7 ELSE status END, updated_at = $8 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(number.to_string())
            .bind(number.year())
            .bind(i64::from(number.sequence()))
            .bind(issued_at)
            .bind(InvoiceStatus::Draft.as_str())
            .bind(InvoiceStatus::Issued.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        InvoiceEvent::InvoicePaid {
            payment_reference,
            paid_at,
        } => {
            sqlx::query(
                "UPDATE invoices SET status = $2, payment_reference = $3, paid_at = $4, \
                 updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(InvoiceStatus::Paid.as_str())
            .bind(payment_reference)
            .bind(paid_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        InvoiceEvent::InvoiceVoided { reason, voided_at } => {
            sqlx::query(
                "UPDATE invoices SET status = $2, void_reason = $3, voided_at = $4, \
                 updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(InvoiceStatus::Void.as_str())
            .bind(reason.as_str())
            .bind(voided_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// One invoice as the read model holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceView {
    pub invoice_id: Uuid,
    /// `2026-000042`; `None` for a draft.
    pub number: Option<String>,
    pub account_id: Uuid,
    pub order_id: Option<Uuid>,
    pub status: InvoiceStatus,
    pub currency: Currency,
    /// `monthly`, `hourly`, …
    pub billing_period: String,
    pub lines: Vec<QuoteLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub discount_code: Option<String>,
    pub net: Money,
    /// The ISO country whose VAT applies; `None` when no tax applies.
    pub tax_country: Option<String>,
    pub tax_rate: Percent,
    pub tax: Money,
    pub total: Money,
    pub bill_to: BillTo,
    pub payment_reference: Option<String>,
    pub void_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Newest-first order key; also the paging cursor.
    pub position: i64,
}

/// Filters of an invoice list; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub account_id: Option<Uuid>,
    pub status: Option<InvoiceStatus>,
    /// Only invoices created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only invoices created before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only invoices older than this position (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: i64,
}

const COLUMNS: &str = "id, number, account_id, order_id, status, currency, billing_period, \
     subtotal_micros, discount_micros, discount_code, net_micros, tax_country, \
     tax_rate_basis_points, tax_micros, total_micros, lines, bill_to, payment_reference, \
     void_reason, created_at, issued_at, paid_at, voided_at, updated_at, created_position";

fn decode_error(err: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(err))
}

/// A stored value this code does not understand (a status or tax rate out of range).
#[derive(Debug, thiserror::Error)]
#[error("invalid stored invoice value: {0}")]
struct InvalidStored(String);

fn invoice_of(row: &PgRow) -> Result<InvoiceView, sqlx::Error> {
    let code: String = row.try_get("currency")?;
    let currency = Currency::parse(&code).map_err(decode_error)?;
    let money = |column: &str| -> Result<Money, sqlx::Error> {
        Ok(Money::from_micros(row.try_get(column)?, currency))
    };
    let status: String = row.try_get("status")?;
    let status =
        InvoiceStatus::from_name(&status).ok_or_else(|| decode_error(InvalidStored(status)))?;
    let basis_points: i32 = row.try_get("tax_rate_basis_points")?;
    let tax_rate = u32::try_from(basis_points)
        .ok()
        .and_then(|bp| Percent::from_basis_points(bp).ok())
        .ok_or_else(|| decode_error(InvalidStored(format!("tax rate {basis_points}"))))?;
    let lines: serde_json::Value = row.try_get("lines")?;
    let bill_to: serde_json::Value = row.try_get("bill_to")?;
    Ok(InvoiceView {
        invoice_id: row.try_get("id")?,
        number: row.try_get("number")?,
        account_id: row.try_get("account_id")?,
        order_id: row.try_get("order_id")?,
        status,
        currency,
        billing_period: row.try_get("billing_period")?,
        lines: serde_json::from_value(lines).map_err(decode_error)?,
        subtotal: money("subtotal_micros")?,
        discount: money("discount_micros")?,
        discount_code: row.try_get("discount_code")?,
        net: money("net_micros")?,
        tax_country: row.try_get("tax_country")?,
        tax_rate,
        tax: money("tax_micros")?,
        total: money("total_micros")?,
        bill_to: serde_json::from_value(bill_to).map_err(decode_error)?,
        payment_reference: row.try_get("payment_reference")?,
        void_reason: row.try_get("void_reason")?,
        created_at: row.try_get("created_at")?,
        issued_at: row.try_get("issued_at")?,
        paid_at: row.try_get("paid_at")?,
        voided_at: row.try_get("voided_at")?,
        updated_at: row.try_get("updated_at")?,
        position: row.try_get("created_position")?,
    })
}

/// One invoice by id.
pub async fn get_invoice(pool: &PgPool, id: Uuid) -> Result<Option<InvoiceView>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM invoices WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(invoice_of).transpose()
}

/// Invoices, newest first.
pub async fn list_invoices(
    pool: &PgPool,
    filter: &InvoiceFilter,
) -> Result<Vec<InvoiceView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM invoices \
         WHERE ($1::uuid IS NULL OR account_id = $1) \
           AND ($2::text IS NULL OR status = $2) \
           AND ($3::timestamptz IS NULL OR created_at >= $3) \
           AND ($4::timestamptz IS NULL OR created_at < $4) \
           AND ($5::bigint IS NULL OR created_position < $5) \
         ORDER BY created_position DESC LIMIT $6"
    ))
    .bind(filter.account_id)
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(invoice_of).collect()
}
