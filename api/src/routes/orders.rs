//! `POST /catalog/quote` and `/orders*`: pricing an order, placing it, paying it from the wallet,
//! cancelling it, and reading one's own orders.
//!
//! A quote and an order read the same request fields through [`order_input`] and are priced by
//! the same [`stratus_commands::orders::Orders`] path, so the quote's lines and totals are the
//! invoice's.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_commands::detached;
use stratus_commands::orders::{Customer, ItemInput, OrderInput, OrderingError};
use stratus_domain::discount::CodeText;
use stratus_domain::invoice::BillTo;
use stratus_domain::order::{Hostname, SshPublicKey, MAX_SSH_KEYS};
use stratus_domain::pricing::{BillingPeriod, PricingError, Quote, Resource, Resources};
use stratus_domain::{
    AccountId, Country, DatacenterId, Email, ImageId, Money, OrderId, PersonName, PlanId,
};
use stratus_projections::orders::{self as order_model, OrderFilter, OrderView};
use stratus_projections::{accounts, invoices as invoice_model};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{wallet_refusal, ApiError, FieldError};
use crate::extract::{Caller, Json};
use crate::idempotency::{IdempotencyKeyHeader, Idempotent};
use crate::routes::admin_accounts::one_of;
use crate::routes::audit::page_limit;
use crate::routes::wallet::{decode_position, encode_position};
use crate::state::AppState;

/// The read models order commands wait for before answering.
pub(crate) const READS: &[&str] = &[order_model::NAME, invoice_model::NAME];

/// The pricing part of a quote or order request.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct QuoteRequest {
    /// A plan of the catalog; or give `custom`.
    pub plan_id: Option<String>,
    /// A custom configuration: `{vcpus, memory_mib, disk_gib, ipv4, traffic_gib}`.
    #[schema(value_type = Object)]
    pub custom: Option<Value>,
    pub datacenter_id: Option<String>,
    pub image_id: Option<String>,
    /// `hourly`, `monthly`, `quarterly`, `semiannual` or `annual`.
    pub billing_period: Option<String>,
    pub discount_code: Option<String>,
}

/// `POST /orders`: the pricing fields and the VM's hostname and SSH keys.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OrderRequest {
    #[serde(flatten)]
    pub pricing: QuoteRequest,
    pub hostname: Option<String>,
    pub ssh_keys: Option<Vec<String>>,
}

/// Parses an id field, collecting a field error.
fn id_field<T: std::str::FromStr>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
) -> Option<T> {
    match value {
        None => {
            errors.push(FieldError::required(field));
            None
        }
        Some(text) => match text.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(
                    field,
                    "invalid_id",
                    "not a valid id (a UUID)",
                ));
                None
            }
        },
    }
}

/// Reads `custom`: an object of five whole numbers (missing ones are 0, IPv4 and traffic may be).
fn custom_field(errors: &mut Vec<FieldError>, value: &Value) -> Option<Resources> {
    let Value::Object(object) = value else {
        errors.push(FieldError::new(
            "custom",
            "invalid_custom",
            "custom is an object {vcpus, memory_mib, disk_gib, ipv4, traffic_gib}",
        ));
        return None;
    };
    let before = errors.len();
    let mut amounts = [0_u32; 5];
    for (slot, resource) in amounts.iter_mut().zip(Resource::ALL) {
        let field = format!("custom.{}", resource.field());
        match object.get(resource.field()) {
            None | Some(Value::Null) => errors.push(FieldError::required(&field)),
            Some(number) => match number.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => *slot = n,
                None => errors.push(FieldError::new(
                    field,
                    "invalid_number",
                    "a whole number from 0 to 4294967295",
                )),
            },
        }
    }
    if let Some(unknown) = object
        .keys()
        .find(|key| !Resource::ALL.iter().any(|r| r.field() == key.as_str()))
    {
        errors.push(FieldError::new(
            format!("custom.{unknown}"),
            "unknown_field",
            "custom takes vcpus, memory_mib, disk_gib, ipv4 and traffic_gib",
        ));
    }
    (errors.len() == before).then_some(Resources {
        vcpus: amounts[0],
        memory_mib: amounts[1],
        disk_gib: amounts[2],
        ipv4: amounts[3],
        traffic_gib: amounts[4],
    })
}

/// Reads the pricing fields of a quote or order, collecting every field error.
fn order_input(errors: &mut Vec<FieldError>, body: &QuoteRequest) -> Option<OrderInput> {
    let item = match (&body.plan_id, &body.custom) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "plan_id",
                "plan_or_custom",
                "give either plan_id or custom, not both",
            ));
            None
        }
        (None, None) | (None, Some(Value::Null)) => {
            errors.push(FieldError::new(
                "plan_id",
                "required",
                "plan_id or custom is required",
            ));
            None
        }
        (Some(plan), None) => {
            id_field::<PlanId>(errors, "plan_id", Some(plan)).map(ItemInput::Plan)
        }
        (None, Some(custom)) => custom_field(errors, custom).map(ItemInput::Custom),
    };
    let datacenter_id =
        id_field::<DatacenterId>(errors, "datacenter_id", body.datacenter_id.as_deref());
    let image_id = id_field::<ImageId>(errors, "image_id", body.image_id.as_deref());
    let billing_period = match body.billing_period.as_deref() {
        None => {
            errors.push(FieldError::required("billing_period"));
            None
        }
        Some(text) => match BillingPeriod::parse(text) {
            Ok(period) => Some(period),
            Err(e) => {
                errors.push(FieldError::new("billing_period", e.code(), e.to_string()));
                None
            }
        },
    };
    let discount_code = match body.discount_code.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => match CodeText::parse(text) {
            Ok(code) => Some(Some(code)),
            Err(e) => {
                errors.push(FieldError::new("discount_code", e.code(), e.to_string()));
                None
            }
        },
    };
    Some(OrderInput {
        item: item?,
        datacenter_id: datacenter_id?,
        image_id: image_id?,
        billing_period: billing_period?,
        discount_code: discount_code?,
    })
}

/// The answer to a failed quote or order: catalog and discount problems are field errors.
pub(crate) fn ordering_error(error: OrderingError) -> ApiError {
    use stratus_domain::order::OrderError as E;
    match error {
        OrderingError::Offer(problem) => ApiError::validation(vec![FieldError::new(
            problem.field(),
            problem.code(),
            problem.to_string(),
        )]),
        OrderingError::Pricing(PricingError::OutOfBounds(problems)) => ApiError::validation(
            problems
                .iter()
                .map(|(resource, problem)| {
                    FieldError::new(
                        format!("custom.{}", resource.field()),
                        "out_of_bounds",
                        problem.to_string(),
                    )
                })
                .collect(),
        ),
        OrderingError::Pricing(e) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        }
        OrderingError::Discount(e) => ApiError::validation(vec![FieldError::new(
            "discount_code",
            e.code(),
            e.to_string(),
        )]),
        OrderingError::Order(e) => {
            let status = match e {
                E::OrderNotFound => StatusCode::NOT_FOUND,
                E::NotPayable(_) | E::PaymentWindowClosed | E::NotCancellable(_) => {
                    StatusCode::CONFLICT
                }
                E::OrderAlreadyPlaced => StatusCode::CONFLICT,
                E::InvalidDeadline
                | E::TooManySshKeys
                | E::InvalidQuote
                | E::PaymentAmountMismatch
                | E::NotDueForExpiry => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, e.code(), e.to_string())
        }
        OrderingError::Wallet(e) => wallet_refusal(&e),
        OrderingError::Invoice(e) => ApiError::internal(&e),
        OrderingError::Conflict => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the order was changed concurrently too many times; retry the request",
        ),
        OrderingError::Infrastructure(cause) => ApiError::internal(&cause),
    }
}

/// Who `account_id` is, for pricing and the invoice: the country of an approved identity check
/// decides the VAT, and whether any order was paid decides first-order discounts.
async fn customer_of(state: &AppState, account_id: AccountId) -> Result<Customer, ApiError> {
    let account = accounts::get_staff_account(&state.pool, account_id.as_uuid())
        .await?
        .ok_or_else(|| ApiError::not_found("the account"))?;
    let country = account
        .kyc
        .as_ref()
        .filter(|kyc| kyc.status == "approved")
        .and_then(|kyc| kyc.country.as_deref())
        .and_then(|code| Country::parse(code).ok());
    let first_order = !order_model::has_paid_order(&state.pool, account_id).await?;
    // The invoice is made out to the verified legal name when there is one (and it reads as a
    // name), else to the account's name, which passed the same rules at registration.
    let name = account
        .kyc
        .as_ref()
        .filter(|kyc| kyc.status == "approved")
        .and_then(|kyc| kyc.legal_name.as_deref())
        .and_then(|legal| PersonName::parse(legal).ok())
        .map_or_else(|| PersonName::parse(&account.account.name), Ok)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Customer {
        account_id,
        country: country.clone(),
        first_order,
        bill_to: BillTo {
            name,
            email: Email::parse(&account.account.email).map_err(|e| ApiError::internal(&e))?,
            country,
        },
    })
}

/// One line of a quote or invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineBody {
    pub description: String,
    pub quantity: u32,
    #[schema(value_type = Object)]
    pub unit_price: Money,
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// The VAT of a quote or invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaxBody {
    /// Whose rate applies; null when no country is known.
    pub country: Option<String>,
    /// A decimal percentage, e.g. `"19"`.
    pub rate: String,
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// A priced order: what `POST /catalog/quote` answers and what the invoice will say.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteBody {
    pub billing_period: &'static str,
    pub currency: &'static str,
    pub lines: Vec<LineBody>,
    #[schema(value_type = Object)]
    pub subtotal: Money,
    pub discount_code: Option<String>,
    #[schema(value_type = Object)]
    pub discount: Money,
    /// `subtotal − discount`: what VAT is computed on.
    #[schema(value_type = Object)]
    pub net: Money,
    pub tax: TaxBody,
    #[schema(value_type = Object)]
    pub total: Money,
}

impl From<&Quote> for QuoteBody {
    fn from(priced: &Quote) -> Self {
        Self {
            billing_period: priced.billing_period.as_str(),
            currency: priced.currency.code(),
            lines: priced
                .lines
                .iter()
                .map(|line| LineBody {
                    description: line.description.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    amount: line.amount,
                })
                .collect(),
            subtotal: priced.subtotal,
            discount_code: priced.discount_code.clone(),
            discount: priced.discount,
            net: priced.net,
            tax: TaxBody {
                country: priced.tax.country.as_ref().map(|c| c.as_str().to_owned()),
                rate: priced.tax.rate.to_decimal_string(),
                amount: priced.tax_amount,
            },
            total: priced.total,
        }
    }
}

/// The caller, when the request carries a bearer token (a bad token is still refused).
async fn optional_caller(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    if req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
    {
        let mut payload = actix_web::dev::Payload::None;
        Caller::from_request(req, &mut payload).await.map(Some)
    } else {
        Ok(None)
    }
}

/// Prices an order without placing it: the lines, discount, VAT and total that `POST /orders`
/// with the same input would invoice. Public; with a bearer token the caller's VAT country,
/// first-order status and per-account code limits apply, without one the provider's home country.
#[utoipa::path(post, path = "/api/v1/catalog/quote", tag = "orders",
    request_body = QuoteRequest, responses((status = 200, body = QuoteBody), (status = 422, body = crate::error::Problem)))]
#[post("/catalog/quote")]
pub async fn quote(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<QuoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = optional_caller(&req).await?;
    let mut errors = Vec::new();
    let input = order_input(&mut errors, &body.0);
    let (Some(input), true) = (input, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let customer = match &caller {
        Some(caller) => Some(customer_of(&state, caller.account_id).await?),
        None => None,
    };
    let priced = state
        .orders
        .quote(&input, customer.as_ref(), Utc::now())
        .await
        .map_err(ordering_error)?;
    Ok(HttpResponse::Ok().json(QuoteBody::from(&priced.quote)))
}

/// An order as its owner and staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    pub order_id: Uuid,
    pub account_id: Uuid,
    /// `pending_payment`, `paid` or `cancelled`.
    pub status: String,
    /// For a cancelled order: `customer`, `staff` or `expired`.
    pub cancel_reason: Option<String>,
    pub hostname: String,
    pub plan_id: Option<Uuid>,
    /// The size ordered (a plan's size when it was ordered, or the custom configuration).
    #[schema(value_type = Object)]
    pub resources: Resources,
    pub custom: bool,
    pub datacenter_id: Uuid,
    pub image_id: Uuid,
    pub ssh_keys: Vec<String>,
    pub billing_period: String,
    pub invoice_id: Uuid,
    #[schema(value_type = Object)]
    pub total: Money,
    pub quote: QuoteBody,
    pub payment_reference: Option<String>,
    pub placed_at: DateTime<Utc>,
    /// An unpaid order expires after this instant.
    pub pay_by: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<&OrderView> for OrderBody {
    fn from(order: &OrderView) -> Self {
        Self {
            order_id: order.order_id,
            account_id: order.account_id,
            status: order.status.clone(),
            cancel_reason: order.cancel_reason.clone(),
            hostname: order.hostname.clone(),
            plan_id: order.plan_id,
            resources: order.resources,
            custom: order.item_kind == "custom",
            datacenter_id: order.datacenter_id,
            image_id: order.image_id,
            ssh_keys: order.ssh_keys.clone(),
            billing_period: order.billing_period.clone(),
            invoice_id: order.invoice_id,
            total: order.quote.total,
            quote: QuoteBody::from(&order.quote),
            payment_reference: order.payment_reference.clone(),
            placed_at: order.placed_at,
            pay_by: order.pay_by,
            paid_at: order.paid_at,
            cancelled_at: order.cancelled_at,
        }
    }
}

/// One page of orders and the cursor of the next.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderBody>,
    pub next_cursor: Option<String>,
}

/// The order `order_id` from the read model, if `owner` (when given) owns it.
pub(crate) async fn order_view(
    state: &AppState,
    order_id: Uuid,
    owner: Option<AccountId>,
) -> Result<OrderView, ApiError> {
    order_model::get_order(&state.pool, OrderId::from_uuid(order_id))
        .await?
        .filter(|order| owner.is_none_or(|owner| order.account_id == owner.as_uuid()))
        .ok_or_else(|| ApiError::not_found("the order"))
}

/// One page of `filter`.
pub(crate) async fn order_page(
    state: &AppState,
    filter: &OrderFilter,
) -> Result<OrderPage, ApiError> {
    let found = order_model::list_orders(&state.pool, filter).await?;
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == filter.limit;
    Ok(OrderPage {
        next_cursor: found
            .last()
            .filter(|_| full)
            .map(|o| encode_position(o.position)),
        orders: found.iter().map(OrderBody::from).collect(),
    })
}

/// Query of an order list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OrderQuery {
    /// `pending_payment`, `paid` or `cancelled`.
    pub status: Option<String>,
    /// Staff lists only: one customer's orders.
    pub account_id: Option<Uuid>,
    pub datacenter_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    /// Placed at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Placed before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Reads an order list's filters, collecting field errors.
pub(crate) fn order_filter(query: OrderQuery) -> Result<OrderFilter, ApiError> {
    let mut errors = Vec::new();
    let limit = page_limit(query.limit)?;
    let status = one_of(&mut errors, "status", query.status, &order_model::STATUSES);
    let before = decode_position(&mut errors, query.cursor.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(OrderFilter {
        account_id: query.account_id,
        status,
        datacenter_id: query.datacenter_id,
        plan_id: query.plan_id,
        from: query.from,
        to: query.to,
        before,
        limit,
    })
}

/// Places an order `pending_payment`, with its invoice issued and its discount code redeemed.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(IdempotencyKeyHeader), request_body = OrderRequest,
    responses((status = 201, body = OrderBody), (status = 422, body = crate::error::Problem)))]
#[post("/orders", wrap = "Idempotent::new()")]
pub async fn place(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<OrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = Vec::new();
    let input = order_input(&mut errors, &body.pricing);
    let hostname = match body.hostname.as_deref() {
        None => {
            errors.push(FieldError::required("hostname"));
            None
        }
        Some(text) => match Hostname::parse(text.trim()) {
            Ok(hostname) => Some(hostname),
            Err(e) => {
                errors.push(FieldError::new(
                    "hostname",
                    "invalid_hostname",
                    e.to_string(),
                ));
                None
            }
        },
    };
    let keys = body.ssh_keys.unwrap_or_default();
    if keys.len() > MAX_SSH_KEYS {
        errors.push(FieldError::new(
            "ssh_keys",
            "too_many_ssh_keys",
            format!("at most {MAX_SSH_KEYS} keys"),
        ));
    }
    let mut ssh_keys = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        match SshPublicKey::parse(key) {
            Ok(key) => ssh_keys.push(key),
            Err(e) => errors.push(FieldError::new(
                format!("ssh_keys[{index}]"),
                "invalid_ssh_key",
                e.to_string(),
            )),
        }
    }
    let (Some(input), Some(hostname), true) = (input, hostname, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let customer = customer_of(&state, caller.account_id).await?;
    let worker = state.clone();
    let metadata = caller.metadata();
    let placed = detached(async move {
        worker
            .orders
            .place(&customer, &input, hostname, ssh_keys, &metadata)
            .await
    })
    .await?
    .map_err(ordering_error)?;
    let consistency = state.read_your_writes(placed.position, READS).await?;
    let order = order_view(&state, placed.order_id.as_uuid(), None).await?;
    Ok(consistency.mark(
        HttpResponse::Created()
            .insert_header(("Location", format!("/api/v1/orders/{}", placed.order_id)))
            .json(OrderBody::from(&order)),
    ))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(OrderQuery), responses((status = 200, body = OrderPage), (status = 422, body = crate::error::Problem)))]
#[get("/orders")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut filter = order_filter(query.into_inner())?;
    filter.account_id = Some(caller.account_id.as_uuid());
    Ok(HttpResponse::Ok().json(order_page(&state, &filter).await?))
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = OrderBody), (status = 404, body = crate::error::Problem)))]
#[get("/orders/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let order = order_view(&state, path.into_inner(), Some(caller.account_id)).await?;
    Ok(HttpResponse::Ok().json(OrderBody::from(&order)))
}

/// `POST /orders/{id}/pay`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PayRequest {
    /// `wallet`: the only method so far.
    pub method: Option<String>,
}

/// Pays a pending order from the caller's wallet (402 `insufficient_funds` when the balance does
/// not cover the total). The debit's reference is derived from the order: paying twice never
/// debits twice.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path), IdempotencyKeyHeader), request_body = PayRequest,
    responses((status = 200, body = OrderBody), (status = 402, description = "insufficient_funds", body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)))]
#[post("/orders/{id}/pay", wrap = "Idempotent::new()")]
pub async fn pay(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<PayRequest>,
) -> Result<HttpResponse, ApiError> {
    match body.0.method.as_deref() {
        Some("wallet") => {}
        None => return Err(ApiError::validation(vec![FieldError::required("method")])),
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "method",
                "invalid_method",
                "method is wallet",
            )]))
        }
    }
    let order_id = OrderId::from_uuid(path.into_inner());
    let worker = state.clone();
    let account_id = caller.account_id;
    let metadata = caller.metadata();
    let position = detached(async move {
        worker
            .orders
            .pay_from_wallet(account_id, order_id, &metadata)
            .await
    })
    .await?
    .map_err(ordering_error)?;
    let consistency = state
        .read_your_writes(position, &[order_model::NAME])
        .await?;
    let order = order_view(&state, order_id.as_uuid(), Some(account_id)).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(OrderBody::from(&order))))
}

/// Cancels one of the caller's unpaid orders; its invoice is voided and its discount code
/// redemption returned.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = OrderBody), (status = 409, body = crate::error::Problem)))]
#[post("/orders/{id}/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let order_id = OrderId::from_uuid(path.into_inner());
    let account_id = caller.account_id;
    cancel_order(&state, Some(account_id), order_id, caller).await
}

/// Cancels `order_id` for its owner (`owner` set) or for staff, and answers the order.
pub(crate) async fn cancel_order(
    state: &web::Data<AppState>,
    owner: Option<AccountId>,
    order_id: OrderId,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let worker = state.clone();
    let metadata = caller.metadata();
    let position = detached(async move { worker.orders.cancel(owner, order_id, &metadata).await })
        .await?
        .map_err(ordering_error)?;
    let consistency = state
        .read_your_writes(position, &[order_model::NAME])
        .await?;
    let order = order_view(state, order_id.as_uuid(), owner).await?;
    Ok(consistency.mark(HttpResponse::Ok().json(OrderBody::from(&order))))
}
