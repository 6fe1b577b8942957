//! Given/when/then tests for the `Wallet` aggregate: one test per business rule and per refusal,
//! plus the pinned stored format of its events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn given(events: Vec<WalletEvent>) -> AggregateTestExecutor<Wallet> {
    TestFramework::<Wallet>::with(()).given(events)
}

/// Every command and event in these tests happens at this instant: tests never read the clock,
/// and the expected events must carry the command's time.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap()
}

fn account_id() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0001))
}

fn staff_id() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0002))
}

fn payment_id(n: u128) -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0000_0200 + n,
    ))
}

fn withdrawal_id(n: u128) -> WithdrawalId {
    WithdrawalId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0000_0300 + n,
    ))
}

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

fn usd(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::USD).unwrap()
}

fn reference(text: &str) -> LedgerReference {
    LedgerReference::parse(text).unwrap()
}

const DESTINATION: &str = "DE89 3704 0044 0532 0130 00";

fn open() -> WalletCommand {
    WalletCommand::Open {
        account_id: account_id(),
        currency: Currency::EUR,
        occurred_at: now(),
    }
}

fn opened() -> WalletEvent {
    WalletEvent::WalletOpened {
        account_id: account_id(),
        currency: Currency::EUR,
        opened_at: now(),
    }
}

fn initiate(n: u128, amount: Money, gateway: PaymentGateway) -> WalletCommand {
    WalletCommand::InitiateTopUp {
        payment_id: payment_id(n),
        amount,
        gateway,
        gateway_reference: Some(format!("pi_{n}")),
        occurred_at: now(),
    }
}

fn initiated(n: u128, amount: Money, gateway: PaymentGateway) -> WalletEvent {
    WalletEvent::TopUpInitiated {
        payment_id: payment_id(n),
        amount,
        gateway,
        gateway_reference: Some(format!("pi_{n}")),
        initiated_at: now(),
    }
}

fn complete(n: u128, amount_received: Money) -> WalletCommand {
    WalletCommand::CompleteTopUp {
        payment_id: payment_id(n),
        amount_received,
        occurred_at: now(),
    }
}

fn completed(n: u128, amount: Money, balance_after: Money) -> WalletEvent {
    WalletEvent::TopUpCompleted {
        payment_id: payment_id(n),
        amount,
        balance_after,
        completed_at: now(),
    }
}

fn fail(n: u128) -> WalletCommand {
    WalletCommand::FailTopUp {
        payment_id: payment_id(n),
        reason: "card_declined".to_owned(),
        occurred_at: now(),
    }
}

fn failed(n: u128) -> WalletEvent {
    WalletEvent::TopUpFailed {
        payment_id: payment_id(n),
        reason: "card_declined".to_owned(),
        failed_at: now(),
    }
}

fn debit(reference_text: &str, amount: Money) -> WalletCommand {
    WalletCommand::Debit {
        reference: reference(reference_text),
        amount,
        reason: DebitReason::Order,
        occurred_at: now(),
    }
}

fn debited(reference_text: &str, amount: Money, balance_after: Money) -> WalletEvent {
    WalletEvent::WalletDebited {
        reference: reference(reference_text),
        amount,
        reason: DebitReason::Order,
        balance_after,
        debited_at: now(),
    }
}

fn refund(reference_text: &str, refunds_debit: Option<&str>, amount: Money) -> WalletCommand {
    WalletCommand::Refund {
        reference: reference(reference_text),
        refunds_debit: refunds_debit.map(reference),
        amount,
        reason: RefundReason::Order,
        occurred_at: now(),
    }
}

fn refunded(
    reference_text: &str,
    refunds_debit: Option<&str>,
    amount: Money,
    balance_after: Money,
) -> WalletEvent {
    WalletEvent::WalletRefunded {
        reference: reference(reference_text),
        refunds_debit: refunds_debit.map(reference),
        amount,
        reason: RefundReason::Order,
        balance_after,
        refunded_at: now(),
    }
}

fn request(n: u128, amount: Money) -> WalletCommand {
    WalletCommand::RequestWithdrawal {
        withdrawal_id: withdrawal_id(n),
        amount,
        destination: DESTINATION.to_owned(),
        occurred_at: now(),
    }
}

fn requested(n: u128, amount: Money) -> WalletEvent {
    WalletEvent::WithdrawalRequested {
        withdrawal_id: withdrawal_id(n),
        amount,
        destination: DESTINATION.to_owned(),
        requested_at: now(),
    }
}

fn approve(n: u128) -> WalletCommand {
    WalletCommand::ApproveWithdrawal {
        withdrawal_id: withdrawal_id(n),
        approved_by: staff_id(),
        occurred_at: now(),
    }
}

fn approved(n: u128) -> WalletEvent {
    WalletEvent::WithdrawalApproved {
        withdrawal_id: withdrawal_id(n),
        approved_by: staff_id(),
        approved_at: now(),
    }
}

fn reject(n: u128) -> WalletCommand {
    WalletCommand::RejectWithdrawal {
        withdrawal_id: withdrawal_id(n),
        reason: "destination closed".to_owned(),
        rejected_by: staff_id(),
        occurred_at: now(),
    }
}

fn rejected(n: u128) -> WalletEvent {
    WalletEvent::WithdrawalRejected {
        withdrawal_id: withdrawal_id(n),
        reason: "destination closed".to_owned(),
        rejected_by: staff_id(),
        rejected_at: now(),
    }
}

fn pay_out(n: u128) -> WalletCommand {
    WalletCommand::MarkWithdrawalPaidOut {
        withdrawal_id: withdrawal_id(n),
        occurred_at: now(),
    }
}

fn paid_out(n: u128, amount: Money, balance_after: Money) -> WalletEvent {
    WalletEvent::WithdrawalPaidOut {
        withdrawal_id: withdrawal_id(n),
        amount,
        balance_after,
        paid_out_at: now(),
    }
}

fn set_threshold(amount: Money) -> WalletCommand {
    WalletCommand::SetLowBalanceThreshold {
        amount,
        occurred_at: now(),
    }
}

fn threshold_changed(threshold: Money) -> WalletEvent {
    WalletEvent::LowBalanceThresholdChanged {
        threshold,
        changed_at: now(),
    }
}

fn set_credit_limit(amount: Money) -> WalletCommand {
    WalletCommand::SetCreditLimit {
        amount,
        occurred_at: now(),
    }
}

fn credit_limit_changed(credit_limit: Money) -> WalletEvent {
    WalletEvent::CreditLimitChanged {
        credit_limit,
        changed_at: now(),
    }
}

/// An open EUR wallet holding `balance`, credited by manual top-up 1.
fn funded(balance: &str) -> Vec<WalletEvent> {
    vec![
        opened(),
        initiated(1, eur(balance), PaymentGateway::Manual),
        completed(1, eur(balance), eur(balance)),
    ]
}

/// [`funded`] plus `more` events.
fn funded_and(balance: &str, more: Vec<WalletEvent>) -> Vec<WalletEvent> {
    let mut events = funded(balance);
    events.extend(more);
    events
}

fn replay(events: Vec<WalletEvent>) -> Wallet {
    let mut wallet = Wallet::default();
    for event in events {
        wallet.apply(event);
    }
    wallet
}

// ---------------------------------------------------------------------------------------------
// Open
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn opening_a_new_wallet_records_wallet_opened() {
    let executor = given(vec![]);

    let validator = executor.when_async(open()).await;

    validator.then_expect_events(vec![opened()]);
}

#[tokio::test]
async fn opening_a_wallet_twice_is_refused() {
    let executor = given(vec![opened()]);

    let validator = executor.when_async(open()).await;

    validator.then_expect_error(WalletError::WalletAlreadyOpen);
}

#[tokio::test]
async fn every_command_before_the_wallet_is_opened_is_refused() {
    let commands = [
        initiate(1, eur("10"), PaymentGateway::Stripe),
        complete(1, eur("10")),
        fail(1),
        debit("order:1", eur("1")),
        refund("refund:1", None, eur("1")),
        request(1, eur("1")),
        approve(1),
        reject(1),
        pay_out(1),
        set_threshold(eur("5")),
        set_credit_limit(eur("5")),
    ];

    for command in commands {
        let validator = given(vec![]).when_async(command).await;

        validator.then_expect_error(WalletError::WalletNotOpen);
    }
}

#[test]
fn an_opened_wallet_starts_at_zero_in_its_currency() {
    let wallet = replay(vec![opened()]);

    assert!(wallet.is_open());
    assert_eq!(wallet.account_id(), Some(account_id()));
    assert_eq!(wallet.currency(), Some(Currency::EUR));
    assert_eq!(wallet.balance(), Some(eur("0")));
    assert_eq!(wallet.reserved(), Some(eur("0")));
    assert_eq!(wallet.available(), Some(eur("0")));
    assert_eq!(wallet.credit_limit(), Some(eur("0")));
    assert_eq!(wallet.low_balance_threshold(), Some(eur("0")));
}

#[test]
fn a_wallet_that_was_never_opened_has_no_state() {
    let wallet = Wallet::default();

    assert!(!wallet.is_open());
    assert_eq!(wallet.balance(), None);
    assert_eq!(wallet.top_up(&payment_id(1)), None);
    assert_eq!(wallet.ledger_entry(&reference("order:1")), None);
}

// ---------------------------------------------------------------------------------------------
// InitiateTopUp
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn initiating_a_top_up_records_it_without_crediting() {
    let executor = given(vec![opened()]);

    let validator = executor
        .when_async(initiate(1, eur("25.00"), PaymentGateway::Stripe))
        .await;

    validator.then_expect_events(vec![initiated(1, eur("25"), PaymentGateway::Stripe)]);
}

#[test]
fn an_initiated_top_up_is_pending_and_the_balance_unchanged() {
    let wallet = replay(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
    ]);

    let top_up = wallet.top_up(&payment_id(1)).unwrap();
    assert_eq!(top_up.status(), TopUpStatus::Pending);
    assert_eq!(top_up.amount(), eur("25"));
    assert_eq!(top_up.gateway(), PaymentGateway::Stripe);
    assert_eq!(top_up.amount_received(), None);
    assert_eq!(wallet.balance(), Some(eur("0")));
}

#[tokio::test]
async fn initiating_the_same_top_up_again_records_nothing() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
    ]);

    let validator = executor
        .when_async(initiate(1, eur("25"), PaymentGateway::Stripe))
        .await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn reusing_a_payment_id_for_another_amount_or_gateway_is_refused() {
    for command in [
        initiate(1, eur("30"), PaymentGateway::Stripe),
        initiate(1, eur("25"), PaymentGateway::Manual),
    ] {
        let executor = given(vec![
            opened(),
            initiated(1, eur("25"), PaymentGateway::Stripe),
        ]);

        let validator = executor.when_async(command).await;

        validator.then_expect_error(WalletError::PaymentAlreadyExists);
    }
}

#[tokio::test]
async fn a_top_up_in_another_currency_is_refused() {
    let executor = given(vec![opened()]);

    let validator = executor
        .when_async(initiate(1, usd("25"), PaymentGateway::Stripe))
        .await;

    validator.then_expect_error(WalletError::CurrencyMismatch {
        wallet: Currency::EUR,
        given: Currency::USD,
    });
}

#[tokio::test]
async fn a_top_up_of_zero_or_less_is_refused() {
    for amount in [eur("0"), eur("-5")] {
        let executor = given(vec![opened()]);

        let validator = executor
            .when_async(initiate(1, amount, PaymentGateway::Stripe))
            .await;

        validator.then_expect_error(WalletError::AmountNotPositive);
    }
}

#[tokio::test]
async fn a_top_up_finer_than_the_minor_unit_is_refused() {
    let executor = given(vec![opened()]);

    let validator = executor
        .when_async(initiate(1, eur("10.001"), PaymentGateway::Stripe))
        .await;

    validator.then_expect_error(WalletError::TooManyDecimals { max_decimals: 2 });
}

// ---------------------------------------------------------------------------------------------
// CompleteTopUp
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn completing_a_top_up_credits_it_and_records_the_balance_after() {
    let executor = given(funded_and(
        "5",
        vec![initiated(2, eur("25"), PaymentGateway::Stripe)],
    ));

    let validator = executor.when_async(complete(2, eur("25"))).await;

    validator.then_expect_events(vec![completed(2, eur("25"), eur("30"))]);
}

#[tokio::test]
async fn a_manual_top_up_credits_what_was_received_not_what_was_initiated() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("100"), PaymentGateway::Manual),
    ]);

    let validator = executor.when_async(complete(1, eur("98.50"))).await;

    validator.then_expect_events(vec![completed(1, eur("98.50"), eur("98.50"))]);
}

#[tokio::test]
async fn a_stripe_top_up_reported_with_another_amount_is_refused() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("100"), PaymentGateway::Stripe),
    ]);

    let validator = executor.when_async(complete(1, eur("98.50"))).await;

    validator.then_expect_error(WalletError::TopUpAmountMismatch);
}

#[tokio::test]
async fn completing_a_completed_top_up_again_records_nothing() {
    let executor = given(funded("25"));

    let validator = executor.when_async(complete(1, eur("25"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn completing_a_completed_top_up_with_another_amount_still_records_nothing() {
    let executor = given(funded("25"));

    let validator = executor.when_async(complete(1, eur("40"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn completing_a_failed_top_up_is_refused() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
        failed(1),
    ]);

    let validator = executor.when_async(complete(1, eur("25"))).await;

    validator.then_expect_error(WalletError::PaymentAlreadySettled);
}

#[tokio::test]
async fn completing_an_unknown_payment_is_refused() {
    let executor = given(funded("25"));

    let validator = executor.when_async(complete(9, eur("25"))).await;

    validator.then_expect_error(WalletError::PaymentNotFound);
}

#[tokio::test]
async fn completing_with_an_amount_in_another_currency_is_refused() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Manual),
    ]);

    let validator = executor.when_async(complete(1, usd("25"))).await;

    validator.then_expect_error(WalletError::CurrencyMismatch {
        wallet: Currency::EUR,
        given: Currency::USD,
    });
}

#[tokio::test]
async fn completing_with_nothing_received_is_refused() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Manual),
    ]);

    let validator = executor.when_async(complete(1, eur("0"))).await;

    validator.then_expect_error(WalletError::AmountNotPositive);
}

#[tokio::test]
async fn completing_with_an_amount_finer_than_the_minor_unit_is_refused() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Manual),
    ]);

    let validator = executor.when_async(complete(1, eur("24.999"))).await;

    validator.then_expect_error(WalletError::TooManyDecimals { max_decimals: 2 });
}

#[tokio::test]
async fn a_credit_past_the_largest_balance_is_refused_as_overflow() {
    let top = Money::from_micros(i64::MAX - 10_000, Currency::EUR);
    let executor = given(vec![
        opened(),
        initiated(1, top, PaymentGateway::Manual),
        completed(1, top, top),
        initiated(2, eur("0.02"), PaymentGateway::Manual),
    ]);

    let validator = executor.when_async(complete(2, eur("0.02"))).await;

    validator.then_expect_error(WalletError::AmountOverflow);
}

#[test]
fn a_completed_top_up_records_what_was_received_in_state() {
    let wallet = replay(vec![
        opened(),
        initiated(1, eur("100"), PaymentGateway::Manual),
        completed(1, eur("98.50"), eur("98.50")),
    ]);

    let top_up = wallet.top_up(&payment_id(1)).unwrap();
    assert_eq!(top_up.status(), TopUpStatus::Completed);
    assert_eq!(top_up.amount(), eur("100"));
    assert_eq!(top_up.amount_received(), Some(eur("98.50")));
    assert_eq!(wallet.balance(), Some(eur("98.50")));
}

// ---------------------------------------------------------------------------------------------
// FailTopUp
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn failing_a_pending_top_up_records_top_up_failed() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
    ]);

    let validator = executor.when_async(fail(1)).await;

    validator.then_expect_events(vec![failed(1)]);
}

#[tokio::test]
async fn failing_a_failed_top_up_again_records_nothing() {
    let executor = given(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
        failed(1),
    ]);

    let validator = executor.when_async(fail(1)).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn failing_a_completed_top_up_is_refused() {
    let executor = given(funded("25"));

    let validator = executor.when_async(fail(1)).await;

    validator.then_expect_error(WalletError::PaymentAlreadySettled);
}

#[tokio::test]
async fn failing_an_unknown_payment_is_refused() {
    let executor = given(vec![opened()]);

    let validator = executor.when_async(fail(1)).await;

    validator.then_expect_error(WalletError::PaymentNotFound);
}

#[test]
fn a_failed_top_up_credits_nothing() {
    let wallet = replay(vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
        failed(1),
    ]);

    assert_eq!(
        wallet.top_up(&payment_id(1)).unwrap().status(),
        TopUpStatus::Failed
    );
    assert_eq!(wallet.balance(), Some(eur("0")));
}

// ---------------------------------------------------------------------------------------------
// Debit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_debit_within_the_balance_records_the_balance_after() {
    let executor = given(funded("50"));

    let validator = executor.when_async(debit("order:1", eur("12.50"))).await;

    validator.then_expect_events(vec![debited("order:1", eur("12.50"), eur("37.50"))]);
}

#[tokio::test]
async fn a_debit_of_the_whole_balance_leaves_zero() {
    let executor = given(funded("50"));

    let validator = executor.when_async(debit("order:1", eur("50"))).await;

    validator.then_expect_events(vec![debited("order:1", eur("50"), eur("0"))]);
}

#[tokio::test]
async fn a_debit_beyond_the_balance_is_refused_as_insufficient_funds() {
    let executor = given(funded("50"));

    let validator = executor
        .when_async(debit("order:1", eur("50.000001")))
        .await;

    validator.then_expect_error(WalletError::InsufficientFunds);
}

#[tokio::test]
async fn a_debit_may_take_the_balance_down_to_minus_the_credit_limit() {
    let executor = given(funded_and("50", vec![credit_limit_changed(eur("20"))]));

    let validator = executor.when_async(debit("order:1", eur("70"))).await;

    validator.then_expect_events(vec![debited("order:1", eur("70"), eur("-20"))]);
}

#[tokio::test]
async fn a_debit_beyond_the_credit_limit_is_refused() {
    let executor = given(funded_and("50", vec![credit_limit_changed(eur("20"))]));

    let validator = executor.when_async(debit("order:1", eur("70.01"))).await;

    validator.then_expect_error(WalletError::InsufficientFunds);
}

#[tokio::test]
async fn a_debit_cannot_spend_what_a_withdrawal_reserved() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(debit("order:1", eur("20.01"))).await;

    validator.then_expect_error(WalletError::InsufficientFunds);
}

#[tokio::test]
async fn a_debit_may_spend_what_is_not_reserved() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(debit("order:1", eur("20"))).await;

    validator.then_expect_events(vec![debited("order:1", eur("20"), eur("30"))]);
}

#[tokio::test]
async fn a_debit_finer_than_the_minor_unit_is_accepted_for_metering() {
    let executor = given(funded("1"));

    let validator = executor
        .when_async(debit("vm_hour:1", eur("0.013889")))
        .await;

    validator.then_expect_events(vec![debited("vm_hour:1", eur("0.013889"), eur("0.986111"))]);
}

#[tokio::test]
async fn the_same_debit_again_records_nothing() {
    let executor = given(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));

    let validator = executor.when_async(debit("order:1", eur("20"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn the_same_debit_again_records_nothing_even_when_funds_ran_out_since() {
    let executor = given(funded_and(
        "50",
        vec![
            debited("order:1", eur("40"), eur("10")),
            debited("order:2", eur("10"), eur("0")),
        ],
    ));

    let validator = executor.when_async(debit("order:1", eur("40"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn a_debit_reusing_a_reference_with_another_amount_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));

    let validator = executor.when_async(debit("order:1", eur("25"))).await;

    validator.then_expect_error(WalletError::ReferenceReused);
}

#[tokio::test]
async fn a_debit_reusing_a_refund_reference_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![refunded("credit:1", None, eur("5"), eur("55"))],
    ));

    let validator = executor.when_async(debit("credit:1", eur("5"))).await;

    validator.then_expect_error(WalletError::ReferenceReused);
}

#[tokio::test]
async fn a_debit_in_another_currency_is_refused() {
    let executor = given(funded("50"));

    let validator = executor.when_async(debit("order:1", usd("5"))).await;

    validator.then_expect_error(WalletError::CurrencyMismatch {
        wallet: Currency::EUR,
        given: Currency::USD,
    });
}

#[tokio::test]
async fn a_debit_of_zero_or_less_is_refused() {
    for amount in [eur("0"), eur("-0.000001")] {
        let executor = given(funded("50"));

        let validator = executor.when_async(debit("order:1", amount)).await;

        validator.then_expect_error(WalletError::AmountNotPositive);
    }
}

#[tokio::test]
async fn the_largest_credit_limit_lets_the_balance_reach_minus_i64_max_and_no_further() {
    // The headroom check bounds every debit by `−credit_limit ≥ −i64::MAX`, so the checked
    // subtraction after it can never overflow.
    let largest = Money::from_micros(i64::MAX, Currency::EUR);
    let executor = given(vec![opened(), credit_limit_changed(largest)]);

    let validator = executor.when_async(debit("order:1", largest)).await;

    validator.then_expect_events(vec![debited(
        "order:1",
        largest,
        Money::from_micros(-i64::MAX, Currency::EUR),
    )]);
}

#[test]
fn a_debit_is_remembered_under_its_reference() {
    let wallet = replay(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));

    assert_eq!(
        wallet.ledger_entry(&reference("order:1")),
        Some(&LedgerEntry::Debit {
            amount_micros: 20_000_000,
            refunded_micros: 0
        })
    );
    assert_eq!(wallet.balance(), Some(eur("30")));
}

// ---------------------------------------------------------------------------------------------
// Refund
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refund_not_tied_to_a_debit_credits_the_amount() {
    let executor = given(funded("10"));

    let validator = executor
        .when_async(refund("goodwill:1", None, eur("5")))
        .await;

    validator.then_expect_events(vec![refunded("goodwill:1", None, eur("5"), eur("15"))]);
}

#[tokio::test]
async fn a_partial_refund_of_a_debit_is_accepted() {
    let executor = given(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));

    let validator = executor
        .when_async(refund("refund:order:1", Some("order:1"), eur("5")))
        .await;

    validator.then_expect_events(vec![refunded(
        "refund:order:1",
        Some("order:1"),
        eur("5"),
        eur("35"),
    )]);
}

#[tokio::test]
async fn refunds_of_one_debit_may_add_up_to_exactly_the_debit() {
    let executor = given(funded_and(
        "50",
        vec![
            debited("order:1", eur("20"), eur("30")),
            refunded("refund:a", Some("order:1"), eur("15"), eur("45")),
        ],
    ));

    let validator = executor
        .when_async(refund("refund:b", Some("order:1"), eur("5")))
        .await;

    validator.then_expect_events(vec![refunded(
        "refund:b",
        Some("order:1"),
        eur("5"),
        eur("50"),
    )]);
}

#[tokio::test]
async fn a_refund_beyond_what_is_left_of_its_debit_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![
            debited("order:1", eur("20"), eur("30")),
            refunded("refund:a", Some("order:1"), eur("15"), eur("45")),
        ],
    ));

    let validator = executor
        .when_async(refund("refund:b", Some("order:1"), eur("5.000001")))
        .await;

    validator.then_expect_error(WalletError::RefundExceedsDebit);
}

#[tokio::test]
async fn a_single_refund_larger_than_its_debit_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));

    let validator = executor
        .when_async(refund("refund:order:1", Some("order:1"), eur("21")))
        .await;

    validator.then_expect_error(WalletError::RefundExceedsDebit);
}

#[tokio::test]
async fn a_refund_naming_an_unknown_debit_is_refused() {
    let executor = given(funded("50"));

    let validator = executor
        .when_async(refund("refund:order:1", Some("order:1"), eur("5")))
        .await;

    validator.then_expect_error(WalletError::DebitNotFound);
}

#[tokio::test]
async fn a_refund_naming_another_refund_as_its_debit_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![refunded("goodwill:1", None, eur("5"), eur("55"))],
    ));

    let validator = executor
        .when_async(refund("refund:2", Some("goodwill:1"), eur("5")))
        .await;

    validator.then_expect_error(WalletError::DebitNotFound);
}

#[tokio::test]
async fn the_same_refund_again_records_nothing() {
    let executor = given(funded_and(
        "50",
        vec![
            debited("order:1", eur("20"), eur("30")),
            refunded("refund:order:1", Some("order:1"), eur("20"), eur("50")),
        ],
    ));

    let validator = executor
        .when_async(refund("refund:order:1", Some("order:1"), eur("20")))
        .await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn a_refund_reusing_a_reference_with_another_amount_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![refunded("goodwill:1", None, eur("5"), eur("55"))],
    ));

    let validator = executor
        .when_async(refund("goodwill:1", None, eur("6")))
        .await;

    validator.then_expect_error(WalletError::ReferenceReused);
}

#[tokio::test]
async fn a_refund_reusing_the_reference_of_its_debit_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));

    let validator = executor
        .when_async(refund("order:1", Some("order:1"), eur("20")))
        .await;

    validator.then_expect_error(WalletError::ReferenceReused);
}

#[tokio::test]
async fn a_refund_in_another_currency_or_of_zero_is_refused() {
    let cases = [
        (
            usd("5"),
            WalletError::CurrencyMismatch {
                wallet: Currency::EUR,
                given: Currency::USD,
            },
        ),
        (eur("0"), WalletError::AmountNotPositive),
    ];

    for (amount, error) in cases {
        let executor = given(funded("50"));

        let validator = executor
            .when_async(refund("goodwill:1", None, amount))
            .await;

        validator.then_expect_error(error);
    }
}

#[tokio::test]
async fn a_refund_past_the_largest_balance_is_refused_as_overflow() {
    let top = Money::from_micros(i64::MAX, Currency::EUR);
    let executor = given(vec![
        opened(),
        initiated(1, eur("1"), PaymentGateway::Manual),
        completed(1, eur("1"), top),
    ]);

    let validator = executor
        .when_async(refund("goodwill:1", None, eur("0.000001")))
        .await;

    validator.then_expect_error(WalletError::AmountOverflow);
}

#[test]
fn refunds_are_counted_against_the_debit_they_name() {
    let wallet = replay(funded_and(
        "50",
        vec![
            debited("order:1", eur("20"), eur("30")),
            refunded("refund:a", Some("order:1"), eur("15"), eur("45")),
        ],
    ));

    assert_eq!(
        wallet.ledger_entry(&reference("order:1")),
        Some(&LedgerEntry::Debit {
            amount_micros: 20_000_000,
            refunded_micros: 15_000_000
        })
    );
    assert_eq!(
        wallet.ledger_entry(&reference("refund:a")),
        Some(&LedgerEntry::Refund {
            amount_micros: 15_000_000
        })
    );
}

// ---------------------------------------------------------------------------------------------
// RequestWithdrawal
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn requesting_a_withdrawal_records_it() {
    let executor = given(funded("50"));

    let validator = executor.when_async(request(1, eur("30"))).await;

    validator.then_expect_events(vec![requested(1, eur("30"))]);
}

#[test]
fn a_requested_withdrawal_is_reserved_and_leaves_the_balance_alone() {
    let wallet = replay(funded_and("50", vec![requested(1, eur("30"))]));

    assert_eq!(wallet.balance(), Some(eur("50")));
    assert_eq!(wallet.reserved(), Some(eur("30")));
    assert_eq!(wallet.available(), Some(eur("20")));
    let withdrawal = wallet.withdrawal(&withdrawal_id(1)).unwrap();
    assert_eq!(withdrawal.status(), WithdrawalStatus::Requested);
    assert_eq!(withdrawal.amount(), eur("30"));
    assert_eq!(withdrawal.destination(), DESTINATION);
}

#[tokio::test]
async fn a_withdrawal_of_the_whole_available_balance_is_accepted() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(request(2, eur("20"))).await;

    validator.then_expect_events(vec![requested(2, eur("20"))]);
}

#[tokio::test]
async fn a_withdrawal_beyond_the_balance_is_refused() {
    let executor = given(funded("50"));

    let validator = executor.when_async(request(1, eur("50.01"))).await;

    validator.then_expect_error(WalletError::InsufficientFunds);
}

#[tokio::test]
async fn a_withdrawal_cannot_take_what_another_reserved() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(request(2, eur("20.01"))).await;

    validator.then_expect_error(WalletError::InsufficientFunds);
}

#[tokio::test]
async fn a_withdrawal_cannot_draw_on_the_credit_limit() {
    let executor = given(funded_and("50", vec![credit_limit_changed(eur("100"))]));

    let validator = executor.when_async(request(1, eur("60"))).await;

    validator.then_expect_error(WalletError::InsufficientFunds);
}

#[tokio::test]
async fn requesting_the_same_withdrawal_again_records_nothing() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(request(1, eur("30"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn a_repeated_request_matches_its_destination_after_trimming() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor
        .when_async(WalletCommand::RequestWithdrawal {
            withdrawal_id: withdrawal_id(1),
            amount: eur("30"),
            destination: format!("  {DESTINATION}\n"),
            occurred_at: now(),
        })
        .await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn reusing_a_withdrawal_id_for_another_amount_or_destination_is_refused() {
    let other_destination = WalletCommand::RequestWithdrawal {
        withdrawal_id: withdrawal_id(1),
        amount: eur("30"),
        destination: "FR76 3000 6000 0112 3456 7890 189".to_owned(),
        occurred_at: now(),
    };

    for command in [request(1, eur("10")), other_destination] {
        let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

        let validator = executor.when_async(command).await;

        validator.then_expect_error(WalletError::WithdrawalAlreadyExists);
    }
}

#[tokio::test]
async fn a_withdrawal_with_an_invalid_amount_is_refused() {
    let cases = [
        (
            usd("5"),
            WalletError::CurrencyMismatch {
                wallet: Currency::EUR,
                given: Currency::USD,
            },
        ),
        (eur("0"), WalletError::AmountNotPositive),
        (eur("-5"), WalletError::AmountNotPositive),
        (
            eur("5.001"),
            WalletError::TooManyDecimals { max_decimals: 2 },
        ),
    ];

    for (amount, error) in cases {
        let executor = given(funded("50"));

        let validator = executor.when_async(request(1, amount)).await;

        validator.then_expect_error(error);
    }
}

#[tokio::test]
async fn a_blank_over_long_or_control_character_destination_is_refused() {
    let destinations = [
        String::new(),
        "   ".to_owned(),
        "x".repeat(WITHDRAWAL_DESTINATION_MAX_CHARS + 1),
        "DE89\n3704".to_owned(),
    ];

    for destination in destinations {
        let executor = given(funded("50"));

        let validator = executor
            .when_async(WalletCommand::RequestWithdrawal {
                withdrawal_id: withdrawal_id(1),
                amount: eur("10"),
                destination,
                occurred_at: now(),
            })
            .await;

        validator.then_expect_error(WalletError::InvalidDestination);
    }
}

#[tokio::test]
async fn a_destination_is_trimmed_and_may_be_as_long_as_the_limit() {
    let longest = "x".repeat(WITHDRAWAL_DESTINATION_MAX_CHARS);
    let executor = given(funded("50"));

    let validator = executor
        .when_async(WalletCommand::RequestWithdrawal {
            withdrawal_id: withdrawal_id(1),
            amount: eur("10"),
            destination: format!(" {longest} "),
            occurred_at: now(),
        })
        .await;

    validator.then_expect_events(vec![WalletEvent::WithdrawalRequested {
        withdrawal_id: withdrawal_id(1),
        amount: eur("10"),
        destination: longest,
        requested_at: now(),
    }]);
}

// ---------------------------------------------------------------------------------------------
// ApproveWithdrawal
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn approving_a_requested_withdrawal_records_the_approver() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(approve(1)).await;

    validator.then_expect_events(vec![approved(1)]);
}

#[test]
fn an_approved_withdrawal_stays_reserved_and_the_balance_unchanged() {
    let wallet = replay(funded_and("50", vec![requested(1, eur("30")), approved(1)]));

    assert_eq!(
        wallet.withdrawal(&withdrawal_id(1)).unwrap().status(),
        WithdrawalStatus::Approved
    );
    assert_eq!(wallet.balance(), Some(eur("50")));
    assert_eq!(wallet.reserved(), Some(eur("30")));
}

#[tokio::test]
async fn approving_an_approved_withdrawal_again_records_nothing() {
    let executor = given(funded_and("50", vec![requested(1, eur("30")), approved(1)]));

    let validator = executor.when_async(approve(1)).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn approving_a_rejected_or_paid_out_withdrawal_is_refused() {
    let histories = [
        vec![requested(1, eur("30")), rejected(1)],
        vec![
            requested(1, eur("30")),
            approved(1),
            paid_out(1, eur("30"), eur("20")),
        ],
    ];

    for history in histories {
        let executor = given(funded_and("50", history));

        let validator = executor.when_async(approve(1)).await;

        validator.then_expect_error(WalletError::WithdrawalAlreadySettled);
    }
}

#[tokio::test]
async fn acting_on_an_unknown_withdrawal_is_refused() {
    for command in [approve(9), reject(9), pay_out(9)] {
        let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

        let validator = executor.when_async(command).await;

        validator.then_expect_error(WalletError::WithdrawalNotFound);
    }
}

// ---------------------------------------------------------------------------------------------
// RejectWithdrawal
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rejecting_a_requested_withdrawal_records_the_reason_and_who() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(reject(1)).await;

    validator.then_expect_events(vec![rejected(1)]);
}

#[tokio::test]
async fn rejecting_an_approved_withdrawal_is_allowed() {
    let executor = given(funded_and("50", vec![requested(1, eur("30")), approved(1)]));

    let validator = executor.when_async(reject(1)).await;

    validator.then_expect_events(vec![rejected(1)]);
}

#[test]
fn a_rejection_releases_the_reservation_and_moves_no_money() {
    let wallet = replay(funded_and(
        "50",
        vec![requested(1, eur("30")), approved(1), rejected(1)],
    ));

    assert_eq!(
        wallet.withdrawal(&withdrawal_id(1)).unwrap().status(),
        WithdrawalStatus::Rejected
    );
    assert_eq!(wallet.balance(), Some(eur("50")));
    assert_eq!(wallet.reserved(), Some(eur("0")));
    assert_eq!(wallet.available(), Some(eur("50")));
}

#[tokio::test]
async fn after_a_rejection_the_released_money_can_be_spent() {
    let executor = given(funded_and("50", vec![requested(1, eur("30")), rejected(1)]));

    let validator = executor.when_async(debit("order:1", eur("50"))).await;

    validator.then_expect_events(vec![debited("order:1", eur("50"), eur("0"))]);
}

#[tokio::test]
async fn rejecting_a_rejected_withdrawal_again_records_nothing() {
    let executor = given(funded_and("50", vec![requested(1, eur("30")), rejected(1)]));

    let validator = executor.when_async(reject(1)).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn rejecting_a_paid_out_withdrawal_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![
            requested(1, eur("30")),
            approved(1),
            paid_out(1, eur("30"), eur("20")),
        ],
    ));

    let validator = executor.when_async(reject(1)).await;

    validator.then_expect_error(WalletError::WithdrawalAlreadySettled);
}

// ---------------------------------------------------------------------------------------------
// MarkWithdrawalPaidOut
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn paying_out_an_approved_withdrawal_lowers_the_balance() {
    let executor = given(funded_and("50", vec![requested(1, eur("30")), approved(1)]));

    let validator = executor.when_async(pay_out(1)).await;

    validator.then_expect_events(vec![paid_out(1, eur("30"), eur("20"))]);
}

#[test]
fn a_payout_releases_the_reservation() {
    let wallet = replay(funded_and(
        "50",
        vec![
            requested(1, eur("30")),
            approved(1),
            paid_out(1, eur("30"), eur("20")),
        ],
    ));

    assert_eq!(
        wallet.withdrawal(&withdrawal_id(1)).unwrap().status(),
        WithdrawalStatus::PaidOut
    );
    assert_eq!(wallet.balance(), Some(eur("20")));
    assert_eq!(wallet.reserved(), Some(eur("0")));
}

#[tokio::test]
async fn a_payout_never_takes_the_balance_below_the_limit_even_after_debits() {
    // The reservation held back 30 of 50 while a 20 debit and the payout went through.
    let executor = given(funded_and(
        "50",
        vec![
            requested(1, eur("30")),
            debited("order:1", eur("20"), eur("30")),
            approved(1),
        ],
    ));

    let validator = executor.when_async(pay_out(1)).await;

    validator.then_expect_events(vec![paid_out(1, eur("30"), eur("0"))]);
}

#[tokio::test]
async fn paying_out_twice_records_nothing() {
    let executor = given(funded_and(
        "50",
        vec![
            requested(1, eur("30")),
            approved(1),
            paid_out(1, eur("30"), eur("20")),
        ],
    ));

    let validator = executor.when_async(pay_out(1)).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn paying_out_a_withdrawal_that_was_not_approved_is_refused() {
    let executor = given(funded_and("50", vec![requested(1, eur("30"))]));

    let validator = executor.when_async(pay_out(1)).await;

    validator.then_expect_error(WalletError::WithdrawalNotApproved);
}

#[tokio::test]
async fn paying_out_a_rejected_withdrawal_is_refused() {
    let executor = given(funded_and(
        "50",
        vec![requested(1, eur("30")), approved(1), rejected(1)],
    ));

    let validator = executor.when_async(pay_out(1)).await;

    validator.then_expect_error(WalletError::WithdrawalAlreadySettled);
}

// ---------------------------------------------------------------------------------------------
// SetLowBalanceThreshold
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn setting_the_low_balance_threshold_records_it() {
    let executor = given(vec![opened()]);

    let validator = executor.when_async(set_threshold(eur("5"))).await;

    validator.then_expect_events(vec![threshold_changed(eur("5"))]);
}

#[tokio::test]
async fn setting_the_threshold_it_already_has_records_nothing() {
    let executor = given(vec![opened(), threshold_changed(eur("5"))]);

    let validator = executor.when_async(set_threshold(eur("5"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn the_threshold_can_go_back_to_zero() {
    let executor = given(vec![opened(), threshold_changed(eur("5"))]);

    let validator = executor.when_async(set_threshold(eur("0"))).await;

    validator.then_expect_events(vec![threshold_changed(eur("0"))]);
}

#[tokio::test]
async fn a_negative_threshold_or_one_in_another_currency_is_refused() {
    let cases = [
        (eur("-1"), WalletError::AmountNegative),
        (
            usd("5"),
            WalletError::CurrencyMismatch {
                wallet: Currency::EUR,
                given: Currency::USD,
            },
        ),
    ];

    for (amount, error) in cases {
        let executor = given(vec![opened()]);

        let validator = executor.when_async(set_threshold(amount)).await;

        validator.then_expect_error(error);
    }
}

#[test]
fn the_threshold_is_recorded_in_state() {
    let wallet = replay(vec![opened(), threshold_changed(eur("7.5"))]);

    assert_eq!(wallet.low_balance_threshold(), Some(eur("7.5")));
}

// ---------------------------------------------------------------------------------------------
// SetCreditLimit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn raising_the_credit_limit_records_it() {
    let executor = given(vec![opened()]);

    let validator = executor.when_async(set_credit_limit(eur("100"))).await;

    validator.then_expect_events(vec![credit_limit_changed(eur("100"))]);
}

#[tokio::test]
async fn setting_the_credit_limit_it_already_has_records_nothing() {
    let executor = given(vec![opened(), credit_limit_changed(eur("100"))]);

    let validator = executor.when_async(set_credit_limit(eur("100"))).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn a_negative_credit_limit_or_one_in_another_currency_is_refused() {
    let cases = [
        (eur("-0.01"), WalletError::AmountNegative),
        (
            usd("5"),
            WalletError::CurrencyMismatch {
                wallet: Currency::EUR,
                given: Currency::USD,
            },
        ),
    ];

    for (amount, error) in cases {
        let executor = given(vec![opened()]);

        let validator = executor.when_async(set_credit_limit(amount)).await;

        validator.then_expect_error(error);
    }
}

#[tokio::test]
async fn lowering_the_credit_limit_below_what_is_in_use_is_refused() {
    let executor = given(vec![
        opened(),
        credit_limit_changed(eur("100")),
        debited("order:1", eur("40"), eur("-40")),
    ]);

    let validator = executor.when_async(set_credit_limit(eur("39.99"))).await;

    validator.then_expect_error(WalletError::CreditLimitBelowUsage);
}

#[tokio::test]
async fn lowering_the_credit_limit_to_exactly_what_is_in_use_is_allowed() {
    let executor = given(vec![
        opened(),
        credit_limit_changed(eur("100")),
        debited("order:1", eur("40"), eur("-40")),
    ]);

    let validator = executor.when_async(set_credit_limit(eur("40"))).await;

    validator.then_expect_events(vec![credit_limit_changed(eur("40"))]);
}

#[tokio::test]
async fn reserved_money_counts_as_in_use_when_lowering_the_credit_limit() {
    // balance 10 − reserved 10 = 0 available, plus a debit of 5 on credit: 5 in use.
    let executor = given(vec![
        opened(),
        credit_limit_changed(eur("100")),
        initiated(1, eur("10"), PaymentGateway::Manual),
        completed(1, eur("10"), eur("10")),
        requested(1, eur("10")),
        debited("order:1", eur("5"), eur("5")),
    ]);

    let validator = executor.when_async(set_credit_limit(eur("4"))).await;

    validator.then_expect_error(WalletError::CreditLimitBelowUsage);
}

#[test]
fn the_credit_limit_is_recorded_in_state() {
    let wallet = replay(vec![opened(), credit_limit_changed(eur("250"))]);

    assert_eq!(wallet.credit_limit(), Some(eur("250")));
}

// ---------------------------------------------------------------------------------------------
// Handle through the sink
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn handle_applies_the_event_it_records_to_the_live_aggregate() {
    let mut wallet = replay(funded("50"));
    let sink = EventSink::<Wallet>::default();

    wallet
        .handle(debit("order:1", eur("20")), &(), &sink)
        .await
        .unwrap();

    let expected = debited("order:1", eur("20"), eur("30"));
    assert_eq!(sink.collect().await, vec![expected.clone()]);
    assert_eq!(wallet, replay(funded_and("50", vec![expected])));
}

#[tokio::test]
async fn handle_records_nothing_and_changes_nothing_for_a_repeat() {
    let mut wallet = replay(funded_and(
        "50",
        vec![debited("order:1", eur("20"), eur("30"))],
    ));
    let before = wallet.clone();
    let sink = EventSink::<Wallet>::default();

    wallet
        .handle(debit("order:1", eur("20")), &(), &sink)
        .await
        .unwrap();

    assert!(sink.collect().await.is_empty());
    assert_eq!(wallet, before);
}

// ---------------------------------------------------------------------------------------------
// Movements, stable codes and stored format
// ---------------------------------------------------------------------------------------------

/// One event of every type, in [`WALLET_EVENT_TYPES`] order.
fn one_of_each() -> Vec<WalletEvent> {
    vec![
        opened(),
        initiated(1, eur("25"), PaymentGateway::Stripe),
        completed(1, eur("25"), eur("25")),
        failed(2),
        debited("order:1", eur("10"), eur("15")),
        refunded("refund:order:1", Some("order:1"), eur("4"), eur("19")),
        requested(1, eur("9")),
        approved(1),
        rejected(1),
        paid_out(1, eur("9"), eur("10")),
        threshold_changed(eur("5")),
        credit_limit_changed(eur("100")),
    ]
}

#[test]
fn only_the_four_money_events_are_balance_movements() {
    let movements: Vec<(String, Option<BalanceMovement>)> = one_of_each()
        .iter()
        .map(|event| (event.event_type(), event.balance_movement()))
        .filter(|(_, movement)| movement.is_some())
        .collect();

    let movement = |direction, amount: &str, after: &str| {
        Some(BalanceMovement {
            direction,
            amount: eur(amount),
            balance_after: eur(after),
        })
    };
    assert_eq!(
        movements,
        vec![
            (
                "TopUpCompleted".to_owned(),
                movement(MovementDirection::Credit, "25", "25")
            ),
            (
                "WalletDebited".to_owned(),
                movement(MovementDirection::Debit, "10", "15")
            ),
            (
                "WalletRefunded".to_owned(),
                movement(MovementDirection::Credit, "4", "19")
            ),
            (
                "WithdrawalPaidOut".to_owned(),
                movement(MovementDirection::Debit, "9", "10")
            ),
        ]
    );
}

#[test]
fn a_movement_signs_credits_positive_and_debits_negative() {
    let credit = completed(1, eur("25"), eur("25"))
        .balance_movement()
        .unwrap();
    let debit = debited("order:1", eur("10"), eur("15"))
        .balance_movement()
        .unwrap();

    assert_eq!(credit.signed_micros(), 25_000_000);
    assert_eq!(debit.signed_micros(), -10_000_000);
}

#[test]
fn every_wallet_error_has_its_pinned_code() {
    let cases = [
        (WalletError::WalletAlreadyOpen, "wallet_already_open"),
        (WalletError::WalletNotOpen, "wallet_not_open"),
        (
            WalletError::CurrencyMismatch {
                wallet: Currency::EUR,
                given: Currency::USD,
            },
            "currency_mismatch",
        ),
        (WalletError::AmountNotPositive, "amount_not_positive"),
        (WalletError::AmountNegative, "amount_negative"),
        (
            WalletError::TooManyDecimals { max_decimals: 2 },
            "too_many_decimals",
        ),
        (WalletError::AmountOverflow, "amount_overflow"),
        (WalletError::InsufficientFunds, "insufficient_funds"),
        (WalletError::ReferenceReused, "reference_reused"),
        (WalletError::DebitNotFound, "debit_not_found"),
        (WalletError::RefundExceedsDebit, "refund_exceeds_debit"),
        (WalletError::PaymentAlreadyExists, "payment_already_exists"),
        (WalletError::PaymentNotFound, "payment_not_found"),
        (
            WalletError::PaymentAlreadySettled,
            "payment_already_settled",
        ),
        (WalletError::TopUpAmountMismatch, "top_up_amount_mismatch"),
        (
            WalletError::WithdrawalAlreadyExists,
            "withdrawal_already_exists",
        ),
        (WalletError::WithdrawalNotFound, "withdrawal_not_found"),
        (
            WalletError::WithdrawalAlreadySettled,
            "withdrawal_already_settled",
        ),
        (
            WalletError::WithdrawalNotApproved,
            "withdrawal_not_approved",
        ),
        (WalletError::InvalidDestination, "invalid_destination"),
        (
            WalletError::CreditLimitBelowUsage,
            "credit_limit_below_usage",
        ),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn the_aggregate_type_is_pinned_because_it_keys_the_event_store() {
    assert_eq!(Wallet::TYPE, "wallet");
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
            "WalletOpened",
            "TopUpInitiated",
            "TopUpCompleted",
            "TopUpFailed",
            "WalletDebited",
            "WalletRefunded",
            "WithdrawalRequested",
            "WithdrawalApproved",
            "WithdrawalRejected",
            "WithdrawalPaidOut",
            "LowBalanceThresholdChanged",
            "CreditLimitChanged",
        ]
    );
    assert_eq!(WALLET_EVENT_TYPES, names.as_slice());
}

#[test]
fn gateway_and_reason_names_are_pinned_because_they_are_stored_in_events() {
    let gateways = [
        (PaymentGateway::Stripe, "stripe"),
        (PaymentGateway::Manual, "manual"),
    ];
    let debits = [
        (DebitReason::Order, "order"),
        (DebitReason::Invoice, "invoice"),
        (DebitReason::VmHour, "vm_hour"),
        (DebitReason::Adjustment, "adjustment"),
    ];
    let refunds = [
        (RefundReason::Order, "order"),
        (RefundReason::Invoice, "invoice"),
        (RefundReason::VmHour, "vm_hour"),
        (RefundReason::Goodwill, "goodwill"),
        (RefundReason::Adjustment, "adjustment"),
    ];

    assert_eq!(PaymentGateway::ALL.len(), gateways.len());
    for (gateway, name) in gateways {
        assert_eq!(gateway.as_str(), name);
        assert_eq!(PaymentGateway::from_name(name), Some(gateway));
        assert_eq!(
            serde_json::to_string(&gateway).unwrap(),
            format!("\"{name}\"")
        );
    }
    for (reason, name) in debits {
        assert_eq!(reason.as_str(), name);
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            format!("\"{name}\"")
        );
    }
    for (reason, name) in refunds {
        assert_eq!(reason.as_str(), name);
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            format!("\"{name}\"")
        );
    }
}

#[test]
fn a_gateway_name_is_matched_exactly() {
    for name in ["Stripe", "MANUAL", " stripe", "paypal", ""] {
        assert_eq!(PaymentGateway::from_name(name), None, "{name:?}");
    }
}

#[test]
fn every_event_keeps_its_json_shape_and_round_trips() {
    let account = "01954b3c-0000-7000-8000-000000000001";
    let staff = "01954b3c-0000-7000-8000-000000000002";
    let payment_1 = "01954b3c-0000-7000-8000-000000000201";
    let payment_2 = "01954b3c-0000-7000-8000-000000000202";
    let withdrawal = "01954b3c-0000-7000-8000-000000000301";
    let at = "2025-03-01T09:30:00Z";
    let money = |amount: &str| serde_json::json!({"amount": amount, "currency": "EUR"});
    let expected = [
        serde_json::json!({"WalletOpened": {
            "account_id": account, "currency": "EUR", "opened_at": at,
        }}),
        serde_json::json!({"TopUpInitiated": {
            "payment_id": payment_1, "amount": money("25.000000"), "gateway": "stripe",
            "gateway_reference": "pi_1", "initiated_at": at,
        }}),
        serde_json::json!({"TopUpCompleted": {
            "payment_id": payment_1, "amount": money("25.000000"),
            "balance_after": money("25.000000"), "completed_at": at,
        }}),
        serde_json::json!({"TopUpFailed": {
            "payment_id": payment_2, "reason": "card_declined", "failed_at": at,
        }}),
        serde_json::json!({"WalletDebited": {
            "reference": "order:1", "amount": money("10.000000"), "reason": "order",
            "balance_after": money("15.000000"), "debited_at": at,
        }}),
        serde_json::json!({"WalletRefunded": {
            "reference": "refund:order:1", "refunds_debit": "order:1",
            "amount": money("4.000000"), "reason": "order",
            "balance_after": money("19.000000"), "refunded_at": at,
        }}),
        serde_json::json!({"WithdrawalRequested": {
            "withdrawal_id": withdrawal, "amount": money("9.000000"),
            "destination": DESTINATION, "requested_at": at,
        }}),
        serde_json::json!({"WithdrawalApproved": {
            "withdrawal_id": withdrawal, "approved_by": staff, "approved_at": at,
        }}),
        serde_json::json!({"WithdrawalRejected": {
            "withdrawal_id": withdrawal, "reason": "destination closed",
            "rejected_by": staff, "rejected_at": at,
        }}),
        serde_json::json!({"WithdrawalPaidOut": {
            "withdrawal_id": withdrawal, "amount": money("9.000000"),
            "balance_after": money("10.000000"), "paid_out_at": at,
        }}),
        serde_json::json!({"LowBalanceThresholdChanged": {
            "threshold": money("5.000000"), "changed_at": at,
        }}),
        serde_json::json!({"CreditLimitChanged": {
            "credit_limit": money("100.000000"), "changed_at": at,
        }}),
    ];

    for (event, expected) in one_of_each().into_iter().zip(expected) {
        let json = serde_json::to_value(&event).unwrap();
        let back: WalletEvent = serde_json::from_value(json.clone()).unwrap();

        assert_eq!(json, expected, "{}", event.event_type());
        assert_eq!(back, event);
    }
}

#[test]
fn a_stored_event_with_a_float_amount_does_not_deserialise() {
    let stored = serde_json::json!({"WalletDebited": {
        "reference": "order:1", "amount": {"amount": 10.5, "currency": "EUR"}, "reason": "order",
        "balance_after": {"amount": "15.000000", "currency": "EUR"},
        "debited_at": "2025-03-01T09:30:00Z",
    }});

    let result = serde_json::from_value::<WalletEvent>(stored);

    assert!(result.is_err());
}

#[test]
fn the_aggregate_state_round_trips_through_json_for_snapshots() {
    let wallet = replay(funded_and(
        "50",
        vec![
            initiated(2, eur("10"), PaymentGateway::Stripe),
            failed(2),
            debited("order:1", eur("10"), eur("40")),
            refunded("refund:order:1", Some("order:1"), eur("4"), eur("44")),
            requested(1, eur("9")),
            approved(1),
            paid_out(1, eur("9"), eur("35")),
            requested(2, eur("5")),
            threshold_changed(eur("5")),
            credit_limit_changed(eur("100")),
        ],
    ));

    let json = serde_json::to_string(&wallet).unwrap();
    let back: Wallet = serde_json::from_str(&json).unwrap();

    assert_eq!(back, wallet);
}
