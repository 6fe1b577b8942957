//! The `idempotency_keys` table: who holds an `Idempotency-Key`, and the answer it got.
//!
//! The HTTP side (`stratus_api::idempotency`) decides what a key, a scope and a fingerprint are;
//! this module only claims, records, releases and purges rows, with PostgreSQL's clock throughout
//! so that several processes agree on what has expired.
//!
//! A key is claimed by `INSERT … ON CONFLICT DO NOTHING` on the primary key
//! `(scope, method, path, idempotency_key)`, so of simultaneous first requests exactly one wins.
//! Every later request sees the row: a different fingerprint is [`Claim::Reused`], a finished
//! request is [`Claim::Replay`], a running one is [`Claim::InProgress`]. A row whose holder
//! vanished (claimed longer ago than the lock timeout, never finished) or that has expired may be
//! taken over; the holder's later write then matches no row, because it names its [`ClaimId`].

use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

/// How many times a claim looks again when the row it found disappeared before it could read it
/// (released by a 5xx, purged, or expired in between). Each round costs three statements at most.
pub const CLAIM_ROUNDS: usize = 3;
/// Expired rows one claim deletes on its way: bounded, so no request pays for a large backlog.
pub const PURGE_BATCH_ROWS: i64 = 100;

/// Which key: the caller's scope, the route and the client's key.
#[derive(Debug, Clone, Copy)]
pub struct KeyId<'a> {
    /// `account:<uuid>` or `anonymous`.
    pub scope: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub key: &'a str,
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl<'a> KeyId<'a> {
    /// Binds the row's primary key as `$1` to `$4`.
    fn bind_to(self, query: PgQuery<'a>) -> PgQuery<'a> {
        query
            .bind(self.scope)
            .bind(self.method)
            .bind(self.path)
            .bind(self.key)
    }
}

/// How long rows live, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// After this a row is ignored, may be taken over by any request and is purged.
    pub ttl_seconds: i64,
    /// A claim still unfinished after this is taken to be a crashed holder's.
    pub lock_timeout_seconds: i64,
}

/// The holder of a key: only it records or releases the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimId(Uuid);

impl ClaimId {
    /// A new holder's id, minted by the request before it claims, so that it can release whatever
    /// it may have claimed even if the claim's answer was lost.
    pub fn mint() -> Self {
        Self(Uuid::now_v7())
    }
}

/// An answer as it is kept and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Below 500: server errors are never kept.
    pub status: u16,
    /// The headers worth replaying (names in lower case), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a request found when it presented its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, then [`complete`] or [`release`].
    Granted,
    /// A request with the same key and fingerprint finished; this is its answer.
    Replay(StoredResponse),
    /// A request with the same key and fingerprint is still running.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

type StoredRow = (
    Vec<u8>,
    Option<i16>,
    Option<Json<Vec<(String, String)>>>,
    Option<Vec<u8>>,
);

/// Claims `id` as `claim_id` for a request with `fingerprint`, or says who has it.
pub async fn claim(
    pool: &PgPool,
    id: KeyId<'_>,
    fingerprint: &[u8],
    claim_id: ClaimId,
    lifetimes: Lifetimes,
) -> Result<Claim, sqlx::Error> {
    for _ in 0..CLAIM_ROUNDS {
        let inserted = id
            .bind_to(sqlx::query(
                "INSERT INTO idempotency_keys \
               (scope, method, path, idempotency_key, fingerprint, claim_id, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 second') \
             ON CONFLICT (scope, method, path, idempotency_key) DO NOTHING",
            ))
            .bind(fingerprint)
            .bind(claim_id.0)
            .bind(lifetimes.ttl_seconds)
            .execute(pool)
            .await?;
        if inserted.rows_affected() == 1 {
            purge_some(pool).await;
            return Ok(Claim::Granted);
        }
        // An expired row is anyone's; an abandoned claim is its own request's to take again.
        let taken_over = id
            .bind_to(sqlx::query(
                "UPDATE idempotency_keys \
             SET fingerprint = $5, claim_id = $6, claimed_at = now(), \
                 expires_at = now() + $7 * interval '1 second', \
                 response_status = NULL, response_headers = NULL, response_body = NULL, \
                 completed_at = NULL \
             WHERE scope = $1 AND method = $2 AND path = $3 AND idempotency_key = $4 \
               AND (expires_at <= now() \
                    OR (completed_at IS NULL AND fingerprint = $5 \
                        AND claimed_at <= now() - $8 * interval '1 second'))",
            ))
            .bind(fingerprint)
            .bind(claim_id.0)
            .bind(lifetimes.ttl_seconds)
            .bind(lifetimes.lock_timeout_seconds)
            .execute(pool)
            .await?;
        if taken_over.rows_affected() == 1 {
            tracing::info!(
                method = id.method,
                path = id.path,
                "took over an expired or abandoned idempotency key"
            );
            return Ok(Claim::Granted);
        }
        let row: Option<StoredRow> = sqlx::query_as(
            "SELECT fingerprint, response_status, response_headers, response_body \
             FROM idempotency_keys \
             WHERE scope = $1 AND method = $2 AND path = $3 AND idempotency_key = $4 \
               AND expires_at > now()",
        )
        .bind(id.scope)
        .bind(id.method)
        .bind(id.path)
        .bind(id.key)
        .fetch_optional(pool)
        .await?;
        match row {
            None => continue,
            Some((stored, ..)) if stored != fingerprint => return Ok(Claim::Reused),
            Some((_, Some(status), Some(Json(headers)), Some(body))) => {
                let status = u16::try_from(status).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                return Ok(Claim::Replay(StoredResponse {
                    status,
                    headers,
                    body,
                }));
            }
            Some(_) => return Ok(Claim::InProgress),
        }
    }
    // The row kept vanishing under us: another request is busy with this key.
    Ok(Claim::InProgress)
}

/// Records the answer of the request holding `claim`. False when the claim was taken over in the
/// meantime (the request outlived the lock timeout), and nothing was recorded.
pub async fn complete(
    pool: &PgPool,
    id: KeyId<'_>,
    claim: ClaimId,
    response: &StoredResponse,
) -> Result<bool, sqlx::Error> {
    let status = i16::try_from(response.status).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let recorded = id
        .bind_to(sqlx::query(
            "UPDATE idempotency_keys \
         SET response_status = $6, response_headers = $7, response_body = $8, completed_at = now() \
         WHERE scope = $1 AND method = $2 AND path = $3 AND idempotency_key = $4 \
           AND claim_id = $5 AND completed_at IS NULL",
        ))
        .bind(claim.0)
        .bind(status)
        .bind(Json(&response.headers))
        .bind(&response.body)
        .execute(pool)
        .await?;
    Ok(recorded.rows_affected() == 1)
}

/// Gives the key back (the request failed on our side), so that the client's retry runs afresh.
pub async fn release(pool: &PgPool, id: KeyId<'_>, claim: ClaimId) -> Result<(), sqlx::Error> {
    id.bind_to(sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE scope = $1 AND method = $2 AND path = $3 AND idempotency_key = $4 \
           AND claim_id = $5 AND completed_at IS NULL",
    ))
    .bind(claim.0)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes at most `limit` expired rows, oldest first, skipping rows another request is taking
/// over. Returns how many went.
pub async fn purge_expired(pool: &PgPool, limit: i64) -> Result<u64, sqlx::Error> {
    let purged = sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE (scope, method, path, idempotency_key) IN ( \
             SELECT scope, method, path, idempotency_key FROM idempotency_keys \
             WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 \
             FOR UPDATE SKIP LOCKED)",
    )
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(purged.rows_affected())
}

/// The opportunistic purge of a fresh claim: a failure costs only the tidying, never the request.
async fn purge_some(pool: &PgPool) {
    match purge_expired(pool, PURGE_BATCH_ROWS).await {
        Ok(0) => {}
        Ok(purged) => tracing::debug!(purged, "purged expired idempotency keys"),
        Err(e) => tracing::warn!(error = %e, "could not purge expired idempotency keys"),
    }
}
