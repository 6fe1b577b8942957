//! Given/when/then tests for the `DiscountCode` aggregate: one test per rule and per refusal, the
//! check shared by quotes and redemptions, and the pinned stored format of its events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use super::*;
use crate::pricing::Percent;
use crate::values::Money;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const SERVICES: DiscountServices = DiscountServices {
    settlement: Currency::EUR,
};

fn given(events: Vec<DiscountEvent>) -> AggregateTestExecutor<DiscountCode> {
    TestFramework::<DiscountCode>::with(SERVICES).given(events)
}

/// Every command and event in these tests happens at this instant unless it says otherwise.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
}

fn code() -> CodeText {
    CodeText::parse("SPRING-25").unwrap()
}

fn account(n: u128) -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0000_0100 + n,
    ))
}

fn order(n: u128) -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0000_0200 + n,
    ))
}

fn plan(n: u128) -> PlanId {
    PlanId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0000_0300 + n,
    ))
}

fn percent(text: &str) -> DiscountValue {
    DiscountValue::PercentOff {
        percent: Percent::parse(text).unwrap(),
    }
}

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

fn terms() -> DiscountTerms {
    DiscountTerms::new(percent("15"))
}

fn create_with(terms: DiscountTerms) -> DiscountCommand {
    DiscountCommand::Create {
        code: code(),
        terms,
        occurred_at: now(),
    }
}

fn created_with(terms: DiscountTerms) -> DiscountEvent {
    DiscountEvent::DiscountCodeCreated {
        code: code(),
        terms,
        created_at: now(),
    }
}

fn update(patch: TermsPatch) -> DiscountCommand {
    DiscountCommand::Update {
        patch,
        occurred_at: now(),
    }
}

fn updated(terms: DiscountTerms) -> DiscountEvent {
    DiscountEvent::DiscountCodeUpdated {
        terms,
        updated_at: now(),
    }
}

fn request(account_n: u128) -> RedemptionRequest {
    RedemptionRequest {
        account_id: account(account_n),
        plan_id: Some(plan(1)),
        billing_period: BillingPeriod::Monthly,
        first_order: true,
        at: now(),
    }
}

fn redeem_with(order_n: u128, request: RedemptionRequest) -> DiscountCommand {
    DiscountCommand::Redeem {
        order_id: order(order_n),
        account_id: request.account_id,
        plan_id: request.plan_id,
        billing_period: request.billing_period,
        first_order: request.first_order,
        at: request.at,
    }
}

fn redeem(order_n: u128, account_n: u128) -> DiscountCommand {
    redeem_with(order_n, request(account_n))
}

fn redeemed_with(order_n: u128, request: RedemptionRequest, value: DiscountValue) -> DiscountEvent {
    DiscountEvent::DiscountRedeemed {
        order_id: order(order_n),
        account_id: request.account_id,
        plan_id: request.plan_id,
        billing_period: request.billing_period,
        value,
        redeemed_at: request.at,
    }
}

fn redeemed(order_n: u128, account_n: u128) -> DiscountEvent {
    redeemed_with(order_n, request(account_n), percent("15"))
}

fn release(order_n: u128) -> DiscountCommand {
    DiscountCommand::Release {
        order_id: order(order_n),
        at: now(),
    }
}

fn released(order_n: u128, account_n: u128) -> DiscountEvent {
    DiscountEvent::RedemptionReleased {
        order_id: order(order_n),
        account_id: account(account_n),
        released_at: now(),
    }
}

fn replay(events: Vec<DiscountEvent>) -> DiscountCode {
    let mut code = DiscountCode::default();
    for event in events {
        code.apply(event);
    }
    code
}

/// The state after creating a code with `terms` and then `more` events.
fn state(terms: DiscountTerms, more: Vec<DiscountEvent>) -> DiscountCode {
    let mut events = vec![created_with(terms)];
    events.extend(more);
    replay(events)
}

// ---------------------------------------------------------------------------------------------
// The code text and the id
// ---------------------------------------------------------------------------------------------

#[test]
fn a_code_is_read_case_insensitively_trimmed_and_kept_in_upper_case() {
    assert_eq!(
        CodeText::parse("  spring-25_eu ").unwrap().as_str(),
        "SPRING-25_EU"
    );
    assert_eq!(CodeText::parse("ABC").unwrap().as_str(), "ABC");
    assert_eq!(
        CodeText::parse(&"A".repeat(CODE_MAX_CHARS))
            .unwrap()
            .as_str(),
        "A".repeat(CODE_MAX_CHARS)
    );
}

#[test]
fn a_code_of_the_wrong_length_or_with_other_characters_is_refused() {
    for input in [
        "",
        "AB",
        &"A".repeat(CODE_MAX_CHARS + 1),
        "SPRING 25",
        "SPRING.25",
        "SPRÜNG",
        "50%OFF",
        "A\u{0}BC",
    ] {
        assert_eq!(
            CodeText::parse(input),
            Err(DiscountError::InvalidCode),
            "{input:?}"
        );
    }
}

#[test]
fn a_code_deserialises_only_through_its_rules() {
    let parsed: CodeText = serde_json::from_str("\"summer\"").unwrap();
    assert_eq!(parsed.as_str(), "SUMMER");
    assert!(serde_json::from_str::<CodeText>("\"no\"").is_err());
}

#[test]
fn the_id_of_a_code_is_the_same_whatever_case_it_was_typed_in() {
    let upper = id_of(&CodeText::parse("SPRING-25").unwrap());
    let lower = id_of(&CodeText::parse("spring-25").unwrap());
    let other = id_of(&CodeText::parse("SPRING-26").unwrap());

    assert_eq!(upper, lower);
    assert_ne!(upper, other);
    assert_eq!(upper.as_uuid().get_version_num(), 5);
}

#[test]
fn the_id_of_a_code_is_pinned() {
    // A stored format: changing the namespace would orphan every code's stream.
    assert_eq!(
        id_of(&CodeText::parse("SPRING-25").unwrap()).as_uuid(),
        Uuid::new_v5(&DISCOUNT_CODE_NAMESPACE, b"SPRING-25")
    );
    assert_eq!(
        DISCOUNT_CODE_NAMESPACE.to_string(),
        "3d1f9a52-7c64-4e0b-8b2d-5e96c1a704f3"
    );
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

#[test]
fn creating_a_code_records_it_with_its_terms() {
    given(vec![])
        .when(create_with(terms()))
        .then_expect_events(vec![created_with(terms())]);
}

#[test]
fn creating_a_code_that_exists_is_refused_as_taken() {
    given(vec![created_with(terms())])
        .when(create_with(terms()))
        .then_expect_error(DiscountError::CodeTaken);
}

#[test]
fn an_amount_off_in_the_settlement_currency_is_accepted() {
    let amount_off = DiscountTerms::new(DiscountValue::AmountOff {
        amount: eur("10.00"),
    });
    given(vec![])
        .when(create_with(amount_off.clone()))
        .then_expect_events(vec![created_with(amount_off)]);
}

#[test]
fn a_percentage_of_zero_is_refused() {
    given(vec![])
        .when(create_with(DiscountTerms::new(percent("0"))))
        .then_expect_error(DiscountError::InvalidPercentOff);
}

#[test]
fn a_hundred_percent_off_is_accepted() {
    given(vec![])
        .when(create_with(DiscountTerms::new(percent("100"))))
        .then_expect_events(vec![created_with(DiscountTerms::new(percent("100")))]);
}

#[test]
fn an_amount_off_of_zero_or_less_or_finer_than_a_cent_is_refused() {
    for amount in ["0", "-1.00", "0.001"] {
        given(vec![])
            .when(create_with(DiscountTerms::new(DiscountValue::AmountOff {
                amount: eur(amount),
            })))
            .then_expect_error(DiscountError::InvalidAmountOff);
    }
}

#[test]
fn an_amount_off_in_another_currency_is_refused() {
    let usd = Money::from_decimal_str("5.00", Currency::USD).unwrap();
    given(vec![])
        .when(create_with(DiscountTerms::new(DiscountValue::AmountOff {
            amount: usd,
        })))
        .then_expect_error(DiscountError::CurrencyMismatch {
            expected: Currency::EUR,
            found: Currency::USD,
        });
}

#[test]
fn a_validity_window_that_ends_before_it_starts_is_refused() {
    for until in [now(), now() - TimeDelta::days(1)] {
        let window = DiscountTerms {
            valid_from: Some(now()),
            valid_until: Some(until),
            ..terms()
        };
        given(vec![])
            .when(create_with(window))
            .then_expect_error(DiscountError::InvalidValidity);
    }
}

#[test]
fn limits_of_zero_are_refused() {
    given(vec![])
        .when(create_with(DiscountTerms {
            max_redemptions: Some(0),
            ..terms()
        }))
        .then_expect_error(DiscountError::InvalidMaxRedemptions);
    given(vec![])
        .when(create_with(DiscountTerms {
            max_per_account: Some(0),
            ..terms()
        }))
        .then_expect_error(DiscountError::InvalidMaxPerAccount);
}

#[test]
fn a_code_naming_more_plans_than_the_limit_is_refused() {
    let many = DiscountTerms {
        plan_ids: (0..=MAX_PLAN_IDS as u128).map(plan).collect(),
        ..terms()
    };
    given(vec![])
        .when(create_with(many))
        .then_expect_error(DiscountError::TooManyPlans);
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

#[test]
fn updating_some_terms_records_the_whole_terms_after_the_change() {
    let patch = TermsPatch {
        value: Some(percent("20")),
        max_redemptions: Some(Some(50)),
        billing_periods: Some([BillingPeriod::Annual].into()),
        ..TermsPatch::default()
    };
    let expected = DiscountTerms {
        value: percent("20"),
        max_redemptions: Some(50),
        billing_periods: [BillingPeriod::Annual].into(),
        ..terms()
    };
    given(vec![created_with(terms())])
        .when(update(patch))
        .then_expect_events(vec![updated(expected)]);
}

#[test]
fn an_update_can_remove_a_limit() {
    let limited = DiscountTerms {
        max_redemptions: Some(5),
        valid_until: Some(now()),
        ..terms()
    };
    let patch = TermsPatch {
        max_redemptions: Some(None),
        valid_until: Some(None),
        ..TermsPatch::default()
    };
    given(vec![created_with(limited)])
        .when(update(patch))
        .then_expect_events(vec![updated(terms())]);
}

#[test]
fn deactivating_a_code_is_an_update() {
    let patch = TermsPatch {
        active: Some(false),
        ..TermsPatch::default()
    };
    given(vec![created_with(terms())])
        .when(update(patch))
        .then_expect_events(vec![updated(DiscountTerms {
            active: false,
            ..terms()
        })]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    let same = TermsPatch {
        value: Some(percent("15")),
        active: Some(true),
        ..TermsPatch::default()
    };
    given(vec![created_with(terms())])
        .when(update(same))
        .then_expect_events(vec![]);
    given(vec![created_with(terms())])
        .when(update(TermsPatch::default()))
        .then_expect_events(vec![]);
}

#[test]
fn updating_a_code_that_does_not_exist_is_refused() {
    given(vec![])
        .when(update(TermsPatch {
            active: Some(false),
            ..TermsPatch::default()
        }))
        .then_expect_error(DiscountError::NotFound);
}

#[test]
fn an_update_that_breaks_the_terms_is_refused() {
    let window = DiscountTerms {
        valid_until: Some(now()),
        ..terms()
    };
    given(vec![created_with(window)])
        .when(update(TermsPatch {
            valid_from: Some(Some(now() + TimeDelta::hours(1))),
            ..TermsPatch::default()
        }))
        .then_expect_error(DiscountError::InvalidValidity);
    given(vec![created_with(terms())])
        .when(update(TermsPatch {
            value: Some(percent("0")),
            ..TermsPatch::default()
        }))
        .then_expect_error(DiscountError::InvalidPercentOff);
}

#[test]
fn lowering_max_redemptions_below_the_redemptions_in_use_is_refused() {
    given(vec![
        created_with(terms()),
        redeemed(1, 1),
        redeemed(2, 2),
        redeemed(3, 3),
    ])
    .when(update(TermsPatch {
        max_redemptions: Some(Some(2)),
        ..TermsPatch::default()
    }))
    .then_expect_error(DiscountError::MaxRedemptionsBelowRedeemed);
}

#[test]
fn lowering_max_redemptions_to_exactly_the_redemptions_in_use_is_accepted() {
    given(vec![created_with(terms()), redeemed(1, 1), redeemed(2, 2)])
        .when(update(TermsPatch {
            max_redemptions: Some(Some(2)),
            ..TermsPatch::default()
        }))
        .then_expect_events(vec![updated(DiscountTerms {
            max_redemptions: Some(2),
            ..terms()
        })]);
}

#[test]
fn released_redemptions_do_not_hold_max_redemptions_up() {
    given(vec![
        created_with(terms()),
        redeemed(1, 1),
        redeemed(2, 2),
        released(1, 1),
    ])
    .when(update(TermsPatch {
        max_redemptions: Some(Some(1)),
        ..TermsPatch::default()
    }))
    .then_expect_events(vec![updated(DiscountTerms {
        max_redemptions: Some(1),
        ..terms()
    })]);
}

#[test]
fn lowering_max_per_account_below_what_an_account_uses_is_refused() {
    given(vec![created_with(terms()), redeemed(1, 1), redeemed(2, 1)])
        .when(update(TermsPatch {
            max_per_account: Some(Some(1)),
            ..TermsPatch::default()
        }))
        .then_expect_error(DiscountError::MaxPerAccountBelowRedeemed);
}

// ---------------------------------------------------------------------------------------------
// The check: one test per rule
// ---------------------------------------------------------------------------------------------

#[test]
fn an_eligible_request_gets_the_codes_value() {
    assert_eq!(state(terms(), vec![]).check(&request(1)), Ok(percent("15")));
}

#[test]
fn a_code_that_was_never_created_is_not_found() {
    assert_eq!(
        DiscountCode::default().check(&request(1)),
        Err(DiscountError::NotFound)
    );
}

#[test]
fn an_inactive_code_is_refused() {
    let inactive = DiscountTerms {
        active: false,
        ..terms()
    };
    assert_eq!(
        state(inactive, vec![]).check(&request(1)),
        Err(DiscountError::Inactive)
    );
}

#[test]
fn a_code_is_refused_before_its_window_opens_and_accepted_from_its_first_instant() {
    let window = DiscountTerms {
        valid_from: Some(now()),
        ..terms()
    };
    let code = state(window, vec![]);
    let early = RedemptionRequest {
        at: now() - TimeDelta::seconds(1),
        ..request(1)
    };

    assert_eq!(code.check(&early), Err(DiscountError::NotYetValid));
    assert_eq!(code.check(&request(1)), Ok(percent("15")));
}

#[test]
fn a_code_is_refused_from_the_instant_its_window_closes() {
    let window = DiscountTerms {
        valid_until: Some(now()),
        ..terms()
    };
    let code = state(window, vec![]);
    let last_moment = RedemptionRequest {
        at: now() - TimeDelta::seconds(1),
        ..request(1)
    };

    assert_eq!(code.check(&request(1)), Err(DiscountError::Expired));
    assert_eq!(code.check(&last_moment), Ok(percent("15")));
}

#[test]
fn a_code_for_some_plans_refuses_other_plans_and_custom_configurations() {
    let for_plan = DiscountTerms {
        plan_ids: [plan(1), plan(2)].into(),
        ..terms()
    };
    let code = state(for_plan, vec![]);
    let other_plan = RedemptionRequest {
        plan_id: Some(plan(3)),
        ..request(1)
    };
    let custom = RedemptionRequest {
        plan_id: None,
        ..request(1)
    };

    assert_eq!(code.check(&request(1)), Ok(percent("15")));
    assert_eq!(code.check(&other_plan), Err(DiscountError::NotForPlan));
    assert_eq!(code.check(&custom), Err(DiscountError::NotForPlan));
}

#[test]
fn a_code_for_any_plan_accepts_a_custom_configuration() {
    let custom = RedemptionRequest {
        plan_id: None,
        ..request(1)
    };
    assert_eq!(state(terms(), vec![]).check(&custom), Ok(percent("15")));
}

#[test]
fn a_code_for_some_billing_periods_refuses_the_others() {
    let yearly = DiscountTerms {
        billing_periods: [BillingPeriod::Annual, BillingPeriod::Semiannual].into(),
        ..terms()
    };
    let code = state(yearly, vec![]);
    let annual = RedemptionRequest {
        billing_period: BillingPeriod::Annual,
        ..request(1)
    };

    assert_eq!(code.check(&annual), Ok(percent("15")));
    assert_eq!(code.check(&request(1)), Err(DiscountError::NotForPeriod));
}

#[test]
fn a_first_order_code_refuses_later_orders() {
    let first_only = DiscountTerms {
        first_order_only: true,
        ..terms()
    };
    let code = state(first_only, vec![]);
    let later = RedemptionRequest {
        first_order: false,
        ..request(1)
    };

    assert_eq!(code.check(&request(1)), Ok(percent("15")));
    assert_eq!(code.check(&later), Err(DiscountError::FirstOrderOnly));
}

#[test]
fn a_code_whose_redemptions_are_all_in_use_is_exhausted() {
    let two = DiscountTerms {
        max_redemptions: Some(2),
        ..terms()
    };
    let one_used = state(two.clone(), vec![redeemed(1, 1)]);
    let both_used = state(two, vec![redeemed(1, 1), redeemed(2, 2)]);

    assert_eq!(one_used.check(&request(3)), Ok(percent("15")));
    assert_eq!(both_used.check(&request(3)), Err(DiscountError::Exhausted));
}

#[test]
fn an_account_that_used_its_share_is_refused_while_others_are_not() {
    let once_each = DiscountTerms {
        max_per_account: Some(1),
        ..terms()
    };
    let code = state(once_each, vec![redeemed(1, 1)]);

    assert_eq!(code.check(&request(1)), Err(DiscountError::AccountLimit));
    assert_eq!(code.check(&request(2)), Ok(percent("15")));
}

#[test]
fn a_released_redemption_no_longer_counts_toward_either_limit() {
    let once = DiscountTerms {
        max_redemptions: Some(1),
        max_per_account: Some(1),
        ..terms()
    };
    let code = state(once, vec![redeemed(1, 1), released(1, 1)]);

    assert_eq!(code.check(&request(1)), Ok(percent("15")));
    assert_eq!(code.active_redemptions(), 0);
    assert_eq!(code.active_redemptions_of(&account(1)), 0);
}

/// A change that lifts one rule of a code's terms.
type Relaxation = fn(&mut DiscountTerms);

#[test]
fn the_first_broken_rule_in_the_documented_order_is_reported() {
    // Terms that break every rule for `later`; relaxing them one at a time, in the documented
    // order, reports each next rule in turn.
    let later = RedemptionRequest {
        first_order: false,
        ..request(1)
    };
    let mut strict = DiscountTerms {
        active: false,
        valid_from: Some(now() + TimeDelta::days(1)),
        valid_until: Some(now() + TimeDelta::days(2)),
        plan_ids: [plan(9)].into(),
        billing_periods: [BillingPeriod::Annual].into(),
        first_order_only: true,
        max_redemptions: Some(2),
        max_per_account: Some(1),
        ..terms()
    };
    let mut code = state(strict.clone(), vec![redeemed(1, 1), redeemed(2, 2)]);
    let relax: [(Relaxation, DiscountError); 7] = [
        (|t| t.active = true, DiscountError::NotYetValid),
        (
            |t| {
                t.valid_from = Some(now() - TimeDelta::days(2));
                t.valid_until = Some(now() - TimeDelta::days(1));
            },
            DiscountError::Expired,
        ),
        (|t| t.valid_until = None, DiscountError::NotForPlan),
        (|t| t.plan_ids.clear(), DiscountError::NotForPeriod),
        (|t| t.billing_periods.clear(), DiscountError::FirstOrderOnly),
        (|t| t.first_order_only = false, DiscountError::Exhausted),
        (|t| t.max_redemptions = None, DiscountError::AccountLimit),
    ];
    assert_eq!(code.check(&later), Err(DiscountError::Inactive));
    for (change, next) in relax {
        change(&mut strict);
        code.apply(updated(strict.clone()));
        assert_eq!(code.check(&later), Err(next), "{strict:?}");
    }
    strict.max_per_account = None;
    code.apply(updated(strict));
    assert_eq!(code.check(&later), Ok(percent("15")));
}

// ---------------------------------------------------------------------------------------------
// Redeem and release
// ---------------------------------------------------------------------------------------------

#[test]
fn redeeming_an_eligible_code_records_the_redemption_with_its_value() {
    given(vec![created_with(terms())])
        .when(redeem(1, 1))
        .then_expect_events(vec![redeemed(1, 1)]);
}

#[test]
fn redeeming_records_the_value_of_the_terms_at_that_moment() {
    let amount_off = DiscountValue::AmountOff {
        amount: eur("5.00"),
    };
    given(vec![
        created_with(terms()),
        updated(DiscountTerms::new(amount_off)),
    ])
    .when(redeem(1, 1))
    .then_expect_events(vec![redeemed_with(1, request(1), amount_off)]);
}

#[test]
fn redeeming_is_refused_with_the_rule_the_check_reports() {
    let later = RedemptionRequest {
        first_order: false,
        ..request(1)
    };
    given(vec![created_with(DiscountTerms {
        first_order_only: true,
        ..terms()
    })])
    .when(redeem_with(1, later))
    .then_expect_error(DiscountError::FirstOrderOnly);
    given(vec![])
        .when(redeem(1, 1))
        .then_expect_error(DiscountError::NotFound);
}

#[test]
fn redeeming_the_same_order_again_records_nothing() {
    given(vec![created_with(terms()), redeemed(1, 1)])
        .when(redeem(1, 1))
        .then_expect_events(vec![]);
}

#[test]
fn the_same_order_again_records_nothing_even_when_the_code_ran_out_or_was_switched_off() {
    let once = DiscountTerms {
        max_redemptions: Some(1),
        ..terms()
    };
    given(vec![
        created_with(once.clone()),
        redeemed(1, 1),
        updated(DiscountTerms {
            active: false,
            ..once
        }),
    ])
    .when(redeem(1, 1))
    .then_expect_events(vec![]);
}

#[test]
fn the_last_place_goes_to_one_order_and_the_next_is_exhausted() {
    let once = DiscountTerms {
        max_redemptions: Some(1),
        ..terms()
    };
    given(vec![created_with(once), redeemed(1, 1)])
        .when(redeem(2, 2))
        .then_expect_error(DiscountError::Exhausted);
}

#[test]
fn releasing_an_active_redemption_records_it_with_the_redeeming_account() {
    given(vec![created_with(terms()), redeemed(1, 7)])
        .when(release(1))
        .then_expect_events(vec![released(1, 7)]);
}

#[test]
fn releasing_an_unknown_or_already_released_order_records_nothing() {
    given(vec![created_with(terms())])
        .when(release(1))
        .then_expect_events(vec![]);
    given(vec![created_with(terms()), redeemed(1, 1), released(1, 1)])
        .when(release(1))
        .then_expect_events(vec![]);
}

#[test]
fn releasing_on_a_code_that_does_not_exist_is_refused() {
    given(vec![])
        .when(release(1))
        .then_expect_error(DiscountError::NotFound);
}

#[test]
fn a_released_place_can_be_taken_by_a_new_order() {
    let once = DiscountTerms {
        max_redemptions: Some(1),
        ..terms()
    };
    given(vec![created_with(once), redeemed(1, 1), released(1, 1)])
        .when(redeem(2, 2))
        .then_expect_events(vec![redeemed(2, 2)]);
}

#[test]
fn the_state_keeps_only_active_orders_and_counts_per_account() {
    let code = state(
        terms(),
        vec![
            redeemed(1, 1),
            redeemed(2, 1),
            redeemed(3, 2),
            released(3, 2),
            released(1, 1),
        ],
    );

    assert_eq!(code.active_redemptions(), 1);
    assert_eq!(code.active_redemptions_of(&account(1)), 1);
    assert_eq!(code.active_redemptions_of(&account(2)), 0);
    assert!(code.is_redeemed_by(&order(2)));
    assert!(!code.is_redeemed_by(&order(1)));
    let stored = serde_json::to_value(&code).unwrap();
    assert_eq!(
        stored["created"]["active_orders"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        stored["created"]["per_account"].as_object().unwrap().len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Stable codes and stored format
// ---------------------------------------------------------------------------------------------

/// One event of every type, in [`DISCOUNT_EVENT_TYPES`] order.
fn one_of_each() -> Vec<DiscountEvent> {
    vec![
        created_with(terms()),
        updated(terms()),
        redeemed(1, 1),
        released(1, 1),
    ]
}

#[test]
fn every_event_has_its_pinned_name_and_version() {
    let names: Vec<String> = one_of_each().iter().map(DomainEvent::event_type).collect();
    assert_eq!(names, DISCOUNT_EVENT_TYPES);
    for event in one_of_each() {
        assert_eq!(event.event_version(), "1");
    }
}

#[test]
fn the_stored_form_of_the_events_is_pinned() {
    let created = serde_json::to_value(created_with(DiscountTerms {
        valid_until: Some(now()),
        max_redemptions: Some(10),
        plan_ids: [plan(1)].into(),
        billing_periods: [BillingPeriod::Monthly].into(),
        ..terms()
    }))
    .unwrap();
    assert_eq!(
        created,
        serde_json::json!({"DiscountCodeCreated": {
            "code": "SPRING-25",
            "terms": {
                "value": {"kind": "percent_off", "percent": 1500},
                "valid_from": null,
                "valid_until": "2026-03-01T09:30:00Z",
                "max_redemptions": 10,
                "max_per_account": null,
                "plan_ids": [plan(1).to_string()],
                "billing_periods": ["monthly"],
                "first_order_only": false,
                "active": true
            },
            "created_at": "2026-03-01T09:30:00Z"
        }})
    );
    let redeemed = serde_json::to_value(redeemed_with(
        1,
        request(1),
        DiscountValue::AmountOff {
            amount: eur("5.00"),
        },
    ))
    .unwrap();
    assert_eq!(
        redeemed,
        serde_json::json!({"DiscountRedeemed": {
            "order_id": order(1).to_string(),
            "account_id": account(1).to_string(),
            "plan_id": plan(1).to_string(),
            "billing_period": "monthly",
            "value": {"kind": "amount_off", "amount": {"amount": "5.000000", "currency": "EUR"}},
            "redeemed_at": "2026-03-01T09:30:00Z"
        }})
    );
    for event in one_of_each() {
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<DiscountEvent>(&json).unwrap(), event);
    }
}

#[test]
fn every_discount_error_has_its_pinned_code() {
    let cases = [
        (DiscountError::InvalidCode, "invalid_discount_code"),
        (DiscountError::InvalidPercentOff, "invalid_percent_off"),
        (DiscountError::InvalidAmountOff, "invalid_amount_off"),
        (
            DiscountError::CurrencyMismatch {
                expected: Currency::EUR,
                found: Currency::USD,
            },
            "currency_mismatch",
        ),
        (DiscountError::InvalidValidity, "invalid_validity"),
        (
            DiscountError::InvalidMaxRedemptions,
            "invalid_max_redemptions",
        ),
        (
            DiscountError::InvalidMaxPerAccount,
            "invalid_max_per_account",
        ),
        (DiscountError::TooManyPlans, "too_many_plans"),
        (DiscountError::CodeTaken, "code_taken"),
        (
            DiscountError::MaxRedemptionsBelowRedeemed,
            "max_redemptions_below_redeemed",
        ),
        (
            DiscountError::MaxPerAccountBelowRedeemed,
            "max_per_account_below_redeemed",
        ),
        (DiscountError::NotFound, "discount_code_not_found"),
        (DiscountError::Inactive, "discount_code_inactive"),
        (DiscountError::NotYetValid, "discount_code_not_yet_valid"),
        (DiscountError::Expired, "discount_code_expired"),
        (DiscountError::Exhausted, "discount_code_exhausted"),
        (DiscountError::AccountLimit, "discount_code_account_limit"),
        (DiscountError::NotForPlan, "discount_code_not_for_plan"),
        (DiscountError::NotForPeriod, "discount_code_not_for_period"),
        (
            DiscountError::FirstOrderOnly,
            "discount_code_first_order_only",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
        assert_eq!(
            error.is_redemption_refusal(),
            code.starts_with("discount_code_"),
            "{error:?}"
        );
    }
}
