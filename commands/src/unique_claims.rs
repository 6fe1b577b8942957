//! Unique values across aggregates (an email, later a hostname or a discount code).
//!
//! A value is claimed in `unique_claims` before the command that uses it runs, and released if the
//! command is refused. The primary key `(scope, value)` makes two simultaneous claims race inside
//! PostgreSQL: exactly one insert wins.

use sqlx::PgPool;

/// A claim whose owner never appended a single event (the process died between claiming and
/// appending) may be taken over after this long. Long enough that no live command is still running.
pub const ORPHAN_CLAIM_AFTER_SECONDS: i64 = 120;

/// Why a claim was not granted.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("the value is already claimed")]
    Taken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Claims `value` in `scope` for the aggregate `owner_type/owner_id`. Claiming again for the same
/// owner succeeds (a retried command), as does taking over an orphaned claim.
pub async fn claim(
    pool: &PgPool,
    scope: &str,
    value: &str,
    owner_type: &str,
    owner_id: &str,
) -> Result<(), ClaimError> {
    let inserted = sqlx::query(
        "INSERT INTO unique_claims (scope, value, owner_id) VALUES ($1, $2, $3) ON CONFLICT (scope, value) DO NOTHING",
    )
    .bind(scope)
    .bind(value)
    .bind(owner_id)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(());
    }
    // Someone holds it: the same owner retrying, a live owner, or an orphan.
    let taken_over = sqlx::query(
        "UPDATE unique_claims c SET owner_id = $3, claimed_at = now() \
         WHERE c.scope = $1 AND c.value = $2 AND c.owner_id <> $3 \
           AND c.claimed_at < now() - make_interval(secs => $5) \
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = $4 AND e.aggregate_id = c.owner_id)",
    )
    .bind(scope)
    .bind(value)
    .bind(owner_id)
    .bind(owner_type)
    .bind(ORPHAN_CLAIM_AFTER_SECONDS as f64)
    .execute(pool)
    .await?;
    if taken_over.rows_affected() == 1 {
        tracing::warn!(scope, "took over an orphaned unique claim");
        return Ok(());
    }
    let holder: Option<String> =
        sqlx::query_scalar("SELECT owner_id FROM unique_claims WHERE scope = $1 AND value = $2")
            .bind(scope)
            .bind(value)
            .fetch_optional(pool)
            .await?;
    match holder {
        Some(holder) if holder == owner_id => Ok(()),
        _ => Err(ClaimError::Taken),
    }
}

/// Gives a claim back after its command was refused. Only the owner's claim is removed.
pub async fn release(
    pool: &PgPool,
    scope: &str,
    value: &str,
    owner_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM unique_claims WHERE scope = $1 AND value = $2 AND owner_id = $3")
        .bind(scope)
        .bind(value)
        .bind(owner_id)
        .execute(pool)
        .await?;
    Ok(())
}
