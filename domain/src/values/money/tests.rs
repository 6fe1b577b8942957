//! Unit and property tests for [`Currency`] and [`Money`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;

fn eur(input: &str) -> Money {
    Money::from_decimal_str(input, Currency::EUR).unwrap()
}

fn parse_error(input: &str) -> MoneyError {
    Money::from_decimal_str(input, Currency::EUR).unwrap_err()
}

// ---------------------------------------------------------------------------------------------
// Currency
// ---------------------------------------------------------------------------------------------

#[test]
fn a_known_code_parses_to_its_currency_with_its_minor_unit() {
    let cases = [
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("JPY", 0),
        ("KWD", 3),
    ];

    for (code, minor_units) in cases {
        let currency = Currency::parse(code).unwrap();

        assert_eq!(currency.code(), code);
        assert_eq!(currency.minor_units(), minor_units, "{code}");
        assert_eq!(currency.to_string(), code);
    }
}

#[test]
fn the_named_constants_are_the_table_entries() {
    for currency in [
        Currency::EUR,
        Currency::USD,
        Currency::GBP,
        Currency::CHF,
        Currency::JPY,
    ] {
        assert_eq!(Currency::parse(currency.code()), Ok(currency));
    }
}

#[test]
fn the_currency_table_is_sorted_unique_and_within_micro_precision() {
    let codes: Vec<&str> = Currency::ALL.iter().map(Currency::code).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();

    assert_eq!(codes, sorted);
    for currency in Currency::ALL {
        assert_eq!(Currency::parse(currency.code()), Ok(*currency));
        assert!(currency.minor_units() <= MONEY_DECIMALS, "{currency}");
    }
}

#[test]
fn a_code_that_is_not_three_uppercase_letters_is_refused_as_invalid() {
    for code in [
        "", "EU", "EURO", "eur", "Eur", "E1R", " EUR", "EUR ", "ÉUR", "€",
    ] {
        assert_eq!(
            Currency::parse(code),
            Err(MoneyError::InvalidCurrency),
            "{code:?}"
        );
    }
}

#[test]
fn a_well_formed_but_unsupported_code_is_refused_as_unknown() {
    for code in ["XXX", "ABC", "BTC", "XAU"] {
        assert_eq!(
            Currency::parse(code),
            Err(MoneyError::UnknownCurrency),
            "{code}"
        );
    }
}

#[test]
fn a_currency_serialises_as_its_code_and_deserialising_checks_the_table() {
    let json = serde_json::to_string(&Currency::JPY).unwrap();
    let back: Currency = serde_json::from_str("\"CHF\"").unwrap();
    let unknown = serde_json::from_str::<Currency>("\"XXX\"");
    let lowercase = serde_json::from_str::<Currency>("\"eur\"");

    assert_eq!(json, "\"JPY\"");
    assert_eq!(back, Currency::CHF);
    assert!(unknown.is_err());
    assert!(lowercase.is_err());
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn whole_and_decimal_amounts_parse_to_micro_units() {
    let cases = [
        ("0", 0),
        ("25", 25_000_000),
        ("25.00", 25_000_000),
        ("12.3456", 12_345_600),
        ("12.345600", 12_345_600),
        ("0.000001", 1),
        ("0.1", 100_000),
        ("007.50", 7_500_000),
        ("-0.000001", -1),
        ("-12.5", -12_500_000),
        ("-0", 0),
    ];

    for (input, micros) in cases {
        let money = eur(input);

        assert_eq!(money.micros(), micros, "{input}");
        assert_eq!(money.currency(), Currency::EUR);
    }
}

#[test]
fn anything_but_a_plain_decimal_is_refused_as_an_invalid_amount() {
    let inputs = [
        "", "-", ".", "-.", ".5", "5.", "-.5", "+5", "--5", "5-", "1e3", "1E3", "1.5e2", "0x10",
        " 5", "5 ", "5 000", "5,00", "1,000.00", "1.2.3", "NaN", "inf", "-inf", "五", "٥", "1_000",
        "5.0a", "€5",
    ];

    for input in inputs {
        assert_eq!(parse_error(input), MoneyError::InvalidAmount, "{input:?}");
    }
}

#[test]
fn six_decimals_are_accepted_and_a_seventh_is_refused() {
    assert_eq!(eur("1.123456").micros(), 1_123_456);
    assert_eq!(
        parse_error("1.1234567"),
        MoneyError::TooManyDecimals { max_decimals: 6 }
    );
    assert_eq!(
        parse_error("1.0000000"),
        MoneyError::TooManyDecimals { max_decimals: 6 }
    );
}

#[test]
fn the_extreme_i64_amounts_parse_and_one_micro_beyond_overflows() {
    assert_eq!(eur("9223372036854.775807").micros(), i64::MAX);
    assert_eq!(eur("-9223372036854.775808").micros(), i64::MIN);
    assert_eq!(
        parse_error("9223372036854.775808"),
        MoneyError::AmountOverflow
    );
    assert_eq!(
        parse_error("-9223372036854.775809"),
        MoneyError::AmountOverflow
    );
    assert_eq!(parse_error("9223372036855"), MoneyError::AmountOverflow);
}

#[test]
fn an_absurdly_long_number_overflows_without_panicking() {
    let long = "9".repeat(500);
    let zeros_then_one = format!("{}1", "0".repeat(500));

    assert_eq!(parse_error(&long), MoneyError::AmountOverflow);
    assert_eq!(eur(&zeros_then_one).micros(), 1_000_000);
}

#[test]
fn client_input_must_be_whole_minor_units_of_the_currency() {
    let refused = Money::from_client_input("1.001", Currency::EUR);
    let yen = Money::from_client_input("100.5", Currency::JPY);
    let dinar = Money::from_client_input("1.001", Currency::parse("KWD").unwrap());

    assert_eq!(
        refused,
        Err(MoneyError::TooManyDecimals { max_decimals: 2 })
    );
    assert_eq!(yen, Err(MoneyError::TooManyDecimals { max_decimals: 0 }));
    assert_eq!(dinar.unwrap().micros(), 1_001_000);
}

#[test]
fn client_input_with_trailing_zeros_beyond_the_minor_unit_is_the_same_amount() {
    let padded = Money::from_client_input("1.010", Currency::EUR).unwrap();
    let yen = Money::from_client_input("100.000", Currency::JPY).unwrap();

    assert_eq!(padded, eur("1.01"));
    assert_eq!(yen.micros(), 100_000_000);
}

#[test]
fn client_input_keeps_the_strict_grammar() {
    assert_eq!(
        Money::from_client_input("1e2", Currency::EUR),
        Err(MoneyError::InvalidAmount)
    );
    assert_eq!(
        Money::from_client_input("25.00", Currency::EUR),
        Ok(eur("25"))
    );
}

// ---------------------------------------------------------------------------------------------
// Formatting and serde
// ---------------------------------------------------------------------------------------------

#[test]
fn amounts_format_with_exactly_six_decimals() {
    let cases = [
        (0, "0.000000"),
        (1, "0.000001"),
        (-1, "-0.000001"),
        (12_345_600, "12.345600"),
        (-12_500_000, "-12.500000"),
        (25_000_000, "25.000000"),
        (i64::MAX, "9223372036854.775807"),
        (i64::MIN, "-9223372036854.775808"),
    ];

    for (micros, text) in cases {
        assert_eq!(
            Money::from_micros(micros, Currency::EUR).to_decimal_string(),
            text
        );
    }
}

#[test]
fn money_displays_with_its_currency_code() {
    assert_eq!(eur("12.3456").to_string(), "12.345600 EUR");
}

#[test]
fn money_serialises_as_a_decimal_string_and_a_currency_code() {
    let money = eur("12.3456");

    let json = serde_json::to_string(&money).unwrap();

    assert_eq!(json, r#"{"amount":"12.345600","currency":"EUR"}"#);
    assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
}

#[test]
fn deserialising_money_accepts_fewer_decimals_but_not_floats_or_junk() {
    let short: Money = serde_json::from_str(r#"{"amount":"25","currency":"USD"}"#).unwrap();
    let cases = [
        r#"{"amount":12.5,"currency":"EUR"}"#,
        r#"{"amount":"1e3","currency":"EUR"}"#,
        r#"{"amount":"1.1234567","currency":"EUR"}"#,
        r#"{"amount":"1.00","currency":"XXX"}"#,
        r#"{"amount":"1.00"}"#,
        r#"{"amount":"1.00","currency":"EUR","fee":"0.10"}"#,
    ];

    assert_eq!(short, Money::from_micros(25_000_000, Currency::USD));
    for json in cases {
        assert!(serde_json::from_str::<Money>(json).is_err(), "{json}");
    }
}

// ---------------------------------------------------------------------------------------------
// Minor units
// ---------------------------------------------------------------------------------------------

#[test]
fn minor_units_convert_both_ways_per_currency() {
    let cents = Money::from_minor_units(2_550, Currency::EUR).unwrap();
    let yen = Money::from_minor_units(500, Currency::JPY).unwrap();
    let fils = Money::from_minor_units(1_001, Currency::parse("KWD").unwrap()).unwrap();

    assert_eq!(cents, eur("25.50"));
    assert_eq!(cents.to_minor_units(), Ok(2_550));
    assert_eq!(yen.micros(), 500_000_000);
    assert_eq!(yen.to_minor_units(), Ok(500));
    assert_eq!(fils.to_decimal_string(), "1.001000");
    assert_eq!(fils.to_minor_units(), Ok(1_001));
}

#[test]
fn a_sub_cent_amount_has_no_exact_minor_units() {
    let metered = eur("0.013889");

    assert!(!metered.fits_minor_unit());
    assert_eq!(
        metered.to_minor_units(),
        Err(MoneyError::TooManyDecimals { max_decimals: 2 })
    );
}

#[test]
fn negative_whole_cents_fit_the_minor_unit() {
    let money = eur("-3.25");

    assert!(money.fits_minor_unit());
    assert_eq!(money.to_minor_units(), Ok(-325));
}

#[test]
fn minor_units_too_large_for_micro_units_overflow() {
    assert_eq!(
        Money::from_minor_units(i64::MAX, Currency::EUR),
        Err(MoneyError::AmountOverflow)
    );
    assert_eq!(
        Money::from_minor_units(i64::MIN / 10_000, Currency::EUR).map(|m| m.micros()),
        Ok(i64::MIN / 10_000 * 10_000)
    );
}

// ---------------------------------------------------------------------------------------------
// Arithmetic and predicates
// ---------------------------------------------------------------------------------------------

#[test]
fn adding_and_subtracting_in_one_currency_is_exact() {
    let sum = eur("10.50").checked_add(eur("0.000001")).unwrap();
    let difference = eur("10").checked_sub(eur("12.25")).unwrap();

    assert_eq!(sum.to_decimal_string(), "10.500001");
    assert_eq!(difference, eur("-2.25"));
}

#[test]
fn arithmetic_across_currencies_is_refused_naming_both() {
    let dollars = Money::from_micros(1, Currency::USD);
    let expected = MoneyError::CurrencyMismatch {
        expected: Currency::EUR,
        found: Currency::USD,
    };

    assert_eq!(eur("1").checked_add(dollars), Err(expected));
    assert_eq!(eur("1").checked_sub(dollars), Err(expected));
}

#[test]
fn arithmetic_past_the_i64_range_is_an_overflow_not_a_wrap() {
    let max = Money::from_micros(i64::MAX, Currency::EUR);
    let min = Money::from_micros(i64::MIN, Currency::EUR);
    let one = Money::from_micros(1, Currency::EUR);

    assert_eq!(max.checked_add(one), Err(MoneyError::AmountOverflow));
    assert_eq!(min.checked_sub(one), Err(MoneyError::AmountOverflow));
    assert_eq!(min.checked_neg(), Err(MoneyError::AmountOverflow));
    assert_eq!(max.checked_neg().unwrap().micros(), -i64::MAX);
}

#[test]
fn only_amounts_above_zero_are_positive() {
    assert_eq!(eur("0.000001").require_positive(), Ok(eur("0.000001")));
    assert_eq!(
        eur("0").require_positive(),
        Err(MoneyError::AmountNotPositive)
    );
    assert_eq!(
        eur("-1").require_positive(),
        Err(MoneyError::AmountNotPositive)
    );
    assert!(eur("0").is_zero() && !eur("0").is_positive() && !eur("0").is_negative());
    assert!(eur("-1").is_negative());
}

#[test]
fn every_money_error_has_its_pinned_code() {
    let cases = [
        (MoneyError::InvalidAmount, "invalid_amount"),
        (
            MoneyError::TooManyDecimals { max_decimals: 2 },
            "too_many_decimals",
        ),
        (MoneyError::AmountOverflow, "amount_overflow"),
        (
            MoneyError::CurrencyMismatch {
                expected: Currency::EUR,
                found: Currency::USD,
            },
            "currency_mismatch",
        ),
        (MoneyError::InvalidCurrency, "invalid_currency"),
        (MoneyError::UnknownCurrency, "unknown_currency"),
        (MoneyError::AmountNotPositive, "amount_not_positive"),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn error_messages_name_the_limit_or_the_currencies() {
    let decimals = MoneyError::TooManyDecimals { max_decimals: 2 }.to_string();
    let mismatch = MoneyError::CurrencyMismatch {
        expected: Currency::EUR,
        found: Currency::JPY,
    }
    .to_string();

    assert!(decimals.contains('2'), "{decimals}");
    assert!(
        mismatch.contains("EUR") && mismatch.contains("JPY"),
        "{mismatch}"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(Currency::ALL)
}

proptest! {
    #[test]
    fn formatting_then_parsing_gives_back_the_same_amount(micros in any::<i64>(), currency in currency()) {
        let money = Money::from_micros(micros, currency);

        let text = money.to_decimal_string();

        prop_assert_eq!(Money::from_decimal_str(&text, currency), Ok(money));
        prop_assert_eq!(text.split_once('.').map(|(_, fraction)| fraction.len()), Some(6));
    }

    #[test]
    fn parsing_then_formatting_pads_to_six_decimals(
        negative in any::<bool>(),
        whole in 0_u64..=9_223_372_036_853,
        fraction in "[0-9]{0,6}",
    ) {
        let sign = if negative { "-" } else { "" };
        let input = if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        };

        let money = Money::from_decimal_str(&input, Currency::EUR).unwrap();

        let expected = format!("{whole}.{fraction:0<6}");
        let rendered = money.to_decimal_string();
        prop_assert_eq!(rendered.trim_start_matches('-'), expected.as_str());
        prop_assert_eq!(rendered.starts_with('-'), money.is_negative());
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(input in "\\PC{0,40}") {
        let _ = Money::from_decimal_str(&input, Currency::EUR);
        let _ = Money::from_client_input(&input, Currency::JPY);
    }

    #[test]
    fn adding_and_subtracting_never_wrap(a in any::<i64>(), b in any::<i64>()) {
        let left = Money::from_micros(a, Currency::EUR);
        let right = Money::from_micros(b, Currency::EUR);
        let sum = i128::from(a) + i128::from(b);
        let difference = i128::from(a) - i128::from(b);

        let added = left.checked_add(right).map(|m| i128::from(m.micros()));
        let subtracted = left.checked_sub(right).map(|m| i128::from(m.micros()));

        let expect = |exact: i128| {
            if i64::try_from(exact).is_ok() { Ok(exact) } else { Err(MoneyError::AmountOverflow) }
        };
        prop_assert_eq!(added, expect(sum));
        prop_assert_eq!(subtracted, expect(difference));
    }

    #[test]
    fn minor_units_round_trip_whenever_they_fit(minor in any::<i64>(), currency in currency()) {
        match Money::from_minor_units(minor, currency) {
            Ok(money) => {
                prop_assert!(money.fits_minor_unit());
                prop_assert_eq!(money.to_minor_units(), Ok(minor));
            }
            Err(error) => prop_assert_eq!(error, MoneyError::AmountOverflow),
        }
    }

    #[test]
    fn money_round_trips_through_json(micros in any::<i64>(), currency in currency()) {
        let money = Money::from_micros(micros, currency);

        let json = serde_json::to_string(&money).unwrap();

        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    }
}

#[test]
fn rounding_to_the_minor_unit_takes_halves_away_from_zero() {
    let yen = |s: &str| Money::from_decimal_str(s, Currency::JPY).unwrap();

    assert_eq!(eur("1.004999").round_to_minor_unit(), Ok(eur("1.00")));
    assert_eq!(eur("1.005").round_to_minor_unit(), Ok(eur("1.01")));
    assert_eq!(eur("-1.005").round_to_minor_unit(), Ok(eur("-1.01")));
    assert_eq!(eur("-1.004999").round_to_minor_unit(), Ok(eur("-1.00")));
    assert_eq!(eur("7.00").round_to_minor_unit(), Ok(eur("7.00")));
    assert_eq!(yen("100.5").round_to_minor_unit(), Ok(yen("101")));
    assert_eq!(yen("100.499999").round_to_minor_unit(), Ok(yen("100")));
    assert_eq!(
        Money::from_micros(i64::MAX, Currency::EUR).round_to_minor_unit(),
        Err(MoneyError::AmountOverflow)
    );
}

#[test]
fn scaling_rounds_to_the_nearest_micro_unit_and_checks_overflow() {
    assert_eq!(eur("10.00").checked_scale(1, 3), Ok(eur("3.333333")));
    assert_eq!(eur("20.00").checked_scale(1, 3), Ok(eur("6.666667")));
    assert_eq!(eur("-20.00").checked_scale(1, 3), Ok(eur("-6.666667")));
    assert_eq!(eur("0.000001").checked_scale(1, 2), Ok(eur("0.000001")));
    assert_eq!(
        eur("5.00").checked_scale(1, 0),
        Err(MoneyError::AmountOverflow)
    );
    assert_eq!(
        Money::from_micros(i64::MAX, Currency::EUR).checked_scale(2, 1),
        Err(MoneyError::AmountOverflow)
    );
    assert_eq!(eur("2.50").checked_mul(4), Ok(eur("10.00")));
    assert_eq!(
        Money::from_micros(i64::MAX, Currency::EUR).checked_mul(2),
        Err(MoneyError::AmountOverflow)
    );
}

proptest! {
    #[test]
    fn rounding_moves_an_amount_by_at_most_half_a_minor_unit(
        micros in -1_000_000_000_000_i64..1_000_000_000_000,
        currency in currency(),
    ) {
        let money = Money::from_micros(micros, currency);

        let rounded = money.round_to_minor_unit().unwrap();

        let step = 10_i64.pow(u32::from(MONEY_DECIMALS - currency.minor_units()));
        prop_assert!(rounded.fits_minor_unit());
        prop_assert!((rounded.micros() - micros).abs() * 2 <= step);
    }
}
