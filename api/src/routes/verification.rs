//! `/auth/email/*` and `/auth/phone/*`: proving an email address by a link and a phone number by
//! a code. The link's token is signed by the challenge key; the aggregate checks that it is the
//! latest one, unused and unexpired.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use stratus_commands::detached;
use stratus_commands::phone_verification::{self, PhoneOutcome, PhoneVerificationError};
use stratus_commands::secrets::LinkPurpose;
use stratus_domain::account::{AccountCommand, AccountError};
use stratus_domain::Phone;
use stratus_projections::accounts;
use utoipa::{IntoParams, ToSchema};

use crate::challenges;
use crate::error::{account_refusal, command_error, ApiError, FieldError};
use crate::extract::{Caller, Json, RequestContext};
use crate::state::{run_account, AppState};

const READS: &[&str] = &[accounts::NAME];

/// `POST /auth/email/verify`, and the query of the emailed link.
#[derive(Debug, Deserialize, ToSchema, IntoParams)]
pub struct TokenRequest {
    pub token: Option<String>,
}

async fn verify_email_token(
    state: &web::Data<AppState>,
    ctx: &RequestContext,
    token: Option<String>,
) -> Result<(), ApiError> {
    let token = token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::validation(vec![FieldError::required("token")]))?;
    let (account_id, challenge_id) = state
        .keys
        .open_link_token(LinkPurpose::VerifyEmail, &token)
        .ok_or_else(|| account_refusal(&AccountError::VerificationInvalid))?;
    let command = AccountCommand::VerifyEmail {
        challenge_id,
        occurred_at: Utc::now(),
    };
    let metadata = ctx.metadata(account_id.to_string(), None);
    let appended = run_account(state, account_id, command, metadata).await?;
    state.read_your_writes(appended.position, READS).await?;
    Ok(())
}

/// Verifies the email address with the token from the link.
#[utoipa::path(post, path = "/api/v1/auth/email/verify", tag = "identity", request_body = TokenRequest,
    responses((status = 204), (status = 400, description = "verification_invalid", body = crate::error::Problem),
              (status = 409, description = "email_already_verified", body = crate::error::Problem),
              (status = 410, description = "verification_expired", body = crate::error::Problem)))]
#[post("/auth/email/verify")]
pub async fn verify_email(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    verify_email_token(&state, &ctx, body.0.token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The link in the verification email: answers a short HTML page on success (errors are
/// problem+json like everywhere else).
#[utoipa::path(get, path = "/api/v1/auth/email/verify", tag = "identity", params(TokenRequest),
    responses((status = 200, content_type = "text/html"), (status = 400, body = crate::error::Problem)))]
#[get("/auth/email/verify")]
pub async fn verify_email_link(
    state: web::Data<AppState>,
    ctx: RequestContext,
    query: web::Query<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    verify_email_token(&state, &ctx, query.into_inner().token).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><title>Email verified</title><p>Your email address is verified. You can close this page.</p>"))
}

/// Sends a new verification link; earlier links stop working.
#[utoipa::path(post, path = "/api/v1/auth/email/resend", tag = "identity", security(("bearer" = [])),
    responses((status = 202), (status = 409, description = "email_already_verified", body = crate::error::Problem)))]
#[post("/auth/email/resend")]
pub async fn resend_email(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let command = AccountCommand::IssueEmailVerification {
        challenge: challenges::mint(challenges::EMAIL_VERIFICATION_TTL_MINUTES),
        occurred_at: Utc::now(),
    };
    run_account(&state, caller.account_id, command, caller.metadata()).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Sends a code to the account's phone.
#[utoipa::path(post, path = "/api/v1/auth/phone/send-code", tag = "identity", security(("bearer" = [])),
    responses((status = 202), (status = 409, description = "no_phone, phone_already_verified", body = crate::error::Problem)))]
#[post("/auth/phone/send-code")]
pub async fn send_phone_code(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let command = AccountCommand::IssuePhoneVerification {
        challenge: challenges::mint(challenges::PHONE_CODE_TTL_MINUTES),
        occurred_at: Utc::now(),
    };
    run_account(&state, caller.account_id, command, caller.metadata()).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /auth/phone/verify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: Option<String>,
}

/// Verifies the phone with the code it received. A verified number belongs to one account.
#[utoipa::path(post, path = "/api/v1/auth/phone/verify", tag = "identity", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 204), (status = 400, description = "phone_code_invalid", body = crate::error::Problem),
              (status = 409, description = "phone_taken, phone_already_verified, no_phone", body = crate::error::Problem)))]
#[post("/auth/phone/verify")]
pub async fn verify_phone(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body
        .0
        .code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::validation(vec![FieldError::required("code")]))?;
    let account = accounts::get_account(&state.pool, caller.account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    let phone = account
        .phone
        .as_deref()
        .map(Phone::parse)
        .and_then(Result::ok)
        .ok_or_else(|| account_refusal(&AccountError::NoPhone))?;
    let worker = state.clone();
    let metadata = caller.metadata();
    let account_id = caller.account_id;
    let outcome = detached(async move {
        phone_verification::verify(
            &worker.accounts,
            &worker.pool,
            account_id,
            &phone,
            code,
            Utc::now(),
            &metadata,
        )
        .await
    })
    .await?
    .map_err(|e| match e {
        PhoneVerificationError::PhoneTaken => ApiError::new(
            StatusCode::CONFLICT,
            "phone_taken",
            "this phone number is verified on another account",
        ),
        PhoneVerificationError::Command(e) => command_error(e),
    })?;
    match outcome {
        PhoneOutcome::Verified(appended) => {
            state.read_your_writes(appended.position, READS).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        PhoneOutcome::WrongCode(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "phone_code_invalid",
            "the code is wrong; after five wrong codes a new one must be requested",
        )),
    }
}
