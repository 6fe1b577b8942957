#![allow(clippy::unwrap_used, clippy::expect_used)]

use stratus_domain::Currency;
use uuid::Uuid;

use super::*;

#[test]
fn gateway_ids_from_stripe_and_bank_references_are_intent_ids() {
    for id in ["pi_3MtwBwLkdIwHu7ix28a3tqPa", "STR-7K3M9QX2ZB4"] {
        assert_eq!(IntentId::parse(id).unwrap().as_str(), id);
    }
}

#[test]
fn an_intent_id_that_could_change_a_url_path_is_refused() {
    let too_long = "p".repeat(INTENT_ID_MAX_CHARS + 1);
    for id in [
        "",
        "pi_1/../../v1/customers",
        "pi_1?expand=x",
        "pi_1#x",
        "pi 1",
        "pi_1%2F",
        "pi_é",
        too_long.as_str(),
    ] {
        assert_eq!(IntentId::parse(id), Err(InvalidIntentId), "{id:?}");
    }
}

#[test]
fn intent_status_names_are_stripes() {
    let names = [
        (
            IntentStatus::RequiresPaymentMethod,
            "requires_payment_method",
        ),
        (IntentStatus::RequiresConfirmation, "requires_confirmation"),
        (IntentStatus::RequiresAction, "requires_action"),
        (IntentStatus::Processing, "processing"),
        (IntentStatus::RequiresCapture, "requires_capture"),
        (IntentStatus::Succeeded, "succeeded"),
        (IntentStatus::Canceled, "canceled"),
    ];

    for (status, name) in names {
        assert_eq!(status.as_str(), name);
        assert_eq!(IntentStatus::from_name(name), Some(status));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(IntentStatus::from_name("cancelled"), None);
}

#[test]
fn only_succeeded_and_canceled_intents_are_closed() {
    assert!(!IntentStatus::Succeeded.is_open());
    assert!(!IntentStatus::Canceled.is_open());
    assert!(IntentStatus::Processing.is_open());
    assert!(IntentStatus::RequiresPaymentMethod.is_open());
}

#[test]
fn a_top_up_always_uses_the_same_idempotency_key() {
    let payment_id = PaymentId::from_uuid(Uuid::from_u128(42));

    let key = IdempotencyKey::for_top_up(&payment_id);

    assert_eq!(key.as_str(), "top_up:00000000-0000-0000-0000-00000000002a");
    assert_eq!(key, IdempotencyKey::for_top_up(&payment_id));
}

#[test]
fn an_idempotency_key_must_fit_in_a_header() {
    let too_long = "k".repeat(IDEMPOTENCY_KEY_MAX_CHARS + 1);
    for key in ["", "with space", "line\nbreak", "clé", too_long.as_str()] {
        assert_eq!(
            IdempotencyKey::parse(key),
            Err(InvalidIdempotencyKey),
            "{key:?}"
        );
    }
    assert!(IdempotencyKey::parse("k".repeat(IDEMPOTENCY_KEY_MAX_CHARS).as_str()).is_ok());
}

#[test]
fn gateway_kinds_keep_their_stored_names() {
    assert_eq!(GatewayKind::Stripe.as_str(), "stripe");
    assert_eq!(GatewayKind::Manual.as_str(), "manual");
    assert_eq!(GatewayKind::from_name("stripe"), Some(GatewayKind::Stripe));
    assert_eq!(GatewayKind::from_name("manual"), Some(GatewayKind::Manual));
}

#[test]
fn only_unreachable_and_unavailable_gateways_are_worth_a_retry() {
    let unavailable = GatewayError::Unavailable {
        status: 503,
        detail: ApiErrorDetail::default(),
    };
    let refused = GatewayError::Refused {
        status: 402,
        detail: ApiErrorDetail::default(),
    };
    let unexpected = GatewayError::UnexpectedResponse {
        reason: String::new(),
    };
    let amount = GatewayError::AmountNotChargeable(MoneyError::AmountNotPositive);
    let unsupported = GatewayError::Unsupported {
        gateway: GatewayKind::Manual,
        operation: "cancel_intent",
    };

    assert!(unavailable.is_retryable());
    for error in [refused, unexpected, amount, unsupported] {
        assert!(!error.is_retryable(), "{error:?}");
    }
}

#[test]
fn gateway_error_codes_are_pinned() {
    let codes = [
        (
            GatewayError::Unavailable {
                status: 500,
                detail: ApiErrorDetail::default(),
            },
            "gateway_unavailable",
        ),
        (
            GatewayError::Refused {
                status: 400,
                detail: ApiErrorDetail::default(),
            },
            "gateway_refused",
        ),
        (
            GatewayError::UnexpectedResponse {
                reason: String::new(),
            },
            "gateway_unexpected_response",
        ),
        (
            GatewayError::AmountNotChargeable(MoneyError::AmountNotPositive),
            "amount_not_chargeable",
        ),
        (
            GatewayError::Unsupported {
                gateway: GatewayKind::Manual,
                operation: "retrieve_intent",
            },
            "gateway_operation_unsupported",
        ),
    ];

    for (error, code) in codes {
        assert_eq!(error.code(), code);
    }
    // `Unreachable` wraps a reqwest error, made for real in the Stripe client's tests.
}

#[test]
fn an_amount_is_chargeable_when_positive_and_in_whole_minor_units() {
    let eur = |text| Money::from_decimal_str(text, Currency::EUR).unwrap();
    let yen = Money::from_decimal_str("500", Currency::JPY).unwrap();

    assert_eq!(chargeable_minor_units(eur("25.00")).unwrap(), 2500);
    assert_eq!(chargeable_minor_units(yen).unwrap(), 500);
    assert!(matches!(
        chargeable_minor_units(eur("-1")),
        Err(GatewayError::AmountNotChargeable(
            MoneyError::AmountNotPositive
        ))
    ));
    assert!(matches!(
        chargeable_minor_units(eur("0.001")),
        Err(GatewayError::AmountNotChargeable(
            MoneyError::TooManyDecimals { .. }
        ))
    ));
}

#[test]
fn a_refusal_reads_as_its_code_and_message() {
    let detail = ApiErrorDetail {
        code: Some("card_declined".to_owned()),
        message: Some("Your card was declined.".to_owned()),
        ..ApiErrorDetail::default()
    };

    let error = GatewayError::Refused {
        status: 402,
        detail,
    };

    assert_eq!(
        error.to_string(),
        "the payment gateway refused the request (HTTP 402): card_declined: Your card was declined."
    );
}
