//! The Stripe gateway against localstripe, a fake Stripe server on 127.0.0.1, and the webhook
//! verifier against the signed webhooks localstripe delivers. What localstripe does not do
//! (idempotency keys, webhooks for cancellations) is listed in `stratus_tests::localstripe`; the
//! wire format and the idempotency header are tested in `commands/src/payments/stripe/tests.rs`.

use chrono::Utc;
use reqwest::StatusCode;
use stratus_commands::payments::stripe::StripeClient;
use stratus_commands::payments::webhook::{
    WebhookError, WebhookEventKind, WebhookVerifier, DEFAULT_TOLERANCE_SECONDS,
};
use stratus_commands::payments::{
    Checkout, GatewayError, IdempotencyKey, IntentId, IntentRequest, IntentStatus, PaymentGateway,
    Secret,
};
use stratus_domain::{AccountId, Currency, Money, PaymentId};
use stratus_tests::localstripe::{LocalStripe, WebhookInbox};
use uuid::Uuid;

const WEBHOOK_SECRET: &str = "whsec_localstripe_test";

fn top_up(amount: &str) -> IntentRequest {
    let payment_id = PaymentId::from_uuid(Uuid::now_v7());
    IntentRequest {
        payment_id,
        amount: Money::from_decimal_str(amount, Currency::EUR).unwrap(),
        customer_reference: AccountId::from_uuid(Uuid::now_v7()),
        idempotency_key: IdempotencyKey::for_top_up(&payment_id),
    }
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(vec![Secret::new(WEBHOOK_SECRET)]).unwrap()
}

/// The `t=` of a `Stripe-Signature` header.
fn signed_at(signature: &[u8]) -> i64 {
    std::str::from_utf8(signature)
        .unwrap()
        .split(',')
        .find_map(|entry| entry.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_intent_for_25_eur_is_created_retrieved_and_canceled_at_localstripe() {
    let stripe = LocalStripe::start().await;
    let gateway = stripe.client();
    let request = top_up("25.00");

    let created = gateway.create_intent(request.clone()).await.unwrap();
    let retrieved = gateway.retrieve_intent(&created.id).await.unwrap();
    let canceled = gateway.cancel_intent(&created.id).await.unwrap();
    let after = gateway.retrieve_intent(&created.id).await.unwrap();

    assert!(created.id.as_str().starts_with("pi_"), "{}", created.id);
    assert_eq!(created.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(created.amount, request.amount);
    assert_eq!(created.amount.to_minor_units().unwrap(), 2500);
    assert_eq!(created.payment_id, Some(request.payment_id));
    let Some(Checkout::ClientSecret(client_secret)) = &created.checkout else {
        panic!("no client secret: {:?}", created.checkout);
    };
    assert!(client_secret
        .expose()
        .starts_with(&format!("{}_secret_", created.id)));
    assert_eq!(retrieved.id, created.id);
    assert_eq!(retrieved.amount, request.amount);
    assert_eq!(retrieved.payment_id, Some(request.payment_id));
    assert_eq!(canceled.status, IntentStatus::Canceled);
    assert_eq!(after.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn a_card_payment_succeeds_and_localstripes_signed_webhook_verifies_with_our_payment() {
    let stripe = LocalStripe::start().await;
    let mut inbox = WebhookInbox::start().await;
    stripe.send_webhooks_to(&inbox.url, WEBHOOK_SECRET).await;
    let gateway = stripe.client();
    let request = top_up("25.00");
    let intent = gateway.create_intent(request.clone()).await.unwrap();

    let (status, body) = stripe.pay(&intent.id, "pm_card_visa").await;
    let paid = gateway.retrieve_intent(&intent.id).await.unwrap();
    let delivery = inbox.next().await;
    let event = verifier()
        .verify(delivery.signature.as_deref(), &delivery.body, Utc::now())
        .unwrap();

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert!(event.id.as_str().starts_with("evt_"), "{:?}", event.id);
    assert_eq!(event.event_type, "payment_intent.succeeded");
    let WebhookEventKind::PaymentSucceeded(settled) = event.kind else {
        panic!("not a success: {:?}", event.kind);
    };
    assert_eq!(settled.id, intent.id);
    assert_eq!(settled.amount, request.amount);
    assert_eq!(settled.payment_id, Some(request.payment_id));
    assert_eq!(settled.checkout, None);
}

#[tokio::test]
async fn a_paid_intent_cannot_be_canceled_at_localstripe() {
    let stripe = LocalStripe::start().await;
    let gateway = stripe.client();
    let intent = gateway.create_intent(top_up("10.00")).await.unwrap();
    let (status, body) = stripe.pay(&intent.id, "pm_card_visa").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let error = gateway.cancel_intent(&intent.id).await.unwrap_err();

    assert!(
        matches!(error, GatewayError::Refused { status: 400, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_declined_card_leaves_the_intent_open_and_the_failure_webhook_carries_the_reason() {
    let stripe = LocalStripe::start().await;
    let mut inbox = WebhookInbox::start().await;
    stripe.send_webhooks_to(&inbox.url, WEBHOOK_SECRET).await;
    let gateway = stripe.client();
    let request = top_up("25.00");
    let intent = gateway.create_intent(request.clone()).await.unwrap();

    let (status, body) = stripe.pay(&intent.id, "pm_card_chargeCustomerFail").await;
    let after = gateway.retrieve_intent(&intent.id).await.unwrap();
    let delivery = inbox.next().await;
    let event = verifier()
        .verify(delivery.signature.as_deref(), &delivery.body, Utc::now())
        .unwrap();

    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["error"]["code"], "card_declined");
    assert_eq!(after.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(event.event_type, "payment_intent.payment_failed");
    let WebhookEventKind::PaymentFailed {
        intent: failed,
        error,
    } = event.kind
    else {
        panic!("not a failure: {:?}", event.kind);
    };
    assert_eq!(failed.id, intent.id);
    assert_eq!(failed.payment_id, Some(request.payment_id));
    assert_eq!(
        error.and_then(|error| error.code).as_deref(),
        Some("card_declined")
    );
}

#[tokio::test]
async fn a_localstripe_webhook_is_refused_when_tampered_stale_or_signed_with_another_secret() {
    let stripe = LocalStripe::start().await;
    let mut inbox = WebhookInbox::start().await;
    stripe.send_webhooks_to(&inbox.url, WEBHOOK_SECRET).await;
    let gateway = stripe.client();
    let intent = gateway.create_intent(top_up("25.00")).await.unwrap();
    stripe.pay(&intent.id, "pm_card_visa").await;
    let delivery = inbox.next().await;
    let signature = delivery.signature.as_deref();
    let signed_at = chrono::DateTime::from_timestamp(signed_at(signature.unwrap()), 0).unwrap();
    let tolerance = chrono::Duration::seconds(i64::try_from(DEFAULT_TOLERANCE_SECONDS).unwrap());
    let tampered = String::from_utf8(delivery.body.clone())
        .unwrap()
        .replacen("\"amount\": 2500", "\"amount\": 250000", 1)
        .into_bytes();
    let other_secret = WebhookVerifier::new(vec![Secret::new("whsec_other")]).unwrap();
    let rotated = WebhookVerifier::new(vec![
        Secret::new("whsec_new_after_rotation"),
        Secret::new(WEBHOOK_SECRET),
    ])
    .unwrap();

    let replayed_in_time = verifier().verify(signature, &delivery.body, signed_at + tolerance);
    let replayed_late = verifier().verify(
        signature,
        &delivery.body,
        signed_at + tolerance + chrono::Duration::seconds(1),
    );
    let altered = verifier().verify(signature, &tampered, signed_at);
    let foreign = other_secret.verify(signature, &delivery.body, signed_at);
    let during_rotation = rotated.verify(signature, &delivery.body, signed_at);
    let unsigned = verifier().verify(None, &delivery.body, signed_at);

    assert_ne!(tampered, delivery.body, "the amount was found and changed");
    assert!(replayed_in_time.is_ok(), "{replayed_in_time:?}");
    assert_eq!(replayed_late, Err(WebhookError::TimestampOutOfTolerance));
    assert_eq!(altered, Err(WebhookError::SignatureMismatch));
    assert_eq!(foreign, Err(WebhookError::SignatureMismatch));
    assert!(during_rotation.is_ok(), "{during_rotation:?}");
    assert_eq!(unsigned, Err(WebhookError::MissingSignature));
}

#[tokio::test]
async fn an_unknown_intent_is_a_permanent_refusal_from_localstripe() {
    let stripe = LocalStripe::start().await;
    let id = IntentId::parse("pi_doesnotexist").unwrap();

    let error = stripe.client().retrieve_intent(&id).await.unwrap_err();

    let GatewayError::Refused { status, detail } = &error else {
        panic!("not a refusal: {error:?}");
    };
    assert_eq!(*status, 404);
    assert_eq!(detail.kind.as_deref(), Some("invalid_request_error"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_key_that_is_not_a_secret_key_is_refused_by_localstripe() {
    let stripe = LocalStripe::start().await;
    let client =
        StripeClient::with_base_url(Secret::new("pk_test_publishable"), &stripe.base_url).unwrap();

    let error = client.create_intent(top_up("25.00")).await.unwrap_err();

    assert!(
        matches!(error, GatewayError::Refused { status: 401, .. }),
        "{error:?}"
    );
}
