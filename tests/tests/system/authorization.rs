//! The authorisation matrix: every protected route × every role (and no token), with resources
//! owned by the caller and by someone else. A route either serves the caller's own data, or
//! checks the role before anything else.

use reqwest::Method;
use serde_json::{json, Value};
use stratus_domain::Role;
use stratus_tests::TestApp;

/// Who may call a route.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    /// Anyone logged in, on their own account (the route takes no account id).
    Own,
    /// Only these roles.
    Roles(&'static [Role]),
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: Allowed,
}

fn route(method: Method, path: impl Into<String>, body: Option<Value>, allowed: Allowed) -> Route {
    Route {
        method,
        path: path.into(),
        body,
        allowed,
    }
}

const STAFF_READERS: &[Role] = &[Role::Admin, Role::Support, Role::Auditor];
const ADMIN: &[Role] = &[Role::Admin];
const AUDIT: &[Role] = &[Role::Admin, Role::Auditor];
const BILLING_READERS: &[Role] = &[Role::Billing, Role::Admin, Role::Support, Role::Auditor];
const BILLING: &[Role] = &[Role::Billing, Role::Admin];

fn wallet_routes(victim: &str, victim_payment: &str) -> Vec<Route> {
    use Allowed::{Own, Roles};
    let eur = |amount: &str| json!({"amount": amount, "currency": "EUR"});
    let unknown = uuid::Uuid::now_v7();
    vec![
        route(Method::GET, "/wallet", None, Own),
        route(Method::GET, "/wallet/transactions", None, Own),
        route(
            Method::PUT,
            "/wallet/low-balance-threshold",
            Some(json!({"amount": eur("5.00")})),
            Own,
        ),
        route(
            Method::POST,
            "/wallet/top-ups",
            Some(json!({"amount": eur("10.00"), "gateway": "manual"})),
            Own,
        ),
        route(
            Method::POST,
            "/wallet/withdrawals",
            Some(json!({"amount": eur("10.00"), "destination": "DE02120300000000202051"})),
            Own,
        ),
        // Another account's transaction is answered like an unknown one, for every role.
        route(
            Method::GET,
            format!("/wallet/transactions/{victim_payment}"),
            None,
            Own,
        ),
        route(Method::GET, "/admin/wallets", None, Roles(BILLING_READERS)),
        route(
            Method::GET,
            format!("/admin/wallets/{victim}"),
            None,
            Roles(BILLING_READERS),
        ),
        route(
            Method::GET,
            format!("/admin/wallets/{victim}/transactions"),
            None,
            Roles(BILLING_READERS),
        ),
        route(Method::GET, "/admin/payments", None, Roles(BILLING_READERS)),
        route(
            Method::GET,
            "/admin/withdrawals",
            None,
            Roles(BILLING_READERS),
        ),
        route(
            Method::PUT,
            format!("/admin/wallets/{victim}/credit-limit"),
            Some(json!({"amount": eur("5.00")})),
            Roles(BILLING),
        ),
        route(
            Method::POST,
            format!("/admin/wallets/{victim}/adjustments"),
            Some(json!({"amount": eur("1.00"), "direction": "credit", "reference": "matrix"})),
            Roles(BILLING),
        ),
        route(
            Method::POST,
            format!("/admin/payments/{unknown}/confirm"),
            Some(json!({"amount": eur("1.00")})),
            Roles(BILLING),
        ),
        route(
            Method::POST,
            format!("/admin/payments/{unknown}/fail"),
            Some(json!({"reason": "matrix"})),
            Roles(BILLING),
        ),
        route(
            Method::POST,
            format!("/admin/withdrawals/{unknown}/approve"),
            Some(json!({})),
            Roles(BILLING),
        ),
        route(
            Method::POST,
            format!("/admin/withdrawals/{unknown}/reject"),
            Some(json!({"reason": "matrix"})),
            Roles(BILLING),
        ),
        route(
            Method::POST,
            format!("/admin/withdrawals/{unknown}/paid-out"),
            Some(json!({})),
            Roles(BILLING),
        ),
    ]
}

/// Discount codes: reading for billing readers, writing for billing and admin. `existing` names
/// a code created before the matrix runs.
fn discount_code_routes(existing: &str) -> Vec<Route> {
    use Allowed::Roles;
    vec![
        route(
            Method::GET,
            "/admin/discount-codes",
            None,
            Roles(BILLING_READERS),
        ),
        route(
            Method::GET,
            format!("/admin/discount-codes/{existing}"),
            None,
            Roles(BILLING_READERS),
        ),
        route(
            Method::POST,
            "/admin/discount-codes",
            Some(json!({"code": "MATRIX", "percent_off": "5"})),
            Roles(BILLING),
        ),
        route(
            Method::PATCH,
            format!("/admin/discount-codes/{existing}"),
            Some(json!({"active": false})),
            Roles(BILLING),
        ),
    ]
}

fn invoice_routes(victim_invoice: &str) -> Vec<Route> {
    use Allowed::{Own, Roles};
    vec![
        route(Method::GET, "/invoices", None, Own),
        // Another account's invoice is answered like an unknown one, for every role.
        route(
            Method::GET,
            format!("/invoices/{victim_invoice}"),
            None,
            Own,
        ),
        route(Method::GET, "/admin/invoices", None, Roles(BILLING_READERS)),
        route(
            Method::GET,
            format!("/admin/invoices/{victim_invoice}"),
            None,
            Roles(BILLING_READERS),
        ),
    ]
}

/// Orders: a customer's own (an unknown or someone else's order is a 404 for everyone), staff
/// lists for billing readers, cancelling for admin, billing and support.
fn order_routes() -> Vec<Route> {
    use Allowed::{Own, Roles};
    let unknown = uuid::Uuid::now_v7();
    let cancellers: &'static [Role] = &[Role::Admin, Role::Billing, Role::Support];
    vec![
        route(Method::POST, "/orders", Some(json!({"hostname": "x"})), Own),
        route(Method::GET, "/orders", None, Own),
        route(Method::GET, format!("/orders/{unknown}"), None, Own),
        route(
            Method::POST,
            format!("/orders/{unknown}/pay"),
            Some(json!({"method": "wallet"})),
            Own,
        ),
        route(
            Method::POST,
            format!("/orders/{unknown}/cancel"),
            Some(json!({})),
            Own,
        ),
        route(Method::GET, "/admin/orders", None, Roles(BILLING_READERS)),
        route(
            Method::GET,
            format!("/admin/orders/{unknown}"),
            None,
            Roles(BILLING_READERS),
        ),
        route(
            Method::POST,
            format!("/admin/orders/{unknown}/cancel"),
            Some(json!({})),
            Roles(cancellers),
        ),
    ]
}

// Catalog
const CATALOG_READERS: &[Role] = &[Role::Admin, Role::Support, Role::Billing, Role::Auditor];

fn catalog_routes() -> Vec<Route> {
    use Allowed::Roles;
    let unknown = uuid::Uuid::now_v7();
    let eur = |amount: &str| json!({"amount": amount, "currency": "EUR"});
    let plan = json!({
        "code": "matrix-1", "name": "Matrix",
        "resources": {"vcpus": 1, "memory_mib": 1024, "disk_gib": 10, "ipv4": 1, "traffic_gib": 0},
        "prices": {"hourly": eur("0.01"), "monthly": eur("5.00")},
        "datacenter_ids": [unknown],
    });
    vec![
        route(
            Method::POST,
            "/admin/datacenters",
            Some(json!({"code": "matrix1", "name": "Matrix", "country": "DE"})),
            Roles(ADMIN),
        ),
        route(
            Method::PATCH,
            format!("/admin/datacenters/{unknown}"),
            Some(json!({"available": false})),
            Roles(ADMIN),
        ),
        route(
            Method::GET,
            "/admin/datacenters",
            None,
            Roles(CATALOG_READERS),
        ),
        route(
            Method::POST,
            "/admin/images",
            Some(json!({"name": "Debian", "version": "12", "family": "linux", "min_disk_gib": 10})),
            Roles(ADMIN),
        ),
        route(
            Method::PATCH,
            format!("/admin/images/{unknown}"),
            Some(json!({"available": false})),
            Roles(ADMIN),
        ),
        route(Method::GET, "/admin/images", None, Roles(CATALOG_READERS)),
        route(Method::POST, "/admin/plans", Some(plan), Roles(ADMIN)),
        route(
            Method::PATCH,
            format!("/admin/plans/{unknown}"),
            Some(json!({"name": "Matrix"})),
            Roles(ADMIN),
        ),
        route(Method::GET, "/admin/plans", None, Roles(CATALOG_READERS)),
        route(
            Method::POST,
            format!("/admin/plans/{unknown}/retire"),
            Some(json!({})),
            Roles(ADMIN),
        ),
        route(
            Method::POST,
            format!("/admin/plans/{unknown}/reactivate"),
            Some(json!({})),
            Roles(ADMIN),
        ),
    ]
}

fn routes(victim: &str, victim_session: &str) -> Vec<Route> {
    use Allowed::{Own, Roles};
    vec![
        route(Method::GET, "/me", None, Own),
        route(
            Method::PATCH,
            "/me",
            Some(json!({"name": "Renamed Person"})),
            Own,
        ),
        route(
            Method::POST,
            "/me/kyc",
            Some(json!({"national_id": "X1234567", "legal_name": "Some One", "country": "DE"})),
            Own,
        ),
        route(Method::GET, "/me/sessions", None, Own),
        route(Method::POST, "/auth/email/resend", Some(json!({})), Own),
        route(Method::POST, "/auth/2fa/setup", Some(json!({})), Own),
        route(
            Method::POST,
            "/auth/2fa/disable",
            Some(json!({"code": "123456"})),
            Own,
        ),
        route(
            Method::POST,
            "/auth/password/change",
            Some(
                json!({"current_password": "wrong wrong wrong", "new_password": "another passphrase 9"}),
            ),
            Own,
        ),
        route(Method::GET, "/admin/accounts", None, Roles(STAFF_READERS)),
        route(
            Method::GET,
            format!("/admin/accounts/{victim}"),
            None,
            Roles(STAFF_READERS),
        ),
        route(
            Method::POST,
            format!("/admin/accounts/{victim}/reinstate"),
            Some(json!({})),
            Roles(ADMIN),
        ),
        route(
            Method::POST,
            format!("/admin/accounts/{victim}/suspend"),
            Some(json!({"reason": "matrix"})),
            Roles(ADMIN),
        ),
        route(
            Method::PUT,
            format!("/admin/accounts/{victim}/roles"),
            Some(json!({"roles": ["customer"]})),
            Roles(ADMIN),
        ),
        route(
            Method::POST,
            format!("/admin/kyc/{victim}/approve"),
            Some(json!({})),
            Roles(ADMIN),
        ),
        route(
            Method::POST,
            format!("/admin/kyc/{victim}/reject"),
            Some(json!({"reason": "matrix"})),
            Roles(ADMIN),
        ),
        route(Method::GET, "/audit/events", None, Roles(AUDIT)),
        route(
            Method::GET,
            format!("/audit/streams/account/{victim}/events"),
            None,
            Roles(AUDIT),
        ),
        // Another account's session is answered like an unknown one, for every role.
        route(
            Method::DELETE,
            format!("/me/sessions/{victim_session}"),
            None,
            Own,
        ),
    ]
}

#[tokio::test]
async fn every_protected_route_answers_each_role_as_the_matrix_says() {
    let app = TestApp::spawn().await;
    let victim = app.customer().await;
    let victim_session = app
        .get("/me/sessions", Some(&victim.access_token))
        .await
        .body["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim_payment = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": "10.00", "gateway": "manual"}),
            Some(&victim.access_token),
        )
        .await
        .body["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin_token().await;
    let existing_code = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "MATRIX-EXISTING", "percent_off": "5"}),
            Some(&admin),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim_invoice = crate::invoices::issue_for(
        &app.running.as_ref().unwrap().state.invoices,
        stratus_domain::AccountId::from_uuid(victim.account_id.parse().unwrap()),
    )
    .await;
    let mut callers = vec![(Role::Customer, app.customer().await.access_token)];
    for role in [Role::Support, Role::Billing, Role::Admin, Role::Auditor] {
        callers.push((role, app.staff_token(vec![role]).await));
    }

    let mut checked = 0;
    let mut all = routes(&victim.account_id, &victim_session);
    all.extend(wallet_routes(&victim.account_id, &victim_payment));
    all.extend(discount_code_routes(&existing_code));
    all.extend(invoice_routes(&victim_invoice.invoice_id.to_string()));
    all.extend(catalog_routes());
    all.extend(order_routes());
    for route in all {
        let anonymous = app
            .call(route.method.clone(), &route.path, route.body.as_ref(), None)
            .await;
        assert_eq!(
            anonymous.status.as_u16(),
            401,
            "{} {} without a token",
            route.method,
            route.path
        );
        for (role, token) in &callers {
            let reply = app
                .call(
                    route.method.clone(),
                    &route.path,
                    route.body.as_ref(),
                    Some(token),
                )
                .await;
            let status = reply.status.as_u16();
            let permitted = match route.allowed {
                Allowed::Own => true,
                Allowed::Roles(roles) => roles.contains(role),
            };
            if permitted {
                assert!(
                    status != 401 && reply.body["code"] != "forbidden",
                    "{role} was refused {} {}: {}",
                    route.method,
                    route.path,
                    reply.body
                );
            } else {
                reply.assert_problem(403, "forbidden");
            }
            if route.path.starts_with("/me/sessions/")
                || route.path.starts_with("/wallet/transactions/")
                || route.path.starts_with("/invoices/")
            {
                reply.assert_problem(404, "not_found");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (18 + 18 + 4 + 4 + 11 + 8) * 5);
    let victim_me = app.get("/me", Some(&victim.access_token)).await;
    assert_ne!(
        victim_me.body["name"], "Renamed Person",
        "no route changed another account's profile"
    );
}
