//! `/me`: the caller's own account, profile, identity check (KYC) and sessions.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stratus_commands::phone_verification;
use stratus_domain::account::AccountCommand;
use stratus_domain::{Country, NationalId, PersonName, Phone, SessionId};
use stratus_projections::accounts;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{required_field, ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::state::{run_account, AppState};

const READS: &[&str] = &[accounts::NAME];

/// The caller's account as API.md describes `GET /me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub account_id: Uuid,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub roles: Vec<String>,
    pub mfa_enabled: bool,
    /// `not_submitted`, `pending`, `approved` or `rejected`.
    pub kyc_status: String,
    pub created_at: DateTime<Utc>,
}

async fn load_me(state: &AppState, caller: &Caller) -> Result<Me, ApiError> {
    let account = accounts::get_account(&state.pool, caller.account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    Ok(Me {
        account_id: account.account_id,
        name: account.name,
        email: account.email,
        email_verified: account.email_verified,
        phone: account.phone,
        phone_verified: account.phone_verified,
        roles: account.roles,
        mfa_enabled: account.mfa_enabled,
        kyc_status: account.kyc_status,
        created_at: account.created_at,
    })
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load_me(&state, &caller).await?))
}

/// `PATCH /me`: fields left out stay as they are; `phone: null` or `""` removes the phone.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProfilePatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Some(Option::deserialize(deserializer)?))
}

/// Changes the name and/or phone. A new phone is unverified until its code is confirmed.
#[utoipa::path(patch, path = "/api/v1/me", tag = "identity", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = Me), (status = 422, body = crate::error::Problem)))]
#[patch("/me")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    let name = match body.name.as_deref().map(PersonName::parse) {
        None => None,
        Some(Ok(name)) => Some(name),
        Some(Err(e)) => {
            errors.push(FieldError::from_value("name", &e));
            None
        }
    };
    let phone = match body.phone {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) if text.trim().is_empty() => Some(None),
        Some(Some(text)) => match Phone::parse(&text) {
            Ok(phone) => Some(Some(phone)),
            Err(e) => {
                errors.push(FieldError::from_value("phone", &e));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let before = accounts::get_account(&state.pool, caller.account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    let phone_changes = phone.is_some();
    let command = AccountCommand::UpdateProfile {
        name,
        phone,
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    if phone_changes && before.phone_verified && !appended.events.is_empty() {
        if let Some(old) = before.phone.as_deref().and_then(|p| Phone::parse(p).ok()) {
            phone_verification::release(&state.pool, &old, caller.account_id).await;
        }
    }
    Ok(consistency.mark(HttpResponse::Ok().json(load_me(&state, &caller).await?)))
}

/// `POST /me/kyc`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct KycRequest {
    pub national_id: Option<String>,
    pub legal_name: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// The identity check's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycState {
    pub kyc_status: String,
}

/// Submits identity details for staff review. Honours `Idempotency-Key` (see
/// [`crate::idempotency`]).
#[utoipa::path(post, path = "/api/v1/me/kyc", tag = "identity", security(("bearer" = [])), request_body = KycRequest,
    params(IdempotencyKeyHeader),
    responses((status = 202, body = KycState),
              (status = 400, description = "invalid_idempotency_key", body = crate::error::Problem),
              (status = 409, description = "kyc_already_pending, kyc_already_approved, idempotency_key_in_progress (Retry-After)", body = crate::error::Problem),
              (status = 422, description = "validation_failed, idempotency_key_reused", body = crate::error::Problem),
              (status = 503, description = "idempotency_unavailable", body = crate::error::Problem)))]
#[post("/me/kyc", wrap = "Idempotent::new()")]
pub async fn submit_kyc(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<KycRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    let national_id = required_field(
        &mut errors,
        "national_id",
        body.national_id.as_deref(),
        NationalId::parse,
    );
    let legal_name = required_field(
        &mut errors,
        "legal_name",
        body.legal_name.as_deref(),
        PersonName::parse,
    );
    let country = required_field(
        &mut errors,
        "country",
        body.country.as_deref(),
        Country::parse,
    );
    let (Some(national_id), Some(legal_name), Some(country), true) =
        (national_id, legal_name, country, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    let command = AccountCommand::SubmitKyc {
        national_id,
        legal_name,
        country,
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::Accepted().json(KycState {
        kyc_status: "pending".to_owned(),
    })))
}

/// One active session of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionItem {
    pub session_id: Uuid,
    /// Whether this is the session of the token that asked.
    pub current: bool,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The caller's active sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionItem>,
}

/// The caller's active sessions, most recently used first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = SessionList)))]
#[get("/me/sessions")]
pub async fn sessions(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let sessions = accounts::active_sessions(&state.pool, caller.account_id.as_uuid()).await?;
    let current = caller.session_id.as_uuid();
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: sessions
            .into_iter()
            .map(|s| SessionItem {
                current: s.session_id == current,
                session_id: s.session_id,
                client_ip: s.client_ip,
                user_agent: s.user_agent,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
            })
            .collect(),
    }))
}

/// Revokes one of the caller's sessions (another device). Another account's session id is
/// answered like an unknown one.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", tag = "identity", security(("bearer" = [])),
    params(("session_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
#[delete("/me/sessions/{session_id}")]
pub async fn revoke_session(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session_id = path.into_inner();
    let session = accounts::get_session(&state.pool, session_id)
        .await?
        .filter(|s| s.account_id == caller.account_id.as_uuid())
        .ok_or_else(|| ApiError::not_found("the session"))?;
    if session.status != accounts::SESSION_ACTIVE {
        return Ok(HttpResponse::NoContent().finish());
    }
    let command = AccountCommand::RevokeSession {
        session_id: SessionId::from_uuid(session_id),
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::NoContent().finish()))
}

/// Revokes every session of the caller except the current one ("log out everywhere else").
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "identity", security(("bearer" = [])),
    responses((status = 204)))]
#[delete("/me/sessions")]
pub async fn revoke_other_sessions(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let command = AccountCommand::RevokeOtherSessions {
        keep: Some(caller.session_id),
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::NoContent().finish()))
}
