//! `/admin/orders*`: staff see every order with filters, and cancel an unpaid one.
//!
//! Reading is open to `admin`, `billing`, `support` and `auditor`; cancelling to `admin`,
//! `billing` and `support` (a customer on the phone asks for it).

use actix_web::{get, post, web, HttpResponse};
use stratus_domain::{OrderId, Role};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::routes::orders::{
    cancel_order, order_filter, order_page, order_view, OrderBody, OrderPage, OrderQuery,
};
use crate::state::AppState;

/// Who may read orders.
const READERS: &[Role] = &[Role::Admin, Role::Billing, Role::Support, Role::Auditor];
/// Who may cancel an unpaid order.
const CANCELLERS: &[Role] = &[Role::Admin, Role::Billing, Role::Support];

/// Every order, newest first, narrowed by status, customer, datacenter, plan and time.
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", security(("bearer" = [])),
    params(OrderQuery), responses((status = 200, body = OrderPage), (status = 422, body = crate::error::Problem)))]
#[get("/admin/orders")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let filter = order_filter(query.into_inner())?;
    Ok(HttpResponse::Ok().json(order_page(&state, &filter).await?))
}

/// Any one order.
#[utoipa::path(get, path = "/api/v1/admin/orders/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = OrderBody), (status = 404, body = crate::error::Problem)))]
#[get("/admin/orders/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(READERS)?;
    let order = order_view(&state, path.into_inner(), None).await?;
    Ok(HttpResponse::Ok().json(OrderBody::from(&order)))
}

/// Cancels an unpaid order on a customer's behalf.
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/cancel", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = OrderBody), (status = 409, body = crate::error::Problem)))]
#[post("/admin/orders/{id}/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(CANCELLERS)?;
    let order_id = OrderId::from_uuid(path.into_inner());
    cancel_order(&state, None, order_id, caller).await
}
