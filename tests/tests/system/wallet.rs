//! Wallets end to end over HTTP: opening at registration, bank-transfer and Stripe top-ups (the
//! latter against localstripe and against webhooks these tests sign themselves), withdrawals,
//! credit limits, adjustments, bad amounts, and the debit path order payment will use under
//! concurrency; and the wallets projection fed the same log in batches of every shape.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::join_all;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use stratus_commands::aggregate_store::CommandError;
use stratus_commands::CommandMetadata;
use stratus_domain::wallet::{
    DebitReason, PaymentGateway, RefundReason, WalletCommand, WalletError,
};
use stratus_domain::{AccountId, Currency, LedgerReference, Money, PaymentId, Role, WithdrawalId};
use stratus_projections::ledger;
use stratus_projections::ledger::verify::{verify, VerifyOptions};
use stratus_projections::rebuild::ReplayedEvent;
use stratus_projections::wallets::{self, WalletsProjection};
use stratus_projections::{Feed, FeedPosition, StoredEvent, Subscriber};
use stratus_tests::localstripe::LocalStripe;
use stratus_tests::wallets::{minor, reference_of, Wallets};
use stratus_tests::{fresh_pool, with_stripe, TestApp, TEST_WEBHOOK_SECRET};
use uuid::Uuid;

fn eur(amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

async fn wallet(app: &TestApp, token: &str) -> Value {
    let reply = app.get("/wallet", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn balance(app: &TestApp, token: &str) -> String {
    wallet(app, token).await["balance"]["amount"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Starts a bank-transfer top-up and has billing confirm `received`.
async fn fund(app: &TestApp, token: &str, billing: &str, amount: &str) {
    let started = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": eur(amount), "gateway": "manual"}),
            Some(token),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let id = started.body["payment_id"].as_str().unwrap();
    let confirmed = app
        .post(
            &format!("/admin/payments/{id}/confirm"),
            &json!({"amount": eur(amount)}),
            Some(billing),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
}

#[tokio::test]
async fn a_registered_customer_has_an_empty_wallet_in_the_settlement_currency() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    let body = wallet(&app, &customer.access_token).await;

    assert_eq!(body["account_id"], customer.account_id.as_str());
    assert_eq!(body["currency"], "EUR");
    assert_eq!(
        body["balance"],
        json!({"amount": "0.000000", "currency": "EUR"})
    );
    assert_eq!(body["low_balance_threshold"]["amount"], "0.000000");
    let opened = app
        .rows(&format!(
            "SELECT event_type FROM events WHERE aggregate_type = 'wallet' AND aggregate_id = '{}'",
            customer.account_id
        ))
        .await;
    assert_eq!(opened.len(), 1, "exactly one WalletOpened: {opened:?}");
}

#[tokio::test]
async fn a_bank_transfer_is_pending_until_billing_confirms_the_amount_received() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let token = customer.access_token.as_str();

    let started = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": eur("25.00"), "gateway": "manual"}),
            Some(token),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.body["status"], "pending");
    let checkout = &started.body["checkout"];
    assert_eq!(checkout["type"], "bank_transfer");
    assert_eq!(checkout["iban"], stratus_tests::TEST_BANK_IBAN);
    let reference = checkout["reference"].as_str().unwrap().to_owned();
    assert!(reference.starts_with("STR-"), "{reference}");
    let payment_id = started.body["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(balance(&app, token).await, "0.000000");
    let pending = app.get("/wallet/transactions", Some(token)).await;
    assert_eq!(pending.body["transactions"][0]["status"], "pending");
    assert_eq!(pending.body["transactions"][0]["kind"], "top_up");

    // Billing finds the transfer by the reference on the bank statement.
    let found = app
        .get(
            &format!("/admin/payments?reference={}", reference.to_lowercase()),
            Some(&billing),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["transactions"][0]["id"], payment_id.as_str());
    // The customer cannot confirm their own transfer.
    app.post(
        &format!("/admin/payments/{payment_id}/confirm"),
        &json!({"amount": eur("25.00")}),
        Some(token),
    )
    .await
    .assert_problem(403, "forbidden");

    let confirm = |amount: &str| {
        let path = format!("/admin/payments/{payment_id}/confirm");
        let body = json!({"amount": eur(amount)});
        let (app, billing) = (&app, &billing);
        async move { app.post(&path, &body, Some(billing)).await }
    };
    let confirmed = confirm("24.50").await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "completed");
    assert_eq!(confirmed.body["amount"]["amount"], "24.500000");
    assert_eq!(confirmed.body["balance_after"]["amount"], "24.500000");
    // Confirming again changes nothing.
    assert_eq!(confirm("24.50").await.status, StatusCode::OK);
    assert_eq!(balance(&app, token).await, "24.500000");
    let lines = app
        .get("/wallet/transactions?status=completed", Some(token))
        .await;
    assert_eq!(lines.body["transactions"].as_array().unwrap().len(), 1);

    // A transfer that never arrives is failed by billing and credits nothing.
    let second = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": "10.00", "gateway": "manual"}),
            Some(token),
        )
        .await;
    let second_id = second.body["payment_id"].as_str().unwrap();
    let failed = app
        .post(
            &format!("/admin/payments/{second_id}/fail"),
            &json!({"reason": "nothing arrived within 30 days"}),
            Some(&billing),
        )
        .await;
    assert_eq!(failed.body["status"], "failed", "{}", failed.body);
    app.post(
        &format!("/admin/payments/{second_id}/confirm"),
        &json!({"amount": eur("10.00")}),
        Some(&billing),
    )
    .await
    .assert_problem(409, "payment_already_settled");
    assert_eq!(balance(&app, token).await, "24.500000");
}

#[tokio::test]
async fn bad_amounts_are_refused_with_a_field_error_and_record_nothing() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let cases: Vec<(Value, &str, &str)> = vec![
        (eur("10.001"), "amount", "too_many_decimals"),
        (eur("-5.00"), "amount", "amount_not_positive"),
        (eur("0"), "amount", "amount_not_positive"),
        (eur("0.00"), "amount", "amount_not_positive"),
        (eur("99999999999999999999"), "amount", "amount_overflow"),
        (eur("abc"), "amount", "invalid_amount"),
        (eur("1e3"), "amount", "invalid_amount"),
        (
            json!({"amount": "10.00", "currency": "USD"}),
            "amount.currency",
            "currency_mismatch",
        ),
        (
            json!({"amount": "10.00", "currency": "eur"}),
            "amount.currency",
            "invalid_currency",
        ),
        (
            json!({"amount": "10.00", "currency": "XYZ"}),
            "amount.currency",
            "unknown_currency",
        ),
        (json!(10.0), "amount", "invalid_amount"),
        (json!({"amount": 10}), "amount.amount", "invalid_amount"),
        (Value::Null, "amount", "required"),
        (eur("0.50"), "amount", "amount_below_minimum"),
        (eur("10000.01"), "amount", "amount_above_maximum"),
    ];
    for (amount, field, code) in cases {
        let reply = app
            .post(
                "/wallet/top-ups",
                &json!({"amount": amount, "gateway": "manual"}),
                Some(token),
            )
            .await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(
            reply.body["errors"][0]["field"], field,
            "{amount}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["errors"][0]["code"], code,
            "{amount}: {}",
            reply.body
        );
    }
    let withdrawal = app
        .post(
            "/wallet/withdrawals",
            &json!({"amount": eur("1.005"), "destination": ""}),
            Some(token),
        )
        .await;
    withdrawal.assert_problem(422, "validation_failed");
    assert_eq!(withdrawal.error_fields(), ["amount", "destination"]);
    let gateway = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": eur("10.00"), "gateway": "paypal"}),
            Some(token),
        )
        .await;
    assert_eq!(gateway.body["errors"][0]["code"], "invalid_gateway");
    // Stripe is not configured in this app.
    let stripe = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": eur("10.00"), "gateway": "stripe"}),
            Some(token),
        )
        .await;
    assert_eq!(stripe.body["errors"][0]["code"], "gateway_not_configured");
    let recorded = app
        .rows(
            "SELECT 1 FROM events WHERE aggregate_type = 'wallet' AND event_type <> 'WalletOpened'",
        )
        .await;
    assert!(recorded.is_empty(), "{recorded:?}");
}

#[tokio::test]
async fn a_withdrawal_is_reserved_then_approved_and_paid_out_or_rejected() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let token = customer.access_token.as_str();
    fund(&app, token, &billing, "100.00").await;

    let request = |amount: &str| {
        let body = json!({"amount": eur(amount), "destination": "IBAN DE02120300000000202051"});
        let app = &app;
        async move { app.post("/wallet/withdrawals", &body, Some(token)).await }
    };
    let first = request("60.00").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["status"], "pending");
    assert_eq!(first.body["stage"], "requested");
    let body = wallet(&app, token).await;
    assert_eq!(body["balance"]["amount"], "100.000000");
    assert_eq!(body["reserved"]["amount"], "60.000000");
    // Only the unreserved 40 can be asked for.
    request("40.01")
        .await
        .assert_problem(402, "insufficient_funds");
    let second = request("30.00").await;
    let first_id = first.body["id"].as_str().unwrap();
    let second_id = second.body["id"].as_str().unwrap();

    // Paying out before approval is refused; customers cannot approve.
    app.post(
        &format!("/admin/withdrawals/{first_id}/paid-out"),
        &json!({}),
        Some(&billing),
    )
    .await
    .assert_problem(409, "withdrawal_not_approved");
    app.post(
        &format!("/admin/withdrawals/{first_id}/approve"),
        &json!({}),
        Some(token),
    )
    .await
    .assert_problem(403, "forbidden");
    let listed = app
        .get("/admin/withdrawals?stage=requested", Some(&billing))
        .await;
    assert_eq!(listed.body["transactions"].as_array().unwrap().len(), 2);

    let approved = app
        .post(
            &format!("/admin/withdrawals/{first_id}/approve"),
            &json!({}),
            Some(&billing),
        )
        .await;
    assert_eq!(approved.body["stage"], "approved", "{}", approved.body);
    let paid = app
        .post(
            &format!("/admin/withdrawals/{first_id}/paid-out"),
            &json!({}),
            Some(&billing),
        )
        .await;
    assert_eq!(paid.body["status"], "completed", "{}", paid.body);
    assert_eq!(paid.body["balance_after"]["amount"], "40.000000");
    let rejected = app
        .post(
            &format!("/admin/withdrawals/{second_id}/reject"),
            &json!({"reason": "destination account name does not match"}),
            Some(&billing),
        )
        .await;
    assert_eq!(rejected.body["status"], "rejected", "{}", rejected.body);
    app.post(
        &format!("/admin/withdrawals/{second_id}/approve"),
        &json!({}),
        Some(&billing),
    )
    .await
    .assert_problem(409, "withdrawal_already_settled");

    let body = wallet(&app, token).await;
    assert_eq!(body["balance"]["amount"], "40.000000");
    assert_eq!(body["reserved"]["amount"], "0.000000");
}

#[tokio::test]
async fn billing_sets_a_credit_limit_and_books_idempotent_adjustments() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let support = app.staff_token(vec![Role::Support]).await;
    let token = customer.access_token.as_str();
    let id = customer.account_id.as_str();
    let adjust = |amount: &str, direction: &str, reference: &str| {
        let path = format!("/admin/wallets/{id}/adjustments");
        let body = json!({"amount": eur(amount), "direction": direction, "reference": reference});
        let (app, billing) = (&app, &billing);
        async move { app.post(&path, &body, Some(billing)).await }
    };

    adjust("5.00", "debit", "fee-1")
        .await
        .assert_problem(402, "insufficient_funds");
    let limit = app
        .send(
            app.client
                .put(app.url(&format!("/admin/wallets/{id}/credit-limit")))
                .bearer_auth(&billing)
                .json(&json!({"amount": eur("50.00")})),
        )
        .await;
    assert_eq!(limit.status, StatusCode::OK, "{}", limit.body);
    assert_eq!(limit.body["credit_limit"]["amount"], "50.000000");
    let charged = adjust("30.00", "debit", "fee-1").await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.body);
    assert_eq!(charged.body["balance_after"]["amount"], "-30.000000");
    // The same reference again: nothing moves; with another amount: refused.
    assert_eq!(
        adjust("30.00", "debit", "fee-1").await.status,
        StatusCode::OK
    );
    adjust("31.00", "debit", "fee-1")
        .await
        .assert_problem(409, "reference_reused");
    adjust("25.00", "debit", "fee-2")
        .await
        .assert_problem(402, "insufficient_funds");
    // The limit cannot drop below what is already used.
    let lowered = app
        .send(
            app.client
                .put(app.url(&format!("/admin/wallets/{id}/credit-limit")))
                .bearer_auth(&billing)
                .json(&json!({"amount": "10.00"})),
        )
        .await;
    lowered.assert_problem(422, "validation_failed");
    assert_eq!(
        lowered.body["errors"][0]["code"],
        "credit_limit_below_usage"
    );
    let credited = adjust("12.50", "credit", "goodwill-outage-2026-11").await;
    assert_eq!(credited.body["kind"], "refund", "{}", credited.body);
    assert_eq!(credited.body["reason"], "goodwill");
    assert_eq!(balance(&app, token).await, "-17.500000");

    // Support reads; support does not write.
    let seen = app
        .get(&format!("/admin/wallets/{id}"), Some(&support))
        .await;
    assert_eq!(seen.body["balance"]["amount"], "-17.500000");
    let listed = app
        .get("/admin/wallets?negative=true", Some(&support))
        .await;
    let ids: Vec<&str> = listed.body["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["account_id"].as_str())
        .collect();
    assert_eq!(ids, [id]);
    app.post(
        &format!("/admin/wallets/{id}/adjustments"),
        &json!({"amount": eur("1.00"), "direction": "credit", "reference": "x"}),
        Some(&support),
    )
    .await
    .assert_problem(403, "forbidden");
    let history = app
        .get(
            &format!("/admin/wallets/{id}/transactions?kind=debit"),
            Some(&support),
        )
        .await;
    assert_eq!(history.body["transactions"].as_array().unwrap().len(), 1);

    // An account that does not exist has no wallet to adjust, and is not given one.
    let unknown = Uuid::now_v7();
    for _ in 0..2 {
        app.post(
            &format!("/admin/wallets/{unknown}/adjustments"),
            &json!({"amount": eur("1.00"), "direction": "credit", "reference": "y"}),
            Some(&billing),
        )
        .await
        .assert_problem(404, "not_found");
    }
    let streams: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(unknown.to_string())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(streams, 0);
}

#[tokio::test]
async fn the_customer_sets_a_low_balance_threshold_and_the_wallet_says_when_it_is_below() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let set = |amount: Value| {
        app.send(
            app.client
                .put(app.url("/wallet/low-balance-threshold"))
                .bearer_auth(token)
                .json(&json!({"amount": amount})),
        )
    };

    let reply = set(eur("5.00")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["low_balance_threshold"]["amount"], "5.000000");
    assert_eq!(reply.body["below_threshold"], true);
    assert_eq!(set(eur("0")).await.body["below_threshold"], false);
    set(eur("-1"))
        .await
        .assert_problem(422, "validation_failed");
}

/// The debit path order payment will use: 200 parallel debits of 1.00 against a wallet holding
/// 73.00. Exactly 73 succeed, the rest are refused for funds, the balance never goes below zero.
#[tokio::test]
async fn two_hundred_parallel_debits_take_exactly_what_the_balance_covers() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    fund(&app, &customer.access_token, &billing, "73.00").await;
    let state = app.running.as_ref().unwrap().state.clone();
    let account_id = AccountId::from_uuid(Uuid::parse_str(&customer.account_id).unwrap());
    let one = Money::from_decimal_str("1.00", Currency::EUR).unwrap();

    let attempts = (0..200).map(|i| {
        let state = state.clone();
        tokio::spawn(async move {
            let reference = LedgerReference::parse(&format!("order:{i}")).unwrap();
            let metadata = CommandMetadata::system(Uuid::now_v7(), "test");
            state
                .wallets
                .debit(account_id, reference, one, DebitReason::Order, &metadata)
                .await
        })
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect();

    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(CommandError::Refused(WalletError::InsufficientFunds))
            )
        })
        .count();
    assert_eq!(succeeded, 73, "{:?}", results.iter().find(|r| r.is_err()));
    assert_eq!(refused, 127);
    let mut after: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|receipt| receipt.balance_after.micros())
        .collect();
    after.sort_unstable();
    let expected: Vec<i64> = (0..73).map(|n| n * 1_000_000).collect();
    assert_eq!(
        after, expected,
        "every balance from 72.00 down to 0.00 exactly once"
    );
    let head = state.feed.head().await.unwrap();
    state.feed.wake();
    let caught_up = state
        .feed
        .wait_for(&["wallets", "ledger"], head, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(caught_up, "the wallets and ledger projections caught up");
    assert_eq!(balance(&app, &customer.access_token).await, "0.000000");
    // The books still balance: every currency sums to zero, the wallet's postings are its
    // balance, and a fresh replay agrees with both read models.
    let totals = ledger::currency_totals(&app.pool).await.unwrap();
    assert!(totals.iter().all(|t| t.total_micros == 0), "{totals:?}");
    let wallet_total = ledger::wallet_total(&app.pool, account_id.as_uuid())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wallet_total.total_micros, 0);
    assert_eq!(wallet_total.postings, 74, "one top-up and 73 debits");
    let report = verify(&app.pool, &VerifyOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report}");

    // Replaying a debit answers its first result and moves nothing.
    let first = LedgerReference::parse("order:0").unwrap();
    let again = state
        .wallets
        .debit(
            account_id,
            first,
            one,
            DebitReason::Order,
            &CommandMetadata::system(Uuid::now_v7(), "test"),
        )
        .await;
    if let Ok(receipt) = again {
        assert!(receipt.replayed);
    } else {
        // order:0 may have been one of the refused ones: then it is simply refused again.
        assert!(matches!(
            again,
            Err(CommandError::Refused(WalletError::InsufficientFunds))
        ));
    }
    let debits = app
        .rows(&format!(
            "SELECT 1 FROM events WHERE aggregate_id = '{}' AND event_type = 'WalletDebited'",
            customer.account_id
        ))
        .await;
    assert_eq!(debits.len(), 73);
}

/// `Stripe-Signature` for `payload` at `timestamp`, as Stripe computes it.
fn stripe_signature(payload: &str, timestamp: i64, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn succeeded_event(event_id: &str, intent: &str, payment_id: &str, minor_units: i64) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": intent,
            "object": "payment_intent",
            "amount": minor_units,
            "currency": "eur",
            "status": "succeeded",
            "metadata": {"payment_id": payment_id}
        }}
    })
    .to_string()
}

async fn deliver(app: &TestApp, payload: &str, signature: Option<&str>) -> stratus_tests::Reply {
    let mut request = app
        .client
        .post(app.url("/payments/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    app.send(request).await
}

async fn stripe_app(stripe: &LocalStripe) -> TestApp {
    let url = stratus_tests::fresh_database_url().await;
    TestApp::spawn_with(&url, |settings| with_stripe(settings, stripe)).await
}

async fn start_card_top_up(app: &TestApp, token: &str, amount: &str) -> Value {
    let started = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": eur(amount), "gateway": "stripe"}),
            Some(token),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    started.body
}

#[tokio::test]
async fn a_card_top_up_through_localstripe_is_credited_by_its_signed_webhook() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    stripe
        .send_webhooks_to(&app.url("/payments/webhooks/stripe"), TEST_WEBHOOK_SECRET)
        .await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();

    let started = start_card_top_up(&app, token, "42.00").await;
    assert_eq!(started["checkout"]["type"], "stripe");
    let intent = started["checkout"]["payment_intent"].as_str().unwrap();
    let secret = started["checkout"]["client_secret"].as_str().unwrap();
    assert!(secret.starts_with(&format!("{intent}_secret_")), "{secret}");
    assert_eq!(balance(&app, token).await, "0.000000");

    let (status, body) = stripe
        .pay(
            &stratus_commands::payments::IntentId::parse(intent).unwrap(),
            "pm_card_visa",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let deadline = Instant::now() + Duration::from_secs(15);
    while balance(&app, token).await != "42.000000" {
        assert!(
            Instant::now() < deadline,
            "the webhook never credited the wallet"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = app
        .get(
            &format!(
                "/wallet/transactions/{}",
                started["payment_id"].as_str().unwrap()
            ),
            Some(token),
        )
        .await;
    assert_eq!(line.body["status"], "completed", "{}", line.body);
    assert_eq!(line.body["gateway"], "stripe");
    assert_eq!(line.body["reference"], intent);
}

#[tokio::test]
async fn a_hundred_concurrent_deliveries_of_one_webhook_credit_once() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let started = start_card_top_up(&app, token, "15.00").await;
    let intent = started["checkout"]["payment_intent"].as_str().unwrap();
    let payload = succeeded_event(
        "evt_concurrent_1",
        intent,
        started["payment_id"].as_str().unwrap(),
        1500,
    );
    let signature = stripe_signature(&payload, Utc::now().timestamp(), TEST_WEBHOOK_SECRET);

    let replies = join_all((0..100).map(|_| deliver(&app, &payload, Some(&signature)))).await;

    let mut outcomes: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["outcome"].as_str().unwrap().to_owned()
        })
        .collect();
    outcomes.sort();
    outcomes.dedup_by(|a, b| a == b);
    assert_eq!(outcomes, ["already_applied", "credited"]);
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.body["outcome"] == "credited")
            .count(),
        1
    );
    assert_eq!(balance(&app, token).await, "15.000000");
    let completed = app
        .rows("SELECT 1 FROM events WHERE event_type = 'TopUpCompleted'")
        .await;
    assert_eq!(completed.len(), 1);
}

#[tokio::test]
async fn unsigned_tampered_stale_and_foreign_webhooks_are_refused_and_credit_nothing() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    let customer = app.customer().await;
    let token = customer.access_token.as_str();
    let started = start_card_top_up(&app, token, "20.00").await;
    let intent = started["checkout"]["payment_intent"].as_str().unwrap();
    let payment_id = started["payment_id"].as_str().unwrap();
    let payload = succeeded_event("evt_attack", intent, payment_id, 2000);
    let now = Utc::now().timestamp();

    deliver(&app, &payload, None)
        .await
        .assert_problem(400, "missing_signature");
    deliver(&app, &payload, Some("t=abc,v1=zz"))
        .await
        .assert_problem(400, "malformed_signature");
    let signed = stripe_signature(&payload, now, TEST_WEBHOOK_SECRET);
    let tampered = payload.replace("2000", "200000");
    deliver(&app, &tampered, Some(&signed))
        .await
        .assert_problem(400, "signature_mismatch");
    let foreign = stripe_signature(&payload, now, "whsec_someone_else");
    deliver(&app, &payload, Some(&foreign))
        .await
        .assert_problem(400, "signature_mismatch");
    let stale = stripe_signature(&payload, now - 3600, TEST_WEBHOOK_SECRET);
    deliver(&app, &payload, Some(&stale))
        .await
        .assert_problem(400, "timestamp_out_of_tolerance");
    // An authentic event with another amount than the top-up's is refused too.
    let short = succeeded_event("evt_short", intent, payment_id, 1999);
    let short_signed = stripe_signature(&short, now, TEST_WEBHOOK_SECRET);
    deliver(&app, &short, Some(&short_signed))
        .await
        .assert_problem(422, "validation_failed");
    // No webhooks for the manual gateway or unknown ones.
    let manual = app
        .send(
            app.client
                .post(app.url("/payments/webhooks/manual"))
                .header("Stripe-Signature", signed.clone())
                .body(payload.clone()),
        )
        .await;
    manual.assert_problem(404, "not_found");
    assert_eq!(balance(&app, token).await, "0.000000");

    // A replay of an authentic, in-time delivery after the fact credits once only.
    assert_eq!(
        deliver(&app, &payload, Some(&signed)).await.body["outcome"],
        "credited"
    );
    assert_eq!(
        deliver(&app, &payload, Some(&signed)).await.body["outcome"],
        "already_applied"
    );
    assert_eq!(balance(&app, token).await, "20.000000");
}

#[tokio::test]
async fn rebuilding_the_wallets_projection_reproduces_the_live_read_model() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let token = customer.access_token.as_str();
    let id = customer.account_id.as_str();
    fund(&app, token, &billing, "80.00").await;
    let pending = app
        .post(
            "/wallet/top-ups",
            &json!({"amount": eur("5.00"), "gateway": "manual"}),
            Some(token),
        )
        .await;
    assert_eq!(pending.status, StatusCode::CREATED);
    let withdrawal = app
        .post(
            "/wallet/withdrawals",
            &json!({"amount": eur("20.00"), "destination": "DE02120300000000202051"}),
            Some(token),
        )
        .await;
    let withdrawal_id = withdrawal.body["id"].as_str().unwrap();
    for step in ["approve", "paid-out"] {
        let reply = app
            .post(
                &format!("/admin/withdrawals/{withdrawal_id}/{step}"),
                &json!({}),
                Some(&billing),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let adjusted = app
        .post(
            &format!("/admin/wallets/{id}/adjustments"),
            &json!({"amount": eur("3.25"), "direction": "debit", "reference": "late-fee-1"}),
            Some(&billing),
        )
        .await;
    assert_eq!(adjusted.status, StatusCode::OK, "{}", adjusted.body);
    let wallets_sql = "SELECT * FROM wallets ORDER BY account_id";
    let lines_sql = "SELECT * FROM wallet_transactions ORDER BY id";
    let (live_wallets, live_lines) = (app.rows(wallets_sql).await, app.rows(lines_sql).await);

    let state = &app.running.as_ref().unwrap().state;
    state.feed.rebuild("wallets").await.unwrap();

    assert_eq!(app.rows(wallets_sql).await, live_wallets);
    assert_eq!(app.rows(lines_sql).await, live_lines);
    assert_eq!(live_lines.len(), 4, "two top-ups, a withdrawal, a debit");
    assert_eq!(balance(&app, token).await, "56.750000");
}

#[tokio::test]
async fn a_retried_top_up_or_withdrawal_with_its_idempotency_key_happens_once() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let billing = app.staff_token(vec![Role::Billing]).await;
    let token = customer.access_token.as_str();
    let top_up = json!({"amount": eur("30.00"), "gateway": "manual"});

    let first = app
        .post_with_key("/wallet/top-ups", "top-up-7f3a", &top_up, Some(token))
        .await;
    let again = app
        .post_with_key("/wallet/top-ups", "top-up-7f3a", &top_up, Some(token))
        .await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!first.replayed());
    assert!(again.replayed());
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["payment_id"], first.body["payment_id"]);
    assert_eq!(
        again.body["checkout"]["reference"],
        first.body["checkout"]["reference"]
    );
    let other = json!({"amount": eur("31.00"), "gateway": "manual"});
    app.post_with_key("/wallet/top-ups", "top-up-7f3a", &other, Some(token))
        .await
        .assert_problem(422, "idempotency_key_reused");
    let payment_id = first.body["payment_id"].as_str().unwrap();
    let confirm = json!({"amount": eur("30.00")});
    let path = format!("/admin/payments/{payment_id}/confirm");
    for _ in 0..2 {
        let reply = app
            .post_with_key(&path, "confirm-statement-line-88", &confirm, Some(&billing))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    let withdrawal = json!({"amount": eur("12.00"), "destination": "DE02120300000000202051"});
    let replies = join_all((0..5).map(|_| {
        app.post_with_key(
            "/wallet/withdrawals",
            "payout-2026-11",
            &withdrawal,
            Some(token),
        )
    }))
    .await;
    let created: Vec<&Value> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| &r.body["id"])
        .collect();
    assert!(!created.is_empty());
    assert!(created.iter().all(|id| *id == created[0]), "{created:?}");
    assert!(replies.iter().all(
        |r| r.status == StatusCode::CREATED || r.body["code"] == "idempotency_key_in_progress"
    ));

    let counted = |event_type: &'static str| {
        let sql = format!("SELECT 1 FROM events WHERE event_type = '{event_type}'");
        let app = &app;
        async move { app.rows(&sql).await.len() }
    };
    assert_eq!(counted("TopUpInitiated").await, 1);
    assert_eq!(counted("TopUpCompleted").await, 1);
    assert_eq!(counted("WithdrawalRequested").await, 1);
    let body = wallet(&app, token).await;
    assert_eq!(body["balance"]["amount"], "30.000000");
    assert_eq!(body["reserved"]["amount"], "12.000000");
}

/// The rows of both wallet tables as text, sorted, read on `conn`.
async fn wallet_tables(conn: &mut sqlx::PgConnection) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["wallets", "wallet_transactions"] {
        let sql = format!("SELECT '{table} ' || to_jsonb(t)::text FROM {table} t ORDER BY 1");
        let found: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        rows.extend(found);
    }
    rows
}

/// Rebuilds the wallets projection from `batches` (each one call of `apply`, all in one
/// transaction, like a rebuild) and returns the rows it leaves; rolls back.
async fn replay(pool: &sqlx::PgPool, batches: &[&[StoredEvent]]) -> Vec<String> {
    let mut tx = pool.begin().await.unwrap();
    WalletsProjection.reset(&mut tx).await.unwrap();
    for batch in batches {
        WalletsProjection.apply(&mut tx, batch).await.unwrap();
    }
    let rows = wallet_tables(&mut tx).await;
    tx.rollback().await.unwrap();
    rows
}

/// Rebuilds the wallets projection with its rebuilder (as `stratus projections rebuild` does,
/// into the emptied tables here instead of fresh ones) from `batches`, and returns the rows it
/// leaves; rolls back.
async fn rebuilt(pool: &sqlx::PgPool, batches: &[&[StoredEvent]]) -> Vec<String> {
    let mut tx = pool.begin().await.unwrap();
    WalletsProjection.reset(&mut tx).await.unwrap();
    let mut rebuild = WalletsProjection
        .rebuilder()
        .expect("the wallets have a rebuilder");
    for batch in batches {
        let replayed: Vec<ReplayedEvent> = batch
            .iter()
            .map(|event| ReplayedEvent {
                payload: event.payload.to_string(),
                event: StoredEvent {
                    payload: Value::Null,
                    metadata: Value::Null,
                    ..event.clone()
                },
            })
            .collect();
        rebuild.apply(&mut tx, &replayed).await.unwrap();
    }
    rebuild.finish(&mut tx).await.unwrap();
    let rows = wallet_tables(&mut tx).await;
    tx.rollback().await.unwrap();
    rows
}

#[tokio::test]
async fn the_wallets_projection_leaves_the_same_rows_whatever_batches_the_log_arrives_in() {
    let pool = fresh_pool().await;
    let store = Wallets::new(pool.clone());
    let cents = |n| minor(n, Currency::EUR);
    let (a, b) = (
        store.open(Currency::EUR).await,
        store.open(Currency::EUR).await,
    );
    let (card, declined, transfer) = (
        PaymentId::from_uuid(Uuid::now_v7()),
        PaymentId::from_uuid(Uuid::now_v7()),
        PaymentId::from_uuid(Uuid::now_v7()),
    );
    let (paid, refused) = (
        WithdrawalId::from_uuid(Uuid::now_v7()),
        WithdrawalId::from_uuid(Uuid::now_v7()),
    );
    let staff = AccountId::from_uuid(Uuid::now_v7());
    let now = Utc::now();
    let top_up = |payment_id, amount, gateway| WalletCommand::InitiateTopUp {
        payment_id,
        amount,
        gateway,
        gateway_reference: Some(format!("STR-{payment_id}")),
        occurred_at: now,
    };
    let complete = |payment_id, amount_received| WalletCommand::CompleteTopUp {
        payment_id,
        amount_received,
        occurred_at: now,
    };
    let withdraw = |withdrawal_id, amount| WalletCommand::RequestWithdrawal {
        withdrawal_id,
        amount,
        destination: "DE02120300000000202051".to_owned(),
        occurred_at: now,
    };
    // Every wallet event kind, the two wallets interleaved, lines settled by later events.
    let commands = [
        (a, top_up(transfer, cents(10_000), PaymentGateway::Manual)),
        (b, top_up(card, cents(5_000), PaymentGateway::Stripe)),
        (a, complete(transfer, cents(9_500))),
        (a, top_up(declined, cents(1_000), PaymentGateway::Stripe)),
        (
            a,
            WalletCommand::FailTopUp {
                payment_id: declined,
                reason: "card_declined".to_owned(),
                occurred_at: now,
            },
        ),
        (b, complete(card, cents(5_000))),
        (
            a,
            WalletCommand::Debit {
                reference: reference_of("order:1"),
                amount: cents(3_000),
                reason: DebitReason::Order,
                occurred_at: now,
            },
        ),
        (
            a,
            WalletCommand::Refund {
                reference: reference_of("refund:order:1"),
                refunds_debit: Some(reference_of("order:1")),
                amount: cents(500),
                reason: RefundReason::Order,
                occurred_at: now,
            },
        ),
        (a, withdraw(paid, cents(2_000))),
        (b, withdraw(refused, cents(1_000))),
        (
            a,
            WalletCommand::ApproveWithdrawal {
                withdrawal_id: paid,
                approved_by: staff,
                occurred_at: now,
            },
        ),
        (
            b,
            WalletCommand::RejectWithdrawal {
                withdrawal_id: refused,
                reason: "the name does not match".to_owned(),
                rejected_by: staff,
                occurred_at: now,
            },
        ),
        (
            a,
            WalletCommand::MarkWithdrawalPaidOut {
                withdrawal_id: paid,
                occurred_at: now,
            },
        ),
        (
            a,
            WalletCommand::SetLowBalanceThreshold {
                amount: cents(1_000),
                occurred_at: now,
            },
        ),
        (
            a,
            WalletCommand::SetCreditLimit {
                amount: cents(2_500),
                occurred_at: now,
            },
        ),
        (
            b,
            WalletCommand::Debit {
                reference: reference_of("vm_hour:1"),
                amount: Money::from_micros(13_889, Currency::EUR),
                reason: DebitReason::VmHour,
                occurred_at: now,
            },
        ),
    ];
    for (account, command) in commands {
        store.accept(account, command).await;
    }
    // Other tests share the cluster; their transactions can hold the fence back for a moment.
    let mut log = Vec::new();
    for _ in 0..200 {
        log = stratus_projections::audit::global_log(&pool, FeedPosition::START, None, 100)
            .await
            .unwrap();
        if log.len() == 18 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(log.len(), 18, "two openings and sixteen commands");

    // The live path when commands arrive one at a time: one event per batch.
    let one_by_one: Vec<&[StoredEvent]> = log.chunks(1).collect();
    let expected = replay(&pool, &one_by_one).await;

    assert_eq!(expected.len(), 2 + 8, "two wallets, eight lines");
    assert_eq!(replay(&pool, &[&log]).await, expected, "one batch");
    for split in 1..log.len() {
        let (first, second) = log.split_at(split);
        assert_eq!(
            replay(&pool, &[first, second]).await,
            expected,
            "two batches split before event {split}"
        );
    }
    assert_eq!(
        rebuilt(&pool, &one_by_one).await,
        expected,
        "rebuilt one event per batch"
    );
    for split in 1..log.len() {
        let (first, second) = log.split_at(split);
        assert_eq!(
            rebuilt(&pool, &[first, second]).await,
            expected,
            "rebuilt from two batches split before event {split}"
        );
    }
    // Events on lines settled in an earlier batch, which the rebuild has written out already (a
    // valid log holds none): the rebuild takes those lines back and leaves what the live
    // projection leaves, the first debit's line kept and the rejection's reason replaced.
    let again = |event_type: &str, n: i64| {
        let mut event = log
            .iter()
            .find(|e| e.event_type == event_type)
            .unwrap()
            .clone();
        event.sequence += 100 + n;
        event.position.global_position += 1_000 + n;
        event
    };
    let mut rejected_again = again("WithdrawalRejected", 1);
    rejected_again.payload["WithdrawalRejected"]["reason"] = json!("rejected again");
    let late = vec![again("WalletDebited", 0), rejected_again];
    let mut with_late = log.clone();
    with_late.extend(late.iter().cloned());
    let live_with_late = replay(&pool, &with_late.chunks(1).collect::<Vec<_>>()).await;
    assert_ne!(live_with_late, expected);
    assert_eq!(
        rebuilt(&pool, &[&log, &late]).await,
        live_with_late,
        "lines taken back"
    );

    let feed = Feed::new(pool.clone(), vec![Arc::new(WalletsProjection)]);
    assert_eq!(feed.rebuild(wallets::NAME).await.unwrap(), 18);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(wallet_tables(&mut conn).await, expected);
    let first = wallets::get_wallet(&pool, a.as_uuid())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.balance, cents(5_000), "95 - 30 + 5 - 20");
    assert_eq!(first.reserved, cents(0));
    assert_eq!(first.credit_limit, cents(2_500));
    assert_eq!(first.low_balance_threshold, cents(1_000));
    assert_eq!(first.version, 12);
    let second = wallets::get_wallet(&pool, b.as_uuid())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second.balance,
        Money::from_micros(49_986_111, Currency::EUR)
    );
    assert_eq!((second.reserved, second.version), (cents(0), 6));
    let line = |id: Uuid| {
        let pool = &pool;
        async move { wallets::get_transaction(pool, id).await.unwrap().unwrap() }
    };
    let transfer_line = line(transfer.as_uuid()).await;
    assert_eq!(
        (transfer_line.status.as_str(), transfer_line.amount),
        ("completed", cents(9_500))
    );
    let declined_line = line(declined.as_uuid()).await;
    assert_eq!(
        declined_line.failure_reason.as_deref(),
        Some("card_declined")
    );
    let paid_line = line(paid.as_uuid()).await;
    assert_eq!(
        (paid_line.stage.as_deref(), paid_line.decided_by),
        (Some("paid_out"), Some(staff.as_uuid()))
    );
    let refused_line = line(refused.as_uuid()).await;
    assert_eq!(
        (refused_line.status.as_str(), refused_line.stage.as_deref()),
        ("rejected", Some("rejected"))
    );
}
