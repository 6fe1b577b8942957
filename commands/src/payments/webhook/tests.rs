#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;
use stratus_domain::{Currency, Money};

use super::*;
use crate::payments::IntentStatus;

const SECRET: &str = "whsec_current_secret";
const OLD_SECRET: &str = "whsec_previous_secret";
const SIGNED_AT: i64 = 1_700_000_000;
const PAYMENT_ID: &str = "0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70";

fn verifier(secrets: &[&str]) -> WebhookVerifier {
    WebhookVerifier::new(secrets.iter().map(|s| Secret::new(*s)).collect()).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

/// The hex HMAC-SHA256 of `"{t}.{payload}"`, computed here independently of the verifier.
fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

fn header(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, payload))
}

fn intent_event(event_type: &str, status: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_1NG8Du2eZvKYlo2C","object":"event","type":"{event_type}","created":{SIGNED_AT},
        "data":{{"object":{{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2500,
        "currency":"eur","status":"{status}","client_secret":"pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_x",
        "metadata":{{"payment_id":"{PAYMENT_ID}","customer_reference":"someone"}}{extra}}}}}}}"#
    )
    .into_bytes()
}

fn succeeded() -> Vec<u8> {
    intent_event(PAYMENT_INTENT_SUCCEEDED, "succeeded", "")
}

fn verify(
    verifier: &WebhookVerifier,
    header: &str,
    payload: &[u8],
    now: i64,
) -> Result<WebhookEvent, WebhookError> {
    verifier.verify(Some(header.as_bytes()), payload, at(now))
}

#[test]
fn a_known_answer_signature_computed_elsewhere_is_accepted() {
    // Computed with Python's hmac module: HMAC-SHA256("whsec_known_answer", "1700000000." + body).
    let payload = br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{}}}"#;
    let header = "t=1700000000,v1=8c0f688670784c037aacfe171d8b2acb27ea8e928f873ea5aee161a64c53b1d9";

    let event = verify(
        &verifier(&["whsec_known_answer"]),
        header,
        payload,
        SIGNED_AT,
    )
    .unwrap();

    assert_eq!(event.id.as_str(), "evt_1");
    assert_eq!(event.event_type, "charge.succeeded");
    assert_eq!(event.kind, WebhookEventKind::Other);
}

#[test]
fn a_delivery_signed_with_the_secret_is_accepted_and_its_payment_read() {
    let payload = succeeded();

    let event = verify(
        &verifier(&[SECRET]),
        &header(SECRET, SIGNED_AT, &payload),
        &payload,
        SIGNED_AT + 2,
    )
    .unwrap();

    assert_eq!(event.id.as_str(), "evt_1NG8Du2eZvKYlo2C");
    assert_eq!(event.event_type, "payment_intent.succeeded");
    let WebhookEventKind::PaymentSucceeded(intent) = event.kind else {
        panic!("not a success: {:?}", event.kind);
    };
    assert_eq!(intent.id.as_str(), "pi_3MtwBwLkdIwHu7ix28a3tqPa");
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(
        intent.amount,
        Money::from_minor_units(2500, Currency::EUR).unwrap()
    );
    assert_eq!(intent.payment_id, Some(PAYMENT_ID.parse().unwrap()));
    assert_eq!(
        intent.checkout, None,
        "a webhook's client secret is dropped"
    );
}

#[test]
fn during_a_rotation_deliveries_signed_with_the_old_or_the_new_secret_are_both_accepted() {
    let verifier = verifier(&[SECRET, OLD_SECRET]);
    let payload = succeeded();

    for secret in [SECRET, OLD_SECRET] {
        let result = verify(
            &verifier,
            &header(secret, SIGNED_AT, &payload),
            &payload,
            SIGNED_AT,
        );

        assert!(result.is_ok(), "{secret}: {result:?}");
    }
}

#[test]
fn a_header_with_several_v1_signatures_is_accepted_when_one_of_them_matches() {
    let payload = succeeded();
    let header = format!(
        "t={SIGNED_AT},v1={},v1={},v1={}",
        sign("whsec_unknown", SIGNED_AT, &payload),
        sign(SECRET, SIGNED_AT, &payload),
        sign(OLD_SECRET, SIGNED_AT, &payload),
    );

    let result = verify(&verifier(&[SECRET]), &header, &payload, SIGNED_AT);

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn unknown_schemes_beside_v1_are_ignored() {
    let payload = succeeded();
    let header = format!(
        "t={SIGNED_AT},v0={},v1={},v2=whatever",
        sign("whsec_test_mode", SIGNED_AT, &payload),
        sign(SECRET, SIGNED_AT, &payload),
    );

    let result = verify(&verifier(&[SECRET]), &header, &payload, SIGNED_AT);

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_tampered_body_is_refused_as_a_signature_mismatch() {
    let payload = succeeded();
    let header = header(SECRET, SIGNED_AT, &payload);
    let tampered = String::from_utf8(payload)
        .unwrap()
        .replace("\"amount\":2500", "\"amount\":250000")
        .into_bytes();

    let result = verify(&verifier(&[SECRET]), &header, &tampered, SIGNED_AT);

    assert_eq!(result, Err(WebhookError::SignatureMismatch));
}

#[test]
fn a_body_that_differs_only_in_whitespace_is_refused_because_the_raw_bytes_are_signed() {
    let payload = br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{}}}"#;
    let reformatted = br#"{"id": "evt_1", "type": "charge.succeeded", "data": {"object": {}}}"#;

    let result = verify(
        &verifier(&[SECRET]),
        &header(SECRET, SIGNED_AT, payload),
        reformatted,
        SIGNED_AT,
    );

    assert_eq!(result, Err(WebhookError::SignatureMismatch));
}

#[test]
fn a_tampered_signature_is_refused_as_a_signature_mismatch() {
    let payload = succeeded();
    let mut signature = sign(SECRET, SIGNED_AT, &payload).into_bytes();
    signature[10] = if signature[10] == b'0' { b'1' } else { b'0' };
    let header = format!("t={SIGNED_AT},v1={}", String::from_utf8(signature).unwrap());

    let result = verify(&verifier(&[SECRET]), &header, &payload, SIGNED_AT);

    assert_eq!(result, Err(WebhookError::SignatureMismatch));
}

#[test]
fn a_tampered_timestamp_is_refused_as_a_signature_mismatch() {
    let payload = succeeded();
    let signature = sign(SECRET, SIGNED_AT, &payload);
    let header = format!("t={},v1={signature}", SIGNED_AT + 60);

    let result = verify(&verifier(&[SECRET]), &header, &payload, SIGNED_AT + 60);

    assert_eq!(result, Err(WebhookError::SignatureMismatch));
}

#[test]
fn a_delivery_signed_with_a_secret_we_do_not_hold_is_refused() {
    let payload = succeeded();

    let result = verify(
        &verifier(&[SECRET, OLD_SECRET]),
        &header("whsec_someone_else", SIGNED_AT, &payload),
        &payload,
        SIGNED_AT,
    );

    assert_eq!(result, Err(WebhookError::SignatureMismatch));
}

#[test]
fn an_authentic_delivery_older_than_the_tolerance_is_refused_as_stale() {
    let payload = succeeded();
    let header = header(SECRET, SIGNED_AT, &payload);
    let tolerance = i64::try_from(DEFAULT_TOLERANCE_SECONDS).unwrap();
    let verifier = verifier(&[SECRET]);

    let at_the_limit = verify(&verifier, &header, &payload, SIGNED_AT + tolerance);
    let past_the_limit = verify(&verifier, &header, &payload, SIGNED_AT + tolerance + 1);

    assert!(at_the_limit.is_ok(), "{at_the_limit:?}");
    assert_eq!(past_the_limit, Err(WebhookError::TimestampOutOfTolerance));
}

#[test]
fn an_authentic_delivery_from_beyond_the_tolerance_in_the_future_is_refused() {
    let payload = succeeded();
    let header = header(SECRET, SIGNED_AT, &payload);
    let tolerance = i64::try_from(DEFAULT_TOLERANCE_SECONDS).unwrap();
    let verifier = verifier(&[SECRET]);

    let at_the_limit = verify(&verifier, &header, &payload, SIGNED_AT - tolerance);
    let past_the_limit = verify(&verifier, &header, &payload, SIGNED_AT - tolerance - 1);

    assert!(at_the_limit.is_ok(), "{at_the_limit:?}");
    assert_eq!(past_the_limit, Err(WebhookError::TimestampOutOfTolerance));
}

#[test]
fn a_stale_delivery_with_a_wrong_signature_is_reported_as_a_mismatch_not_as_stale() {
    let payload = succeeded();

    let result = verify(
        &verifier(&[SECRET]),
        &header("whsec_someone_else", SIGNED_AT, &payload),
        &payload,
        SIGNED_AT + 86_400,
    );

    assert_eq!(result, Err(WebhookError::SignatureMismatch));
}

#[test]
fn a_configured_tolerance_replaces_the_default() {
    let payload = succeeded();
    let header = header(SECRET, SIGNED_AT, &payload);
    let verifier = verifier(&[SECRET]).with_tolerance_seconds(10);

    assert_eq!(verifier.tolerance_seconds(), 10);
    assert!(verify(&verifier, &header, &payload, SIGNED_AT + 10).is_ok());
    assert_eq!(
        verify(&verifier, &header, &payload, SIGNED_AT + 11),
        Err(WebhookError::TimestampOutOfTolerance)
    );
}

#[test]
fn a_replayed_delivery_verifies_again_within_the_tolerance_with_the_same_event_id() {
    // Replay protection inside the window is the caller's: it deduplicates by event id.
    let payload = succeeded();
    let header = header(SECRET, SIGNED_AT, &payload);
    let verifier = verifier(&[SECRET]);

    let first = verify(&verifier, &header, &payload, SIGNED_AT + 1).unwrap();
    let replayed = verify(&verifier, &header, &payload, SIGNED_AT + 200).unwrap();

    assert_eq!(first.id, replayed.id);
}

#[test]
fn a_delivery_without_a_signature_header_is_refused() {
    let payload = succeeded();

    let result = verifier(&[SECRET]).verify(None, &payload, at(SIGNED_AT));

    assert_eq!(result, Err(WebhookError::MissingSignature));
}

#[test]
fn malformed_signature_headers_are_refused_before_any_signature_is_checked() {
    let payload = succeeded();
    let good = sign(SECRET, SIGNED_AT, &payload);
    let too_many = format!("t={SIGNED_AT},v1={good}{}", ",v0=00".repeat(16));
    let cases = [
        String::new(),
        "garbage".to_owned(),
        format!("v1={good}"),
        format!("t={SIGNED_AT}"),
        format!("t={SIGNED_AT},v0={good}"),
        format!("t=abc,v1={good}"),
        format!("t=-{SIGNED_AT},v1={good}"),
        format!("t=+{SIGNED_AT},v1={good}"),
        format!("t=99999999999999999999,v1={good}"),
        format!("t={SIGNED_AT},t={SIGNED_AT},v1={good}"),
        format!("t={SIGNED_AT},v1={}", &good[..63]),
        format!("t={SIGNED_AT},v1={good}00"),
        format!("t={SIGNED_AT},v1={}zz", &good[..62]),
        format!("t={SIGNED_AT},v1={good},oops"),
        too_many,
    ];
    let verifier = verifier(&[SECRET]);

    for case in &cases {
        let result = verify(&verifier, case, &payload, SIGNED_AT);

        assert_eq!(result, Err(WebhookError::MalformedSignature), "{case:?}");
    }
    let not_utf8 = verifier.verify(Some(&[b't', b'=', 0xff]), &payload, at(SIGNED_AT));
    assert_eq!(not_utf8, Err(WebhookError::MalformedSignature));
}

#[test]
fn spaces_around_header_entries_are_tolerated() {
    let payload = succeeded();
    let header = format!("t={SIGNED_AT}, v1={}", sign(SECRET, SIGNED_AT, &payload));

    assert!(verify(&verifier(&[SECRET]), &header, &payload, SIGNED_AT).is_ok());
}

#[test]
fn a_failed_payment_event_carries_the_intent_and_the_reason() {
    let payload = intent_event(
        PAYMENT_INTENT_PAYMENT_FAILED,
        "requires_payment_method",
        r#","last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}"#,
    );

    let event = verify(
        &verifier(&[SECRET]),
        &header(SECRET, SIGNED_AT, &payload),
        &payload,
        SIGNED_AT,
    )
    .unwrap();

    let WebhookEventKind::PaymentFailed { intent, error } = event.kind else {
        panic!("not a failure: {:?}", event.kind);
    };
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(intent.payment_id, Some(PAYMENT_ID.parse().unwrap()));
    let error = error.unwrap();
    assert_eq!(error.code.as_deref(), Some("card_declined"));
    assert_eq!(error.decline_code.as_deref(), Some("insufficient_funds"));
}

#[test]
fn a_canceled_intent_event_is_read() {
    let payload = intent_event(PAYMENT_INTENT_CANCELED, "canceled", "");

    let event = verify(
        &verifier(&[SECRET]),
        &header(SECRET, SIGNED_AT, &payload),
        &payload,
        SIGNED_AT,
    )
    .unwrap();

    let WebhookEventKind::PaymentCanceled(intent) = event.kind else {
        panic!("not a cancellation: {:?}", event.kind);
    };
    assert_eq!(intent.status, IntentStatus::Canceled);
}

#[test]
fn an_event_of_another_type_is_accepted_as_other() {
    let payload = br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"id":"ch_1","amount":"not read"}}}"#;

    let event = verify(
        &verifier(&[SECRET]),
        &header(SECRET, SIGNED_AT, payload),
        payload,
        SIGNED_AT,
    )
    .unwrap();

    assert_eq!(event.event_type, "charge.refunded");
    assert_eq!(event.kind, WebhookEventKind::Other);
}

#[test]
fn an_authentic_payload_that_is_not_a_readable_event_is_refused_as_malformed() {
    let cases: [&[u8]; 5] = [
        b"not json",
        br#"{"type":"payment_intent.succeeded","data":{"object":{}}}"#,
        br#"{"id":"","type":"charge.refunded","data":{"object":{}}}"#,
        br#"{"id":"evt_3","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded","currency":"eur"}}}"#,
        br#"{"id":"evt_4","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded","amount":100,"currency":"xxx"}}}"#,
    ];
    let verifier = verifier(&[SECRET]);

    for payload in cases {
        let result = verify(
            &verifier,
            &header(SECRET, SIGNED_AT, payload),
            payload,
            SIGNED_AT,
        );

        assert!(
            matches!(result, Err(WebhookError::MalformedPayload { .. })),
            "{}: {result:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn a_verifier_needs_at_least_one_non_empty_secret() {
    assert_eq!(WebhookVerifier::new(vec![]).unwrap_err(), NoSigningSecret);
    assert_eq!(
        WebhookVerifier::new(vec![Secret::new(SECRET), Secret::new("")]).unwrap_err(),
        NoSigningSecret
    );
}

#[test]
fn the_verifier_never_prints_its_secrets() {
    let printed = format!("{:?}", verifier(&[SECRET]));

    assert!(!printed.contains(SECRET), "{printed}");
}

#[test]
fn webhook_error_codes_are_pinned() {
    let codes = [
        (WebhookError::MissingSignature, "missing_signature"),
        (WebhookError::MalformedSignature, "malformed_signature"),
        (WebhookError::SignatureMismatch, "signature_mismatch"),
        (
            WebhookError::TimestampOutOfTolerance,
            "timestamp_out_of_tolerance",
        ),
        (
            WebhookError::MalformedPayload {
                reason: String::new(),
            },
            "malformed_payload",
        ),
    ];

    for (error, code) in codes {
        assert_eq!(error.code(), code);
    }
}
