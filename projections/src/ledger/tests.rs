#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;
use stratus_domain::{LedgerReference, WithdrawalId};

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn eur(micros: i64) -> Money {
    Money::from_micros(micros, Currency::EUR)
}

fn account() -> Uuid {
    Uuid::from_u128(0x0190_f3a1_7c2e_7d3b_9a4e_2f1c_5b8d_6e70)
}

fn payment() -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(7))
}

fn reference(text: &str) -> LedgerReference {
    LedgerReference::parse(text).unwrap()
}

/// (ledger account, signed amount) of each line, in line order.
fn lines(postings: &[Posting]) -> Vec<(String, i64)> {
    postings
        .iter()
        .map(|p| (p.ledger_account.clone(), p.amount_micros))
        .collect()
}

#[test]
fn a_completed_top_up_credits_the_wallet_against_its_gateways_clearing_account() {
    let event = WalletEvent::TopUpCompleted {
        payment_id: payment(),
        amount: eur(25_000_000),
        balance_after: eur(25_000_000),
        completed_at: at(),
    };

    let postings = postings(account(), &event, Some(PaymentGateway::Stripe)).unwrap();

    assert_eq!(
        lines(&postings),
        vec![
            (wallet_account(account()), 25_000_000),
            ("clearing:stripe".to_owned(), -25_000_000)
        ]
    );
    assert_eq!(postings[0].account_id, Some(account()));
    assert_eq!(postings[1].account_id, None);
    assert!(postings.iter().all(|p| p.kind == MovementKind::TopUp));
    assert!(postings.iter().all(|p| p.currency == Currency::EUR));
}

#[test]
fn a_debit_moves_money_from_the_wallet_to_the_revenue_of_its_reason() {
    let event = WalletEvent::WalletDebited {
        reference: reference("vm_hour:1:2026-11-21T09"),
        amount: eur(13_889),
        reason: DebitReason::VmHour,
        balance_after: eur(-13_889),
        debited_at: at(),
    };

    let postings = postings(account(), &event, None).unwrap();

    assert_eq!(
        lines(&postings),
        vec![
            (wallet_account(account()), -13_889),
            ("revenue:vm_hour".to_owned(), 13_889)
        ]
    );
    assert!(postings.iter().all(|p| p.kind == MovementKind::Debit));
}

#[test]
fn a_refund_credits_the_wallet_against_the_refunds_of_its_reason() {
    let event = WalletEvent::WalletRefunded {
        reference: reference("refund:goodwill:1"),
        refunds_debit: None,
        amount: eur(5_000_000),
        reason: RefundReason::Goodwill,
        balance_after: eur(5_000_000),
        refunded_at: at(),
    };

    let postings = postings(account(), &event, None).unwrap();

    assert_eq!(
        lines(&postings),
        vec![
            (wallet_account(account()), 5_000_000),
            ("refunds:goodwill".to_owned(), -5_000_000)
        ]
    );
}

#[test]
fn a_paid_out_withdrawal_moves_money_from_the_wallet_to_payouts() {
    let event = WalletEvent::WithdrawalPaidOut {
        withdrawal_id: WithdrawalId::from_uuid(Uuid::from_u128(9)),
        amount: Money::from_micros(3_000_000, Currency::USD),
        balance_after: Money::from_micros(1_000_000, Currency::USD),
        paid_out_at: at(),
    };

    let postings = postings(account(), &event, None).unwrap();

    assert_eq!(
        lines(&postings),
        vec![
            (wallet_account(account()), -3_000_000),
            ("payouts".to_owned(), 3_000_000)
        ]
    );
    assert!(postings.iter().all(|p| p.currency == Currency::USD));
}

#[test]
fn events_that_move_no_money_post_nothing() {
    let events = [
        WalletEvent::TopUpInitiated {
            payment_id: payment(),
            amount: eur(1_000_000),
            gateway: PaymentGateway::Manual,
            gateway_reference: None,
            initiated_at: at(),
        },
        WalletEvent::CreditLimitChanged {
            credit_limit: eur(1_000_000),
            changed_at: at(),
        },
        WalletEvent::WithdrawalRequested {
            withdrawal_id: WithdrawalId::from_uuid(Uuid::from_u128(9)),
            amount: eur(1_000_000),
            destination: "DE89370400440532013000".to_owned(),
            requested_at: at(),
        },
    ];

    for event in &events {
        assert_eq!(postings(account(), event, None).unwrap(), Vec::new());
    }
}

#[test]
fn a_completed_top_up_without_a_known_gateway_is_refused() {
    let event = WalletEvent::TopUpCompleted {
        payment_id: payment(),
        amount: eur(1_000_000),
        balance_after: eur(1_000_000),
        completed_at: at(),
    };

    assert_eq!(
        postings(account(), &event, None),
        Err(PostingError::UnknownTopUp(payment()))
    );
}

#[test]
fn the_two_lines_of_the_largest_movement_still_sum_to_zero() {
    let event = WalletEvent::WalletDebited {
        reference: reference("order:huge"),
        amount: eur(i64::MAX),
        reason: DebitReason::Order,
        balance_after: eur(0),
        debited_at: at(),
    };

    let postings = postings(account(), &event, None).unwrap();

    assert_eq!(postings[0].amount_micros, -i64::MAX);
    assert_eq!(
        i128::from(postings[0].amount_micros) + i128::from(postings[1].amount_micros),
        0
    );
}

#[test]
fn counter_account_names_follow_the_stored_names_of_gateways_and_reasons() {
    assert_eq!(
        CounterAccount::Clearing(PaymentGateway::Manual).name(),
        "clearing:manual"
    );
    assert_eq!(
        CounterAccount::Revenue(DebitReason::Adjustment).name(),
        "revenue:adjustment"
    );
    assert_eq!(
        CounterAccount::Refunds(RefundReason::VmHour).name(),
        "refunds:vm_hour"
    );
    assert_eq!(CounterAccount::Payouts.name(), "payouts");
    assert_eq!(
        wallet_account(account()),
        "wallet:0190f3a1-7c2e-7d3b-9a4e-2f1c5b8d6e70"
    );
}
