//! Reading the log itself, for auditors: the global log in commit order and single streams.
//!
//! These read the `events` table directly (it is the record being audited), never an aggregate.

use sqlx::PgPool;

use crate::position::FeedPosition;
use crate::stored_event::{StoredEvent, EVENT_COLUMNS, FEED_ORDER};

/// The global log after `after`, in commit order, optionally only one aggregate type.
///
/// Fenced like the feed: an event appears only once every transaction that could still commit
/// before it has finished, so a page never changes after it was read and a cursor never skips.
pub async fn global_log(
    pool: &PgPool,
    after: FeedPosition,
    aggregate_type: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
           AND (transaction_id, global_position) > ($1::text::xid8, $2) \
           AND ($3::text IS NULL OR aggregate_type = $3) \
         ORDER BY {FEED_ORDER} LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(aggregate_type)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// One stream's events with a sequence above `after_sequence`, oldest first.
pub async fn stream(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
         ORDER BY sequence LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}
