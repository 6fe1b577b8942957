//! Given/when/then tests for the `Invoice` aggregate: one test per rule and per refusal, the
//! invoice number's grammar, and the pinned stored format of the events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::pricing::{
    quote, AppliedDiscount, BillingPeriod, DiscountValue, Offer, Percent, PeriodPrice, PriceTable,
    PricingRequest, TaxRate,
};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn given(events: Vec<InvoiceEvent>) -> AggregateTestExecutor<Invoice> {
    TestFramework::<Invoice>::with(()).given(events)
}

/// Every command happens at this instant: tests never read the clock.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
}

fn invoice_id() -> InvoiceId {
    InvoiceId::from_uuid(Uuid::from_u128(0x019a_0000_0000_7000_8000_0000_0000_0001))
}

fn account_id() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(0x019a_0000_0000_7000_8000_0000_0000_0002))
}

fn order_id() -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(0x019a_0000_0000_7000_8000_0000_0000_0003))
}

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

fn bill_to() -> BillTo {
    BillTo {
        name: PersonName::parse("Ada Lovelace").unwrap(),
        email: Email::parse("ada@example.com").unwrap(),
        country: Some(Country::parse("DE").unwrap()),
    }
}

/// A real quote: a 7.00 monthly plan for a quarter (5 % period discount), 10 % off with a code,
/// German VAT of 19 %.
fn sample_quote() -> Quote {
    let prices = PriceTable::new(
        eur("0.012"),
        eur("7.00"),
        PeriodPrice::Discount {
            percent: Percent::parse("5").unwrap(),
        },
        PeriodPrice::Discount {
            percent: Percent::parse("10").unwrap(),
        },
        PeriodPrice::Discount {
            percent: Percent::parse("15").unwrap(),
        },
    )
    .unwrap();
    quote(&PricingRequest {
        offer: Offer::Plan {
            name: "S-2",
            prices: &prices,
        },
        billing_period: BillingPeriod::Quarterly,
        discount: Some(AppliedDiscount {
            code: "WELCOME10".to_owned(),
            value: DiscountValue::PercentOff {
                percent: Percent::parse("10").unwrap(),
            },
        }),
        tax: TaxRate {
            country: Some(Country::parse("DE").unwrap()),
            rate: Percent::parse("19").unwrap(),
        },
    })
    .unwrap()
}

fn draft_with(quote: Quote) -> InvoiceCommand {
    InvoiceCommand::Draft {
        invoice_id: invoice_id(),
        account_id: account_id(),
        order_id: Some(order_id()),
        customer: bill_to(),
        quote: Box::new(quote),
        occurred_at: now(),
    }
}

fn draft() -> InvoiceCommand {
    draft_with(sample_quote())
}

fn drafted() -> InvoiceEvent {
    InvoiceEvent::InvoiceDrafted {
        invoice_id: invoice_id(),
        account_id: account_id(),
        order_id: Some(order_id()),
        bill_to: bill_to(),
        quote: Box::new(sample_quote()),
        drafted_at: now(),
    }
}

fn number(sequence: i64) -> InvoiceNumber {
    InvoiceNumber::new(2026, sequence).unwrap()
}

fn issue(sequence: i64) -> InvoiceCommand {
    InvoiceCommand::Issue {
        number: number(sequence),
        issued_at: now(),
    }
}

fn issued(sequence: i64) -> InvoiceEvent {
    InvoiceEvent::InvoiceIssued {
        number: number(sequence),
        issued_at: now(),
    }
}

fn pay(reference: &str) -> InvoiceCommand {
    InvoiceCommand::MarkPaid {
        payment_reference: reference.to_owned(),
        paid_at: now(),
    }
}

fn paid(reference: &str) -> InvoiceEvent {
    InvoiceEvent::InvoicePaid {
        payment_reference: reference.to_owned(),
        paid_at: now(),
    }
}

fn reason() -> Reason {
    Reason::parse("the order was cancelled").unwrap()
}

fn void() -> InvoiceCommand {
    InvoiceCommand::Void {
        reason: reason(),
        at: now(),
    }
}

fn voided() -> InvoiceEvent {
    InvoiceEvent::InvoiceVoided {
        reason: reason(),
        voided_at: now(),
    }
}

fn replay(events: Vec<InvoiceEvent>) -> Invoice {
    let mut invoice = Invoice::default();
    for event in events {
        invoice.apply(event);
    }
    invoice
}

// ---------------------------------------------------------------------------------------------
// The fixture itself
// ---------------------------------------------------------------------------------------------

#[test]
fn the_sample_quote_is_the_one_pricing_computes() {
    let quote = sample_quote();

    // 7.00 × 3 × 95 % = 19.95; 10 % off = 2.00 (1.995 rounded); VAT 19 % of 17.95 = 3.41.
    assert_eq!(quote.subtotal, eur("19.95"));
    assert_eq!(quote.discount, eur("2.00"));
    assert_eq!(quote.net, eur("17.95"));
    assert_eq!(quote.tax_amount, eur("3.41"));
    assert_eq!(quote.total, eur("21.36"));
}

// ---------------------------------------------------------------------------------------------
// Draft
// ---------------------------------------------------------------------------------------------

#[test]
fn a_final_quote_is_drafted() {
    given(vec![])
        .when(draft())
        .then_expect_events(vec![drafted()]);
}

#[test]
fn the_same_draft_again_is_a_no_op_whatever_the_status() {
    given(vec![drafted()])
        .when(draft())
        .then_expect_events(vec![]);
    given(vec![drafted(), issued(1), paid("order:1")])
        .when(draft())
        .then_expect_events(vec![]);
}

#[test]
fn the_same_draft_at_another_time_is_still_the_same_draft() {
    let mut later = draft();
    if let InvoiceCommand::Draft { occurred_at, .. } = &mut later {
        *occurred_at = now() + chrono::TimeDelta::hours(1);
    }

    given(vec![drafted()])
        .when(later)
        .then_expect_events(vec![]);
}

#[test]
fn a_different_draft_under_the_same_id_is_refused() {
    let mut other = sample_quote();
    other.lines[0].description = "another plan".to_owned();

    given(vec![drafted()])
        .when(draft_with(other))
        .then_expect_error(InvoiceError::AlreadyDrafted);
    let mut no_order = draft();
    if let InvoiceCommand::Draft { order_id, .. } = &mut no_order {
        *order_id = None;
    }
    given(vec![drafted()])
        .when(no_order)
        .then_expect_error(InvoiceError::AlreadyDrafted);
}

#[test]
fn a_quote_without_lines_is_refused() {
    let mut quote = sample_quote();
    quote.lines.clear();

    given(vec![])
        .when(draft_with(quote))
        .then_expect_error(InvoiceError::NoLines);
}

#[test]
fn an_amount_in_another_currency_is_refused() {
    let mut quote = sample_quote();
    quote.tax_amount = Money::from_decimal_str("3.41", Currency::USD).unwrap();

    given(vec![])
        .when(draft_with(quote))
        .then_expect_error(InvoiceError::CurrencyMismatch);
}

#[test]
fn amounts_finer_than_the_minor_unit_are_refused_but_unit_prices_may_be() {
    let mut quote = sample_quote();
    quote.lines[0].amount = eur("19.951");
    quote.subtotal = eur("19.951");

    given(vec![])
        .when(draft_with(quote))
        .then_expect_error(InvoiceError::NotInMinorUnits);

    let mut hourly = sample_quote();
    hourly.lines[0].unit_price = eur("6.6499");
    hourly.lines[0].quantity = 3;
    given(vec![])
        .when(draft_with(hourly))
        .then_expect_events(vec![InvoiceEvent::InvoiceDrafted {
            invoice_id: invoice_id(),
            account_id: account_id(),
            order_id: Some(order_id()),
            bill_to: bill_to(),
            quote: Box::new({
                let mut q = sample_quote();
                q.lines[0].unit_price = eur("6.6499");
                q.lines[0].quantity = 3;
                q
            }),
            drafted_at: now(),
        }]);
}

#[test]
fn a_negative_amount_is_refused() {
    let mut quote = sample_quote();
    // Adds up (19.95 + 2.00 = 21.95 net …) but gives money away through the discount.
    quote.discount = eur("-2.00");
    quote.net = eur("21.95");
    quote.tax_amount = eur("4.17");
    quote.total = eur("26.12");

    given(vec![])
        .when(draft_with(quote))
        .then_expect_error(InvoiceError::NegativeAmount);
}

#[test]
fn a_line_that_is_not_quantity_times_unit_price_is_refused() {
    let mut quote = sample_quote();
    quote.lines[0].quantity = 2;

    given(vec![])
        .when(draft_with(quote))
        .then_expect_error(InvoiceError::LineAmountMismatch);
}

#[test]
fn totals_that_do_not_add_up_are_refused() {
    let mut subtotal = sample_quote();
    subtotal.subtotal = eur("20.00");
    let mut net = sample_quote();
    net.net = eur("17.00");
    let mut total = sample_quote();
    total.total = eur("21.37");

    for quote in [subtotal, net, total] {
        given(vec![])
            .when(draft_with(quote))
            .then_expect_error(InvoiceError::TotalsDoNotAddUp);
    }
}

#[test]
fn a_tax_that_is_not_the_rate_of_the_net_is_refused() {
    let mut quote = sample_quote();
    quote.tax_amount = eur("3.40");
    quote.total = eur("21.35");

    given(vec![])
        .when(draft_with(quote))
        .then_expect_error(InvoiceError::TaxDoesNotMatchRate);
}

#[test]
fn nothing_but_a_draft_is_accepted_before_the_invoice_exists() {
    for command in [issue(1), pay("order:1"), void()] {
        given(vec![])
            .when(command)
            .then_expect_error(InvoiceError::NotDrafted);
    }
}

// ---------------------------------------------------------------------------------------------
// Issue
// ---------------------------------------------------------------------------------------------

#[test]
fn a_draft_is_issued_with_its_number() {
    given(vec![drafted()])
        .when(issue(42))
        .then_expect_events(vec![issued(42)]);
}

#[test]
fn issuing_again_with_the_same_number_is_a_no_op() {
    given(vec![drafted(), issued(42)])
        .when(issue(42))
        .then_expect_events(vec![]);
    given(vec![drafted(), issued(42), paid("order:1")])
        .when(issue(42))
        .then_expect_events(vec![]);
    given(vec![drafted(), issued(42), voided()])
        .when(issue(42))
        .then_expect_events(vec![]);
}

#[test]
fn issuing_again_with_another_number_is_refused() {
    given(vec![drafted(), issued(42)])
        .when(issue(43))
        .then_expect_error(InvoiceError::AlreadyNumbered);
    given(vec![drafted(), issued(42), voided()])
        .when(issue(43))
        .then_expect_error(InvoiceError::AlreadyNumbered);
}

#[test]
fn the_number_must_belong_to_the_year_of_issue() {
    let command = InvoiceCommand::Issue {
        number: InvoiceNumber::new(2025, 7).unwrap(),
        issued_at: now(),
    };

    given(vec![drafted()])
        .when(command)
        .then_expect_error(InvoiceError::NumberYearMismatch);
}

#[test]
fn the_year_of_issue_is_taken_in_utc() {
    // 23:30 on New Year's Eve in UTC is already 2027 in Berlin: the number is still of 2026.
    let late = Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap();
    let command = InvoiceCommand::Issue {
        number: InvoiceNumber::new(2026, 9).unwrap(),
        issued_at: late,
    };

    given(vec![drafted()])
        .when(command)
        .then_expect_events(vec![InvoiceEvent::InvoiceIssued {
            number: InvoiceNumber::new(2026, 9).unwrap(),
            issued_at: late,
        }]);
}

#[test]
fn a_voided_draft_is_never_numbered() {
    given(vec![drafted(), voided()])
        .when(issue(1))
        .then_expect_error(InvoiceError::InvoiceVoid);
}

// ---------------------------------------------------------------------------------------------
// MarkPaid
// ---------------------------------------------------------------------------------------------

#[test]
fn an_issued_invoice_is_paid_with_its_reference_trimmed() {
    given(vec![drafted(), issued(1)])
        .when(pay("  order:1 "))
        .then_expect_events(vec![paid("order:1")]);
}

#[test]
fn paying_again_with_the_same_reference_is_a_no_op() {
    given(vec![drafted(), issued(1), paid("order:1")])
        .when(pay("order:1"))
        .then_expect_events(vec![]);
}

#[test]
fn paying_again_with_another_reference_is_refused() {
    given(vec![drafted(), issued(1), paid("order:1")])
        .when(pay("order:2"))
        .then_expect_error(InvoiceError::AlreadyPaid);
}

#[test]
fn a_draft_cannot_be_paid() {
    given(vec![drafted()])
        .when(pay("order:1"))
        .then_expect_error(InvoiceError::NotIssued);
}

#[test]
fn a_void_invoice_cannot_be_paid() {
    given(vec![drafted(), issued(1), voided()])
        .when(pay("order:1"))
        .then_expect_error(InvoiceError::InvoiceVoid);
    given(vec![drafted(), voided()])
        .when(pay("order:1"))
        .then_expect_error(InvoiceError::InvoiceVoid);
}

#[test]
fn a_blank_long_or_control_character_payment_reference_is_refused() {
    let long = "r".repeat(PAYMENT_REFERENCE_MAX_CHARS + 1);
    for reference in ["", "   ", long.as_str(), "order\n1"] {
        given(vec![drafted(), issued(1)])
            .when(pay(reference))
            .then_expect_error(InvoiceError::InvalidPaymentReference);
    }
    let longest = "r".repeat(PAYMENT_REFERENCE_MAX_CHARS);
    given(vec![drafted(), issued(1)])
        .when(pay(&longest))
        .then_expect_events(vec![paid(&longest)]);
}

// ---------------------------------------------------------------------------------------------
// Void
// ---------------------------------------------------------------------------------------------

#[test]
fn a_draft_or_an_issued_invoice_is_voided() {
    given(vec![drafted()])
        .when(void())
        .then_expect_events(vec![voided()]);
    given(vec![drafted(), issued(1)])
        .when(void())
        .then_expect_events(vec![voided()]);
}

#[test]
fn voiding_a_void_invoice_is_a_no_op() {
    given(vec![drafted(), issued(1), voided()])
        .when(void())
        .then_expect_events(vec![]);
}

#[test]
fn a_paid_invoice_cannot_be_voided() {
    given(vec![drafted(), issued(1), paid("order:1")])
        .when(void())
        .then_expect_error(InvoiceError::PaidInvoiceCannotBeVoided);
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[test]
fn the_state_follows_the_life_cycle_and_a_void_invoice_keeps_its_number() {
    let empty = Invoice::default();
    assert!(!empty.is_drafted());
    assert_eq!(empty.status(), None);

    let draft = replay(vec![drafted()]);
    assert_eq!(draft.status(), Some(InvoiceStatus::Draft));
    assert_eq!(draft.number(), None);
    assert_eq!(draft.invoice_id(), Some(invoice_id()));
    assert_eq!(draft.account_id(), Some(account_id()));
    assert_eq!(draft.order_id(), Some(order_id()));
    assert_eq!(draft.quote(), Some(&sample_quote()));

    let paid_invoice = replay(vec![drafted(), issued(7), paid("order:1")]);
    assert_eq!(paid_invoice.status(), Some(InvoiceStatus::Paid));
    assert_eq!(paid_invoice.number(), Some(number(7)));
    assert_eq!(paid_invoice.payment_reference(), Some("order:1"));

    let void_invoice = replay(vec![drafted(), issued(8), voided()]);
    assert_eq!(void_invoice.status(), Some(InvoiceStatus::Void));
    assert_eq!(void_invoice.number(), Some(number(8)));
}

// ---------------------------------------------------------------------------------------------
// Invoice numbers
// ---------------------------------------------------------------------------------------------

#[test]
fn an_invoice_number_displays_and_parses_as_year_hyphen_six_digits() {
    let n = InvoiceNumber::new(2026, 42).unwrap();

    assert_eq!(n.to_string(), "2026-000042");
    assert_eq!(InvoiceNumber::parse("2026-000042").unwrap(), n);
    assert_eq!((n.year(), n.sequence()), (2026, 42));
    assert_eq!(
        InvoiceNumber::new(2027, 999_999).unwrap().to_string(),
        "2027-999999"
    );
}

#[test]
fn malformed_invoice_numbers_are_refused() {
    for input in [
        "",
        "2026",
        "2026-42",
        "2026-0000042",
        "26-000042",
        "2026_000042",
        "2026-00004a",
        "+026-000042",
        " 2026-000042",
        "2026-000042-1",
    ] {
        assert_eq!(
            InvoiceNumber::parse(input),
            Err(InvoiceNumberError::Malformed),
            "{input:?}"
        );
    }
}

#[test]
fn an_invoice_number_needs_a_four_digit_year_and_a_sequence_from_one() {
    assert_eq!(
        InvoiceNumber::parse("2026-000000"),
        Err(InvoiceNumberError::SequenceOutOfRange)
    );
    assert_eq!(
        InvoiceNumber::parse("0999-000001"),
        Err(InvoiceNumberError::YearOutOfRange)
    );
    assert_eq!(
        InvoiceNumber::new(2026, 1_000_000),
        Err(InvoiceNumberError::SequenceOutOfRange)
    );
    assert_eq!(
        InvoiceNumber::new(2026, -1),
        Err(InvoiceNumberError::SequenceOutOfRange)
    );
    assert_eq!(
        InvoiceNumber::new(10_000, 1),
        Err(InvoiceNumberError::YearOutOfRange)
    );
    assert_eq!(
        InvoiceNumberError::SequenceOutOfRange.code(),
        "invoice_sequence_out_of_range"
    );
}

#[test]
fn invoice_numbers_order_by_year_then_sequence() {
    let mut numbers = [number(10), InvoiceNumber::new(2025, 99).unwrap(), number(2)];
    numbers.sort();

    let shown: Vec<String> = numbers.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["2025-000099", "2026-000002", "2026-000010"]);
}

#[test]
fn an_invoice_number_serialises_as_its_string_and_refuses_bad_strings() {
    let json = serde_json::to_string(&number(42)).unwrap();
    assert_eq!(json, "\"2026-000042\"");
    assert_eq!(
        serde_json::from_str::<InvoiceNumber>(&json).unwrap(),
        number(42)
    );
    assert!(serde_json::from_str::<InvoiceNumber>("\"2026-0\"").is_err());
}

// ---------------------------------------------------------------------------------------------
// Stored format
// ---------------------------------------------------------------------------------------------

fn one_of_each() -> Vec<InvoiceEvent> {
    vec![drafted(), issued(42), paid("order:1"), voided()]
}

#[test]
fn every_event_type_name_and_version_is_pinned() {
    let names: Vec<String> = one_of_each().iter().map(DomainEvent::event_type).collect();

    for event in one_of_each() {
        assert_eq!(event.event_version(), "1", "{}", event.event_type());
    }
    assert_eq!(
        names,
        [
            "InvoiceDrafted",
            "InvoiceIssued",
            "InvoicePaid",
            "InvoiceVoided"
        ]
    );
    assert_eq!(INVOICE_EVENT_TYPES, names.as_slice());
    assert_eq!(<Invoice as Aggregate>::TYPE, "invoice");
}

#[test]
fn status_names_are_pinned_because_the_read_model_and_the_wire_use_them() {
    let names: Vec<&str> = InvoiceStatus::ALL
        .iter()
        .map(InvoiceStatus::as_str)
        .collect();

    assert_eq!(names, ["draft", "issued", "paid", "void"]);
    for status in InvoiceStatus::ALL {
        assert_eq!(InvoiceStatus::from_name(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!(status.as_str())
        );
    }
    assert_eq!(InvoiceStatus::from_name("Paid"), None);
}

#[test]
fn every_event_keeps_its_json_shape_and_round_trips() {
    let at = "2026-03-01T09:30:00Z";
    let money = |amount: &str| serde_json::json!({"amount": amount, "currency": "EUR"});
    let expected = [
        serde_json::json!({"InvoiceDrafted": {
            "invoice_id": "019a0000-0000-7000-8000-000000000001",
            "account_id": "019a0000-0000-7000-8000-000000000002",
            "order_id": "019a0000-0000-7000-8000-000000000003",
            "bill_to": {"name": "Ada Lovelace", "email": "ada@example.com", "country": "DE"},
            "quote": {
                "currency": "EUR",
                "billing_period": "quarterly",
                "lines": [{
                    "description": "S-2, 3 months", "quantity": 1,
                    "unit_price": money("19.950000"), "amount": money("19.950000"),
                }],
                "subtotal": money("19.950000"),
                "discount_code": "WELCOME10",
                "discount": money("2.000000"),
                "net": money("17.950000"),
                "tax": {"country": "DE", "rate": 1900},
                "tax_amount": money("3.410000"),
                "total": money("21.360000"),
            },
            "drafted_at": at,
        }}),
        serde_json::json!({"InvoiceIssued": {"number": "2026-000042", "issued_at": at}}),
        serde_json::json!({"InvoicePaid": {"payment_reference": "order:1", "paid_at": at}}),
        serde_json::json!({"InvoiceVoided": {"reason": "the order was cancelled", "voided_at": at}}),
    ];

    for (event, json) in one_of_each().into_iter().zip(expected) {
        assert_eq!(serde_json::to_value(&event).unwrap(), json);
        let back: InvoiceEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn every_refusal_has_a_stable_code() {
    use InvoiceError as E;
    let table = [
        (E::NotDrafted, "invoice_not_found"),
        (E::AlreadyDrafted, "invoice_already_exists"),
        (E::NoLines, "invoice_without_lines"),
        (E::CurrencyMismatch, "currency_mismatch"),
        (E::NotInMinorUnits, "amount_not_in_minor_units"),
        (E::NegativeAmount, "amount_negative"),
        (E::LineAmountMismatch, "line_amount_mismatch"),
        (E::TotalsDoNotAddUp, "totals_do_not_add_up"),
        (E::TaxDoesNotMatchRate, "tax_does_not_match_rate"),
        (E::AlreadyNumbered, "invoice_already_numbered"),
        (E::NumberYearMismatch, "number_year_mismatch"),
        (E::NotIssued, "invoice_not_issued"),
        (E::InvoiceVoid, "invoice_void"),
        (E::AlreadyPaid, "invoice_already_paid"),
        (E::PaidInvoiceCannotBeVoided, "invoice_paid"),
        (E::InvalidPaymentReference, "invalid_payment_reference"),
    ];
    for (error, code) in table {
        assert_eq!(error.code(), code, "{error:?}");
    }
}
