//! The audit routes: the global log in commit order and single streams, for auditors and admins.

use serde_json::Value;
use stratus_tests::TestApp;

#[tokio::test]
async fn an_admin_reads_a_customers_events_with_their_metadata() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let admin = app.admin_token().await;

    let stream = app
        .get(
            &format!("/audit/streams/account/{}/events", customer.account_id),
            Some(&admin),
        )
        .await;

    assert_eq!(stream.status.as_u16(), 200, "{}", stream.body);
    let events = stream.body["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "AccountRegistered",
            "EmailVerificationIssued",
            "SessionStarted"
        ]
    );
    let registered = &events[0];
    assert_eq!(
        registered["payload"]["AccountRegistered"]["password_hash"],
        "[redacted]"
    );
    let meta = &registered["metadata"];
    assert_eq!(meta["actor"], customer.account_id.as_str());
    assert_eq!(meta["client_ip"], "127.0.0.1");
    for key in ["request_id", "command_id", "correlation_id", "causation_id"] {
        assert!(meta[key].is_string(), "{key} missing in {meta}");
    }
    let started = &events[2];
    assert_eq!(
        started["payload"]["SessionStarted"]["refresh_token_hash"],
        "[redacted]"
    );
}

#[tokio::test]
async fn the_global_log_pages_in_commit_order_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.customer().await;
    }
    let admin = app.admin_token().await;

    let mut seen: Vec<Value> = Vec::new();
    let mut after = String::new();
    loop {
        let page = app
            .get(
                &format!("/audit/events?limit=2&after={after}"),
                Some(&admin),
            )
            .await;
        assert_eq!(page.status.as_u16(), 200, "{}", page.body);
        seen.extend(page.body["events"].as_array().unwrap().iter().cloned());
        match page.body["next_after"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }

    let total = app.rows("SELECT global_position FROM events").await.len();
    assert_eq!(seen.len(), total);
    let positions: Vec<i64> = seen
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(unique.len(), positions.len());
    let filtered = app
        .get("/audit/events?aggregate_type=nothing", Some(&admin))
        .await;
    assert_eq!(filtered.body["events"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn customers_may_not_read_the_audit_log() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    app.get("/audit/events", Some(&customer.access_token))
        .await
        .assert_problem(403, "forbidden");
    app.get(
        &format!("/audit/streams/account/{}/events", customer.account_id),
        Some(&customer.access_token),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn an_unknown_stream_is_a_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.get("/audit/streams/account/nobody/events", Some(&admin))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn auditors_read_the_log_but_support_staff_do_not() {
    let app = TestApp::spawn().await;
    let auditor = app.staff_token(vec![stratus_domain::Role::Auditor]).await;
    let support = app.staff_token(vec![stratus_domain::Role::Support]).await;

    let allowed = app.get("/audit/events", Some(&auditor)).await;
    let refused = app.get("/audit/events", Some(&support)).await;

    assert_eq!(allowed.status.as_u16(), 200, "{}", allowed.body);
    assert!(!allowed.body["events"].as_array().unwrap().is_empty());
    refused.assert_problem(403, "forbidden");
}
