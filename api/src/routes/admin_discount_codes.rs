//! `/admin/discount-codes*`: staff create discount codes, change their terms, switch them off and
//! on, and watch how many redemptions are in use.
//!
//! Writing is `admin` and `billing`; reading is also open to `support` and `auditor`. The wire
//! format (API.md): `{code, percent_off | amount_off, valid_from?, valid_until?,
//! max_redemptions?, max_per_account?, plan_ids?, billing_periods?, first_order_only?, active?}`,
//! `percent_off` a decimal string (`"15"`), `amount_off` a money object in the settlement
//! currency. On `PATCH` a field left out is unchanged and `null` removes an optional bound.
//!
//! Plan ids are not checked against the catalog: any UUID is accepted (the catalog is built in
//! parallel; a code naming an unknown plan simply never matches).

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use stratus_commands::detached;
use stratus_domain::discount::{id_of, CodeText, DiscountTerms, TermsPatch};
use stratus_domain::pricing::{BillingPeriod, DiscountValue, Percent};
use stratus_domain::{Currency, DiscountCodeId, PlanId, Role};
use stratus_projections::discount_codes::{self as model, DiscountCodeFilter, DiscountCodeView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{discount_admin_error, ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::routes::admin_accounts::{decode_cursor, encode_time_cursor};
use crate::routes::audit::page_limit;
use crate::routes::wallet::money_field;
use crate::state::AppState;

/// The read models discount code commands wait for before answering.
const READS: &[&str] = &[model::NAME];
/// Who may read discount codes.
const READERS: &[Role] = &[Role::Admin, Role::Billing, Role::Support, Role::Auditor];
/// Who may create and change them.
const WRITERS: &[Role] = &[Role::Admin, Role::Billing];

/// `Some(value)` for a field that is present, `null` included, so that `PATCH` can tell "leave
/// it" (absent) from "remove it" (`null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The body of `POST /admin/discount-codes` and `PATCH /admin/discount-codes/{id}`. Each field is
/// read by hand so that every problem is reported on its own field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountCodeRequest {
    /// 3–32 of `A–Z 0–9 - _`, case-insensitive, stored upper case. Only on creation.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "SPRING-25")]
    pub code: Option<Value>,
    /// A decimal string, more than 0 and at most 100 (`"15"`, `"12.5"`). Exactly one of
    /// `percent_off` and `amount_off`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "15")]
    pub percent_off: Option<Value>,
    /// `{"amount": "10.00", "currency": "EUR"}` in the settlement currency.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub amount_off: Option<Value>,
    /// RFC 3339; not redeemable before.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<Value>,
    /// RFC 3339; not redeemable from this instant on.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<Value>,
    /// Redemptions in use over all accounts, at least 1; absent or `null`: unlimited.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_redemptions: Option<Value>,
    /// Redemptions in use by one account, at least 1; absent or `null`: unlimited.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_per_account: Option<Value>,
    /// Plans the code applies to; empty or absent: any plan and custom configurations.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub plan_ids: Option<Value>,
    /// `hourly`, `monthly`, `quarterly`, `semiannual`, `annual`; empty or absent: any.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub billing_periods: Option<Value>,
    /// Only a customer's first order may use it (default `false`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub first_order_only: Option<Value>,
    /// Inactive codes are refused at checkout (default `true`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub active: Option<Value>,
}

/// A field of a request: `None` absent, `Some(None)` null, `Some(Some(v))` a value. A field that
/// could not be read pushes its error and reads as absent.
type Field<T> = Option<Option<T>>;

/// Reads a present, non-null field with `parse`; `null` is `Some(None)`.
fn field<T>(
    errors: &mut Vec<FieldError>,
    value: Option<&Value>,
    parse: impl FnOnce(&Value) -> Result<T, FieldError>,
) -> Field<T> {
    match value {
        None => None,
        Some(Value::Null) => Some(None),
        Some(value) => match parse(value) {
            Ok(parsed) => Some(Some(parsed)),
            Err(error) => {
                errors.push(error);
                None
            }
        },
    }
}

fn time(name: &'static str) -> impl FnOnce(&Value) -> Result<DateTime<Utc>, FieldError> {
    move |value| {
        value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&Utc))
            .ok_or_else(|| {
                FieldError::new(
                    name,
                    "invalid_time",
                    format!("{name} is an RFC 3339 time such as \"2026-06-30T23:59:59Z\""),
                )
            })
    }
}

fn limit(name: &'static str) -> impl FnOnce(&Value) -> Result<u32, FieldError> {
    move |value| {
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                FieldError::new(
                    name,
                    format!("invalid_{name}"),
                    format!("{name} is a whole number from 1 to {}, or null", u32::MAX),
                )
            })
    }
}

fn flag(name: &'static str) -> impl FnOnce(&Value) -> Result<bool, FieldError> {
    move |value| {
        value.as_bool().ok_or_else(|| {
            FieldError::new(name, "invalid_type", format!("{name} is true or false"))
        })
    }
}

/// A JSON array read element by element: each bad element is its own error (`plan_ids[2]`).
fn set_field<T: Ord>(
    errors: &mut Vec<FieldError>,
    name: &str,
    value: Option<&Value>,
    parse: impl Fn(&str) -> Option<T>,
    problem: (&str, &str),
) -> Field<std::collections::BTreeSet<T>> {
    let items = match value? {
        Value::Null => return Some(Some(std::collections::BTreeSet::new())),
        Value::Array(items) => items,
        _ => {
            errors.push(FieldError::new(
                name,
                "invalid_type",
                format!("{name} is a list"),
            ));
            return None;
        }
    };
    let before = errors.len();
    let mut parsed = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().and_then(&parse) {
            Some(one) => {
                parsed.insert(one);
            }
            None => errors.push(FieldError::new(
                format!("{name}[{i}]"),
                problem.0,
                problem.1,
            )),
        }
    }
    (errors.len() == before).then_some(Some(parsed))
}

/// The value of a request: percent off or amount off, never both. `None` when neither is given.
fn discount_value(
    errors: &mut Vec<FieldError>,
    body: &DiscountCodeRequest,
    settlement: Currency,
) -> Option<DiscountValue> {
    let (percent, amount) = (body.percent_off.as_ref(), body.amount_off.as_ref());
    if percent.is_some() && amount.is_some() {
        errors.push(FieldError::new(
            "percent_off",
            "discount_value_conflict",
            "give percent_off or amount_off, not both",
        ));
        return None;
    }
    if let Some(percent) = percent {
        return match percent.as_str().map(Percent::parse) {
            Some(Ok(percent)) => Some(DiscountValue::PercentOff { percent }),
            Some(Err(_)) | None => {
                errors.push(FieldError::new(
                    "percent_off",
                    "invalid_percent",
                    "percent_off is a decimal string from 0.01 to 100 with at most two decimals, such as \"15\"",
                ));
                None
            }
        };
    }
    if amount.is_some() {
        return money_field(errors, "amount_off", amount, settlement)
            .map(|amount| DiscountValue::AmountOff { amount });
    }
    None
}

/// Everything but the code and the value, read into a patch.
fn read_patch(
    errors: &mut Vec<FieldError>,
    body: &DiscountCodeRequest,
    value: Option<DiscountValue>,
) -> TermsPatch {
    let plan = |text: &str| text.parse::<PlanId>().ok();
    let period = |text: &str| BillingPeriod::parse(text).ok();
    TermsPatch {
        value,
        valid_from: field(errors, body.valid_from.as_ref(), time("valid_from")),
        valid_until: field(errors, body.valid_until.as_ref(), time("valid_until")),
        max_redemptions: field(
            errors,
            body.max_redemptions.as_ref(),
            limit("max_redemptions"),
        ),
        max_per_account: field(
            errors,
            body.max_per_account.as_ref(),
            limit("max_per_account"),
        ),
        plan_ids: set_field(
            errors,
            "plan_ids",
            body.plan_ids.as_ref(),
            plan,
            ("invalid_id", "not a plan id: expected a UUID"),
        )
        .map(Option::unwrap_or_default),
        billing_periods: set_field(
            errors,
            "billing_periods",
            body.billing_periods.as_ref(),
            period,
            (
                "unknown_billing_period",
                "one of hourly, monthly, quarterly, semiannual, annual",
            ),
        )
        .map(Option::unwrap_or_default),
        // `null` on a flag means its default on creation and no change on an update.
        first_order_only: field(
            errors,
            body.first_order_only.as_ref(),
            flag("first_order_only"),
        )
        .flatten(),
        active: field(errors, body.active.as_ref(), flag("active")).flatten(),
    }
}

/// A creation request: the code and its whole terms.
fn read_create(
    body: &DiscountCodeRequest,
    settlement: Currency,
) -> Result<(CodeText, DiscountTerms), ApiError> {
    let mut errors = Vec::new();
    let code = match &body.code {
        None | Some(Value::Null) => {
            errors.push(FieldError::required("code"));
            None
        }
        Some(value) => match value.as_str().map(CodeText::parse) {
            Some(Ok(code)) => Some(code),
            Some(Err(e)) => {
                errors.push(FieldError::new("code", e.code(), e.to_string()));
                None
            }
            None => {
                errors.push(FieldError::new("code", "invalid_type", "code is a string"));
                None
            }
        },
    };
    let value = discount_value(&mut errors, body, settlement);
    if value.is_none() && body.percent_off.is_none() && body.amount_off.is_none() {
        errors.push(FieldError::new(
            "percent_off",
            "required",
            "give percent_off or amount_off",
        ));
    }
    let patch = read_patch(&mut errors, body, value);
    let (Some(code), Some(value), true) = (code, value, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    Ok((code, DiscountTerms::new(value).patched(&patch)))
}

/// An update request: the terms it changes.
fn read_update(body: &DiscountCodeRequest, settlement: Currency) -> Result<TermsPatch, ApiError> {
    let mut errors = Vec::new();
    if body.code.is_some() {
        errors.push(FieldError::new(
            "code",
            "code_immutable",
            "a code cannot be renamed; create a new code instead",
        ));
    }
    let null = |value: &Option<Value>| matches!(value, Some(Value::Null));
    if null(&body.percent_off) || null(&body.amount_off) {
        errors.push(FieldError::new(
            "percent_off",
            "discount_value_required",
            "a code always has a value: give percent_off or amount_off instead of null",
        ));
    }
    let value = if errors.is_empty() {
        discount_value(&mut errors, body, settlement)
    } else {
        None
    };
    let patch = read_patch(&mut errors, body, value);
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The code a path names: its id, or the code itself (`/admin/discount-codes/SPRING-25`).
fn code_id_of(segment: &str) -> Result<DiscountCodeId, ApiError> {
    if let Ok(uuid) = Uuid::parse_str(segment) {
        return Ok(DiscountCodeId::from_uuid(uuid));
    }
    CodeText::parse(segment)
        .map(|code| id_of(&code))
        .map_err(|_| ApiError::not_found("the discount code"))
}

async fn view(state: &AppState, id: DiscountCodeId) -> Result<DiscountCodeView, ApiError> {
    model::get_discount_code(&state.pool, id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the discount code"))
}

/// Creates a discount code. 409 `code_taken` when the code exists (whatever case it was typed in).
#[utoipa::path(post, path = "/api/v1/admin/discount-codes", tag = "billing", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = DiscountCodeRequest,
    responses((status = 201, body = Object), (status = 409, description = "code_taken", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
#[post("/admin/discount-codes", wrap = "Idempotent::new()")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<DiscountCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let (code, terms) = read_create(&body.0, state.settings.payments.currency)?;
    let worker = state.clone();
    let metadata = caller.metadata();
    let (id, position) =
        detached(async move { worker.discount_codes.create(code, terms, &metadata).await })
            .await?
            .map_err(discount_admin_error)?;
    let consistency = state.read_your_writes(position, READS).await?;
    let created = view(&state, id).await?;
    Ok(consistency.mark(
        HttpResponse::Created()
            .insert_header(("Location", format!("/api/v1/admin/discount-codes/{id}")))
            .json(created),
    ))
}

/// Changes some terms of a code, `active` included. A field left out is unchanged; `null`
/// removes a bound or limit.
#[utoipa::path(patch, path = "/api/v1/admin/discount-codes/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "the code's id, or the code itself")), request_body = DiscountCodeRequest,
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 422, description = "a field error, or max_redemptions_below_redeemed", body = crate::error::Problem)))]
#[patch("/admin/discount-codes/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<DiscountCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(WRITERS)?;
    let id = code_id_of(&path)?;
    let patch = read_update(&body.0, state.settings.payments.currency)?;
    let worker = state.clone();
    let metadata = caller.metadata();
    let position =
        detached(async move { worker.discount_codes.update(id, patch, &metadata).await })
            .await?
            .map_err(discount_admin_error)?;
    let consistency = state.read_your_writes(position, READS).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(view(&state, id).await?)))
}

/// Filters of `GET /admin/discount-codes`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DiscountCodeQuery {
    /// Only active (`true`) or inactive (`false`) codes.
    pub active: Option<bool>,
    /// The start of the code, case-insensitive.
    pub query: Option<String>,
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of discount codes, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountCodePage {
    #[schema(value_type = Vec<Object>)]
    pub discount_codes: Vec<DiscountCodeView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Discount codes, newest first.
#[utoipa::path(get, path = "/api/v1/admin/discount-codes", tag = "billing", security(("bearer" = [])), params(DiscountCodeQuery),
    responses((status = 200, body = DiscountCodePage), (status = 422, body = crate::error::Problem)))]
#[get("/admin/discount-codes")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<DiscountCodeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "cursor",
                "invalid_cursor",
                "not a cursor from this API",
            )])
        })?),
    };
    let filter = DiscountCodeFilter {
        active: query.active,
        code_prefix: query
            .query
            .map(|q| q.trim().to_ascii_uppercase())
            .filter(|q| !q.is_empty()),
        before,
        limit,
    };
    let found = model::list_discount_codes(&state.pool, &filter).await?;
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == limit;
    let next_cursor = found
        .last()
        .filter(|_| full)
        .map(|code| encode_time_cursor(code.created_at, code.id));
    Ok(HttpResponse::Ok().json(DiscountCodePage {
        discount_codes: found,
        next_cursor,
    }))
}

/// One discount code with its redemption counts, by id or by the code itself.
#[utoipa::path(get, path = "/api/v1/admin/discount-codes/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "the code's id, or the code itself")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
#[get("/admin/discount-codes/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let id = code_id_of(&path)?;
    Ok(HttpResponse::Ok().json(view(&state, id).await?))
}
