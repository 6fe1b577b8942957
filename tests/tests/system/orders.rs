//! Quotes, orders and their invoices end to end over HTTP: a quote equals the invoice of the order
//! placed with the same input (a property test), discount codes and their limits under concurrent
//! orders, payment from the wallet exactly once, cancellation, expiry, bad input, staff listing.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use futures::future::join_all;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};
use stratus_domain::Role;
use stratus_tests::TestApp;

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1O+kiVnXJ9nEaUIdY/9Xy7U+vzZ2ZtNiQNH+SatmHc ops@example";

fn eur(amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

/// The ids of a small catalog made through the admin routes.
struct Catalog {
    fra: String,
    ams: String,
    debian: String,
    windows: String,
    small: String,
    large: String,
}

async fn created(app: &TestApp, admin: &str, path: &str, body: Value) -> Value {
    let reply = app.post(path, &body, Some(admin)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{path}: {}", reply.body);
    reply.body
}

fn id_of(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

/// fra1 (sells custom configurations) and ams1; Debian (10 GiB) and Windows (40 GiB); a small
/// plan in both datacenters and a large one in fra1 only.
async fn catalog(app: &TestApp, admin: &str) -> Catalog {
    let fra = created(
        app,
        admin,
        "/admin/datacenters",
        json!({"code": "fra1", "name": "Frankfurt", "country": "DE", "available": true,
            "custom": {
                "unit_prices": {"vcpu": eur("3.00"), "memory_gib": eur("1.50"), "disk_gib": eur("0.05"),
                    "ipv4": eur("0.50"), "traffic_gib": eur("0")},
                "min": {"vcpus": 1, "memory_mib": 1024, "disk_gib": 10, "ipv4": 0, "traffic_gib": 0},
                "max": {"vcpus": 32, "memory_mib": 131072, "disk_gib": 2000, "ipv4": 8, "traffic_gib": 20000},
                "period_discounts": {"quarterly": "3", "semiannual": "6", "annual": "10"}}}),
    )
    .await;
    let ams = created(
        app,
        admin,
        "/admin/datacenters",
        json!({"code": "ams1", "name": "Amsterdam", "country": "NL", "available": true}),
    )
    .await;
    let (fra, ams) = (id_of(&fra, "datacenter_id"), id_of(&ams, "datacenter_id"));
    let debian = created(
        app,
        admin,
        "/admin/images",
        json!({"name": "Debian", "version": "12", "family": "linux", "min_disk_gib": 10, "available": true}),
    )
    .await;
    let windows = created(
        app,
        admin,
        "/admin/images",
        json!({"name": "Windows Server", "version": "2022", "family": "windows", "min_disk_gib": 40, "available": true}),
    )
    .await;
    let small = created(
        app,
        admin,
        "/admin/plans",
        json!({"code": "s-1", "name": "S-1",
            "resources": {"vcpus": 1, "memory_mib": 1024, "disk_gib": 25, "ipv4": 1, "traffic_gib": 1000},
            "prices": {"hourly": eur("0.012"), "monthly": eur("7.00"),
                "quarterly": {"discount_percent": "5"}, "semiannual": {"price": eur("39.00")},
                "annual": {"discount_percent": "15"}},
            "datacenter_ids": [fra, ams]}),
    )
    .await;
    let large = created(
        app,
        admin,
        "/admin/plans",
        json!({"code": "l-8", "name": "L-8",
            "resources": {"vcpus": 8, "memory_mib": 16384, "disk_gib": 200, "ipv4": 1, "traffic_gib": 5000},
            "prices": {"hourly": eur("0.09"), "monthly": eur("59.90")},
            "datacenter_ids": [fra]}),
    )
    .await;
    Catalog {
        fra,
        ams,
        debian: id_of(&debian, "image_id"),
        windows: id_of(&windows, "image_id"),
        small: id_of(&small, "plan_id"),
        large: id_of(&large, "plan_id"),
    }
}

/// Credits `amount` to a customer's wallet through a billing adjustment.
async fn fund(app: &TestApp, account_id: &str, amount: &str) {
    let billing = app.staff_token(vec![Role::Billing]).await;
    let reply = app
        .post(
            &format!("/admin/wallets/{account_id}/adjustments"),
            &json!({"amount": eur(amount), "direction": "credit", "reference": format!("fund-{}", uuid::Uuid::now_v7())}),
            Some(&billing),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

async fn discount_code(app: &TestApp, admin: &str, body: Value) {
    created(app, admin, "/admin/discount-codes", body).await;
}

fn plan_order(catalog: &Catalog, plan: &str, period: &str) -> Value {
    json!({"plan_id": plan, "datacenter_id": catalog.fra, "image_id": catalog.debian,
        "billing_period": period, "hostname": "web-1.example.com", "ssh_keys": [SSH_KEY]})
}

/// The fields a quote and the invoice of the order share.
fn priced_part(body: &Value) -> Value {
    json!({
        "lines": body["lines"], "subtotal": body["subtotal"], "discount": body["discount"],
        "discount_code": body["discount_code"], "net": body["net"],
        "tax": body["tax"], "total": body["total"],
    })
}

#[tokio::test]
async fn a_customer_quotes_orders_with_a_code_pays_from_the_wallet_and_gets_the_invoice_as_json_and_pdf(
) {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    discount_code(
        &app,
        &admin,
        json!({"code": "WELCOME10", "percent_off": "10", "max_redemptions": 100}),
    )
    .await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let mut order = plan_order(&catalog, &catalog.small, "annual");
    order["discount_code"] = json!("welcome10");

    let quote = app.post("/catalog/quote", &order, Some(token)).await;
    let placed = app.post("/orders", &order, Some(token)).await;

    assert_eq!(quote.status, StatusCode::OK, "{}", quote.body);
    assert_eq!(quote.body["subtotal"], eur("71.400000"));
    assert_eq!(quote.body["discount"], eur("7.140000"));
    assert_eq!(quote.body["total"], eur("64.260000"));
    assert_eq!(quote.body["discount_code"], "WELCOME10");
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    assert_eq!(placed.body["status"], "pending_payment");
    assert_eq!(placed.body["total"], eur("64.260000"));
    let order_id = id_of(&placed.body, "order_id");
    let invoice_id = id_of(&placed.body, "invoice_id");

    let unfunded = app
        .post(
            &format!("/orders/{order_id}/pay"),
            &json!({"method": "wallet"}),
            Some(token),
        )
        .await;
    unfunded.assert_problem(402, "insufficient_funds");
    fund(&app, &customer.account_id, "100.00").await;
    let paid = app
        .post(
            &format!("/orders/{order_id}/pay"),
            &json!({"method": "wallet"}),
            Some(token),
        )
        .await;
    let again = app
        .post(
            &format!("/orders/{order_id}/pay"),
            &json!({"method": "wallet"}),
            Some(token),
        )
        .await;

    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let wallet = app.get("/wallet", Some(token)).await;
    assert_eq!(wallet.body["balance"], eur("35.740000"));
    let debits = app
        .rows(&format!(
            "SELECT reference FROM wallet_transactions WHERE account_id = '{}' AND kind = 'debit'",
            customer.account_id
        ))
        .await;
    assert_eq!(debits.len(), 1);
    assert_eq!(debits[0]["reference"], format!("order:{order_id}"));

    let invoice = wait_for_invoice_status(&app, token, &invoice_id, "paid").await;
    assert_eq!(priced_part(&invoice), priced_part(&quote.body));
    let year = Utc::now().format("%Y").to_string();
    assert_eq!(invoice["number"], format!("{year}-000001"));
    let pdf = app
        .send(
            app.client
                .get(app.url(&format!("/invoices/{invoice_id}")))
                .bearer_auth(token)
                .header("Accept", "application/pdf"),
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.content_type(), "application/pdf");
    let orders = app.get("/orders", Some(token)).await;
    assert_eq!(orders.body["orders"][0]["order_id"], order_id.as_str());
    let staff = app.staff_token(vec![Role::Support]).await;
    let listed = app
        .get(
            &format!(
                "/admin/orders?status=paid&account_id={}",
                customer.account_id
            ),
            Some(&staff),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["orders"].as_array().map(Vec::len), Some(1));
}

/// Polls the invoice until the settlement reactor has given it `status`.
async fn wait_for_invoice_status(
    app: &TestApp,
    token: &str,
    invoice_id: &str,
    status: &str,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let invoice = app
            .get(&format!("/invoices/{invoice_id}"), Some(token))
            .await;
        assert_eq!(invoice.status, StatusCode::OK, "{}", invoice.body);
        if invoice.body["status"] == status {
            return invoice.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "invoice never became {status}: {}",
            invoice.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Orders `order` again until the settlement reactor has returned the code's redemption (or
/// ten seconds passed); answers the last reply.
async fn order_once_released(app: &TestApp, order: &Value, token: &str) -> stratus_tests::Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = app.post("/orders", order, Some(token)).await;
        if reply.status == StatusCode::CREATED || std::time::Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Clone)]
struct Case {
    custom: Option<(u32, u32, u32, u32, u32)>,
    period: &'static str,
    discount: Option<&'static str>,
}

fn case() -> impl Strategy<Value = Case> {
    let custom = prop_oneof![
        Just(None),
        (
            1_u32..=32,
            1_u32..=128,
            40_u32..=2000,
            0_u32..=8,
            0_u32..=20_000
        )
            .prop_map(Some),
    ];
    let period = prop::sample::select(vec![
        "hourly",
        "monthly",
        "quarterly",
        "semiannual",
        "annual",
    ]);
    let discount = prop::sample::select(vec![None, Some("PCT15"), Some("FIX2"), Some("BIG500")]);
    (custom, period, discount).prop_map(|(custom, period, discount)| Case {
        custom,
        period,
        discount,
    })
}

// Multi-threaded: the property runner blocks on each case (`block_in_place`) so that proptest can
// shrink a failing input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_always_equals_the_invoice_of_the_order_placed_with_the_same_input() {
    let url = stratus_tests::fresh_database_url().await;
    let app = TestApp::spawn_with(&url, |settings| {
        settings.orders.vat_rates = [(
            stratus_domain::Country::parse("DE").unwrap(),
            stratus_domain::pricing::Percent::parse("19").unwrap(),
        )]
        .into();
        settings.orders.tax_home_country = Some(stratus_domain::Country::parse("DE").unwrap());
    })
    .await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    for body in [
        json!({"code": "PCT15", "percent_off": "15"}),
        json!({"code": "FIX2", "amount_off": eur("2.00")}),
        json!({"code": "BIG500", "amount_off": eur("500.00")}),
    ] {
        discount_code(&app, &admin, body).await;
    }
    let customer = app.customer().await;
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });

    let outcome = runner.run(&case(), |case| {
        let (app, catalog, token) = (&app, &catalog, customer.access_token.as_str());
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let mut order = plan_order(catalog, &catalog.small, case.period);
                if let Some((vcpus, gib, disk, ipv4, traffic)) = case.custom {
                    order["plan_id"] = Value::Null;
                    order.as_object_mut().map(|o| o.remove("plan_id"));
                    order["custom"] = json!({"vcpus": vcpus, "memory_mib": gib * 1024,
                        "disk_gib": disk, "ipv4": ipv4, "traffic_gib": traffic});
                }
                if let Some(code) = case.discount {
                    order["discount_code"] = json!(code);
                }
                let quote = app.post("/catalog/quote", &order, Some(token)).await;
                let placed = app.post("/orders", &order, Some(token)).await;
                prop_assert_eq!(quote.status, StatusCode::OK, "{}", quote.body);
                prop_assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
                let invoice_id = id_of(&placed.body, "invoice_id");
                let invoice = app
                    .get(&format!("/invoices/{invoice_id}"), Some(token))
                    .await;
                prop_assert_eq!(priced_part(&invoice.body), priced_part(&quote.body));
                prop_assert_eq!(&placed.body["total"], &quote.body["total"]);
                prop_assert_eq!(&quote.body["tax"]["country"], "DE");
                Ok(())
            })
        })
    });

    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[tokio::test]
async fn bad_order_input_is_refused_with_a_field_error_and_records_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let unknown = uuid::Uuid::now_v7().to_string();
    let valid = plan_order(&catalog, &catalog.small, "monthly");
    let with = |changes: Value| {
        let mut body = valid.clone();
        for (key, value) in changes.as_object().into_iter().flatten() {
            if value.is_null() {
                body.as_object_mut().map(|o| o.remove(key));
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let custom = |vcpus: Value, memory: Value, disk: Value| {
        json!({"plan_id": null, "custom": {"vcpus": vcpus, "memory_mib": memory, "disk_gib": disk,
            "ipv4": 1, "traffic_gib": 0}})
    };
    let cases = [
        (
            with(json!({"plan_id": unknown})),
            "plan_id",
            "plan_not_found",
        ),
        (with(json!({"plan_id": "s-1"})), "plan_id", "invalid_id"),
        (
            with(json!({"plan_id": catalog.large, "datacenter_id": catalog.ams})),
            "plan_id",
            "plan_not_in_datacenter",
        ),
        (
            with(json!({"datacenter_id": unknown})),
            "datacenter_id",
            "datacenter_not_found",
        ),
        (
            with(json!({"image_id": unknown})),
            "image_id",
            "image_not_found",
        ),
        (
            with(json!({"image_id": catalog.windows})),
            "image_id",
            "image_needs_larger_disk",
        ),
        (
            with(json!({"billing_period": "weekly"})),
            "billing_period",
            "unknown_billing_period",
        ),
        (
            with(json!({"billing_period": null})),
            "billing_period",
            "required",
        ),
        (with(json!({"plan_id": null})), "plan_id", "required"),
        (
            with(
                json!({"custom": {"vcpus": 1, "memory_mib": 1024, "disk_gib": 20, "ipv4": 0, "traffic_gib": 0}}),
            ),
            "plan_id",
            "plan_or_custom",
        ),
        (
            with(custom(json!(-2), json!(2048), json!(40))),
            "custom.vcpus",
            "invalid_number",
        ),
        (
            with(custom(json!(4), json!(2048), json!(1e12))),
            "custom.disk_gib",
            "invalid_number",
        ),
        (
            with(custom(json!(500), json!(2048), json!(40))),
            "custom.vcpus",
            "out_of_bounds",
        ),
        (
            with(custom(json!(2), json!(1536), json!(40))),
            "custom.memory_mib",
            "out_of_bounds",
        ),
        (
            with(custom(json!(2), json!("lots"), json!(40))),
            "custom.memory_mib",
            "invalid_number",
        ),
        (
            with(json!({"plan_id": null, "datacenter_id": catalog.ams,
                "custom": {"vcpus": 2, "memory_mib": 2048, "disk_gib": 40, "ipv4": 1, "traffic_gib": 0}})),
            "custom",
            "custom_not_sold",
        ),
        (
            with(json!({"hostname": "web_1"})),
            "hostname",
            "invalid_hostname",
        ),
        (
            with(json!({"hostname": "-web"})),
            "hostname",
            "invalid_hostname",
        ),
        (
            with(json!({"hostname": "10.0.0.1"})),
            "hostname",
            "invalid_hostname",
        ),
        (with(json!({"hostname": null})), "hostname", "required"),
        (
            with(json!({"ssh_keys": ["ssh-rsa AAAA"]})),
            "ssh_keys[0]",
            "invalid_ssh_key",
        ),
        (
            with(json!({"ssh_keys": [SSH_KEY, "hello"]})),
            "ssh_keys[1]",
            "invalid_ssh_key",
        ),
        (
            with(json!({"ssh_keys": vec![SSH_KEY; 11]})),
            "ssh_keys",
            "too_many_ssh_keys",
        ),
        (
            with(json!({"discount_code": "NOPE-NOPE"})),
            "discount_code",
            "discount_code_not_found",
        ),
        (
            with(json!({"discount_code": "a b"})),
            "discount_code",
            "invalid_discount_code",
        ),
    ];
    let before = app.rows("SELECT count(*) AS n FROM events").await;

    for (body, field, code) in cases {
        let reply = app.post("/orders", &body, Some(token)).await;

        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.body
        );
        let errors = reply.body["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{body}: expected {field}/{code}, got {}",
            reply.body
        );
    }

    let after = app.rows("SELECT count(*) AS n FROM events").await;
    assert_eq!(before, after, "a refused order recorded something");
}

#[tokio::test]
async fn parallel_orders_on_a_code_with_one_redemption_left_get_it_exactly_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    discount_code(
        &app,
        &admin,
        json!({"code": "LAST1", "amount_off": eur("1.00"), "max_redemptions": 1}),
    )
    .await;
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.customer().await);
    }
    let mut order = plan_order(&catalog, &catalog.small, "monthly");
    order["discount_code"] = json!("LAST1");

    let replies = join_all(
        customers
            .iter()
            .map(|c| app.post("/orders", &order, Some(&c.access_token))),
    )
    .await;

    let won: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.body
        );
        assert_eq!(reply.body["errors"][0]["code"], "discount_code_exhausted");
    }
    let invoices = app.rows("SELECT number FROM invoices").await;
    assert_eq!(invoices.len(), 1, "a refused order left an invoice behind");
}

#[tokio::test]
async fn invoice_numbers_of_parallel_orders_are_gapless() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    let customer = app.customer().await;
    let order = plan_order(&catalog, &catalog.small, "monthly");

    let replies =
        join_all((0..16).map(|_| app.post("/orders", &order, Some(&customer.access_token)))).await;

    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    let numbers: BTreeSet<String> = app
        .rows("SELECT number FROM invoices")
        .await
        .iter()
        .filter_map(|row| row["number"].as_str().map(str::to_owned))
        .collect();
    let year = Utc::now().format("%Y").to_string();
    let expected: BTreeSet<String> = (1..=16).map(|n| format!("{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn a_cancelled_order_voids_its_invoice_returns_its_code_and_cannot_be_paid() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    discount_code(
        &app,
        &admin,
        json!({"code": "ONCE", "percent_off": "50", "max_redemptions": 1}),
    )
    .await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    fund(&app, &customer.account_id, "50.00").await;
    let mut order = plan_order(&catalog, &catalog.small, "monthly");
    order["discount_code"] = json!("ONCE");
    let first = app.post("/orders", &order, Some(token)).await;
    let order_id = id_of(&first.body, "order_id");
    let invoice_id = id_of(&first.body, "invoice_id");
    app.post("/orders", &order, Some(token))
        .await
        .assert_problem(422, "validation_failed");

    let cancelled = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            &json!({}),
            Some(token),
        )
        .await;
    let pay = app
        .post(
            &format!("/orders/{order_id}/pay"),
            &json!({"method": "wallet"}),
            Some(token),
        )
        .await;

    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancel_reason"], "customer");
    pay.assert_problem(409, "order_not_payable");
    let invoice = wait_for_invoice_status(&app, token, &invoice_id, "void").await;
    assert!(
        invoice["number"].is_string(),
        "a void invoice keeps its number"
    );
    let second = order_once_released(&app, &order, token).await;
    assert_eq!(
        second.status,
        StatusCode::CREATED,
        "the code was not released: {}",
        second.body
    );
    let wallet = app.get("/wallet", Some(token)).await;
    assert_eq!(
        wallet.body["balance"],
        eur("50.000000"),
        "cancelling charged something"
    );
}

#[tokio::test]
async fn a_paid_order_cannot_be_cancelled_and_others_cannot_see_or_touch_an_order() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    let owner = app.customer().await;
    let stranger = app.customer().await;
    fund(&app, &owner.account_id, "20.00").await;
    let placed = app
        .post(
            "/orders",
            &plan_order(&catalog, &catalog.small, "monthly"),
            Some(&owner.access_token),
        )
        .await;
    let order_id = id_of(&placed.body, "order_id");
    let path = |action: &str| format!("/orders/{order_id}{action}");

    app.get(&path(""), Some(&stranger.access_token))
        .await
        .assert_problem(404, "not_found");
    app.post(
        &path("/pay"),
        &json!({"method": "wallet"}),
        Some(&stranger.access_token),
    )
    .await
    .assert_problem(404, "order_not_found");
    app.post(&path("/cancel"), &json!({}), Some(&stranger.access_token))
        .await
        .assert_problem(404, "order_not_found");
    app.post(
        &path("/pay"),
        &json!({"method": "card"}),
        Some(&owner.access_token),
    )
    .await
    .assert_problem(422, "validation_failed");
    let paid = app
        .post(
            &path("/pay"),
            &json!({"method": "wallet"}),
            Some(&owner.access_token),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    app.post(&path("/cancel"), &json!({}), Some(&owner.access_token))
        .await
        .assert_problem(409, "order_not_cancellable");
    let support = app.staff_token(vec![Role::Support]).await;
    app.post(
        &format!("/admin/orders/{order_id}/cancel"),
        &json!({}),
        Some(&support),
    )
    .await
    .assert_problem(409, "order_not_cancellable");
}

#[tokio::test]
async fn unpaid_orders_expire_after_the_payment_window_and_release_their_code() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    discount_code(
        &app,
        &admin,
        json!({"code": "EXPIRING", "percent_off": "20", "max_redemptions": 1}),
    )
    .await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let mut order = plan_order(&catalog, &catalog.small, "monthly");
    order["discount_code"] = json!("EXPIRING");
    let placed = app.post("/orders", &order, Some(token)).await;
    let order_id = id_of(&placed.body, "order_id");
    let invoice_id = id_of(&placed.body, "invoice_id");
    let orders = &app.running.as_ref().unwrap().state.orders;

    let too_early = orders.expire_due(Utc::now()).await.unwrap();
    let window = Duration::minutes(i64::from(
        app.running
            .as_ref()
            .unwrap()
            .state
            .settings
            .orders
            .payment_window_minutes,
    ));
    let expired = orders
        .expire_due(Utc::now() + window + Duration::seconds(1))
        .await
        .unwrap();

    assert_eq!(too_early, 0);
    assert_eq!(expired, 1);
    let invoice = wait_for_invoice_status(&app, token, &invoice_id, "void").await;
    assert_eq!(invoice["status"], "void");
    let read = app.get(&format!("/orders/{order_id}"), Some(token)).await;
    assert_eq!(read.body["status"], "cancelled");
    assert_eq!(read.body["cancel_reason"], "expired");
    app.post(
        &format!("/orders/{order_id}/pay"),
        &json!({"method": "wallet"}),
        Some(token),
    )
    .await
    .assert_problem(409, "order_not_payable");
    let again = order_once_released(&app, &order, token).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "the code was not released: {}",
        again.body
    );
}

#[tokio::test]
async fn rebuilding_the_orders_projection_and_replaying_settlement_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    discount_code(&app, &admin, json!({"code": "REPLAY", "percent_off": "10"})).await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    fund(&app, &customer.account_id, "100.00").await;
    let mut order = plan_order(&catalog, &catalog.small, "quarterly");
    order["discount_code"] = json!("REPLAY");
    let paid = app.post("/orders", &order, Some(token)).await;
    let cancelled = app.post("/orders", &order, Some(token)).await;
    let paid_id = id_of(&paid.body, "order_id");
    app.post(
        &format!("/orders/{paid_id}/pay"),
        &json!({"method": "wallet"}),
        Some(token),
    )
    .await;
    app.post(
        &format!("/orders/{}/cancel", id_of(&cancelled.body, "order_id")),
        &json!({}),
        Some(token),
    )
    .await;
    wait_for_invoice_status(&app, token, &id_of(&paid.body, "invoice_id"), "paid").await;
    wait_for_invoice_status(&app, token, &id_of(&cancelled.body, "invoice_id"), "void").await;
    let state = &app.running.as_ref().unwrap().state;
    // The settlement reactor may still be acting on the cancellation (the code's release lands
    // after the void invoice): wait until it has applied everything, including its own events.
    loop {
        let head = state.feed.head().await.unwrap();
        let names = [
            stratus_commands::order_settlement::NAME,
            stratus_projections::orders::NAME,
        ];
        let caught_up = state
            .feed
            .wait_for(&names, head, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert!(caught_up, "the settlement reactor did not catch up");
        if state.feed.head().await.unwrap() == head {
            break;
        }
    }
    let orders_sql = "SELECT * FROM orders ORDER BY order_id";
    let events_sql = "SELECT count(*) AS n FROM events";
    let (live, events) = (app.rows(orders_sql).await, app.rows(events_sql).await);

    state
        .feed
        .rebuild(stratus_projections::orders::NAME)
        .await
        .unwrap();
    state
        .feed
        .rebuild(stratus_commands::order_settlement::NAME)
        .await
        .unwrap();

    assert_eq!(live.len(), 2);
    assert_eq!(app.rows(orders_sql).await, live);
    assert_eq!(
        app.rows(events_sql).await,
        events,
        "replaying settlement acted again"
    );
}

#[tokio::test]
async fn vat_follows_the_verified_country_and_falls_back_to_the_home_country() {
    let url = stratus_tests::fresh_database_url().await;
    let app = TestApp::spawn_with(&url, |settings| {
        let rate = |country: &str, percent: &str| {
            (
                stratus_domain::Country::parse(country).unwrap(),
                stratus_domain::pricing::Percent::parse(percent).unwrap(),
            )
        };
        settings.orders.vat_rates = [rate("DE", "19"), rate("FR", "20")].into();
        settings.orders.tax_home_country = Some(stratus_domain::Country::parse("DE").unwrap());
    })
    .await;
    let admin = app.admin_token().await;
    let catalog = catalog(&app, &admin).await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let order = plan_order(&catalog, &catalog.small, "monthly");
    let submitted = app
        .post(
            "/me/kyc",
            &json!({"national_id": "FR-12345678", "legal_name": "Ada Lovelace", "country": "FR"}),
            Some(token),
        )
        .await;
    assert_eq!(submitted.status, StatusCode::ACCEPTED, "{}", submitted.body);

    let pending = app.post("/catalog/quote", &order, Some(token)).await;
    app.post(
        &format!("/admin/kyc/{}/approve", customer.account_id),
        &json!({}),
        Some(&admin),
    )
    .await;
    let verified = app.post("/catalog/quote", &order, Some(token)).await;
    let anonymous = app.post("/catalog/quote", &order, None).await;
    let placed = app.post("/orders", &order, Some(token)).await;

    let tax = |reply: &stratus_tests::Reply| reply.body["tax"].clone();
    assert_eq!(
        tax(&pending),
        json!({"country": "DE", "rate": "19", "amount": eur("1.330000")})
    );
    assert_eq!(
        tax(&verified),
        json!({"country": "FR", "rate": "20", "amount": eur("1.400000")})
    );
    assert_eq!(tax(&anonymous)["country"], "DE");
    assert_eq!(placed.body["quote"]["tax"], tax(&verified));
    assert_eq!(placed.body["total"], eur("8.400000"));
}
