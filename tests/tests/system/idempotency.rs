//! `Idempotency-Key` on `POST /auth/register` and `POST /me/kyc`: replays, refusals, scoping,
//! concurrency, expiry, abandoned claims, server errors and an unreachable table.

use std::time::Duration;

use serde_json::{json, Value};
use stratus_tests::{Reply, TestApp};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uuid::Uuid;

const REGISTER: &str = "/auth/register";
const KYC: &str = "/me/kyc";

fn registration(email: &str) -> Value {
    json!({"name": "Ada Lovelace", "email": email, "password": "analytical engine 1843"})
}

fn kyc() -> Value {
    json!({"national_id": "AB123456", "legal_name": "Ada Lovelace", "country": "GB"})
}

fn new_key() -> String {
    Uuid::now_v7().to_string()
}

async fn accounts_with_email(app: &TestApp, email: &str) -> usize {
    app.rows(&format!(
        "SELECT account_id FROM accounts WHERE email = '{email}'"
    ))
    .await
    .len()
}

async fn registrations(app: &TestApp) -> usize {
    app.rows("SELECT 1 FROM events WHERE event_type = 'AccountRegistered'")
        .await
        .len()
}

async fn kyc_submissions(app: &TestApp, account_id: &str) -> usize {
    app.rows(&format!(
        "SELECT 1 FROM events WHERE event_type = 'KycSubmitted' AND aggregate_id = '{account_id}'"
    ))
    .await
    .len()
}

async fn key_rows(app: &TestApp, key: &str) -> usize {
    app.rows(&format!(
        "SELECT 1 FROM idempotency_keys WHERE idempotency_key = '{key}'"
    ))
    .await
    .len()
}

async fn sql(app: &TestApp, statement: &str) {
    sqlx::raw_sql(statement)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Makes a key's row expired, as if its lifetime had passed.
async fn expire(app: &TestApp, key: &str) {
    sql(
        app,
        &format!("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE idempotency_key = '{key}'"),
    )
    .await;
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_registers_once() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let body = registration("ada@example.com");

    let first = app.post_with_key(REGISTER, &key, &body, None).await;
    let second = app.post_with_key(REGISTER, &key, &body, None).await;
    let without_key = app.post(REGISTER, &body, None).await;

    assert_eq!(first.status.as_u16(), 201, "{}", first.body);
    assert!(!first.replayed());
    assert_eq!(second.status, first.status);
    assert!(second.replayed(), "{:?}", second.headers);
    assert_eq!(second.body, first.body);
    assert_eq!(second.content_type(), first.content_type());
    assert_eq!(header(&second, "location"), header(&first, "location"));
    assert_ne!(
        header(&second, "x-request-id"),
        header(&first, "x-request-id"),
        "the replay is a request of its own"
    );
    without_key.assert_problem(409, "email_taken");
    assert_eq!(accounts_with_email(&app, "ada@example.com").await, 1);
    assert_eq!(registrations(&app).await, 2, "the admin and Ada");
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_refused_and_nothing_runs() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let first = app
        .post_with_key(REGISTER, &key, &registration("first@example.com"), None)
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.body);

    let reused = app
        .post_with_key(REGISTER, &key, &registration("second@example.com"), None)
        .await;

    reused.assert_problem(422, "idempotency_key_reused");
    assert!(!reused.replayed());
    assert_eq!(accounts_with_email(&app, "second@example.com").await, 0);
    let again = app
        .post_with_key(REGISTER, &key, &registration("first@example.com"), None)
        .await;
    assert!(again.replayed(), "the key still answers its own request");
}

#[tokio::test]
async fn a_malformed_key_is_a_400_and_nothing_runs() {
    let app = TestApp::spawn().await;
    let body = registration("malformed@example.com");
    let cases: Vec<(&str, reqwest::header::HeaderValue)> = vec![
        ("empty", reqwest::header::HeaderValue::from_static("")),
        (
            "256 characters",
            reqwest::header::HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        ),
        (
            "non-ASCII",
            reqwest::header::HeaderValue::from_bytes("clé-1".as_bytes()).unwrap(),
        ),
    ];

    for (case, value) in cases {
        let reply = app
            .send(
                app.client
                    .post(app.url(REGISTER))
                    .header("idempotency-key", value)
                    .json(&body),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{case}: {}", reply.body);
        reply.assert_problem(400, "invalid_idempotency_key");
    }
    let twice = app
        .send(
            app.client
                .post(app.url(REGISTER))
                .header("idempotency-key", "one")
                .header("idempotency-key", "two")
                .json(&body),
        )
        .await;
    twice.assert_problem(400, "invalid_idempotency_key");
    assert_eq!(accounts_with_email(&app, "malformed@example.com").await, 0);

    let longest = app
        .post_with_key(REGISTER, &"k".repeat(255), &body, None)
        .await;
    assert_eq!(longest.status.as_u16(), 201, "{}", longest.body);
}

#[tokio::test]
async fn one_key_used_by_two_callers_runs_once_for_each() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.customer().await, app.customer().await);
    let key = new_key();

    let alice_first = app
        .post_with_key(KYC, &key, &kyc(), Some(&alice.access_token))
        .await;
    let bob_first = app
        .post_with_key(KYC, &key, &kyc(), Some(&bob.access_token))
        .await;
    let alice_again = app
        .post_with_key(KYC, &key, &kyc(), Some(&alice.access_token))
        .await;
    let alice_without_key = app.post(KYC, &kyc(), Some(&alice.access_token)).await;

    assert_eq!(alice_first.status.as_u16(), 202, "{}", alice_first.body);
    assert!(!alice_first.replayed());
    assert_eq!(bob_first.status.as_u16(), 202, "{}", bob_first.body);
    assert!(
        !bob_first.replayed(),
        "Bob's request ran: it is not Alice's answer"
    );
    assert_eq!(alice_again.status.as_u16(), 202, "{}", alice_again.body);
    assert!(alice_again.replayed());
    alice_without_key.assert_problem(409, "kyc_already_pending");
    assert_eq!(kyc_submissions(&app, &alice.account_id).await, 1);
    assert_eq!(kyc_submissions(&app, &bob.account_id).await, 1);
}

#[tokio::test]
async fn one_key_on_two_routes_or_with_and_without_a_token_is_two_keys() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let key = new_key();
    let body = registration("scoped@example.com");

    let anonymous = app.post_with_key(REGISTER, &key, &body, None).await;
    let with_token = app
        .post_with_key(REGISTER, &key, &body, Some(&customer.access_token))
        .await;
    let other_route = app
        .post_with_key(KYC, &key, &kyc(), Some(&customer.access_token))
        .await;

    assert_eq!(anonymous.status.as_u16(), 201, "{}", anonymous.body);
    with_token.assert_problem(409, "email_taken");
    assert!(
        !with_token.replayed(),
        "a token holder's key is not the anonymous one"
    );
    assert_eq!(other_route.status.as_u16(), 202, "{}", other_route.body);
    assert!(!other_route.replayed());
}

#[tokio::test]
async fn simultaneous_requests_with_one_key_run_the_handler_once() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let body = registration("together@example.com");

    let replies =
        futures::future::join_all((0..20).map(|_| app.post_with_key(REGISTER, &key, &body, None)))
            .await;

    let ran: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 201 && !r.replayed())
        .collect();
    assert_eq!(ran.len(), 1, "exactly one request ran the handler");
    let first = ran[0];
    for reply in &replies {
        match reply.status.as_u16() {
            201 if reply.replayed() => assert_eq!(reply.body, first.body),
            201 => {}
            409 => {
                reply.assert_problem(409, "idempotency_key_in_progress");
                assert_eq!(header(reply, "retry-after"), Some("1"));
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!(accounts_with_email(&app, "together@example.com").await, 1);
    assert_eq!(registrations(&app).await, 2);
    let later = app.post_with_key(REGISTER, &key, &body, None).await;
    assert!(later.replayed());
    assert_eq!(later.body, first.body);
}

#[tokio::test]
async fn a_refusal_is_kept_and_replayed_too() {
    let app = TestApp::spawn().await;
    let taken = registration("taken@example.com");
    app.post(REGISTER, &taken, None).await;
    let (conflict_key, invalid_key) = (new_key(), new_key());
    let invalid = json!({"name": "X", "email": "not-an-email", "password": "long enough pass"});

    let conflict = app
        .post_with_key(REGISTER, &conflict_key, &taken, None)
        .await;
    let conflict_again = app
        .post_with_key(REGISTER, &conflict_key, &taken, None)
        .await;
    let refused = app
        .post_with_key(REGISTER, &invalid_key, &invalid, None)
        .await;
    let refused_again = app
        .post_with_key(REGISTER, &invalid_key, &invalid, None)
        .await;

    conflict.assert_problem(409, "email_taken");
    assert!(!conflict.replayed());
    conflict_again.assert_problem(409, "email_taken");
    assert!(conflict_again.replayed());
    assert_eq!(conflict_again.body, conflict.body);
    refused.assert_problem(422, "validation_failed");
    refused_again.assert_problem(422, "validation_failed");
    assert!(refused_again.replayed());
    assert_eq!(refused_again.error_fields(), vec!["email"]);
}

#[tokio::test]
async fn an_expired_key_runs_again_and_expired_rows_are_purged() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let body = registration("expired@example.com");
    let first = app.post_with_key(REGISTER, &key, &body, None).await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.body);
    expire(&app, &key).await;

    let after_expiry = app.post_with_key(REGISTER, &key, &body, None).await;

    after_expiry.assert_problem(409, "email_taken");
    assert!(
        !after_expiry.replayed(),
        "the expired answer is not replayed"
    );
    let stale = new_key();
    app.post_with_key(REGISTER, &stale, &registration("stale@example.com"), None)
        .await;
    expire(&app, &stale).await;
    assert_eq!(key_rows(&app, &stale).await, 1);
    app.post_with_key(
        REGISTER,
        &new_key(),
        &registration("fresh@example.com"),
        None,
    )
    .await;
    assert_eq!(
        key_rows(&app, &stale).await,
        0,
        "a new claim purges expired rows"
    );
}

#[tokio::test]
async fn a_claim_left_by_a_crashed_request_is_taken_over_after_the_lock_timeout() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let body = registration("crashed@example.com");
    let fingerprint = stratus_api::idempotency::fingerprint(
        "POST",
        "/api/v1/auth/register",
        &serde_json::to_vec(&body).unwrap(),
    );
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, method, path, idempotency_key, fingerprint, claim_id, expires_at) \
         VALUES ('anonymous', 'POST', '/api/v1/auth/register', $1, $2, $3, now() + interval '1 day')",
    )
    .bind(&key)
    .bind(&fingerprint[..])
    .bind(Uuid::now_v7())
    .execute(&app.pool)
    .await
    .unwrap();

    let while_locked = app.post_with_key(REGISTER, &key, &body, None).await;
    sql(
        &app,
        &format!("UPDATE idempotency_keys SET claimed_at = now() - interval '61 seconds' WHERE idempotency_key = '{key}'"),
    )
    .await;
    let other_body = app
        .post_with_key(REGISTER, &key, &registration("other@example.com"), None)
        .await;
    let after_timeout = app.post_with_key(REGISTER, &key, &body, None).await;

    while_locked.assert_problem(409, "idempotency_key_in_progress");
    assert_eq!(header(&while_locked, "retry-after"), Some("1"));
    other_body.assert_problem(422, "idempotency_key_reused");
    assert_eq!(after_timeout.status.as_u16(), 201, "{}", after_timeout.body);
    assert!(!after_timeout.replayed());
    assert!(app
        .post_with_key(REGISTER, &key, &body, None)
        .await
        .replayed());
    assert_eq!(accounts_with_email(&app, "crashed@example.com").await, 1);
}

#[tokio::test]
async fn a_server_error_gives_the_key_back_so_the_retry_runs() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let body = registration("retry@example.com");
    sql(
        &app,
        "CREATE FUNCTION refuse_appends() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$; \
         CREATE TRIGGER refuse_appends BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_appends();",
    )
    .await;

    let failed = app.post_with_key(REGISTER, &key, &body, None).await;
    let rows_after_failure = key_rows(&app, &key).await;
    sql(&app, "DROP TRIGGER refuse_appends ON events").await;
    let retried = app.post_with_key(REGISTER, &key, &body, None).await;

    failed.assert_problem(500, "internal_error");
    assert_eq!(rows_after_failure, 0, "a 5xx releases the claim");
    assert_eq!(retried.status.as_u16(), 201, "{}", retried.body);
    assert!(!retried.replayed());
    assert_eq!(accounts_with_email(&app, "retry@example.com").await, 1);
}

#[tokio::test]
async fn an_unreachable_key_table_is_a_503_and_nothing_runs() {
    let app = TestApp::spawn().await;
    let body = registration("unreachable@example.com");
    sql(
        &app,
        "ALTER TABLE idempotency_keys RENAME TO idempotency_keys_away",
    )
    .await;

    let unavailable = app.post_with_key(REGISTER, &new_key(), &body, None).await;
    let accounts_meanwhile = accounts_with_email(&app, "unreachable@example.com").await;
    sql(
        &app,
        "ALTER TABLE idempotency_keys_away RENAME TO idempotency_keys",
    )
    .await;
    let back = app.post_with_key(REGISTER, &new_key(), &body, None).await;

    unavailable.assert_problem(503, "idempotency_unavailable");
    assert_eq!(header(&unavailable, "retry-after"), Some("1"));
    assert_eq!(accounts_meanwhile, 0);
    assert_eq!(back.status.as_u16(), 201, "{}", back.body);
}

#[tokio::test]
async fn a_client_that_hangs_up_still_gets_its_answer_kept() {
    let app = TestApp::spawn().await;
    let address = app.root.trim_start_matches("http://").to_owned();
    let key = new_key();
    let body = registration("hangup@example.com").to_string();
    let request = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(&address).await.unwrap();
    // A reset rather than a polite close, so that the server drops the request at once (after a
    // close it would finish the request anyway). A zero linger never blocks the thread, which is
    // what the deprecation warns of.
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    // Hang up as soon as the key is claimed, while the password is being hashed.
    for _ in 0..2_000 {
        if key_rows(&app, &key).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(stream);

    let mut kept = false;
    for _ in 0..200 {
        let done = app
            .rows(&format!(
                "SELECT 1 FROM idempotency_keys WHERE idempotency_key = '{key}' AND completed_at IS NOT NULL"
            ))
            .await;
        if !done.is_empty() {
            kept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let retry = app
        .send(
            app.client
                .post(app.url(REGISTER))
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(body),
        )
        .await;

    assert!(kept, "the answer was kept although its client had gone");
    assert_eq!(retry.status.as_u16(), 201, "{}", retry.body);
    assert!(retry.replayed());
    assert_eq!(accounts_with_email(&app, "hangup@example.com").await, 1);
}

#[tokio::test]
async fn the_openapi_document_declares_the_optional_header() {
    let app = TestApp::spawn().await;

    let doc = app.get("/openapi.json", None).await;

    for path in ["/api/v1/auth/register", "/api/v1/me/kyc"] {
        let parameters = doc.body["paths"][path]["post"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let header = parameters
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path}: {parameters:?}"));
        assert_eq!(header["in"], "header");
        assert_eq!(header["required"], false);
    }
}
