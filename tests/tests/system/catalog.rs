//! The catalog end to end over HTTP: admins create and change datacenters, images and plans; the
//! public catalog shows what can be ordered; retired plans stay readable by id; bad input is a
//! field error that records nothing; codes are unique; the read model rebuilds to the same rows;
//! the demo catalog is seeded once.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_api::bootstrap::{ensure_demo_catalog, DemoCatalogOutcome};
use stratus_domain::catalog::PlanStatus;
use stratus_domain::pricing::BillingPeriod;
use stratus_domain::{Currency, DatacenterId, ImageId, Money, PlanId};
use stratus_projections::catalog;
use stratus_tests::wallets::wait_for_projections;
use stratus_tests::TestApp;
use uuid::Uuid;

fn eur(amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

fn custom() -> Value {
    json!({
        "unit_prices": {
            "vcpu": eur("3.50"), "memory_gib": eur("1.50"), "disk_gib": eur("0.05"),
            "ipv4": eur("1.00"), "traffic_gib": eur("0"),
        },
        "min": {"vcpus": 1, "memory_mib": 1024, "disk_gib": 10, "ipv4": 0, "traffic_gib": 0},
        "max": {"vcpus": 16, "memory_mib": 65536, "disk_gib": 1000, "ipv4": 4, "traffic_gib": 10240},
        "period_discounts": {"quarterly": "3", "semiannual": "6", "annual": "10"},
    })
}

fn datacenter(code: &str) -> Value {
    json!({"code": code, "name": "Frankfurt", "country": "DE", "custom": custom()})
}

fn image() -> Value {
    json!({"name": "Debian", "version": "12", "family": "linux", "min_disk_gib": 10})
}

fn prices() -> Value {
    json!({
        "hourly": eur("0.012"), "monthly": eur("7.00"),
        "quarterly": {"discount_percent": "5"},
        "semiannual": {"price": eur("39.00")},
        "annual": {"discount_percent": "15"},
    })
}

fn plan(code: &str, datacenter_ids: &[&str]) -> Value {
    json!({
        "code": code, "name": "Small 2",
        "resources": {"vcpus": 2, "memory_mib": 2048, "disk_gib": 50, "ipv4": 1, "traffic_gib": 2048},
        "prices": prices(),
        "datacenter_ids": datacenter_ids,
    })
}

/// POSTs `body` as the admin and returns the created resource.
async fn create(app: &TestApp, token: &str, path: &str, body: &Value) -> Value {
    let reply = app.post(path, body, Some(token)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{path}: {}", reply.body);
    reply.body
}

async fn patch(app: &TestApp, token: &str, path: &str, body: &Value) -> stratus_tests::Reply {
    app.call(Method::PATCH, path, Some(body), Some(token)).await
}

fn id_of(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

/// A datacenter, an image and a plan sold there; returns their ids.
async fn sample(app: &TestApp, token: &str) -> (String, String, String) {
    let dc = id_of(
        &create(app, token, "/admin/datacenters", &datacenter("fra1")).await,
        "datacenter_id",
    );
    let image = id_of(
        &create(app, token, "/admin/images", &image()).await,
        "image_id",
    );
    let plan = id_of(
        &create(app, token, "/admin/plans", &plan("s-2", &[&dc])).await,
        "plan_id",
    );
    (dc, image, plan)
}

fn codes(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn catalog_events(app: &TestApp) -> usize {
    app.rows("SELECT 1 FROM events WHERE aggregate_type IN ('datacenter', 'os_image', 'plan')")
        .await
        .len()
}

#[tokio::test]
async fn what_an_admin_creates_the_public_catalog_shows_without_a_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    let dc = create(&app, &admin, "/admin/datacenters", &datacenter(" FRA1 ")).await;
    let dc_id = id_of(&dc, "datacenter_id");
    let img = create(&app, &admin, "/admin/images", &image()).await;
    let created = create(&app, &admin, "/admin/plans", &plan("s-2", &[&dc_id])).await;
    let plan_id = id_of(&created, "plan_id");

    assert_eq!(dc["code"], "fra1", "codes are lower-cased");
    assert_eq!(dc["available"], true);
    assert_eq!(dc["custom"]["unit_prices"]["vcpu"], eur("3.500000"));
    assert_eq!(dc["custom"]["min"]["memory_mib"], 1024);
    assert_eq!(
        dc["custom"]["period_discounts"],
        json!({"quarterly": "3", "semiannual": "6", "annual": "10"})
    );
    assert_eq!(img["family"], "linux");
    assert_eq!(img["min_disk_gib"], 10);
    assert_eq!(created["status"], "active");
    assert_eq!(created["datacenter_ids"], json!([dc_id]));
    assert_eq!(created["resources"]["memory_mib"], 2048);
    assert_eq!(
        created["prices"],
        json!({
            "hourly": eur("0.012000"), "monthly": eur("7.000000"),
            "quarterly": eur("19.950000"), "semiannual": eur("39.000000"),
            "annual": eur("71.400000"),
        })
    );
    assert_eq!(
        created["price_rules"],
        json!({
            "hourly": eur("0.012000"), "monthly": eur("7.000000"),
            "quarterly": {"discount_percent": "5"}, "semiannual": {"price": eur("39.000000")},
            "annual": {"discount_percent": "15"},
        })
    );

    let datacenters = app.get("/catalog/datacenters", None).await;
    let images = app.get("/catalog/images", None).await;
    let plans = app.get("/catalog/plans", None).await;
    let one = app.get(&format!("/catalog/plans/{plan_id}"), None).await;
    let here = app
        .get(&format!("/catalog/plans?datacenter_id={dc_id}"), None)
        .await;
    let elsewhere = app
        .get(
            &format!("/catalog/plans?datacenter_id={}", Uuid::now_v7()),
            None,
        )
        .await;

    assert_eq!(datacenters.status, StatusCode::OK, "{}", datacenters.body);
    assert_eq!(datacenters.body["datacenters"][0], dc);
    assert_eq!(images.body["images"][0], img);
    assert_eq!(plans.body["plans"][0], created);
    assert_eq!(one.body, created);
    assert_eq!(codes(&here.body, "plans", "code"), ["s-2"]);
    assert!(codes(&elsewhere.body, "plans", "code").is_empty());
}

#[tokio::test]
async fn the_order_flow_reads_plans_datacenters_and_images_as_domain_types() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, image, plan) = sample(&app, &admin).await;
    let dc_id: DatacenterId = dc.parse().unwrap();

    let plan = catalog::get_plan(&app.pool, plan.parse::<PlanId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    let datacenter = catalog::get_datacenter(&app.pool, dc_id)
        .await
        .unwrap()
        .unwrap();
    let image = catalog::get_image(&app.pool, image.parse::<ImageId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    let missing = catalog::get_plan(&app.pool, PlanId::from_uuid(Uuid::now_v7()))
        .await
        .unwrap();

    let eur = |amount: &str| Money::from_decimal_str(amount, Currency::EUR).unwrap();
    assert_eq!(plan.code.as_str(), "s-2");
    assert_eq!(plan.status, PlanStatus::Active);
    assert!(plan.is_active() && plan.is_sold_in(dc_id));
    assert_eq!(plan.resources.vcpus, 2);
    assert_eq!(
        plan.prices.price_for(BillingPeriod::Quarterly),
        Ok(eur("19.95"))
    );
    assert_eq!(plan.datacenters, vec![dc_id]);
    assert_eq!(datacenter.code.as_str(), "fra1");
    assert_eq!(datacenter.country.as_str(), "DE");
    let pricing = datacenter.custom_pricing.expect("custom pricing");
    assert_eq!(pricing.unit_prices().vcpu, eur("3.50"));
    assert_eq!(image.min_disk_gib, 10);
    assert_eq!(image.version.as_str(), "12");
    assert_eq!(missing, None);
}

#[tokio::test]
async fn admins_change_datacenters_images_and_plans_but_never_a_plans_resources() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, image, plan) = sample(&app, &admin).await;
    let ams = id_of(
        &create(
            &app,
            &admin,
            "/admin/datacenters",
            &json!({"code": "ams1", "name": "Amsterdam", "country": "nl"}),
        )
        .await,
        "datacenter_id",
    );

    let renamed = patch(
        &app,
        &admin,
        &format!("/admin/datacenters/{dc}"),
        &json!({"name": "Frankfurt am Main", "custom": null}),
    )
    .await;
    let resized = patch(
        &app,
        &admin,
        &format!("/admin/images/{image}"),
        &json!({"version": "13", "min_disk_gib": 20}),
    )
    .await;
    let repriced = patch(
        &app,
        &admin,
        &format!("/admin/plans/{plan}"),
        &json!({"prices": {"hourly": eur("0.015"), "monthly": eur("8.00")}, "datacenter_ids": [dc, ams]}),
    )
    .await;
    let immutable = patch(
        &app,
        &admin,
        &format!("/admin/plans/{plan}"),
        &json!({"resources": {"vcpus": 4, "memory_mib": 4096, "disk_gib": 80, "ipv4": 1, "traffic_gib": 0}}),
    )
    .await;
    let empty = patch(&app, &admin, &format!("/admin/plans/{plan}"), &json!({})).await;

    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Frankfurt am Main");
    assert_eq!(renamed.body["custom"], Value::Null);
    assert_eq!(resized.body["version"], "13");
    assert_eq!(resized.body["min_disk_gib"], 20);
    assert_eq!(repriced.status, StatusCode::OK, "{}", repriced.body);
    assert_eq!(
        repriced.body["prices"]["quarterly"],
        eur("24.000000"),
        "no discount given"
    );
    assert_eq!(repriced.body["datacenter_ids"].as_array().unwrap().len(), 2);
    assert_eq!(repriced.body["resources"]["vcpus"], 2);
    immutable.assert_problem(422, "validation_failed");
    assert_eq!(immutable.error_fields(), ["resources"]);
    empty.assert_problem(422, "empty_update");
    let public = app.get(&format!("/catalog/plans/{plan}"), None).await;
    assert_eq!(public.body, repriced.body);
}

#[tokio::test]
async fn changing_something_that_does_not_exist_is_a_404_naming_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let unknown = Uuid::now_v7();

    let dc = patch(
        &app,
        &admin,
        &format!("/admin/datacenters/{unknown}"),
        &json!({"available": false}),
    )
    .await;
    let image = patch(
        &app,
        &admin,
        &format!("/admin/images/{unknown}"),
        &json!({"available": false}),
    )
    .await;
    let plan = patch(
        &app,
        &admin,
        &format!("/admin/plans/{unknown}"),
        &json!({"name": "X"}),
    )
    .await;
    let retire = app
        .post(
            &format!("/admin/plans/{unknown}/retire"),
            &json!({}),
            Some(&admin),
        )
        .await;
    let public = app.get(&format!("/catalog/plans/{unknown}"), None).await;
    let not_a_uuid = app.get("/catalog/plans/not-a-uuid", None).await;

    dc.assert_problem(404, "datacenter_not_found");
    image.assert_problem(404, "image_not_found");
    plan.assert_problem(404, "plan_not_found");
    retire.assert_problem(404, "plan_not_found");
    public.assert_problem(404, "plan_not_found");
    assert_eq!(not_a_uuid.status, StatusCode::NOT_FOUND);
    assert_eq!(catalog_events(&app).await, 0);
}

#[tokio::test]
async fn a_retired_plan_leaves_the_lists_but_stays_readable_by_id_until_reactivated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, _, plan) = sample(&app, &admin).await;
    let other = id_of(
        &create(
            &app,
            &admin,
            "/admin/plans",
            &plan_body_with_price("s-1", &dc, "4.50"),
        )
        .await,
        "plan_id",
    );

    let retired = app
        .post(
            &format!("/admin/plans/{plan}/retire"),
            &json!({}),
            Some(&admin),
        )
        .await;
    let again = app
        .post(
            &format!("/admin/plans/{plan}/retire"),
            &json!({}),
            Some(&admin),
        )
        .await;
    let public_list = app.get("/catalog/plans", None).await;
    let public_one = app.get(&format!("/catalog/plans/{plan}"), None).await;
    let admin_retired = app.get("/admin/plans?status=retired", Some(&admin)).await;
    let admin_all = app.get("/admin/plans", Some(&admin)).await;

    assert_eq!(retired.status, StatusCode::OK, "{}", retired.body);
    assert_eq!(retired.body["status"], "retired");
    assert!(retired.body["retired_at"].is_string());
    again.assert_problem(409, "plan_already_retired");
    assert_eq!(
        codes(&public_list.body, "plans", "plan_id"),
        [other.as_str()]
    );
    assert_eq!(public_one.status, StatusCode::OK);
    assert_eq!(public_one.body["status"], "retired");
    assert_eq!(
        codes(&admin_retired.body, "plans", "plan_id"),
        [plan.as_str()]
    );
    assert_eq!(
        codes(&admin_all.body, "plans", "code"),
        ["s-1", "s-2"],
        "cheapest first"
    );

    let reactivated = app
        .post(
            &format!("/admin/plans/{plan}/reactivate"),
            &json!({}),
            Some(&admin),
        )
        .await;
    let twice = app
        .post(
            &format!("/admin/plans/{plan}/reactivate"),
            &json!({}),
            Some(&admin),
        )
        .await;
    let listed = app.get("/catalog/plans", None).await;

    assert_eq!(reactivated.body["status"], "active");
    assert_eq!(reactivated.body["retired_at"], Value::Null);
    twice.assert_problem(409, "plan_not_retired");
    assert_eq!(codes(&listed.body, "plans", "code"), ["s-1", "s-2"]);
}

fn plan_body_with_price(code: &str, dc: &str, monthly: &str) -> Value {
    let mut body = plan(code, &[dc]);
    body["prices"]["monthly"] = eur(monthly);
    body
}

#[tokio::test]
async fn unavailable_datacenters_and_images_are_hidden_from_the_public_but_not_from_staff() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let support = app.staff_token(vec![stratus_domain::Role::Support]).await;
    let (dc, image, _) = sample(&app, &admin).await;
    create(
        &app,
        &admin,
        "/admin/datacenters",
        &json!({"code": "ams1", "name": "Amsterdam", "country": "NL", "available": false}),
    )
    .await;
    create(
        &app,
        &admin,
        "/admin/images",
        &json!({"name": "Windows Server", "version": "2022", "family": "windows", "min_disk_gib": 40, "available": false}),
    )
    .await;

    let public_dcs = app.get("/catalog/datacenters", None).await;
    let public_images = app.get("/catalog/images", None).await;
    let staff_dcs = app.get("/admin/datacenters", Some(&support)).await;
    let staff_images = app.get("/admin/images", Some(&support)).await;
    let hidden_dcs = app
        .get("/admin/datacenters?available=false", Some(&support))
        .await;
    let windows = app
        .get("/admin/images?family=windows", Some(&support))
        .await;

    assert_eq!(codes(&public_dcs.body, "datacenters", "code"), ["fra1"]);
    assert_eq!(codes(&public_images.body, "images", "image_id"), [image]);
    assert_eq!(
        codes(&staff_dcs.body, "datacenters", "code"),
        ["ams1", "fra1"]
    );
    assert_eq!(
        codes(&staff_images.body, "images", "name"),
        ["Debian", "Windows Server"]
    );
    assert_eq!(codes(&hidden_dcs.body, "datacenters", "code"), ["ams1"]);
    assert_eq!(codes(&windows.body, "images", "version"), ["2022"]);

    let hidden = patch(
        &app,
        &admin,
        &format!("/admin/datacenters/{dc}"),
        &json!({"available": false}),
    )
    .await;
    assert_eq!(hidden.body["available"], false);
    let none = app.get("/catalog/datacenters", None).await;
    assert!(codes(&none.body, "datacenters", "code").is_empty());
}

#[tokio::test]
async fn lists_page_with_a_cursor_and_refuse_bad_filters() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (name, version) in [("Alma", "9"), ("Debian", "12"), ("Ubuntu", "24.04")] {
        create(
            &app,
            &admin,
            "/admin/images",
            &json!({"name": name, "version": version, "family": "linux", "min_disk_gib": 10}),
        )
        .await;
    }

    let first = app.get("/catalog/images?limit=2", None).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/catalog/images?limit=2&cursor={cursor}"), None)
        .await;
    let bad_cursor = app.get("/catalog/images?cursor=nonsense", None).await;
    let bad_limit = app.get("/catalog/plans?limit=0", None).await;
    let bad_datacenter = app.get("/catalog/plans?datacenter_id=fra1", None).await;
    let bad_status = app.get("/admin/plans?status=gone", Some(&admin)).await;
    let bad_family = app.get("/admin/images?family=dos", Some(&admin)).await;

    assert_eq!(codes(&first.body, "images", "name"), ["Alma", "Debian"]);
    assert_eq!(codes(&second.body, "images", "name"), ["Ubuntu"]);
    assert_eq!(second.body["next_cursor"], Value::Null);
    for (reply, field) in [
        (&bad_cursor, "cursor"),
        (&bad_limit, "limit"),
        (&bad_datacenter, "datacenter_id"),
        (&bad_status, "status"),
        (&bad_family, "family"),
    ] {
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.error_fields(), [field], "{}", reply.body);
    }
}

/// `(method, path, body, field, code)` of one refused request.
type BadInput = (Method, String, Value, &'static str, &'static str);

#[tokio::test]
async fn bad_input_is_a_field_error_naming_its_json_path_and_records_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, image_id, plan_id) = sample(&app, &admin).await;
    let before = catalog_events(&app).await;
    let unknown_dc = Uuid::now_v7().to_string();
    // Sets (or adds) the field at `pointer`.
    let with = |mut body: Value, pointer: &str, value: Value| {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let object = body.pointer_mut(parent).and_then(Value::as_object_mut);
        object
            .unwrap_or_else(|| panic!("{pointer}"))
            .insert(key.to_owned(), value);
        body
    };
    let post = Method::POST;
    let cases: Vec<BadInput> = vec![
        (
            post.clone(),
            "/admin/datacenters".into(),
            datacenter("1fra"),
            "code",
            "invalid_datacenter_code",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            json!({"code": "x1", "country": "DE"}),
            "name",
            "required",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(datacenter("x1"), "/country", json!("XX")),
            "country",
            "invalid_country",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(datacenter("x1"), "/custom/min/vcpus", json!(0)),
            "custom.min.vcpus",
            "invalid_bounds",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(datacenter("x1"), "/custom/min/memory_mib", json!(1500)),
            "custom.min.memory_mib",
            "invalid_bounds",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(datacenter("x1"), "/custom/max/vcpus", json!(-1)),
            "custom.max.vcpus",
            "invalid_count",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(
                datacenter("x1"),
                "/custom/unit_prices/vcpu/amount",
                json!("-1"),
            ),
            "custom.unit_prices.vcpu.amount",
            "price_negative",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(
                datacenter("x1"),
                "/custom/unit_prices/vcpu/currency",
                json!("USD"),
            ),
            "custom.unit_prices.vcpu.currency",
            "currency_mismatch",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(
                datacenter("x1"),
                "/custom/period_discounts/annual",
                json!("101"),
            ),
            "custom.period_discounts.annual",
            "invalid_percent",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(datacenter("x1"), "/available", json!("yes")),
            "available",
            "invalid_type",
        ),
        (
            post.clone(),
            "/admin/datacenters".into(),
            with(datacenter("x1"), "/colour", json!("blue")),
            "colour",
            "unknown_field",
        ),
        (
            post.clone(),
            "/admin/images".into(),
            with(image(), "/family", json!("dos")),
            "family",
            "unknown_os_family",
        ),
        (
            post.clone(),
            "/admin/images".into(),
            with(image(), "/min_disk_gib", json!(0)),
            "min_disk_gib",
            "min_disk_out_of_range",
        ),
        (
            post.clone(),
            "/admin/images".into(),
            with(image(), "/min_disk_gib", json!("10")),
            "min_disk_gib",
            "invalid_count",
        ),
        (
            post.clone(),
            "/admin/images".into(),
            with(image(), "/version", json!("")),
            "version",
            "invalid_image_version",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            plan("S 1", &[&dc]),
            "code",
            "invalid_plan_code",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(plan("x-1", &[&dc]), "/prices/monthly/amount", json!("7,00")),
            "prices.monthly.amount",
            "invalid_amount",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(plan("x-1", &[&dc]), "/prices/monthly", json!(7)),
            "prices.monthly",
            "invalid_amount",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(
                plan("x-1", &[&dc]),
                "/prices/monthly/currency",
                json!("USD"),
            ),
            "prices.monthly.currency",
            "currency_mismatch",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(plan("x-1", &[&dc]), "/prices/hourly/amount", json!("0")),
            "prices.hourly.amount",
            "price_not_positive",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(
                plan("x-1", &[&dc]),
                "/prices/hourly/amount",
                json!("0.0000001"),
            ),
            "prices.hourly.amount",
            "too_many_decimals",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(plan("x-1", &[&dc]), "/prices/quarterly/price", eur("19.00")),
            "prices.quarterly",
            "invalid_period_price",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(
                plan("x-1", &[&dc]),
                "/prices/quarterly/discount_percent",
                json!("5.555"),
            ),
            "prices.quarterly.discount_percent",
            "invalid_percent",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(
                plan("x-1", &[&dc]),
                "/prices/annual/discount_percent",
                json!("100"),
            ),
            "prices.annual",
            "period_not_priceable",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(plan("x-1", &[&dc]), "/resources/vcpus", json!(0)),
            "resources.vcpus",
            "out_of_bounds",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            with(plan("x-1", &[&dc]), "/resources/memory_mib", json!(128)),
            "resources.memory_mib",
            "out_of_bounds",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            plan("x-1", &[]),
            "datacenter_ids",
            "no_datacenters",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            plan("x-1", &["fra1"]),
            "datacenter_ids[0]",
            "invalid_id",
        ),
        (
            post.clone(),
            "/admin/plans".into(),
            plan("x-1", &[&dc, &unknown_dc]),
            "datacenter_ids[1]",
            "unknown_datacenter",
        ),
        (
            Method::PATCH,
            format!("/admin/datacenters/{dc}"),
            json!({"name": null}),
            "name",
            "invalid_type",
        ),
        (
            Method::PATCH,
            format!("/admin/datacenters/{dc}"),
            json!({"code": "fra2"}),
            "code",
            "immutable_field",
        ),
        (
            Method::PATCH,
            format!("/admin/images/{image_id}"),
            json!({"family": "Linux"}),
            "family",
            "unknown_os_family",
        ),
        (
            Method::PATCH,
            format!("/admin/plans/{plan_id}"),
            json!({"datacenter_ids": [unknown_dc]}),
            "datacenter_ids[0]",
            "unknown_datacenter",
        ),
        (
            Method::PATCH,
            format!("/admin/plans/{plan_id}"),
            json!({"prices": {"monthly": eur("8.00")}}),
            "prices.hourly",
            "required",
        ),
    ];

    for (method, path, body, field, code) in &cases {
        let reply = app
            .call(method.clone(), path, Some(body), Some(&admin))
            .await;

        reply.assert_problem(422, "validation_failed");
        let found = reply.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == *field && e["code"] == *code);
        assert!(
            found,
            "{method} {path} {body}: expected {field} {code}, got {}",
            reply.body
        );
    }
    assert_eq!(
        catalog_events(&app).await,
        before,
        "no refused input was recorded"
    );
    let claims = app
        .rows("SELECT value FROM unique_claims WHERE scope IN ('datacenter_code', 'plan_code') ORDER BY value")
        .await;
    assert_eq!(claims.len(), 2, "only fra1 and s-2 are claimed: {claims:?}");
}

#[tokio::test]
async fn several_problems_in_one_body_are_all_reported() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = json!({
        "code": "-", "name": "",
        "resources": {"vcpus": 0, "memory_mib": 1024, "disk_gib": 0, "ipv4": 1, "traffic_gib": 0},
        "prices": {"hourly": eur("-1"), "monthly": "abc"},
        "datacenter_ids": [],
    });

    let reply = app.post("/admin/plans", &body, Some(&admin)).await;

    reply.assert_problem(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "code",
            "datacenter_ids",
            "name",
            "prices.hourly.amount",
            "prices.monthly",
            "resources.disk_gib",
            "resources.vcpus",
        ]
    );
}

#[tokio::test]
async fn a_code_belongs_to_one_datacenter_and_one_plan_whatever_its_case() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, _, _) = sample(&app, &admin).await;

    let dc_again = app
        .post("/admin/datacenters", &datacenter("FRA1"), Some(&admin))
        .await;
    let plan_again = app
        .post("/admin/plans", &plan("s-2", &[&dc]), Some(&admin))
        .await;

    for reply in [&dc_again, &plan_again] {
        reply.assert_problem(409, "code_taken");
        assert_eq!(reply.error_fields(), ["code"]);
    }
    let list = app.get("/admin/datacenters", Some(&admin)).await;
    assert_eq!(codes(&list.body, "datacenters", "code"), ["fra1"]);
}

#[tokio::test]
async fn of_simultaneous_creations_with_one_code_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    let body = datacenter("race1");
    let replies =
        join_all((0..6).map(|_| app.post("/admin/datacenters", &body, Some(&admin)))).await;

    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let taken = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.body["code"] == "code_taken")
        .count();
    assert_eq!((created, taken), (1, 5));
    assert_eq!(catalog_events(&app).await, 1);
}

#[tokio::test]
async fn a_plan_the_aggregate_refuses_gives_its_code_back() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, _, _) = sample(&app, &admin).await;
    let mut free_year = plan("y-1", &[&dc]);
    free_year["prices"]["annual"] = json!({"discount_percent": "100"});

    let refused = app.post("/admin/plans", &free_year, Some(&admin)).await;
    let accepted = app
        .post("/admin/plans", &plan("y-1", &[&dc]), Some(&admin))
        .await;

    refused.assert_problem(422, "validation_failed");
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.body);
}

#[tokio::test]
async fn a_create_repeated_with_its_idempotency_key_answers_the_first_result() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let dc = id_of(
        &create(&app, &admin, "/admin/datacenters", &datacenter("fra1")).await,
        "datacenter_id",
    );

    let first = app
        .post_with_key(
            "/admin/plans",
            "plan-s-2",
            &plan("s-2", &[&dc]),
            Some(&admin),
        )
        .await;
    let second = app
        .post_with_key(
            "/admin/plans",
            "plan-s-2",
            &plan("s-2", &[&dc]),
            Some(&admin),
        )
        .await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::CREATED);
    assert!(second.replayed());
    assert_eq!(second.body["plan_id"], first.body["plan_id"]);
    let plans = app.get("/admin/plans", Some(&admin)).await;
    assert_eq!(codes(&plans.body, "plans", "code"), ["s-2"]);
}

#[tokio::test]
async fn prices_in_another_currency_than_the_settlement_currency_are_refused() {
    let url = stratus_tests::fresh_database_url().await;
    let app = TestApp::spawn_with(&url, |settings| {
        settings.payments.currency = Currency::USD;
    })
    .await;
    let admin = app.admin_token().await;

    let eur_custom = app
        .post("/admin/datacenters", &datacenter("fra1"), Some(&admin))
        .await;
    let bare = app
        .post(
            "/admin/datacenters",
            &json!({"code": "nyc1", "name": "New York", "country": "US"}),
            Some(&admin),
        )
        .await;

    eur_custom.assert_problem(422, "validation_failed");
    assert!(eur_custom
        .error_fields()
        .contains(&"custom.unit_prices.vcpu.currency".to_owned()));
    assert_eq!(bare.status, StatusCode::CREATED, "{}", bare.body);
}

#[tokio::test]
async fn rebuilding_the_catalog_reproduces_its_read_model() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (dc, image, plan) = sample(&app, &admin).await;
    patch(
        &app,
        &admin,
        &format!("/admin/datacenters/{dc}"),
        &json!({"custom": null, "available": false}),
    )
    .await;
    patch(
        &app,
        &admin,
        &format!("/admin/images/{image}"),
        &json!({"min_disk_gib": 30}),
    )
    .await;
    patch(
        &app,
        &admin,
        &format!("/admin/plans/{plan}"),
        &json!({"name": "Small Two"}),
    )
    .await;
    app.post(
        &format!("/admin/plans/{plan}/retire"),
        &json!({}),
        Some(&admin),
    )
    .await;
    let feed = &app.running.as_ref().unwrap().state.feed;
    wait_for_projections(feed, &[catalog::NAME]).await;
    let tables = ["catalog_datacenters", "catalog_images", "catalog_plans"];
    let mut live = Vec::new();
    for table in tables {
        live.push(app.rows(&format!("SELECT * FROM {table} ORDER BY 1")).await);
    }

    feed.rebuild(catalog::NAME).await.unwrap();

    for (table, rows) in tables.iter().zip(&live) {
        assert_eq!(rows.len(), 1, "{table}");
        assert_eq!(
            &app.rows(&format!("SELECT * FROM {table} ORDER BY 1")).await,
            rows,
            "{table}"
        );
    }
    assert_eq!(live[2][0]["status"], "retired");
}

#[tokio::test]
async fn the_demo_catalog_is_seeded_once_and_only_on_an_empty_catalog() {
    let app = TestApp::spawn().await;
    let state = &app.running.as_ref().unwrap().state;

    let first = ensure_demo_catalog(state).await.unwrap();
    let second = ensure_demo_catalog(state).await.unwrap();

    assert_eq!(
        first,
        DemoCatalogOutcome::Seeded {
            datacenters: 2,
            images: 4,
            plans: 4
        }
    );
    assert_eq!(second, DemoCatalogOutcome::AlreadyPresent);
    assert_eq!(catalog_events(&app).await, 10);
    let dcs = app.get("/catalog/datacenters", None).await;
    let images = app.get("/catalog/images", None).await;
    let plans = app.get("/catalog/plans", None).await;
    assert_eq!(codes(&dcs.body, "datacenters", "code"), ["ams1", "fra1"]);
    assert_eq!(dcs.body["datacenters"][0]["custom"], Value::Null);
    assert!(dcs.body["datacenters"][1]["custom"].is_object());
    assert_eq!(
        codes(&images.body, "images", "name"),
        ["Debian", "Rocky Linux", "Ubuntu", "Windows Server"]
    );
    assert_eq!(images.body["images"][3]["min_disk_gib"], 40);
    assert_eq!(
        codes(&plans.body, "plans", "code"),
        ["s-1", "s-2", "m-4", "m-8"]
    );
    for plan in plans.body["plans"].as_array().unwrap() {
        assert_eq!(plan["datacenter_ids"].as_array().unwrap().len(), 2);
        assert_eq!(plan["prices"]["monthly"]["currency"], "EUR");
    }
}

#[tokio::test]
async fn the_demo_catalog_stays_away_when_switched_off_or_when_a_catalog_exists() {
    let off = TestApp::spawn_with(&stratus_tests::fresh_database_url().await, |s| {
        s.demo_catalog = false;
    })
    .await;
    let own = TestApp::spawn().await;
    let admin = own.admin_token().await;
    create(&own, &admin, "/admin/datacenters", &datacenter("own1")).await;

    let disabled = ensure_demo_catalog(&off.running.as_ref().unwrap().state)
        .await
        .unwrap();
    let present = ensure_demo_catalog(&own.running.as_ref().unwrap().state)
        .await
        .unwrap();

    assert_eq!(disabled, DemoCatalogOutcome::Disabled);
    assert_eq!(present, DemoCatalogOutcome::AlreadyPresent);
    assert_eq!(catalog_events(&off).await, 0);
    assert_eq!(catalog_events(&own).await, 1);
}

#[tokio::test]
async fn the_openapi_document_lists_every_catalog_route_and_the_idempotent_creations() {
    let app = TestApp::spawn().await;

    let doc = app.get("/openapi.json", None).await;

    let routes = [
        ("/api/v1/catalog/datacenters", "get"),
        ("/api/v1/catalog/images", "get"),
        ("/api/v1/catalog/plans", "get"),
        ("/api/v1/catalog/plans/{plan_id}", "get"),
        ("/api/v1/admin/datacenters", "post"),
        ("/api/v1/admin/datacenters", "get"),
        ("/api/v1/admin/datacenters/{datacenter_id}", "patch"),
        ("/api/v1/admin/images", "post"),
        ("/api/v1/admin/images", "get"),
        ("/api/v1/admin/images/{image_id}", "patch"),
        ("/api/v1/admin/plans", "post"),
        ("/api/v1/admin/plans", "get"),
        ("/api/v1/admin/plans/{plan_id}", "patch"),
        ("/api/v1/admin/plans/{plan_id}/retire", "post"),
        ("/api/v1/admin/plans/{plan_id}/reactivate", "post"),
    ];
    for (path, method) in routes {
        assert!(
            doc.body["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    for path in [
        "/api/v1/admin/datacenters",
        "/api/v1/admin/images",
        "/api/v1/admin/plans",
    ] {
        let parameters = doc.body["paths"][path]["post"]["parameters"].clone();
        let declared = parameters
            .as_array()
            .is_some_and(|list| list.iter().any(|p| p["name"] == "Idempotency-Key"));
        assert!(declared, "{path}: {parameters}");
    }
}
