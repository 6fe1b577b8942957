//! Identity flows through real message delivery: the app's outbox sends over SMTP to the test
//! mail server and over HTTP to the test SMS provider, and each test reads the code or link out of
//! the delivered message to finish the flow.

use reqwest::Method;
use serde_json::json;
use stratus_tests::{message_wait, TestApp};

fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .unwrap_or_else(|| panic!("no token in {link}"))
        .to_owned()
}

#[tokio::test]
async fn a_newcomer_follows_the_emailed_link_and_the_email_is_verified() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;

    let email = app
        .mail
        .wait_for_email(&customer.email, message_wait())
        .await;

    let link = email.link().expect("a link in the text body");
    assert!(
        link.starts_with(&app.url("/auth/email/verify?token=")),
        "{link}"
    );
    assert!(
        email.html.as_deref().unwrap_or_default().contains("token="),
        "the HTML body has the link too"
    );
    let followed = app.client.get(&link).send().await.unwrap();
    assert_eq!(followed.status().as_u16(), 200);
    let me = app.get("/me", Some(&customer.access_token)).await;
    assert_eq!(me.body["email_verified"], true);
}

#[tokio::test]
async fn a_phone_is_verified_by_texted_code_and_then_logs_in_with_a_texted_one_time_code() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let token = Some(customer.access_token.as_str());
    app.call(
        Method::PATCH,
        "/me",
        Some(&json!({"phone": "+49 151 2345 6789"})),
        token,
    )
    .await;
    app.post("/auth/phone/send-code", &json!({}), token).await;
    let texted = app.sms.wait_for_sms("+4915123456789", message_wait()).await;
    let code = texted.code(6).expect("a six-digit code");
    let verified = app
        .post("/auth/phone/verify", &json!({"code": code}), token)
        .await;
    assert_eq!(verified.status.as_u16(), 204, "{}", verified.body);

    let request = json!({"phone": "+4915123456789", "channel": "sms"});
    assert_eq!(
        app.post("/auth/otp/request", &request, None)
            .await
            .status
            .as_u16(),
        202
    );
    let login_text = app
        .sms
        .wait_for_sms_containing("+4915123456789", "login", message_wait())
        .await;
    let login_code = login_text.code(6).expect("a login code");
    let verify = json!({"phone": "+4915123456789", "code": login_code});
    let tokens = app.post("/auth/otp/verify", &verify, None).await;

    assert_eq!(tokens.status.as_u16(), 200, "{}", tokens.body);
    assert!(tokens.body["refresh_token"].is_string());
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_emailed_link_and_a_notice_follows() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    app.mail
        .wait_for_email(&customer.email, message_wait())
        .await;
    app.post(
        "/auth/password/forgot",
        &json!({"email": customer.email}),
        None,
    )
    .await;
    app.post(
        "/auth/password/forgot",
        &json!({"email": "nobody-here@example.com"}),
        None,
    )
    .await;

    let reset_mail = app
        .mail
        .wait_for_email_with_subject(&customer.email, "password", message_wait())
        .await;
    let link = reset_mail.link().expect("a reset link");
    let reset = json!({"token": token_of(&link), "new_password": "reset by email 2026"});
    let done = app.post("/auth/password/reset", &reset, None).await;

    assert_eq!(done.status.as_u16(), 204, "{}", done.body);
    app.login(&customer.email, "reset by email 2026").await;
    app.mail.wait_for_count(3, message_wait()).await;
    assert!(
        app.mail.emails_to("nobody-here@example.com").is_empty(),
        "no mail for an address without an account"
    );
}

#[tokio::test]
async fn a_login_code_by_email_arrives_and_logs_in() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    app.post(
        "/auth/otp/request",
        &json!({"email": customer.email, "channel": "email"}),
        None,
    )
    .await;

    let mail = app
        .mail
        .wait_for_email_with_subject(&customer.email, "code", message_wait())
        .await;
    let code = mail.code(6).expect("a login code");
    let tokens = app
        .post(
            "/auth/otp/verify",
            &json!({"email": customer.email, "code": code}),
            None,
        )
        .await;

    assert_eq!(tokens.status.as_u16(), 200, "{}", tokens.body);
}

#[tokio::test]
async fn the_message_log_holds_no_code_and_a_replayed_reactor_sends_nothing_twice() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    app.post(
        "/auth/otp/request",
        &json!({"email": customer.email, "channel": "email"}),
        None,
    )
    .await;
    let mail = app
        .mail
        .wait_for_email_with_subject(&customer.email, "code", message_wait())
        .await;
    let code = mail.code(6).unwrap();
    let log = app
        .rows("SELECT payload::text AS payload FROM events")
        .await;
    assert!(
        log.iter().all(|row| !row["payload"]
            .as_str()
            .unwrap()
            .contains(&format!("\"{code}\""))),
        "the code must not be in the event log"
    );

    let state = &app.running.as_ref().unwrap().state;
    let before = app.rows("SELECT id FROM outbox").await.len();
    state.feed.rebuild("account-messages").await.unwrap();
    let after = app.rows("SELECT id FROM outbox").await.len();

    assert_eq!(before, after, "a rebuild enqueues nothing new");
}
