//! Gapless invoice numbers per year (ADR 0012).
//!
//! A number is allocated in SQL before the `Issue` command, keyed by the invoice id, so retrying
//! the issue of one invoice always gets the same number. One transaction:
//!
//! 1. a transaction-scoped advisory lock on the invoice id serialises allocations of one invoice
//!    (the service and the `invoice-issuer` reactor may race for it);
//! 2. if `invoice_numbers` already maps the invoice, that number is the answer;
//! 3. otherwise the year's counter is bumped with `INSERT … ON CONFLICT (year) DO UPDATE … RETURNING`,
//!    which row-locks the year until commit, so numbers of one year are handed out one at a time
//!    and a rolled-back allocation gives its number back;
//! 4. the mapping is inserted, and both commit together.
//!
//! A counter bump never commits without its mapping, so every number up to the counter belongs to
//! exactly one invoice. Only drafted invoices are numbered, and the `invoice-issuer` reactor issues
//! every draft, so every allocated number ends up on an issued invoice.

use chrono::{DateTime, Datelike, Utc};
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::invoice::{Invoice, InvoiceNumber, InvoiceNumberError, INVOICE_SEQUENCE_MAX};
use stratus_domain::InvoiceId;

/// A number and the instant it was taken; the invoice is issued at that instant, whose year (UTC)
/// is the number's year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub number: InvoiceNumber,
    pub allocated_at: DateTime<Utc>,
}

/// Why no number could be allocated.
#[derive(Debug, thiserror::Error)]
pub enum NumberingError {
    /// Only a drafted invoice is numbered: a number for an invoice that does not exist would
    /// never reach an issued invoice and leave a gap.
    #[error("invoice {0} has not been drafted")]
    NotDrafted(InvoiceId),
    /// Every sequence number of the year is taken.
    #[error("the invoice numbers of {year} are exhausted ({INVOICE_SEQUENCE_MAX} allocated)")]
    Exhausted { year: i32 },
    /// The year cannot be on an invoice number, or a stored number is corrupt.
    #[error("invalid invoice number: {0}")]
    Invalid(#[from] InvoiceNumberError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The number of `invoice_id`: the one it already has, or the next of the year of `at` (UTC).
/// Idempotent by invoice id; safe under any concurrency, across processes.
pub async fn allocate(
    pool: &PgPool,
    invoice_id: InvoiceId,
    at: DateTime<Utc>,
) -> Result<Allocation, NumberingError> {
    // Stored with microsecond precision: truncate first, so a first answer equals every later one.
    let at = DateTime::<Utc>::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
    let year = at.year();
    InvoiceNumber::new(year, 1)?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("stratus.invoice-number.{invoice_id}"))
        .execute(&mut *tx)
        .await?;
    if let Some(existing) = allocated(&mut tx, invoice_id).await? {
        tx.commit().await?;
        return Ok(existing);
    }
    let drafted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)",
    )
    .bind(<Invoice as cqrs_es::Aggregate>::TYPE)
    .bind(invoice_id.to_string())
    .fetch_one(&mut *tx)
    .await?;
    if !drafted {
        tx.rollback().await?;
        return Err(NumberingError::NotDrafted(invoice_id));
    }
    let sequence: i64 = sqlx::query_scalar(
        "INSERT INTO invoice_number_counters (year, last_sequence) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last_sequence = invoice_number_counters.last_sequence + 1 \
         RETURNING last_sequence",
    )
    .bind(year)
    .fetch_one(&mut *tx)
    .await?;
    if sequence > i64::from(INVOICE_SEQUENCE_MAX) {
        tx.rollback().await?;
        return Err(NumberingError::Exhausted { year });
    }
    let number = InvoiceNumber::new(year, sequence)?;
    let inserted = sqlx::query(
        "INSERT INTO invoice_numbers (invoice_id, year, sequence, allocated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (invoice_id) DO NOTHING",
    )
    .bind(invoice_id.as_uuid())
    .bind(year)
    .bind(sequence)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // Someone numbered it meanwhile (not possible under the advisory lock, kept as a net):
        // give our number back by rolling the bump back, and answer theirs.
        tx.rollback().await?;
        let mut conn = pool.acquire().await?;
        return allocated(&mut conn, invoice_id)
            .await?
            .ok_or(NumberingError::Database(sqlx::Error::RowNotFound));
    }
    tx.commit().await?;
    Ok(Allocation {
        number,
        allocated_at: at,
    })
}

/// The number already allocated to `invoice_id`, if any.
pub async fn allocated(
    conn: &mut PgConnection,
    invoice_id: InvoiceId,
) -> Result<Option<Allocation>, NumberingError> {
    let row = sqlx::query(
        "SELECT year, sequence, allocated_at FROM invoice_numbers WHERE invoice_id = $1",
    )
    .bind(invoice_id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let year: i32 = row.try_get("year")?;
    let sequence: i64 = row.try_get("sequence")?;
    Ok(Some(Allocation {
        number: InvoiceNumber::new(year, sequence)?,
        allocated_at: row.try_get("allocated_at")?,
    }))
}
