//! `/auth/password/*`: forgotten passwords (a signed, single-use, expiring link by email) and
//! password changes by the logged-in account holder.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use stratus_commands::secrets::LinkPurpose;
use stratus_domain::account::{AccountCommand, AccountError};
use stratus_domain::{check_password_strength, AccountId, Email};
use stratus_projections::accounts;
use utoipa::ToSchema;

use crate::challenges;
use crate::error::{account_refusal, ApiError, FieldError};
use crate::extract::{Caller, Json, RequestContext};
use crate::state::{run_account, AppState};

const READS: &[&str] = &[accounts::NAME];
/// Passwords longer than this are refused before hashing (argon2 cost grows with input).
const PASSWORD_MAX_BYTES: usize = 1024;

/// `POST /auth/password/forgot`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotRequest {
    pub email: Option<String>,
}

/// Emails a reset link. The answer is the same, and as fast, whether or not the account exists:
/// the lookup and the sending happen after the response.
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "identity", request_body = ForgotRequest,
    responses((status = 202), (status = 422, body = crate::error::Problem)))]
#[post("/auth/password/forgot")]
pub async fn forgot(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: Json<ForgotRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = match body.0.email.as_deref().map(Email::parse) {
        None => return Err(ApiError::validation(vec![FieldError::required("email")])),
        Some(Err(e)) => {
            return Err(ApiError::validation(vec![FieldError::from_value(
                "email", &e,
            )]))
        }
        Some(Ok(email)) => email,
    };
    let worker = state.clone();
    tokio::spawn(async move {
        let found = match accounts::credentials_by_email(&worker.pool, email.as_str()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "password reset: lookup failed");
                return;
            }
        };
        let Some(credentials) = found else {
            return;
        };
        let account_id = AccountId::from_uuid(credentials.account_id);
        let command = AccountCommand::IssuePasswordReset {
            challenge: challenges::mint(challenges::PASSWORD_RESET_TTL_MINUTES),
            occurred_at: Utc::now(),
        };
        let metadata = ctx.metadata(account_id.to_string(), None);
        if let Err(e) = run_account(&worker, account_id, command, metadata).await {
            tracing::warn!(code = e.code, "no password reset sent");
        }
    });
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /auth/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    pub token: Option<String>,
    pub new_password: Option<String>,
}

fn check_new_password(password: &str, email: Option<&Email>) -> Result<(), ApiError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::validation(vec![FieldError::new(
            "new_password",
            "password_too_long",
            format!("at most {PASSWORD_MAX_BYTES} bytes"),
        )]));
    }
    check_password_strength(password, email)
        .map_err(|e| ApiError::validation(vec![FieldError::from_value("new_password", &e)]))
}

/// Sets a new password with the emailed token; every session of the account is revoked and any
/// login lock is lifted.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "identity", request_body = ResetRequest,
    responses((status = 204), (status = 400, description = "reset_token_invalid", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
#[post("/auth/password/reset")]
pub async fn reset(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    if body.token.as_deref().is_none_or(|t| t.trim().is_empty()) {
        errors.push(FieldError::required("token"));
    }
    if body.new_password.is_none() {
        errors.push(FieldError::required("new_password"));
    }
    let (Some(token), Some(password), true) = (body.token, body.new_password, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    let invalid = || account_refusal(&AccountError::ResetInvalid);
    let (account_id, challenge_id) = state
        .keys
        .open_link_token(LinkPurpose::ResetPassword, &token)
        .ok_or_else(invalid)?;
    let credentials = accounts::credentials_by_id(&state.pool, account_id.as_uuid())
        .await?
        .ok_or_else(invalid)?;
    let email = Email::parse(&credentials.email).ok();
    check_new_password(&password, email.as_ref())?;
    let password_hash = state
        .passwords
        .hash(password)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let command = AccountCommand::ResetPassword {
        challenge_id,
        password_hash,
        occurred_at: Utc::now(),
    };
    let metadata = ctx.metadata(account_id.to_string(), None);
    let appended = run_account(&state, account_id, command, metadata).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::NoContent().finish()))
}

/// `POST /auth/password/change`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeRequest {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

/// Changes the password; the current one is required. Every other session is revoked.
#[utoipa::path(post, path = "/api/v1/auth/password/change", tag = "identity", security(("bearer" = [])), request_body = ChangeRequest,
    responses((status = 204), (status = 403, description = "wrong_password", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
#[post("/auth/password/change")]
pub async fn change(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    if body.current_password.is_none() {
        errors.push(FieldError::required("current_password"));
    }
    if body.new_password.is_none() {
        errors.push(FieldError::required("new_password"));
    }
    let (Some(current), Some(new), true) =
        (body.current_password, body.new_password, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    let credentials = accounts::credentials_by_id(&state.pool, caller.account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    let wrong = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        )
    };
    if current.len() > PASSWORD_MAX_BYTES {
        return Err(wrong());
    }
    let matches = state
        .passwords
        .verify(current, credentials.password_hash.clone())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !matches {
        return Err(wrong());
    }
    let email = Email::parse(&credentials.email).ok();
    check_new_password(&new, email.as_ref())?;
    let password_hash = state
        .passwords
        .hash(new)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let command = AccountCommand::ChangePassword {
        password_hash,
        keep_session: Some(caller.session_id),
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::NoContent().finish()))
}
