//! An event as the log stores it, with its place in the feed.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::position::FeedPosition;

/// The columns every reader of the log selects, in this order.
///
/// They name the text form of the transaction id `transaction_id`, and Postgres resolves a bare
/// name in `ORDER BY` to the output column first: order by [`FEED_ORDER`] (qualified with the
/// table), never by a bare `transaction_id`, or `"1000"` sorts before `"999"`.
pub(crate) const EVENT_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata, global_position, transaction_id::text AS transaction_id, recorded_at";

/// The feed order `(transaction_id, global_position)` on the `xid8` column itself.
pub(crate) const FEED_ORDER: &str = "events.transaction_id, events.global_position";

/// The feed position of a row that has the `transaction_id` (as text) and `global_position` columns.
pub(crate) fn position_of_row(row: &PgRow) -> Result<FeedPosition, sqlx::Error> {
    let transaction_id: String = row.try_get("transaction_id")?;
    let global_position: i64 = row.try_get("global_position")?;
    FeedPosition::from_db(&transaction_id, global_position)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// One row of the `events` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    #[serde(skip)]
    pub position: FeedPosition,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let position = position_of_row(row)?;
        Ok(Self {
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            position,
            recorded_at: row.try_get("recorded_at")?,
        })
    }
}
