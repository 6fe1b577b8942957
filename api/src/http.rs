//! The HTTP server: middleware (request ids, tracing), the route table, and problem+json for
//! everything actix itself would answer in plain text.

use std::net::TcpListener;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;
use uuid::Uuid;

use crate::auth::Tokens;
use crate::error::{ApiError, FieldError};
use crate::extract::RequestId;
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;

/// The request id header, read from the client when well-formed and always answered.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A client-supplied request id longer than this is replaced by our own.
pub const REQUEST_ID_MAX_CHARS: usize = 64;
/// Seconds a stopping server gives in-flight requests.
pub const SHUTDOWN_TIMEOUT_SECONDS: u64 = 10;

fn acceptable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= REQUEST_ID_MAX_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span =
        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1_000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "request"));
    Ok(response)
}

/// Paths whose requests draw on the per-IP budget of [`crate::rate_limit::RateLimiter`].
pub const RATE_LIMITED_PREFIX: &str = "/api/v1/auth/";

async fn auth_rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.path().starts_with(RATE_LIMITED_PREFIX) {
        let client = req.peer_addr().map(|a| a.ip());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        if let (Some(client), Some(state)) = (client, state) {
            if let Err(wait) = state.limiter.check(client, Instant::now()) {
                tracing::warn!(%client, "auth rate limit reached");
                let err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests from your address; wait and try again",
                )
                .retry_after(wait.as_secs().max(1));
                return Ok(req.error_response(err).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn route_not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route; see /api/v1/openapi.json",
    ))
}

fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::validation(vec![FieldError::new(
        "query",
        "invalid_query",
        err.to_string(),
    )])
    .into()
}

fn path_error(err: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string()).into()
}

/// The routes under `/api/v1`.
pub fn api_v1(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::auth::register)
        .service(routes::auth::login)
        .service(routes::auth::refresh)
        .service(routes::auth::logout)
        .service(routes::auth::otp_request)
        .service(routes::auth::otp_verify)
        .service(routes::verification::verify_email)
        .service(routes::verification::verify_email_link)
        .service(routes::verification::resend_email)
        .service(routes::verification::send_phone_code)
        .service(routes::verification::verify_phone)
        .service(routes::passwords::forgot)
        .service(routes::passwords::reset)
        .service(routes::passwords::change)
        .service(routes::two_factor::setup)
        .service(routes::two_factor::enable)
        .service(routes::two_factor::disable)
        .service(routes::me::me)
        .service(routes::me::update)
        .service(routes::me::submit_kyc)
        .service(routes::me::sessions)
        .service(routes::me::revoke_other_sessions)
        .service(routes::me::revoke_session)
        .service(routes::admin_accounts::list)
        .service(routes::admin_accounts::get_one)
        .service(routes::admin_accounts::suspend)
        .service(routes::admin_accounts::reinstate)
        .service(routes::admin_accounts::set_roles)
        .service(routes::admin_accounts::approve_kyc)
        .service(routes::admin_accounts::reject_kyc)
        .service(routes::wallet::get_wallet)
        .service(routes::wallet::set_threshold)
        .service(routes::wallet::transactions)
        .service(routes::wallet::transaction)
        .service(routes::wallet::top_up)
        .service(routes::wallet::withdraw)
        .service(routes::wallet::webhook)
        .service(routes::admin_wallets::list_wallets)
        .service(routes::admin_wallets::get_wallet)
        .service(routes::admin_wallets::wallet_transactions)
        .service(routes::admin_wallets::set_credit_limit)
        .service(routes::admin_wallets::adjust)
        .service(routes::admin_wallets::list_payments)
        .service(routes::admin_wallets::confirm_payment)
        .service(routes::admin_wallets::fail_payment)
        .service(routes::admin_wallets::list_withdrawals)
        .service(routes::admin_wallets::approve_withdrawal)
        .service(routes::admin_wallets::reject_withdrawal)
        .service(routes::admin_wallets::mark_paid_out)
        .service(routes::admin_discount_codes::create)
        .service(routes::admin_discount_codes::update)
        .service(routes::admin_discount_codes::list)
        .service(routes::admin_discount_codes::get_one)
        .service(routes::invoices::list)
        .service(routes::invoices::get_one)
        .service(routes::invoices::admin_list)
        .service(routes::invoices::admin_get_one)
        .service(routes::audit::global_log)
        .service(routes::audit::stream_events);
    // Catalog
    cfg.service(routes::catalog::datacenters)
        .service(routes::catalog::images)
        .service(routes::catalog::plans)
        .service(routes::catalog::plan)
        .service(routes::admin_catalog::create_datacenter)
        .service(routes::admin_catalog::update_datacenter)
        .service(routes::admin_catalog::list_datacenters)
        .service(routes::admin_catalog::create_image)
        .service(routes::admin_catalog::update_image)
        .service(routes::admin_catalog::list_images)
        .service(routes::admin_catalog::create_plan)
        .service(routes::admin_catalog::update_plan)
        .service(routes::admin_catalog::list_plans)
        .service(routes::admin_catalog::retire_plan)
        .service(routes::admin_catalog::reactivate_plan);
    // Quotes and orders
    cfg.service(routes::orders::quote)
        .service(routes::orders::place)
        .service(routes::orders::list)
        .service(routes::orders::get_one)
        .service(routes::orders::pay)
        .service(routes::orders::cancel)
        .service(routes::admin_orders::list)
        .service(routes::admin_orders::get_one)
        .service(routes::admin_orders::cancel);
}

/// Builds the server on an already bound listener (port 0 in tests).
pub fn server(
    state: web::Data<AppState>,
    tokens: web::Data<Tokens>,
    listener: TcpListener,
    workers: usize,
) -> std::io::Result<Server> {
    let openapi = ApiDoc::openapi();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(auth_rate_limit))
            .wrap(from_fn(request_id))
            .app_data(state.clone())
            .app_data(tokens.clone())
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .service(routes::health::live)
            .service(routes::health::ready)
            // Before the /api/v1 scope, which would otherwise claim /api/v1/openapi.json.
            .service(SwaggerUi::new("/docs/{_:.*}").url("/api/v1/openapi.json", openapi.clone()))
            .service(web::scope("/api/v1").configure(api_v1))
            .default_service(web::to(route_not_found))
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS)
    .listen(listener)?
    .run();
    Ok(server)
}
