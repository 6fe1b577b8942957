//! `/auth/2fa/*`: TOTP (RFC 6238) two-factor authentication with ten single-use recovery codes.
//!
//! The secret is derived from the challenge key and the setup id, so the log holds only the id;
//! the recovery codes are shown once and stored as hashes.

use actix_web::{post, web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use stratus_commands::secrets;
use stratus_domain::account::AccountCommand;
use stratus_domain::ChallengeId;
use stratus_projections::accounts;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::routes::auth::second_factor;
use crate::state::{run_account, AppState};

const READS: &[&str] = &[accounts::NAME];

/// What an authenticator app needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetup {
    /// The base32 secret, for typing in by hand.
    pub secret: String,
    /// `otpauth://totp/…`, for a QR code.
    pub otpauth_uri: String,
}

/// Begins setting up TOTP; it is not on until `enable` confirms a code.
#[utoipa::path(post, path = "/api/v1/auth/2fa/setup", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = TotpSetup), (status = 409, description = "mfa_already_enabled", body = crate::error::Problem)))]
#[post("/auth/2fa/setup")]
pub async fn setup(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let account = accounts::get_account(&state.pool, caller.account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    let setup_id = ChallengeId::from_uuid(Uuid::now_v7());
    let command = AccountCommand::StartTotpSetup {
        setup_id,
        occurred_at: Utc::now(),
    };
    run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let (secret, otpauth_uri) = state
        .keys
        .otpauth(caller.account_id, setup_id, &account.email);
    Ok(HttpResponse::Ok().json(TotpSetup {
        secret,
        otpauth_uri,
    }))
}

/// `POST /auth/2fa/enable` and `/disable`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TotpCode {
    /// A six-digit code from the app (or, to disable, a recovery code).
    pub code: Option<String>,
}

/// The recovery codes, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

fn required_code(body: TotpCode) -> Result<String, ApiError> {
    body.code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::validation(vec![FieldError::required("code")]))
}

/// Turns TOTP on with a code from the app; answers ten recovery codes, shown only now.
#[utoipa::path(post, path = "/api/v1/auth/2fa/enable", tag = "identity", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 200, body = RecoveryCodes), (status = 400, description = "invalid_mfa_code", body = crate::error::Problem),
              (status = 409, description = "mfa_setup_not_started, mfa_already_enabled", body = crate::error::Problem)))]
#[post("/auth/2fa/enable")]
pub async fn enable(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let code = required_code(body.0)?;
    let recovery_codes = secrets::new_recovery_codes();
    let command = AccountCommand::EnableTotp {
        code,
        recovery_code_hashes: recovery_codes
            .iter()
            .map(|c| secrets::recovery_code_hash(c))
            .collect(),
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(RecoveryCodes { recovery_codes })))
}

/// Turns TOTP off with a current code or a recovery code.
#[utoipa::path(post, path = "/api/v1/auth/2fa/disable", tag = "identity", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204), (status = 400, description = "invalid_mfa_code", body = crate::error::Problem),
              (status = 409, description = "mfa_not_enabled", body = crate::error::Problem)))]
#[post("/auth/2fa/disable")]
pub async fn disable(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let code = required_code(body.0)?;
    let factor = second_factor(Some(code))
        .ok_or_else(|| ApiError::validation(vec![FieldError::required("code")]))?;
    let command = AccountCommand::DisableTotp {
        second_factor: factor,
        occurred_at: Utc::now(),
    };
    let appended = run_account(&state, caller.account_id, command, caller.metadata()).await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::NoContent().finish()))
}
