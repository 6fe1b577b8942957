#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use stratus_domain::{AccountId, Currency, MoneyError};
use uuid::Uuid;

use super::*;
use crate::payments::IdempotencyKey;

const IBAN: &str = "DE89 3704 0044 0532 0130 00";
const BIC: &str = "COBADEFFXXX";

fn payment(n: u128) -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(
        0x0190_f3a1_7c2e_7d3b_9a4e_0000_0000_0000 + n,
    ))
}

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

fn gateway() -> ManualGateway {
    ManualGateway::new(BankAccount::new("Stratus Cloud GmbH", IBAN, BIC).unwrap())
}

#[test]
fn a_reference_is_str_and_eleven_characters_from_crockford_base32() {
    let reference = BankReference::for_payment(&payment(1));

    let text = reference.as_str();
    assert_eq!(text.len(), 15, "{text}");
    assert!(text.starts_with("STR-"), "{text}");
    assert!(
        text[4..].bytes().all(|b| ALPHABET.contains(&b)),
        "{text}: only 0-9 and capitals without I, L, O, U"
    );
}

#[test]
fn the_same_payment_always_gets_the_same_reference_and_others_get_others() {
    let references: HashSet<String> = (0..1_000)
        .map(|n| BankReference::for_payment(&payment(n)).to_string())
        .collect();

    assert_eq!(
        BankReference::for_payment(&payment(7)),
        BankReference::for_payment(&payment(7))
    );
    assert_eq!(references.len(), 1_000);
}

#[test]
fn a_reference_parses_back_to_itself() {
    let reference = BankReference::for_payment(&payment(2));

    assert_eq!(BankReference::parse(reference.as_str()), Ok(reference));
}

#[test]
fn a_reference_typed_in_lower_case_with_spaces_and_hyphens_is_understood() {
    let reference = BankReference::for_payment(&payment(3));
    let data = &reference.as_str()[4..];
    let typed = [
        data.to_lowercase(),
        format!("str {}", data.to_lowercase()),
        format!(" STR - {} {} ", &data[..5], &data[5..]),
        format!("{}-{}-{}", &data[..4], &data[4..8], &data[8..]),
        format!("s t r {data}"),
    ];

    for input in typed {
        assert_eq!(
            BankReference::parse(&input),
            Ok(reference.clone()),
            "{input:?}"
        );
    }
}

#[test]
fn the_letters_o_i_and_l_are_read_as_the_digits_they_look_like() {
    // A reference with 0 and 1 in it, typed with O, I and L instead.
    let reference = (0..)
        .map(|n| BankReference::for_payment(&payment(n)))
        .find(|r| r.as_str()[4..].contains('0') && r.as_str()[4..].contains('1'))
        .unwrap();
    let typed = reference.as_str()[4..]
        .replacen('0', "O", 1)
        .replacen('1', "l", 1)
        .replace('1', "I");

    assert_eq!(BankReference::parse(&typed), Ok(reference));
}

#[test]
fn any_single_mistyped_character_is_caught_by_the_check_character() {
    let reference = BankReference::for_payment(&payment(4));
    let text = reference.as_str().to_owned();

    for position in 4..text.len() {
        for &replacement in ALPHABET {
            if text.as_bytes()[position] == replacement {
                continue;
            }
            let mut typo = text.clone().into_bytes();
            typo[position] = replacement;
            let typo = String::from_utf8(typo).unwrap();

            assert_eq!(
                BankReference::parse(&typo),
                Err(BankReferenceError::CheckCharacterMismatch),
                "{typo}"
            );
        }
    }
}

#[test]
fn swapping_two_different_neighbouring_data_characters_is_caught() {
    for n in 0..50 {
        let text = BankReference::for_payment(&payment(n)).to_string();
        let data = &text.as_bytes()[4..14];
        for position in 0..data.len() - 1 {
            let (a, b) = (data[position], data[position + 1]);
            // The one pair Luhn mod 32 cannot tell apart (like 09 and 90 in Luhn mod 10).
            if a == b || (a, b) == (b'0', b'Z') || (a, b) == (b'Z', b'0') {
                continue;
            }
            let mut swapped = text.clone().into_bytes();
            swapped.swap(4 + position, 5 + position);
            let swapped = String::from_utf8(swapped).unwrap();

            assert_eq!(
                BankReference::parse(&swapped),
                Err(BankReferenceError::CheckCharacterMismatch),
                "{text} -> {swapped}"
            );
        }
    }
}

#[test]
fn texts_of_the_wrong_length_or_with_foreign_characters_are_refused() {
    let reference = BankReference::for_payment(&payment(5)).to_string();
    let data = &reference[4..];

    assert_eq!(
        BankReference::parse(""),
        Err(BankReferenceError::WrongLength)
    );
    assert_eq!(
        BankReference::parse(&reference[..14]),
        Err(BankReferenceError::WrongLength)
    );
    assert_eq!(
        BankReference::parse(&format!("{reference}0")),
        Err(BankReferenceError::WrongLength)
    );
    assert_eq!(
        BankReference::parse(&format!("ABC-{data}")),
        Err(BankReferenceError::WrongLength)
    );
    assert_eq!(
        BankReference::parse(&format!("STR-U{}", &data[1..])),
        Err(BankReferenceError::InvalidCharacter)
    );
    assert_eq!(
        BankReference::parse(&format!("STR-*{}", &data[1..])),
        Err(BankReferenceError::InvalidCharacter)
    );
}

#[test]
fn reference_error_codes_are_pinned() {
    assert_eq!(
        BankReferenceError::WrongLength.code(),
        "reference_wrong_length"
    );
    assert_eq!(
        BankReferenceError::InvalidCharacter.code(),
        "reference_invalid_character"
    );
    assert_eq!(
        BankReferenceError::CheckCharacterMismatch.code(),
        "reference_check_mismatch"
    );
}

#[test]
fn a_bank_account_keeps_the_iban_without_spaces_and_in_capitals() {
    let account = BankAccount::new(
        "  Stratus Cloud GmbH ",
        "de89 3704 0044 0532 0130 00",
        "cobadeff",
    )
    .unwrap();

    assert_eq!(account.beneficiary(), "Stratus Cloud GmbH");
    assert_eq!(account.iban(), "DE89370400440532013000");
    assert_eq!(account.bic(), "COBADEFF");
}

#[test]
fn valid_ibans_of_several_countries_are_accepted() {
    for iban in [
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NO93 8601 1117 947",
        "CH93 0076 2011 6238 5295 7",
    ] {
        assert!(BankAccount::new("Stratus", iban, BIC).is_ok(), "{iban}");
    }
}

#[test]
fn an_iban_with_a_wrong_check_digit_or_shape_is_refused() {
    for iban in [
        "DE89 3704 0044 0532 0130 01",
        "DE88 3704 0044 0532 0130 00",
        "89DE 3704 0044 0532 0130 00",
        "DE89",
        "DE89 3704 0044 0532 0130 00 0000 0000 0000 0",
        "DE89-3704-0044-0532-0130-00",
    ] {
        assert_eq!(
            BankAccount::new("Stratus", iban, BIC),
            Err(BankAccountError::InvalidIban),
            "{iban}"
        );
    }
}

#[test]
fn a_bic_must_have_8_or_11_characters_of_the_right_kinds() {
    for bic in ["COBADE", "COBADEFFX", "C0BADEFF", "COBAD3FF", "COBADEF!"] {
        assert_eq!(
            BankAccount::new("Stratus", IBAN, bic),
            Err(BankAccountError::InvalidBic),
            "{bic}"
        );
    }
}

#[test]
fn a_beneficiary_must_be_a_short_printable_name() {
    let too_long = "x".repeat(BENEFICIARY_MAX_CHARS + 1);
    for name in ["", "   ", too_long.as_str(), "Stratus\nCloud"] {
        assert_eq!(
            BankAccount::new(name, IBAN, BIC),
            Err(BankAccountError::InvalidBeneficiary),
            "{name:?}"
        );
    }
}

#[test]
fn checkout_gives_the_bank_details_the_amount_and_the_payment_reference() {
    let instructions = gateway().checkout(&payment(6), eur("25.00")).unwrap();

    assert_eq!(instructions.beneficiary, "Stratus Cloud GmbH");
    assert_eq!(instructions.iban, "DE89370400440532013000");
    assert_eq!(instructions.bic, BIC);
    assert_eq!(instructions.amount, eur("25"));
    assert_eq!(
        instructions.reference,
        BankReference::for_payment(&payment(6))
    );
}

#[test]
fn checkout_instructions_serialise_with_money_and_reference_on_the_wire() {
    let instructions = gateway().checkout(&payment(6), eur("25.00")).unwrap();

    let json = serde_json::to_value(&instructions).unwrap();

    assert_eq!(json["amount"]["amount"], "25.000000");
    assert_eq!(json["amount"]["currency"], "EUR");
    assert_eq!(json["reference"], instructions.reference.as_str());
}

#[test]
fn checkout_refuses_an_amount_a_bank_cannot_transfer() {
    let gateway = gateway();

    let zero = gateway.checkout(&payment(8), eur("0"));
    let cents_fraction = gateway.checkout(&payment(8), eur("10.001"));

    assert!(matches!(
        zero,
        Err(GatewayError::AmountNotChargeable(
            MoneyError::AmountNotPositive
        ))
    ));
    assert!(matches!(
        cents_fraction,
        Err(GatewayError::AmountNotChargeable(
            MoneyError::TooManyDecimals { .. }
        ))
    ));
}

#[tokio::test]
async fn the_manual_intent_waits_for_the_transfer_under_the_reference() {
    let gateway: std::sync::Arc<dyn PaymentGateway> = std::sync::Arc::new(gateway());
    let request = IntentRequest {
        payment_id: payment(9),
        amount: eur("40"),
        customer_reference: AccountId::from_uuid(Uuid::from_u128(1)),
        idempotency_key: IdempotencyKey::for_top_up(&payment(9)),
    };

    let first = gateway.create_intent(request.clone()).await.unwrap();
    let again = gateway.create_intent(request).await.unwrap();

    assert_eq!(gateway.kind(), GatewayKind::Manual);
    assert_eq!(
        first, again,
        "no remote state: the same request, the same intent"
    );
    assert_eq!(
        first.id.as_str(),
        BankReference::for_payment(&payment(9)).as_str()
    );
    assert_eq!(first.status, IntentStatus::RequiresAction);
    assert_eq!(first.payment_id, Some(payment(9)));
    assert!(matches!(first.checkout, Some(Checkout::BankTransfer(_))));
}

#[tokio::test]
async fn the_manual_gateway_cannot_retrieve_or_cancel_an_intent() {
    let gateway = gateway();
    let id = IntentId::parse("STR-0000000000A").unwrap();

    let retrieved = gateway.retrieve_intent(&id).await;
    let canceled = gateway.cancel_intent(&id).await;

    for result in [retrieved, canceled] {
        let error = result.unwrap_err();
        assert!(matches!(
            error,
            GatewayError::Unsupported {
                gateway: GatewayKind::Manual,
                ..
            }
        ));
        assert!(!error.is_retryable());
        assert_eq!(error.code(), "gateway_operation_unsupported");
    }
}
