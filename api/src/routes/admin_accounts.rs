//! `/admin/accounts*` and `/admin/kyc/*`: staff find accounts, suspend and reinstate them, change
//! their roles and review identity checks.
//!
//! Reading is open to `admin`, `support` (who must find the customer behind a ticket) and
//! `auditor` (read-only over everything); every change is `admin` only. The system keeps at
//! least one active admin ([`stratus_commands::administration`]).

use actix_web::http::StatusCode;
use actix_web::{get, post, put, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stratus_commands::administration::{self, AdminChangeError, RosterChange, RosterRequest};
use stratus_commands::detached;
use stratus_domain::account::AccountCommand;
use stratus_domain::{AccountId, Reason, Role};
use stratus_projections::accounts::{self, AccountFilter, AccountView, StaffAccountView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{command_error, ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::routes::audit::page_limit;
use crate::state::{run_account, AppState};

const READS: &[&str] = &[accounts::NAME];
/// Who may read accounts.
const READERS: &[Role] = &[Role::Admin, Role::Support, Role::Auditor];
/// Who may change them.
const WRITERS: &[Role] = &[Role::Admin];

/// Filters of `GET /admin/accounts`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AccountQuery {
    /// Part of the email or name, case-insensitive.
    pub query: Option<String>,
    pub role: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
    /// `not_submitted`, `pending`, `approved`, `rejected`.
    pub kyc_status: Option<String>,
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of accounts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    #[schema(value_type = Vec<Object>)]
    pub accounts: Vec<AccountView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(account: &AccountView) -> String {
    encode_time_cursor(account.created_at, account.account_id)
}

/// A paging cursor over `(time, id)`, newest first; opaque to clients.
pub(crate) fn encode_time_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", at.to_rfc3339(), id))
}

/// The `(time, id)` of a cursor made by [`encode_time_cursor`]; `None` for anything else.
pub(crate) fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        Uuid::parse_str(id).ok()?,
    ))
}

pub(crate) fn one_of(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    allowed: &[&str],
) -> Option<String> {
    let value = value?;
    if allowed.contains(&value.as_str()) {
        Some(value)
    } else {
        errors.push(FieldError::new(
            field,
            "invalid_filter",
            format!("{field} is one of {}", allowed.join(", ")),
        ));
        None
    }
}

/// Finds accounts.
#[utoipa::path(get, path = "/api/v1/admin/accounts", tag = "administration", security(("bearer" = [])), params(AccountQuery),
    responses((status = 200, body = AccountPage), (status = 403, body = crate::error::Problem)))]
#[get("/admin/accounts")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let mut errors = Vec::new();
    let roles: Vec<&str> = Role::ALL.iter().map(Role::as_str).collect();
    let role = one_of(&mut errors, "role", query.role, &roles);
    let status = one_of(
        &mut errors,
        "status",
        query.status,
        &["active", "suspended"],
    );
    let kyc_status = one_of(
        &mut errors,
        "kyc_status",
        query.kyc_status,
        &["not_submitted", "pending", "approved", "rejected"],
    );
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => match decode_cursor(cursor) {
            Some(position) => Some(position),
            None => {
                errors.push(FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "not a cursor from this API",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = AccountFilter {
        query: query.query.filter(|q| !q.trim().is_empty()),
        role,
        status,
        kyc_status,
        before,
        limit,
    };
    let found = accounts::list_accounts(&state.pool, &filter).await?;
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == limit;
    let next_cursor = found.last().filter(|_| full).map(encode_cursor);
    Ok(HttpResponse::Ok().json(AccountPage {
        accounts: found,
        next_cursor,
    }))
}

/// 404 unless `account_id` names an account.
pub(crate) async fn account_exists(state: &AppState, account_id: Uuid) -> Result<(), ApiError> {
    staff_view(state, account_id).await.map(|_| ())
}

async fn staff_view(state: &AppState, account_id: Uuid) -> Result<StaffAccountView, ApiError> {
    accounts::get_staff_account(&state.pool, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))
}

/// One account with its suspension and identity check.
#[utoipa::path(get, path = "/api/v1/admin/accounts/{account_id}", tag = "administration", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
#[get("/admin/accounts/{account_id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    Ok(HttpResponse::Ok().json(staff_view(&state, path.into_inner()).await?))
}

/// Runs a staff command on an existing account and answers its staff view once projected.
async fn staff_command(
    state: &web::Data<AppState>,
    caller: &Caller,
    target: Uuid,
    command: AccountCommand,
) -> Result<HttpResponse, ApiError> {
    staff_view(state, target).await?;
    let appended = run_account(
        state,
        AccountId::from_uuid(target),
        command,
        caller.metadata(),
    )
    .await?;
    let consistency = state.read_your_writes(appended.position, READS).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(staff_view(state, target).await?)))
}

/// A reason for a suspension or a rejection.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReasonRequest {
    pub reason: Option<String>,
}

fn reason(body: ReasonRequest) -> Result<Reason, ApiError> {
    match body.reason.as_deref().map(Reason::parse) {
        None => Err(ApiError::validation(vec![FieldError::required("reason")])),
        Some(Err(e)) => Err(ApiError::validation(vec![FieldError::from_value(
            "reason", &e,
        )])),
        Some(Ok(reason)) => Ok(reason),
    }
}

fn roster_error(err: AdminChangeError) -> ApiError {
    match err {
        AdminChangeError::LastAdmin => ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "the system must keep at least one active admin",
        ),
        AdminChangeError::NotFound => ApiError::not_found("the account"),
        AdminChangeError::Lagging => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "read_model_lagging",
            "account changes are paused until the read models catch up; retry shortly",
        ),
        AdminChangeError::Command(e) => command_error(e),
    }
}

async fn roster_change(
    state: &web::Data<AppState>,
    caller: &Caller,
    target: Uuid,
    change: RosterChange,
) -> Result<HttpResponse, ApiError> {
    staff_view(state, target).await?;
    let worker = state.clone();
    let metadata = caller.metadata();
    let by = caller.account_id;
    detached(async move {
        administration::change(
            &worker.accounts,
            &worker.pool,
            &worker.feed,
            RosterRequest {
                by,
                target: AccountId::from_uuid(target),
                change,
                occurred_at: Utc::now(),
            },
            &metadata,
        )
        .await
    })
    .await?
    .map_err(roster_error)?;
    Ok(HttpResponse::Ok().json(staff_view(state, target).await?))
}

/// Suspends an account: it cannot log in, every session is revoked, and its tokens stop working
/// at once (the caller check reads the account's status on every request).
#[utoipa::path(post, path = "/api/v1/admin/accounts/{account_id}/suspend", tag = "administration", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)), request_body = ReasonRequest,
    responses((status = 200, body = Object), (status = 409, description = "already_suspended, last_admin", body = crate::error::Problem)))]
#[post("/admin/accounts/{account_id}/suspend")]
pub async fn suspend(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let reason = reason(body.0)?;
    roster_change(
        &state,
        &caller,
        path.into_inner(),
        RosterChange::Suspend(reason),
    )
    .await
}

/// Lifts a suspension (and any login lock).
#[utoipa::path(post, path = "/api/v1/admin/accounts/{account_id}/reinstate", tag = "administration", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 409, description = "not_suspended", body = crate::error::Problem)))]
#[post("/admin/accounts/{account_id}/reinstate")]
pub async fn reinstate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let command = AccountCommand::Reinstate {
        by: caller.account_id,
        occurred_at: Utc::now(),
    };
    staff_command(&state, &caller, path.into_inner(), command).await
}

/// `PUT /admin/accounts/{id}/roles`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RolesRequest {
    pub roles: Option<Vec<String>>,
}

/// Replaces an account's roles.
#[utoipa::path(put, path = "/api/v1/admin/accounts/{account_id}/roles", tag = "administration", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)), request_body = RolesRequest,
    responses((status = 200, body = Object), (status = 409, description = "last_admin", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
#[put("/admin/accounts/{account_id}/roles")]
pub async fn set_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<RolesRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let names = body
        .0
        .roles
        .ok_or_else(|| ApiError::validation(vec![FieldError::required("roles")]))?;
    let mut roles = Vec::with_capacity(names.len());
    let mut errors = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match name.parse::<Role>() {
            Ok(role) => roles.push(role),
            Err(e) => errors.push(FieldError::from_value(&format!("roles[{i}]"), &e)),
        }
    }
    if roles.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "roles",
            "no_roles",
            "an account needs at least one role",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    roster_change(
        &state,
        &caller,
        path.into_inner(),
        RosterChange::Roles(roles),
    )
    .await
}

/// Approves the pending identity details.
#[utoipa::path(post, path = "/api/v1/admin/kyc/{account_id}/approve", tag = "administration", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 409, description = "kyc_not_pending", body = crate::error::Problem)))]
#[post("/admin/kyc/{account_id}/approve")]
pub async fn approve_kyc(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let command = AccountCommand::ApproveKyc {
        reviewer: caller.account_id,
        occurred_at: Utc::now(),
    };
    staff_command(&state, &caller, path.into_inner(), command).await
}

/// Rejects the pending identity details with a reason shown to the customer.
#[utoipa::path(post, path = "/api/v1/admin/kyc/{account_id}/reject", tag = "administration", security(("bearer" = [])),
    params(("account_id" = Uuid, Path)), request_body = ReasonRequest,
    responses((status = 200, body = Object), (status = 409, description = "kyc_not_pending", body = crate::error::Problem)))]
#[post("/admin/kyc/{account_id}/reject")]
pub async fn reject_kyc(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let reason = reason(body.0)?;
    let command = AccountCommand::RejectKyc {
        reviewer: caller.account_id,
        reason,
        occurred_at: Utc::now(),
    };
    staff_command(&state, &caller, path.into_inner(), command).await
}
