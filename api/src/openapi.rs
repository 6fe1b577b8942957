//! The OpenAPI 3.1 document, generated from the handlers and types, and the offline Swagger UI.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Stratus API", description = "Control plane and billing of a cloud service provider. Route contract: API.md."),
    paths(
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout,
        routes::auth::otp_request, routes::auth::otp_verify,
        routes::verification::verify_email, routes::verification::verify_email_link,
        routes::verification::resend_email, routes::verification::send_phone_code,
        routes::verification::verify_phone,
        routes::passwords::forgot, routes::passwords::reset, routes::passwords::change,
        routes::two_factor::setup, routes::two_factor::enable, routes::two_factor::disable,
        routes::me::me, routes::me::update, routes::me::submit_kyc, routes::me::sessions,
        routes::me::revoke_session, routes::me::revoke_other_sessions,
        routes::admin_accounts::list, routes::admin_accounts::get_one,
        routes::admin_accounts::suspend, routes::admin_accounts::reinstate,
        routes::admin_accounts::set_roles, routes::admin_accounts::approve_kyc,
        routes::admin_accounts::reject_kyc,
        routes::wallet::get_wallet, routes::wallet::set_threshold, routes::wallet::transactions,
        routes::wallet::transaction, routes::wallet::top_up, routes::wallet::withdraw,
        routes::wallet::webhook,
        routes::admin_wallets::list_wallets, routes::admin_wallets::get_wallet,
        routes::admin_wallets::wallet_transactions, routes::admin_wallets::set_credit_limit,
        routes::admin_wallets::adjust, routes::admin_wallets::list_payments,
        routes::admin_wallets::confirm_payment, routes::admin_wallets::fail_payment,
        routes::admin_wallets::list_withdrawals, routes::admin_wallets::approve_withdrawal,
        routes::admin_wallets::reject_withdrawal, routes::admin_wallets::mark_paid_out,
        routes::admin_discount_codes::create, routes::admin_discount_codes::update,
        routes::admin_discount_codes::list, routes::admin_discount_codes::get_one,
        routes::invoices::list, routes::invoices::get_one,
        routes::invoices::admin_list, routes::invoices::admin_get_one,
        routes::audit::global_log, routes::audit::stream_events,
        routes::health::live, routes::health::ready,
        // Catalog
        routes::catalog::datacenters, routes::catalog::images, routes::catalog::plans,
        routes::catalog::plan,
        routes::admin_catalog::create_datacenter, routes::admin_catalog::update_datacenter,
        routes::admin_catalog::list_datacenters, routes::admin_catalog::create_image,
        routes::admin_catalog::update_image, routes::admin_catalog::list_images,
        routes::admin_catalog::create_plan, routes::admin_catalog::update_plan,
        routes::admin_catalog::list_plans, routes::admin_catalog::retire_plan,
        routes::admin_catalog::reactivate_plan,
        // Quotes and orders
        routes::orders::quote, routes::orders::place, routes::orders::list, routes::orders::get_one,
        routes::orders::pay, routes::orders::cancel, routes::admin_orders::list,
        routes::admin_orders::get_one, routes::admin_orders::cancel,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth),
    tags((name = "identity"), (name = "administration"), (name = "wallet"), (name = "billing"), (name = "invoices"), (name = "orders"), (name = "audit"), (name = "operations"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
