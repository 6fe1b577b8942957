//! Bad input gets a 4xx problem+json with a stable code — never a 500, never a partial write.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use stratus_tests::{TestApp, TEST_JWT_SECRET};

async fn account_count(app: &TestApp) -> usize {
    app.rows("SELECT account_id FROM accounts").await.len()
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = TestApp::spawn().await;
    let reply = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "application/json")
                .body("{\"name\": \"x\", "),
        )
        .await;
    reply.assert_problem(400, "malformed_json");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = TestApp::spawn().await;
    let reply = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "text/plain")
                .body("name=x"),
        )
        .await;
    reply.assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn an_oversize_body_is_a_413_whether_or_not_it_declares_its_length() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(200 * 1024));
    let declared = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "application/json")
                .body(huge.clone()),
        )
        .await;
    declared.assert_problem(413, "payload_too_large");

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .into_bytes()
        .chunks(8 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let streamed = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
        )
        .await;
    streamed.assert_problem(413, "payload_too_large");
    assert_eq!(account_count(&app).await, 1, "only the admin exists");
}

#[tokio::test]
async fn missing_fields_are_listed_each_with_its_own_error() {
    let app = TestApp::spawn().await;
    let reply = app.post("/auth/register", &json!({}), None).await;
    reply.assert_problem(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, vec!["email", "name", "password"]);
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_named() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/auth/register",
            &json!({"name": "X", "email": 42, "password": "long enough pass"}),
            None,
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.error_fields(), vec!["email"]);
}

#[tokio::test]
async fn bad_emails_weak_passwords_and_bad_phones_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"name": "X", "email": "not-an-email", "password": "long enough pass"}),
            "email",
            "invalid_email",
        ),
        (
            json!({"name": "X", "email": "a@b", "password": "long enough pass"}),
            "email",
            "invalid_email",
        ),
        (
            json!({"name": "X", "email": "ok@example.com", "password": "short"}),
            "password",
            "password_too_short",
        ),
        (
            json!({"name": "X", "email": "ok@example.com", "password": "password123"}),
            "password",
            "password_too_common",
        ),
        (
            json!({"name": "X", "email": "okname@example.com", "password": "my okname password"}),
            "password",
            "password_contains_email",
        ),
        (
            json!({"name": "X", "email": "ok@example.com", "password": "aaaaaaaaaaaa"}),
            "password",
            "password_repetitive",
        ),
        (
            json!({"name": "", "email": "ok@example.com", "password": "long enough pass"}),
            "name",
            "invalid_name",
        ),
        (
            json!({"name": "X", "email": "ok@example.com", "password": "long enough pass", "phone": "12345"}),
            "phone",
            "invalid_phone",
        ),
    ];
    for (body, field, code) in cases {
        let reply = app.post("/auth/register", &body, None).await;
        reply.assert_problem(422, "validation_failed");
        let errors = reply.body["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{body} → {}",
            reply.body
        );
    }
    assert_eq!(account_count(&app).await, 1, "only the admin exists");
    assert_eq!(app.rows("SELECT value FROM unique_claims").await.len(), 1);
}

#[tokio::test]
async fn login_without_credentials_or_with_both_email_and_phone_is_a_422() {
    let app = TestApp::spawn().await;
    let none = app
        .post("/auth/login", &json!({"password": "whatever pass"}), None)
        .await;
    none.assert_problem(422, "validation_failed");
    let both = app
        .post(
            "/auth/login",
            &json!({"email": "a@example.com", "phone": "+4915123456789", "password": "x"}),
            None,
        )
        .await;
    both.assert_problem(422, "validation_failed");
}

fn forge(claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn claims_for(account_id: &str, exp: i64) -> serde_json::Value {
    json!({"sub": account_id, "sid": uuid::Uuid::now_v7(), "roles": ["admin"], "exp": exp,
           "iat": exp - 900, "iss": "stratus", "aud": "stratus-api"})
}

#[tokio::test]
async fn missing_tampered_expired_foreign_and_unsigned_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let now = chrono::Utc::now().timestamp();

    let missing = app.get("/me", None).await;
    missing.assert_problem(401, "missing_token");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");

    let mut tampered = customer.access_token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    app.get("/me", Some(&tampered))
        .await
        .assert_problem(401, "invalid_token");

    // A payload swapped in (admin roles) under the original signature.
    let parts: Vec<&str> = customer.access_token.split('.').collect();
    let elevated = URL_SAFE_NO_PAD.encode(claims_for(&customer.account_id, now + 600).to_string());
    let swapped = format!("{}.{}.{}", parts[0], elevated, parts[2]);
    app.get("/me", Some(&swapped))
        .await
        .assert_problem(401, "invalid_token");

    let expired = forge(
        &claims_for(&customer.account_id, now - 3_600),
        TEST_JWT_SECRET.as_bytes(),
    );
    app.get("/me", Some(&expired))
        .await
        .assert_problem(401, "token_expired");

    let foreign = forge(
        &claims_for(&customer.account_id, now + 600),
        b"another-key-another-key-another-key-00",
    );
    app.get("/me", Some(&foreign))
        .await
        .assert_problem(401, "invalid_token");

    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{elevated}.");
    app.get("/me", Some(&unsigned))
        .await
        .assert_problem(401, "invalid_token");
    app.get("/audit/events", Some(&unsigned))
        .await
        .assert_problem(401, "invalid_token");

    let garbage = app
        .send(
            app.client
                .get(app.url("/me"))
                .header("authorization", "Basic abc"),
        )
        .await;
    garbage.assert_problem(401, "invalid_token");
}

#[tokio::test]
async fn garbage_refresh_tokens_are_a_401_not_a_500() {
    let app = TestApp::spawn().await;
    for token in [
        "",
        "x",
        "a.b",
        &"z".repeat(5_000),
        "00000000000000000000000000000000.abc",
    ] {
        let reply = app
            .post("/auth/refresh", &json!({"refresh_token": token}), None)
            .await;
        reply.assert_problem(401, "invalid_refresh_token");
    }
    let missing = app.post("/auth/refresh", &json!({}), None).await;
    missing.assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn unknown_routes_and_bad_query_strings_are_problems_too() {
    let app = TestApp::spawn().await;
    app.get("/does-not-exist", None)
        .await
        .assert_problem(404, "route_not_found");
    let admin = app.admin_token().await;
    app.get("/audit/events?limit=abc", Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.get("/audit/events?limit=100000", Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.get("/audit/events?after=nonsense", Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
}
