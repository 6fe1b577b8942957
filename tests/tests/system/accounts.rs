//! The accounts slice end to end over HTTP: register, login, refresh, logout, `/me`.

use futures::future::join_all;
use serde_json::json;
use stratus_tests::TestApp;

#[tokio::test]
async fn a_newcomer_registers_logs_in_and_sees_their_account() {
    let app = TestApp::spawn().await;
    let account_id = app
        .register("Ada Lovelace", "Ada@Example.com", "analytical engine 1843")
        .await;
    let tokens = app.login("ada@example.com", "analytical engine 1843").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);

    let me = app.get("/me", tokens["access_token"].as_str()).await;

    assert_eq!(me.status.as_u16(), 200, "{}", me.body);
    assert_eq!(me.body["account_id"], account_id.as_str());
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(me.body["name"], "Ada Lovelace");
    assert_eq!(me.body["roles"], json!(["customer"]));
    assert_eq!(me.body["email_verified"], false);
    assert_eq!(me.body["mfa_enabled"], false);
    assert_eq!(me.body["kyc_status"], "not_submitted");
}

#[tokio::test]
async fn a_second_registration_with_the_same_email_is_refused() {
    let app = TestApp::spawn().await;
    app.register("First", "same@example.com", "first password 123")
        .await;

    let again = app
        .post(
            "/auth/register",
            &json!({"name": "Second", "email": "SAME@example.com", "password": "second password 456"}),
            None,
        )
        .await;

    again.assert_problem(409, "email_taken");
}

#[tokio::test]
async fn simultaneous_registrations_of_one_email_produce_exactly_one_account() {
    let app = TestApp::spawn().await;
    let app = &app;
    let attempts = (0..12).map(|i| async move {
        let body = json!({"name": format!("Racer {i}"), "email": "race@example.com", "password": "racing password 99"});
        app.post("/auth/register", &body, None).await
    });

    let replies = join_all(attempts).await;

    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    let taken = replies.iter().filter(|r| r.status.as_u16() == 409).count();
    assert_eq!((created, taken), (1, 11));
    let accounts = app
        .rows("SELECT * FROM accounts WHERE email = 'race@example.com'")
        .await;
    assert_eq!(accounts.len(), 1);
    let claims = app
        .rows("SELECT * FROM unique_claims WHERE value = 'race@example.com'")
        .await;
    assert_eq!(claims.len(), 1);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    let wrong = app
        .post(
            "/auth/login",
            &json!({"email": customer.email, "password": "not the password"}),
            None,
        )
        .await;
    let unknown = app
        .post(
            "/auth/login",
            &json!({"email": "nobody@example.com", "password": "not the password"}),
            None,
        )
        .await;

    wrong.assert_problem(401, "invalid_credentials");
    unknown.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn refreshing_rotates_the_token_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    let first = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": customer.refresh_token}),
            None,
        )
        .await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.body);
    let rotated = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, customer.refresh_token);
    let me = app.get("/me", first.body["access_token"].as_str()).await;
    assert_eq!(me.status.as_u16(), 200);

    let second = app
        .post("/auth/refresh", &json!({"refresh_token": rotated}), None)
        .await;
    assert_eq!(second.status.as_u16(), 200, "{}", second.body);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let rotated = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": customer.refresh_token}),
            None,
        )
        .await;
    let live_token = rotated.body["refresh_token"].as_str().unwrap().to_owned();

    let replay = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": customer.refresh_token}),
            None,
        )
        .await;

    replay.assert_problem(401, "refresh_token_reused");
    let after = app
        .post("/auth/refresh", &json!({"refresh_token": live_token}), None)
        .await;
    after.assert_problem(401, "session_ended");
    let sessions = app
        .rows(&format!(
            "SELECT status, end_reason FROM account_sessions WHERE account_id = '{}'",
            customer.account_id
        ))
        .await;
    assert_eq!(sessions[0]["status"], "revoked");
    assert_eq!(sessions[0]["end_reason"], "refresh_token_reused");
}

#[tokio::test]
async fn a_forged_refresh_token_for_a_real_session_is_refused_without_revoking_it() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let (session, _) = customer.refresh_token.split_once('.').unwrap();

    let forged = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": format!("{session}.forgedsecret")}),
            None,
        )
        .await;

    forged.assert_problem(401, "invalid_refresh_token");
    let still_good = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": customer.refresh_token}),
            None,
        )
        .await;
    assert_eq!(still_good.status.as_u16(), 200);
}

#[tokio::test]
async fn after_logout_the_refresh_token_is_dead_and_logging_out_again_is_harmless() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    let logout = app
        .post("/auth/logout", &json!({}), Some(&customer.access_token))
        .await;

    assert_eq!(logout.status.as_u16(), 204);
    let refresh = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": customer.refresh_token}),
            None,
        )
        .await;
    refresh.assert_problem(401, "session_ended");
    let again = app
        .post("/auth/logout", &json!({}), Some(&customer.access_token))
        .await;
    assert_eq!(again.status.as_u16(), 204);
}

#[tokio::test]
async fn parallel_logins_to_one_account_all_succeed_because_conflicts_are_retried() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    let body = json!({"email": customer.email, "password": customer.password});
    let logins = (0..10).map(|_| app.post("/auth/login", &body, None));
    let replies = join_all(logins).await;

    assert!(
        replies.iter().all(|r| r.status.as_u16() == 200),
        "{replies:?}"
    );
    let sessions = app
        .rows(&format!(
            "SELECT session_id FROM account_sessions WHERE account_id = '{}'",
            customer.account_id
        ))
        .await;
    assert_eq!(sessions.len(), 11);
}

#[tokio::test]
async fn a_command_answers_only_after_its_read_model_has_caught_up() {
    let app = TestApp::spawn().await;

    let reply = app
        .post(
            "/auth/register",
            &json!({"name": "Quick", "email": "quick@example.com", "password": "read your writes 1"}),
            None,
        )
        .await;

    assert_eq!(reply.headers["stratus-consistency"], "caught-up");
    let rows = app
        .rows("SELECT email FROM accounts WHERE email = 'quick@example.com'")
        .await;
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn login_by_phone_needs_the_phone_to_be_verified_first() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/auth/register",
            &json!({"name": "Phoney", "email": "phone@example.com", "password": "dial tone secret", "phone": "+49 151 2345 6789"}),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201);

    let login = app
        .post(
            "/auth/login",
            &json!({"phone": "+4915123456789", "password": "dial tone secret"}),
            None,
        )
        .await;

    login.assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn two_processes_on_one_database_serve_the_same_accounts() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(&first.database_url).await;

    first
        .register("Shared", "shared@example.com", "one log two servers")
        .await;
    let tokens = second
        .login("shared@example.com", "one log two servers")
        .await;
    let refreshed = first
        .post(
            "/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
            None,
        )
        .await;

    assert_eq!(refreshed.status.as_u16(), 200, "{}", refreshed.body);
    let me = second
        .get("/me", refreshed.body["access_token"].as_str())
        .await;
    assert_eq!(me.body["email"], "shared@example.com");
}
