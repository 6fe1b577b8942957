//! `/audit`: the log itself, for auditors and admins.
//!
//! Secrets that the log records in hashed form (password and token hashes) are shown as
//! `[redacted]`: an auditor needs to see that they changed, not their value.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_domain::Role;
use stratus_projections::{audit, FeedPosition, StoredEvent};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, FieldError};
use crate::extract::Caller;
use crate::state::AppState;

/// Default and largest page of events.
pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 500;
const AUDIT_ROLES: &[Role] = &[Role::Auditor, Role::Admin];
/// Fields of event payloads that are never shown.
const REDACTED_SUFFIX: &str = "_hash";

/// One event as auditors see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Opaque cursor of this event in commit order; pass it as `after` to continue.
    pub position: String,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// The cursor for the next page; absent when this page was not full.
    pub next_after: Option<String>,
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.ends_with(REDACTED_SUFFIX) && !v.is_null() {
                    *v = Value::String("[redacted]".to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn view(event: StoredEvent) -> AuditEvent {
    let mut payload = event.payload;
    redact(&mut payload);
    AuditEvent {
        position: event.position.to_string(),
        global_position: event.position.global_position,
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        sequence: event.sequence,
        event_type: event.event_type,
        event_version: event.event_version,
        payload,
        metadata: event.metadata,
        recorded_at: event.recorded_at,
    }
}

pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "out_of_range",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )])),
    }
}

/// Query of the global log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct GlobalQuery {
    /// Cursor from a previous page (`position` or `next_after`).
    pub after: Option<String>,
    pub limit: Option<i64>,
    pub aggregate_type: Option<String>,
}

/// The global log in commit order.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(GlobalQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = crate::error::Problem)))]
#[get("/audit/events")]
pub async fn global_log(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<GlobalQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(AUDIT_ROLES)?;
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = match query.after.as_deref() {
        None | Some("") => FeedPosition::START,
        Some(cursor) => cursor.parse().map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                "after",
                "invalid_cursor",
                "not a cursor from this API",
            )])
        })?,
    };
    let events =
        audit::global_log(&state.pool, after, query.aggregate_type.as_deref(), limit).await?;
    let full = i64::try_from(events.len()).unwrap_or(i64::MAX) == limit;
    let next_after = if full {
        events.last().map(|e| e.position.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AuditPage {
        events: events.into_iter().map(view).collect(),
        next_after,
    }))
}

/// Query of one stream.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// Only events with a greater sequence number.
    pub after_sequence: Option<i64>,
    pub limit: Option<i64>,
}

/// One aggregate's events with their metadata, oldest first.
#[utoipa::path(get, path = "/api/v1/audit/streams/{aggregate_type}/{aggregate_id}/events", tag = "audit",
    params(("aggregate_type" = String, Path), ("aggregate_id" = String, Path), StreamQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 404, body = crate::error::Problem)))]
#[get("/audit/streams/{aggregate_type}/{aggregate_id}/events")]
pub async fn stream_events(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(AUDIT_ROLES)?;
    let (aggregate_type, aggregate_id) = path.into_inner();
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after_sequence = query.after_sequence.unwrap_or(0).max(0);
    let events = audit::stream(
        &state.pool,
        &aggregate_type,
        &aggregate_id,
        after_sequence,
        limit,
    )
    .await?;
    if events.is_empty() && after_sequence == 0 {
        return Err(ApiError::not_found("the stream"));
    }
    let full = i64::try_from(events.len()).unwrap_or(i64::MAX) == limit;
    let next_after = if full {
        events.last().map(|e| e.sequence.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AuditPage {
        events: events.into_iter().map(view).collect(),
        next_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_redacted_at_any_depth_and_other_fields_are_kept() {
        let mut v = serde_json::json!({"AccountRegistered": {"password_hash": "$argon2id$...", "email": "a@b.co",
            "nested": [{"refresh_token_hash": "abc"}]}});
        redact(&mut v);
        assert_eq!(v["AccountRegistered"]["password_hash"], "[redacted]");
        assert_eq!(
            v["AccountRegistered"]["nested"][0]["refresh_token_hash"],
            "[redacted]"
        );
        assert_eq!(v["AccountRegistered"]["email"], "a@b.co");
    }
}
