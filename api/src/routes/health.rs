//! `/health/live` and `/health/ready`, outside `/api/v1`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// A projection further behind than this many events makes the process not ready.
pub const READY_MAX_LAG_EVENTS: i64 = 1_000;
/// The readiness probe's own deadline for the database.
pub const READY_DB_TIMEOUT_MS: u64 = 2_000;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// Events each subscriber still has to apply (counted up to the limit).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub projection_lag: BTreeMap<String, i64>,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        projection_lag: BTreeMap::new(),
    })
}

/// The database answers and no projection lags behind by more than the limit.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let check = async {
        let mut lag = BTreeMap::new();
        for name in state.feed.subscriber_names() {
            let behind = state.feed.lag(name, READY_MAX_LAG_EVENTS + 1).await?;
            lag.insert(name.to_owned(), behind);
        }
        Ok::<_, stratus_projections::FeedError>(lag)
    };
    match tokio::time::timeout(Duration::from_millis(READY_DB_TIMEOUT_MS), check).await {
        Ok(Ok(lag)) => {
            let ok = lag.values().all(|&n| n <= READY_MAX_LAG_EVENTS);
            let body = Health {
                status: if ok { "ready" } else { "lagging" },
                projection_lag: lag,
            };
            if ok {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::ServiceUnavailable().json(body)
            }
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "database_unavailable",
                projection_lag: BTreeMap::new(),
            })
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(Health {
            status: "database_timeout",
            projection_lag: BTreeMap::new(),
        }),
    }
}
