//! The client's wire format against a one-request fake server, and its parsing and
//! classification as plain functions. Behaviour against a Stripe-like server (localstripe) is
//! tested in `tests/tests/system/payments.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stratus_domain::{AccountId, MoneyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::*;
use crate::payments::IdempotencyKey;

const PAYMENT_ID: &str = "0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70";
const ACCOUNT_ID: &str = "0190f3a1-0000-7000-8000-000000000001";

/// What the fake server received.
struct Received {
    head: String,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Answers one request with `status` and `body` (plus `extra_headers`, each ending in CRLF) and
/// hands back what it received.
async fn answer_once(
    status: &'static str,
    extra_headers: &'static str,
    body: String,
) -> (String, JoinHandle<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut chunk = [0_u8; 4096];
        let head_end = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client closed before sending a whole request");
            received.extend_from_slice(&chunk[..n]);
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
        let length = head
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        while received.len() < head_end + length {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client closed before sending the whole body");
            received.extend_from_slice(&chunk[..n]);
        }
        let request_body = String::from_utf8(received[head_end..].to_vec()).unwrap();
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        Received {
            head,
            body: request_body,
        }
    });
    (base_url, server)
}

fn client(base_url: &str) -> StripeClient {
    StripeClient::with_base_url(Secret::new("sk_test_wire_format"), base_url).unwrap()
}

fn eur(text: &str) -> Money {
    Money::from_decimal_str(text, Currency::EUR).unwrap()
}

fn request(amount: Money) -> IntentRequest {
    let payment_id: PaymentId = PAYMENT_ID.parse().unwrap();
    IntentRequest {
        payment_id,
        amount,
        customer_reference: ACCOUNT_ID.parse::<AccountId>().unwrap(),
        idempotency_key: IdempotencyKey::for_top_up(&payment_id),
    }
}

fn intent_json(amount: i64, status: &str) -> String {
    format!(
        r#"{{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":{amount},
        "amount_received":0,"currency":"eur","status":"{status}",
        "client_secret":"pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "metadata":{{"payment_id":"{PAYMENT_ID}","customer_reference":"{ACCOUNT_ID}"}},
        "last_payment_error":null,"livemode":false}}"#
    )
}

#[tokio::test]
async fn create_posts_the_amount_in_cents_with_the_key_the_version_and_the_metadata() {
    let (base_url, server) =
        answer_once("200 OK", "", intent_json(2500, "requires_payment_method")).await;

    let intent = client(&base_url)
        .create_intent(request(eur("25.00")))
        .await
        .unwrap();

    let received = server.await.unwrap();
    assert!(
        received
            .head
            .starts_with("POST /v1/payment_intents HTTP/1.1\r\n"),
        "{}",
        received.head
    );
    assert_eq!(
        received.header("authorization"),
        Some("Bearer sk_test_wire_format")
    );
    assert_eq!(
        received.header("idempotency-key"),
        Some(format!("top_up:{PAYMENT_ID}").as_str())
    );
    assert_eq!(received.header("stripe-version"), Some(STRIPE_API_VERSION));
    assert_eq!(
        received.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        received.body,
        format!(
            "amount=2500&currency=eur&payment_method_types%5B0%5D=card\
             &metadata%5Bpayment_id%5D={PAYMENT_ID}&metadata%5Bcustomer_reference%5D={ACCOUNT_ID}"
        )
    );
    assert_eq!(intent.id.as_str(), "pi_3MtwBwLkdIwHu7ix28a3tqPa");
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(intent.amount, eur("25"));
    assert_eq!(intent.payment_id, Some(PAYMENT_ID.parse().unwrap()));
    let Some(Checkout::ClientSecret(secret)) = intent.checkout else {
        panic!("no client secret: {:?}", intent.checkout);
    };
    assert!(secret
        .expose()
        .starts_with("pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_"));
}

#[tokio::test]
async fn a_yen_amount_is_sent_in_whole_yen() {
    let body = intent_json(500, "requires_payment_method").replace("\"eur\"", "\"jpy\"");
    let (base_url, server) = answer_once("200 OK", "", body).await;
    let yen = Money::from_decimal_str("500", Currency::JPY).unwrap();

    let intent = client(&base_url).create_intent(request(yen)).await.unwrap();

    let received = server.await.unwrap();
    assert!(
        received.body.starts_with("amount=500&currency=jpy&"),
        "{}",
        received.body
    );
    assert_eq!(intent.amount, yen);
}

#[tokio::test]
async fn retrieve_gets_the_intent_by_its_id() {
    let (base_url, server) = answer_once("200 OK", "", intent_json(2500, "succeeded")).await;
    let id = IntentId::parse("pi_3MtwBwLkdIwHu7ix28a3tqPa").unwrap();

    let intent = client(&base_url).retrieve_intent(&id).await.unwrap();

    let received = server.await.unwrap();
    assert!(
        received
            .head
            .starts_with("GET /v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa HTTP/1.1\r\n"),
        "{}",
        received.head
    );
    assert_eq!(received.header("idempotency-key"), None);
    assert_eq!(intent.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn cancel_posts_to_the_intents_cancel_path() {
    let (base_url, server) = answer_once("200 OK", "", intent_json(2500, "canceled")).await;
    let id = IntentId::parse("pi_3MtwBwLkdIwHu7ix28a3tqPa").unwrap();

    let intent = client(&base_url).cancel_intent(&id).await.unwrap();

    let received = server.await.unwrap();
    assert!(
        received.head.starts_with(
            "POST /v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/cancel HTTP/1.1\r\n"
        ),
        "{}",
        received.head
    );
    assert_eq!(received.body, "");
    assert_eq!(intent.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn a_declined_card_is_a_permanent_refusal_with_stripes_code() {
    let body = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline",
        "message":"Your card was declined.","param":"payment_method"}}"#;
    let (base_url, _server) = answer_once(
        "402 Payment Required",
        "request-id: req_123\r\n",
        body.to_owned(),
    )
    .await;

    let error = client(&base_url)
        .create_intent(request(eur("25")))
        .await
        .unwrap_err();

    let GatewayError::Refused { status, detail } = &error else {
        panic!("not a refusal: {error:?}");
    };
    assert_eq!(*status, 402);
    assert_eq!(detail.kind.as_deref(), Some("card_error"));
    assert_eq!(detail.code.as_deref(), Some("card_declined"));
    assert_eq!(detail.decline_code.as_deref(), Some("generic_decline"));
    assert_eq!(detail.param.as_deref(), Some("payment_method"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn stripes_should_retry_header_overrides_the_status() {
    let (base_url, _server) = answer_once(
        "400 Bad Request",
        "stripe-should-retry: true\r\n",
        r#"{"error":{"type":"invalid_request_error","code":"lock_timeout"}}"#.to_owned(),
    )
    .await;

    let error = client(&base_url)
        .create_intent(request(eur("25")))
        .await
        .unwrap_err();

    assert!(
        matches!(error, GatewayError::Unavailable { status: 400, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn an_intent_for_another_amount_than_asked_is_not_taken() {
    let (base_url, _server) =
        answer_once("200 OK", "", intent_json(9900, "requires_payment_method")).await;

    let error = client(&base_url)
        .create_intent(request(eur("25")))
        .await
        .unwrap_err();

    assert!(
        matches!(error, GatewayError::UnexpectedResponse { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_that_is_not_an_intent_is_unexpected() {
    let (base_url, _server) = answer_once("200 OK", "", "<html>proxy</html>".to_owned()).await;

    let error = client(&base_url)
        .create_intent(request(eur("25")))
        .await
        .unwrap_err();

    assert!(
        matches!(error, GatewayError::UnexpectedResponse { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(error.code(), "gateway_unexpected_response");
}

#[tokio::test]
async fn a_gateway_that_cannot_be_reached_is_worth_a_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let error = client(&base_url)
        .create_intent(request(eur("25")))
        .await
        .unwrap_err();

    assert!(matches!(error, GatewayError::Unreachable(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.code(), "gateway_unreachable");
}

#[tokio::test]
async fn an_amount_that_cannot_be_charged_is_refused_before_anything_is_sent() {
    // Nothing listens there: a request would come back as `Unreachable`.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client(&base_url);

    let fraction = client.create_intent(request(eur("25.001"))).await;
    let zero = client.create_intent(request(eur("0"))).await;

    assert!(matches!(
        fraction,
        Err(GatewayError::AmountNotChargeable(
            MoneyError::TooManyDecimals { .. }
        ))
    ));
    assert!(matches!(
        zero,
        Err(GatewayError::AmountNotChargeable(
            MoneyError::AmountNotPositive
        ))
    ));
}

#[test]
fn failures_are_sorted_into_retryable_and_permanent_by_status() {
    let retryable = [409, 429, 500, 502, 503, 504];
    let permanent = [400, 401, 402, 403, 404];

    for status in retryable {
        let error = classify_failure(StatusCode::from_u16(status).unwrap(), None, b"");
        assert!(
            matches!(error, GatewayError::Unavailable { .. }),
            "{status}: {error:?}"
        );
    }
    for status in permanent {
        let error = classify_failure(StatusCode::from_u16(status).unwrap(), None, b"");
        assert!(
            matches!(error, GatewayError::Refused { .. }),
            "{status}: {error:?}"
        );
    }
}

#[test]
fn a_server_error_that_stripe_says_not_to_retry_is_permanent() {
    let error = classify_failure(StatusCode::INTERNAL_SERVER_ERROR, Some(false), b"");

    assert!(matches!(error, GatewayError::Refused { status: 500, .. }));
}

#[test]
fn a_redirect_is_neither_a_success_nor_a_refusal() {
    let error = classify_failure(StatusCode::FOUND, None, b"");

    assert!(matches!(error, GatewayError::UnexpectedResponse { .. }));
}

#[test]
fn an_error_body_that_is_not_stripes_leaves_the_detail_empty() {
    let error = classify_failure(StatusCode::BAD_GATEWAY, None, b"<html>bad gateway</html>");

    let GatewayError::Unavailable { detail, .. } = error else {
        panic!("not unavailable: {error:?}");
    };
    assert_eq!(detail, ApiErrorDetail::default());
}

#[test]
fn an_intent_in_an_unknown_status_or_currency_is_unexpected() {
    let unknown_status = intent_json(2500, "requires_source");
    let unknown_currency = intent_json(2500, "succeeded").replace("\"eur\"", "\"xts\"");
    let foreign_payment_id = intent_json(2500, "succeeded").replace(PAYMENT_ID, "not-a-uuid");

    for body in [unknown_status, unknown_currency, foreign_payment_id] {
        let result = parse_intent(body.as_bytes());

        assert!(
            matches!(result, Err(GatewayError::UnexpectedResponse { .. })),
            "{body}: {result:?}"
        );
    }
}

#[test]
fn an_intent_made_outside_stratus_has_no_payment_id() {
    let body = intent_json(2500, "succeeded").replace("\"payment_id\"", "\"order\"");

    let intent = parse_intent(body.as_bytes()).unwrap();

    assert_eq!(intent.payment_id, None);
}

#[test]
fn the_base_url_defaults_to_stripe_and_may_point_at_this_machine_over_http() {
    let secret = || Secret::new("sk_test_x");

    assert_eq!(
        StripeClient::new(secret()).unwrap().base_url(),
        STRIPE_API_BASE_URL
    );
    for (input, kept) in [
        ("http://127.0.0.1:8420", "http://127.0.0.1:8420"),
        ("http://localhost:8420/", "http://localhost:8420"),
        ("http://[::1]:8420", "http://[::1]:8420"),
        (
            "https://stripe-proxy.internal",
            "https://stripe-proxy.internal",
        ),
    ] {
        let client = StripeClient::with_base_url(secret(), input).unwrap();
        assert_eq!(client.base_url(), kept);
    }
}

#[test]
fn a_base_url_that_would_leak_the_key_or_mangle_paths_is_refused() {
    let secret = || Secret::new("sk_test_x");

    assert!(matches!(
        StripeClient::with_base_url(secret(), "http://api.stripe.com"),
        Err(StripeSetupError::InsecureBaseUrl)
    ));
    for input in [
        "not a url",
        "https://api.stripe.com/v1",
        "https://api.stripe.com/?x=1",
        "https://user:password@api.stripe.com",
        "ftp://api.stripe.com",
    ] {
        assert!(
            matches!(
                StripeClient::with_base_url(secret(), input),
                Err(StripeSetupError::InvalidBaseUrl { .. })
            ),
            "{input}"
        );
    }
}

#[test]
fn the_client_never_prints_its_key() {
    let client = StripeClient::new(Secret::new("sk_live_do_not_print")).unwrap();

    let printed = format!("{client:?}");

    assert!(!printed.contains("sk_live_do_not_print"), "{printed}");
}

#[test]
fn the_stripe_client_is_usable_as_a_shared_gateway() {
    let client = StripeClient::new(Secret::new("sk_test_x")).unwrap();

    let gateway: std::sync::Arc<dyn PaymentGateway> = std::sync::Arc::new(client);

    assert_eq!(gateway.kind(), GatewayKind::Stripe);
}
