//! `/me`: the caller's own account.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use stratus_projections::accounts;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

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
    /// Two-factor authentication arrives with the identity issue; always false until then.
    pub mfa_enabled: bool,
    /// `none` until KYC submission exists (identity issue).
    pub kyc_status: String,
    pub created_at: DateTime<Utc>,
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let account = accounts::get_account(&state.pool, caller.account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    Ok(HttpResponse::Ok().json(Me {
        account_id: account.account_id,
        name: account.name,
        email: account.email,
        email_verified: account.email_verified,
        phone: account.phone,
        phone_verified: account.phone_verified,
        roles: account.roles,
        mfa_enabled: false,
        kyc_status: "none".to_owned(),
        created_at: account.created_at,
    }))
}
