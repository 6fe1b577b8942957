//! Discount codes: the limits under concurrency through the real `DiscountCodes` service (what
//! the orders flow calls), and the admin routes over HTTP (create, update, list, get, bad input,
//! duplicates, rebuild).

use std::collections::BTreeSet;

use chrono::{TimeDelta, Utc};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_commands::discount_codes::DiscountCodes;
use stratus_commands::{CommandError, CommandMetadata};
use stratus_domain::discount::{
    id_of, CodeText, DiscountError, DiscountTerms, RedemptionRequest, TermsPatch,
};
use stratus_domain::pricing::{BillingPeriod, DiscountValue, Percent};
use stratus_domain::{AccountId, Currency, DiscountCodeId, OrderId, PlanId, Role};
use stratus_projections::discount_codes::NAME as DISCOUNT_CODES;
use stratus_tests::wallets::wait_for_projections;
use stratus_tests::TestApp;
use uuid::Uuid;

type Outcome = Result<(DiscountCodeId, DiscountValue), CommandError<DiscountError>>;

fn metadata() -> CommandMetadata {
    CommandMetadata::system(Uuid::now_v7(), "test")
}

fn service(app: &TestApp) -> DiscountCodes {
    app.running.as_ref().unwrap().state.discount_codes.clone()
}

fn percent(text: &str) -> DiscountValue {
    DiscountValue::PercentOff {
        percent: Percent::parse(text).unwrap(),
    }
}

fn code(text: &str) -> CodeText {
    CodeText::parse(text).unwrap()
}

fn request(account: AccountId) -> RedemptionRequest {
    RedemptionRequest {
        account_id: account,
        plan_id: Some(PlanId::from_uuid(Uuid::now_v7())),
        billing_period: BillingPeriod::Monthly,
        first_order: true,
        at: Utc::now(),
    }
}

fn new_account() -> AccountId {
    AccountId::from_uuid(Uuid::now_v7())
}

fn new_order() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

/// Creates `text` through the service with `terms` (15 % off unless the terms say otherwise).
async fn create(codes: &DiscountCodes, text: &str, terms: DiscountTerms) -> CodeText {
    codes
        .create(code(text), terms, &metadata())
        .await
        .unwrap_or_else(|e| panic!("create {text}: {e}"));
    code(text)
}

fn limited(max_redemptions: Option<u32>, max_per_account: Option<u32>) -> DiscountTerms {
    DiscountTerms {
        max_redemptions,
        max_per_account,
        ..DiscountTerms::new(percent("15"))
    }
}

/// Runs one redemption per `(order, account)` at once and returns every outcome. Every other
/// attempt goes through a second `DiscountCodes` on the same database: it has its own command
/// locks, like another `stratus` process, so the two race through the event store's optimistic
/// check and its retries, not only through the in-process lock.
async fn redeem_all(
    app: &TestApp,
    code: &CodeText,
    orders: Vec<(OrderId, AccountId)>,
) -> Vec<Outcome> {
    let this_process = service(app);
    let other_process = DiscountCodes::new(app.pool.clone(), Currency::EUR);
    let attempts = orders.into_iter().enumerate().map(|(i, (order, account))| {
        let codes = if i % 2 == 0 {
            this_process.clone()
        } else {
            other_process.clone()
        };
        let code = code.clone();
        tokio::spawn(async move {
            codes
                .redeem(&code, order, &request(account), &metadata())
                .await
        })
    });
    join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect()
}

fn succeeded(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|o| o.is_ok()).count()
}

fn refused_with(outcomes: &[Outcome], rule: DiscountError) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Err(CommandError::Refused(e)) if *e == rule))
        .count()
}

async fn events_of(app: &TestApp, code: &CodeText, event_type: &str) -> usize {
    app.rows(&format!(
        "SELECT 1 FROM events WHERE aggregate_type = 'discount_code' AND aggregate_id = '{}' \
         AND event_type = '{event_type}'",
        id_of(code)
    ))
    .await
    .len()
}

async fn discount_code_events(app: &TestApp) -> usize {
    app.rows("SELECT 1 FROM events WHERE aggregate_type = 'discount_code'")
        .await
        .len()
}

/// The code's row once the projection has applied the whole log.
async fn projected(app: &TestApp, code: &CodeText) -> Value {
    let feed = &app.running.as_ref().unwrap().state.feed;
    wait_for_projections(feed, &[DISCOUNT_CODES]).await;
    let admin = app.admin_token().await;
    let reply = app
        .get(
            &format!("/admin/discount-codes/{}", code.as_str()),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

// ---------------------------------------------------------------------------------------------
// The limits under concurrency, through the service the orders flow calls
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn thirty_parallel_redemptions_of_a_single_use_code_let_exactly_one_through() {
    let app = TestApp::spawn().await;
    let codes = service(&app);
    let once = create(&codes, "ONCE", limited(Some(1), None)).await;

    let outcomes = redeem_all(
        &app,
        &once,
        (0..30).map(|_| (new_order(), new_account())).collect(),
    )
    .await;

    assert_eq!(succeeded(&outcomes), 1);
    assert_eq!(refused_with(&outcomes, DiscountError::Exhausted), 29);
    let winner = outcomes.iter().find_map(|o| o.as_ref().ok()).unwrap();
    assert_eq!(*winner, (id_of(&once), percent("15")));
    assert_eq!(events_of(&app, &once, "DiscountRedeemed").await, 1);
    let row = projected(&app, &once).await;
    assert_eq!(row["redemptions_in_use"], 1);
    assert_eq!(row["redemptions_left"], 0);
}

#[tokio::test]
async fn twenty_parallel_redemptions_of_a_code_with_three_left_let_exactly_three_through() {
    let app = TestApp::spawn().await;
    let codes = service(&app);
    let five = create(&codes, "FIVE-LEFT-3", limited(Some(5), None)).await;
    for _ in 0..2 {
        codes
            .redeem(&five, new_order(), &request(new_account()), &metadata())
            .await
            .unwrap();
    }

    let outcomes = redeem_all(
        &app,
        &five,
        (0..20).map(|_| (new_order(), new_account())).collect(),
    )
    .await;

    assert_eq!(succeeded(&outcomes), 3);
    assert_eq!(refused_with(&outcomes, DiscountError::Exhausted), 17);
    assert_eq!(events_of(&app, &five, "DiscountRedeemed").await, 5);
    assert_eq!(projected(&app, &five).await["redemptions_in_use"], 5);
}

#[tokio::test]
async fn the_per_account_limit_holds_under_concurrency() {
    let app = TestApp::spawn().await;
    let codes = service(&app);
    let twice = create(&codes, "TWICE-EACH", limited(None, Some(2))).await;
    let (alice, bob) = (new_account(), new_account());
    let mut orders: Vec<(OrderId, AccountId)> = (0..12).map(|_| (new_order(), alice)).collect();
    orders.extend((0..12).map(|_| (new_order(), bob)));

    let outcomes = redeem_all(&app, &twice, orders.clone()).await;

    assert_eq!(succeeded(&outcomes), 4);
    assert_eq!(refused_with(&outcomes, DiscountError::AccountLimit), 20);
    for account in [alice, bob] {
        let theirs = orders
            .iter()
            .zip(&outcomes)
            .filter(|((_, owner), outcome)| *owner == account && outcome.is_ok())
            .count();
        assert_eq!(theirs, 2, "each account got exactly its share");
    }
    let in_use = codes
        .store()
        .load(&id_of(&twice).to_string())
        .await
        .unwrap();
    assert_eq!(in_use.active_redemptions_of(&alice), 2);
}

#[tokio::test]
async fn a_released_redemption_returns_to_the_pool_and_a_new_order_can_take_it() {
    let app = TestApp::spawn().await;
    let codes = service(&app);
    let once = create(&codes, "RELEASE-ME", limited(Some(1), None)).await;
    let (first, second) = (new_order(), new_order());
    let (id, _) = codes
        .redeem(&once, first, &request(new_account()), &metadata())
        .await
        .unwrap();
    let refused = codes
        .redeem(&once, second, &request(new_account()), &metadata())
        .await;
    assert!(matches!(
        refused,
        Err(CommandError::Refused(DiscountError::Exhausted))
    ));

    let released = codes.release(id, first, &metadata()).await.unwrap();
    let released_again = codes.release(id, first, &metadata()).await.unwrap();
    let never_redeemed = codes.release(id, new_order(), &metadata()).await.unwrap();
    let retaken = codes
        .redeem(&once, second, &request(new_account()), &metadata())
        .await;

    assert!(released);
    assert!(!released_again, "a second release is a no-op");
    assert!(!never_redeemed, "an unknown order is a no-op");
    assert_eq!(retaken.unwrap(), (id, percent("15")));
    assert_eq!(events_of(&app, &once, "RedemptionReleased").await, 1);
    let row = projected(&app, &once).await;
    assert_eq!(row["redemptions_in_use"], 1);
    assert_eq!(row["redemptions_released"], 1);
    let rows = app
        .rows(&format!(
            "SELECT order_id::text, released_at IS NOT NULL AS released FROM discount_redemptions \
             WHERE code_id = '{id}' ORDER BY redeemed_at"
        ))
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["order_id"], first.to_string());
    assert_eq!(rows[0]["released"], true);
    assert_eq!(rows[1]["released"], false);
}

#[tokio::test]
async fn the_same_order_redeemed_twice_or_in_parallel_counts_once_and_keeps_its_value() {
    let app = TestApp::spawn().await;
    let codes = service(&app);
    let two = create(&codes, "TWO-ORDERS", limited(Some(2), None)).await;
    let (order, account) = (new_order(), new_account());

    let outcomes = redeem_all(&app, &two, vec![(order, account); 10]).await;
    codes
        .update(
            id_of(&two),
            TermsPatch {
                value: Some(percent("40")),
                ..TermsPatch::default()
            },
            &metadata(),
        )
        .await
        .unwrap();
    let again = codes
        .redeem(&two, order, &request(account), &metadata())
        .await
        .unwrap();
    let second = codes
        .redeem(&two, new_order(), &request(new_account()), &metadata())
        .await
        .unwrap();
    let third = codes
        .redeem(&two, new_order(), &request(new_account()), &metadata())
        .await;

    assert_eq!(
        succeeded(&outcomes),
        10,
        "every repeat answers the redemption"
    );
    assert_eq!(again.1, percent("15"), "the value of the first redemption");
    assert_eq!(
        second.1,
        percent("40"),
        "a new order gets the terms of its time"
    );
    assert!(matches!(
        third,
        Err(CommandError::Refused(DiscountError::Exhausted))
    ));
    assert_eq!(events_of(&app, &two, "DiscountRedeemed").await, 2);
    assert_eq!(projected(&app, &two).await["redemptions_in_use"], 2);
}

#[tokio::test]
async fn a_check_answers_what_a_redemption_would_and_records_nothing() {
    let app = TestApp::spawn().await;
    let codes = service(&app);
    let first_only = create(
        &codes,
        "first-only",
        DiscountTerms {
            first_order_only: true,
            ..limited(Some(1), None)
        },
    )
    .await;
    let before = discount_code_events(&app).await;
    let returning = RedemptionRequest {
        first_order: false,
        ..request(new_account())
    };

    let eligible = codes.check(&first_only, &request(new_account())).await;
    let refused = codes.check(&first_only, &returning).await;
    let unknown = codes
        .check(&code("NO-SUCH-CODE"), &request(new_account()))
        .await;

    assert_eq!(eligible.unwrap(), (id_of(&first_only), percent("15")));
    assert!(matches!(
        refused,
        Err(CommandError::Refused(DiscountError::FirstOrderOnly))
    ));
    assert!(matches!(
        unknown,
        Err(CommandError::Refused(DiscountError::NotFound))
    ));
    assert_eq!(
        discount_code_events(&app).await,
        before,
        "a check appends nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Admin routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn billing_creates_a_code_and_reads_it_back_by_id_or_by_code() {
    let app = TestApp::spawn().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let plan = Uuid::now_v7();
    let body = json!({
        "code": "spring-25",
        "percent_off": "12.5",
        "valid_from": "2026-03-01T00:00:00Z",
        "valid_until": "2026-06-01T00:00:00+02:00",
        "max_redemptions": 100,
        "max_per_account": 1,
        "plan_ids": [plan],
        "billing_periods": ["annual", "monthly", "annual"],
        "first_order_only": true
    });

    let created = app
        .post_with_key(
            "/admin/discount-codes",
            "spring-25-create",
            &body,
            Some(&billing),
        )
        .await;
    let replay = app
        .post_with_key(
            "/admin/discount-codes",
            "spring-25-create",
            &body,
            Some(&billing),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = id_of(&code("SPRING-25")).to_string();
    assert_eq!(
        created.headers["location"],
        format!("/api/v1/admin/discount-codes/{id}").as_str()
    );
    let view = &created.body;
    assert_eq!(view["id"], id);
    assert_eq!(view["code"], "SPRING-25");
    assert_eq!(view["percent_off"], "12.5");
    assert_eq!(view["amount_off"], Value::Null);
    assert_eq!(view["valid_from"], "2026-03-01T00:00:00Z");
    assert_eq!(view["valid_until"], "2026-05-31T22:00:00Z");
    assert_eq!(view["max_redemptions"], 100);
    assert_eq!(view["max_per_account"], 1);
    assert_eq!(view["plan_ids"], json!([plan]));
    assert_eq!(view["billing_periods"], json!(["monthly", "annual"]));
    assert_eq!(view["first_order_only"], true);
    assert_eq!(view["active"], true);
    assert_eq!(view["redemptions_in_use"], 0);
    assert_eq!(view["redemptions_left"], 100);
    assert!(replay.replayed());
    assert_eq!(replay.body, created.body);
    for path in [id.as_str(), "SPRING-25", "spring-25"] {
        let got = app
            .get(&format!("/admin/discount-codes/{path}"), Some(&billing))
            .await;
        assert_eq!(got.status, StatusCode::OK, "{path}: {}", got.body);
        assert_eq!(got.body, created.body, "{path}");
    }
    assert_eq!(discount_code_events(&app).await, 1);
}

#[tokio::test]
async fn an_amount_off_code_is_money_in_the_settlement_currency() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    let created = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "TENNER", "amount_off": {"amount": "10.00", "currency": "EUR"}}),
            Some(&admin),
        )
        .await;
    let in_dollars = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "DOLLARS", "amount_off": {"amount": "10.00", "currency": "USD"}}),
            Some(&admin),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["amount_off"],
        json!({"amount": "10.000000", "currency": "EUR"})
    );
    assert_eq!(created.body["percent_off"], Value::Null);
    assert_eq!(created.body["max_redemptions"], Value::Null);
    assert_eq!(created.body["plan_ids"], json!([]));
    in_dollars.assert_problem(422, "validation_failed");
    assert_eq!(in_dollars.error_fields(), vec!["amount_off.currency"]);
}

#[tokio::test]
async fn a_code_that_exists_in_any_case_is_a_409() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "WELCOME", "percent_off": "10"}),
            Some(&admin),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    let again = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "welcome", "percent_off": "50"}),
            Some(&admin),
        )
        .await;

    again.assert_problem(409, "code_taken");
    assert_eq!(discount_code_events(&app).await, 1);
    let kept = app.get("/admin/discount-codes/WELCOME", Some(&admin)).await;
    assert_eq!(kept.body["percent_off"], "10");
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_given_and_null_removes_a_limit() {
    let app = TestApp::spawn().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let created = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "PATCHED", "percent_off": "10", "max_redemptions": 5,
                    "valid_until": "2030-01-01T00:00:00Z", "billing_periods": ["monthly"]}),
            Some(&billing),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    let patched = app
        .call(
            Method::PATCH,
            &format!("/admin/discount-codes/{id}"),
            Some(&json!({"amount_off": "7.50", "max_redemptions": null, "active": false})),
            Some(&billing),
        )
        .await;

    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let view = &patched.body;
    assert_eq!(view["percent_off"], Value::Null);
    assert_eq!(
        view["amount_off"],
        json!({"amount": "7.500000", "currency": "EUR"})
    );
    assert_eq!(view["max_redemptions"], Value::Null);
    assert_eq!(view["redemptions_left"], Value::Null);
    assert_eq!(view["active"], false);
    assert_eq!(
        view["valid_until"], "2030-01-01T00:00:00Z",
        "left as it was"
    );
    assert_eq!(
        view["billing_periods"],
        json!(["monthly"]),
        "left as it was"
    );
    assert_eq!(view["created_at"], created.body["created_at"]);

    let unchanged = app
        .call(
            Method::PATCH,
            "/admin/discount-codes/patched",
            Some(&json!({"active": false})),
            Some(&billing),
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::OK, "{}", unchanged.body);
    assert_eq!(unchanged.body, patched.body);
    assert_eq!(
        discount_code_events(&app).await,
        2,
        "a change to nothing records nothing"
    );

    let reactivated = app
        .call(
            Method::PATCH,
            &format!("/admin/discount-codes/{id}"),
            Some(&json!({"active": true, "billing_periods": null})),
            Some(&billing),
        )
        .await;
    assert_eq!(reactivated.body["active"], true);
    assert_eq!(reactivated.body["billing_periods"], json!([]));
}

#[tokio::test]
async fn a_patch_of_an_unknown_code_is_a_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for path in [
        Uuid::now_v7().to_string(),
        "NOT-THERE".to_owned(),
        "x".to_owned(),
    ] {
        let reply = app
            .call(
                Method::PATCH,
                &format!("/admin/discount-codes/{path}"),
                Some(&json!({"active": false})),
                Some(&admin),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 404, "{path}: {}", reply.body);
        let got = app
            .get(&format!("/admin/discount-codes/{path}"), Some(&admin))
            .await;
        got.assert_problem(404, "not_found");
    }
    assert_eq!(discount_code_events(&app).await, 0);
}

#[tokio::test]
async fn lowering_max_redemptions_below_what_is_in_use_is_a_field_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let codes = service(&app);
    let busy = create(&codes, "BUSY", limited(Some(10), None)).await;
    for _ in 0..3 {
        codes
            .redeem(&busy, new_order(), &request(new_account()), &metadata())
            .await
            .unwrap();
    }

    let lowered = app
        .call(
            Method::PATCH,
            "/admin/discount-codes/BUSY",
            Some(&json!({"max_redemptions": 2})),
            Some(&admin),
        )
        .await;
    let to_in_use = app
        .call(
            Method::PATCH,
            "/admin/discount-codes/BUSY",
            Some(&json!({"max_redemptions": 3})),
            Some(&admin),
        )
        .await;

    lowered.assert_problem(422, "validation_failed");
    assert_eq!(lowered.body["errors"][0]["field"], "max_redemptions");
    assert_eq!(
        lowered.body["errors"][0]["code"],
        "max_redemptions_below_redeemed"
    );
    assert_eq!(to_in_use.status, StatusCode::OK, "{}", to_in_use.body);
    assert_eq!(to_in_use.body["redemptions_in_use"], 3);
    assert_eq!(to_in_use.body["redemptions_left"], 0);
}

#[tokio::test]
async fn bad_creations_are_422_field_errors_and_append_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let table: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["code", "percent_off"]),
        (json!({"percent_off": "10"}), vec!["code"]),
        (json!({"code": "AB", "percent_off": "10"}), vec!["code"]),
        (
            json!({"code": "NO SPACES", "percent_off": "10"}),
            vec!["code"],
        ),
        (json!({"code": 42, "percent_off": "10"}), vec!["code"]),
        (
            json!({"code": "X".repeat(33), "percent_off": "10"}),
            vec!["code"],
        ),
        (json!({"code": "NEITHER"}), vec!["percent_off"]),
        (
            json!({"code": "BOTH", "percent_off": "10", "amount_off": "5.00"}),
            vec!["percent_off"],
        ),
        (
            json!({"code": "ZERO", "percent_off": "0"}),
            vec!["percent_off"],
        ),
        (
            json!({"code": "TOO-MUCH", "percent_off": "100.01"}),
            vec!["percent_off"],
        ),
        (
            json!({"code": "NUMBER", "percent_off": 15}),
            vec!["percent_off"],
        ),
        (
            json!({"code": "FRACTION", "percent_off": "12.345"}),
            vec!["percent_off"],
        ),
        (
            json!({"code": "FREE", "amount_off": "0.00"}),
            vec!["amount_off"],
        ),
        (
            json!({"code": "NEGATIVE", "amount_off": "-5.00"}),
            vec!["amount_off"],
        ),
        (
            json!({"code": "MILLS", "amount_off": "5.001"}),
            vec!["amount_off"],
        ),
        (
            json!({"code": "FLOAT", "amount_off": 5.5}),
            vec!["amount_off"],
        ),
        (
            json!({"code": "YEN", "amount_off": {"amount": "500", "currency": "JPY"}}),
            vec!["amount_off.currency"],
        ),
        (
            json!({"code": "BACKWARDS", "percent_off": "10",
                   "valid_from": "2026-06-01T00:00:00Z", "valid_until": "2026-05-01T00:00:00Z"}),
            vec!["valid_until"],
        ),
        (
            json!({"code": "NOT-A-TIME", "percent_off": "10", "valid_from": "tomorrow",
                   "valid_until": 1_767_225_600}),
            vec!["valid_from", "valid_until"],
        ),
        (
            json!({"code": "LIMITS", "percent_off": "10", "max_redemptions": 0,
                   "max_per_account": -1}),
            vec!["max_redemptions", "max_per_account"],
        ),
        (
            json!({"code": "HUGE", "percent_off": "10", "max_redemptions": 4_294_967_296_u64,
                   "max_per_account": 1.5}),
            vec!["max_redemptions", "max_per_account"],
        ),
        (
            json!({"code": "PLANS", "percent_off": "10", "plan_ids": [Uuid::now_v7(), "plan-a", 7]}),
            vec!["plan_ids[1]", "plan_ids[2]"],
        ),
        (
            json!({"code": "PLAN", "percent_off": "10", "plan_ids": "all"}),
            vec!["plan_ids"],
        ),
        (
            json!({"code": "PERIODS", "percent_off": "10", "billing_periods": ["monthly", "weekly"]}),
            vec!["billing_periods[1]"],
        ),
        (
            json!({"code": "FLAGS", "percent_off": "10", "first_order_only": "yes", "active": 1}),
            vec!["first_order_only", "active"],
        ),
        (
            json!({"code": "TOO-MANY-PLANS", "percent_off": "10",
                   "plan_ids": (0..101).map(|_| Uuid::now_v7()).collect::<Vec<_>>()}),
            vec!["plan_ids"],
        ),
    ];

    for (body, mut expected) in table {
        let reply = app.post("/admin/discount-codes", &body, Some(&admin)).await;
        reply.assert_problem(422, "validation_failed");
        let mut fields = reply.error_fields();
        fields.sort();
        expected.sort();
        assert_eq!(fields, expected, "{body}: {}", reply.body);
    }
    let unknown_field = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "TYPO", "percent_of": "10"}),
            Some(&admin),
        )
        .await;
    unknown_field.assert_problem(422, "validation_failed");
    assert_eq!(discount_code_events(&app).await, 0, "no partial write");
}

#[tokio::test]
async fn bad_updates_are_422_field_errors_and_append_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "STEADY", "percent_off": "10", "valid_until": "2030-01-01T00:00:00Z"}),
            Some(&admin),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let table: Vec<(Value, Vec<&str>)> = vec![
        (json!({"code": "RENAMED"}), vec!["code"]),
        (json!({"percent_off": null}), vec!["percent_off"]),
        (json!({"amount_off": null}), vec!["percent_off"]),
        (
            json!({"percent_off": "5", "amount_off": "1.00"}),
            vec!["percent_off"],
        ),
        (json!({"percent_off": "0"}), vec!["percent_off"]),
        (
            json!({"valid_from": "2031-01-01T00:00:00Z"}),
            vec!["valid_until"],
        ),
        (json!({"max_per_account": 0}), vec!["max_per_account"]),
        (
            json!({"billing_periods": ["daily"]}),
            vec!["billing_periods[0]"],
        ),
        (json!({"active": "no"}), vec!["active"]),
    ];

    for (body, expected) in table {
        let reply = app
            .call(
                Method::PATCH,
                "/admin/discount-codes/STEADY",
                Some(&body),
                Some(&admin),
            )
            .await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.error_fields(), expected, "{body}: {}", reply.body);
    }
    assert_eq!(discount_code_events(&app).await, 1, "only the creation");
}

#[tokio::test]
async fn the_list_filters_by_active_and_code_prefix_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    let support = app.staff_token(vec![Role::Support]).await;
    let admin = app.admin_token().await;
    for (text, active) in [
        ("SUMMER-1", true),
        ("SUMMER-2", false),
        ("SUMMER_3", true),
        ("WINTER-1", true),
        ("SUMMERX", true),
    ] {
        let reply = app
            .post(
                "/admin/discount-codes",
                &json!({"code": text, "percent_off": "5", "active": active}),
                Some(&admin),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let codes_of = |body: &Value| -> Vec<String> {
        body["discount_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = app.get("/admin/discount-codes", Some(&support)).await;
    let summer = app
        .get("/admin/discount-codes?query=summer-", Some(&support))
        .await;
    let underscore = app
        .get("/admin/discount-codes?query=SUMMER_", Some(&support))
        .await;
    let inactive = app
        .get("/admin/discount-codes?active=false", Some(&support))
        .await;
    let active_summer = app
        .get(
            "/admin/discount-codes?active=true&query=Summer",
            Some(&support),
        )
        .await;

    assert_eq!(
        codes_of(&all.body),
        vec!["SUMMERX", "WINTER-1", "SUMMER_3", "SUMMER-2", "SUMMER-1"]
    );
    assert_eq!(codes_of(&summer.body), vec!["SUMMER-2", "SUMMER-1"]);
    assert_eq!(
        codes_of(&underscore.body),
        vec!["SUMMER_3"],
        "_ is not a wildcard"
    );
    assert_eq!(codes_of(&inactive.body), vec!["SUMMER-2"]);
    assert_eq!(
        codes_of(&active_summer.body),
        vec!["SUMMERX", "SUMMER_3", "SUMMER-1"]
    );
    assert_eq!(all.body["next_cursor"], Value::Null);

    let mut paged = Vec::new();
    let mut path = "/admin/discount-codes?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&support)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        paged.extend(codes_of(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/discount-codes?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, codes_of(&all.body));

    let bad_cursor = app
        .get("/admin/discount-codes?cursor=nonsense", Some(&support))
        .await;
    bad_cursor.assert_problem(422, "validation_failed");
    let bad_flag = app
        .get("/admin/discount-codes?active=maybe", Some(&support))
        .await;
    bad_flag.assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn rebuilding_the_discount_codes_projection_reproduces_the_live_read_model() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let codes = service(&app);
    let created = app
        .post(
            "/admin/discount-codes",
            &json!({"code": "REBUILD", "percent_off": "20", "max_redemptions": 3,
                    "plan_ids": [Uuid::now_v7()], "billing_periods": ["annual"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let patched = app
        .call(
            Method::PATCH,
            "/admin/discount-codes/REBUILD",
            Some(&json!({"plan_ids": [], "billing_periods": null, "valid_until": (Utc::now() + TimeDelta::days(30)).to_rfc3339()})),
            Some(&admin),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let rebuild = code("REBUILD");
    let orders: Vec<OrderId> = (0..3).map(|_| new_order()).collect();
    for order in &orders {
        codes
            .redeem(&rebuild, *order, &request(new_account()), &metadata())
            .await
            .unwrap();
    }
    codes
        .release(id_of(&rebuild), orders[1], &metadata())
        .await
        .unwrap();
    codes
        .redeem(&rebuild, orders[1], &request(new_account()), &metadata())
        .await
        .unwrap();
    create(&codes, "SECOND", DiscountTerms::new(percent("1"))).await;
    let live_view = projected(&app, &rebuild).await;
    let codes_sql = "SELECT * FROM discount_codes ORDER BY id";
    let redemptions_sql = "SELECT * FROM discount_redemptions ORDER BY code_id, order_id";
    let (live_codes, live_redemptions) =
        (app.rows(codes_sql).await, app.rows(redemptions_sql).await);

    let state = &app.running.as_ref().unwrap().state;
    state.feed.rebuild(DISCOUNT_CODES).await.unwrap();

    assert_eq!(app.rows(codes_sql).await, live_codes);
    assert_eq!(app.rows(redemptions_sql).await, live_redemptions);
    assert_eq!(live_codes.len(), 2);
    assert_eq!(
        live_redemptions.len(),
        3,
        "the re-redeemed order keeps one row"
    );
    assert_eq!(live_view["redemptions_in_use"], 3);
    assert_eq!(live_view["redemptions_released"], 1);
    assert_eq!(live_view["billing_periods"], json!([]));
    let periods: BTreeSet<String> = live_codes
        .iter()
        .map(|row| row["billing_periods"].to_string())
        .collect();
    assert_eq!(periods, BTreeSet::from(["[]".to_owned()]));
}
