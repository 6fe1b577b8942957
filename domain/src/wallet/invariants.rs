//! Property test: the wallet's ledger invariants hold after every step of any sequence of
//! commands, including repeats, reused references, foreign currencies, zero, negative and huge
//! amounts.
//!
//! Commands go through the real `Aggregate::handle` and `EventSink`, so the live aggregate is
//! exactly what cqrs-es would hold; the replay goes through JSON, as events come back from the
//! store. Movements are read from the events by this test's own match, not by
//! `WalletEvent::balance_movement`, which is checked against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::*;

/// Few enough ids and references that sequences often hit the same one again.
const PAYMENT_SLOTS: u128 = 3;
const WITHDRAWAL_SLOTS: u128 = 3;
const REFERENCE_SLOTS: u8 = 4;
const MAX_STEPS: usize = 60;
/// The opening top-up, outside the slots so that steps cannot settle it again by accident.
const OPENING_PAYMENT: u128 = 99;
const OPENING_BALANCE_MICROS: i64 = 50_000_000;
/// A little over half of `i64::MAX`, in whole cents: one credit of it fits, a second overflows.
const HUGE_MICROS: i64 = (i64::MAX / 2 + 1_000_000_000_000) / 10_000 * 10_000;

#[derive(Debug, Clone, Copy)]
enum Amount {
    Eur(i64),
    Usd,
    Zero,
    Negative,
    Huge,
}

impl Amount {
    fn money(self) -> Money {
        match self {
            Self::Eur(micros) => Money::from_micros(micros, Currency::EUR),
            Self::Usd => Money::from_micros(1_000_000, Currency::USD),
            Self::Zero => Money::zero(Currency::EUR),
            Self::Negative => Money::from_micros(-1_000_000, Currency::EUR),
            Self::Huge => Money::from_micros(HUGE_MICROS, Currency::EUR),
        }
    }
}

/// Mostly a handful of valid EUR amounts (so that repeats carry the same amount), some sub-cent
/// ones, and the invalid and extreme kinds.
fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        10 => prop::sample::select(vec![10_000_i64, 1_000_000, 2_500_000, 10_000_000, 25_000_000, 60_000_000])
            .prop_map(Amount::Eur),
        2 => prop::sample::select(vec![1_i64, 13_889]).prop_map(Amount::Eur),
        1 => Just(Amount::Usd),
        1 => Just(Amount::Zero),
        1 => Just(Amount::Negative),
        1 => Just(Amount::Huge),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Initiate {
        payment: u128,
        amount: Amount,
        stripe: bool,
    },
    /// `received: None` completes with the amount initiated.
    Complete {
        payment: u128,
        received: Option<Amount>,
    },
    Fail {
        payment: u128,
    },
    /// `amount: None` uses the reference's usual amount, so that repeats often match.
    Debit {
        reference: u8,
        amount: Option<Amount>,
    },
    Refund {
        reference: u8,
        of: Option<u8>,
        amount: Option<Amount>,
    },
    Request {
        withdrawal: u128,
        amount: Amount,
        other_destination: bool,
    },
    Approve {
        withdrawal: u128,
    },
    Reject {
        withdrawal: u128,
    },
    PayOut {
        withdrawal: u128,
    },
    SetCreditLimit {
        amount: Amount,
    },
    SetThreshold {
        amount: Amount,
    },
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let payment = || 0..PAYMENT_SLOTS;
    let withdrawal = || 0..WITHDRAWAL_SLOTS;
    let reference = || 0..REFERENCE_SLOTS;
    prop_oneof![
        3 => (payment(), amount(), any::<bool>())
            .prop_map(|(payment, amount, stripe)| Step::Initiate { payment, amount, stripe }),
        3 => (payment(), prop::option::weighted(0.3, amount()))
            .prop_map(|(payment, received)| Step::Complete { payment, received }),
        1 => payment().prop_map(|payment| Step::Fail { payment }),
        5 => (reference(), prop::option::weighted(0.5, amount()))
            .prop_map(|(reference, amount)| Step::Debit { reference, amount }),
        3 => (reference(), prop::option::of(reference()), prop::option::weighted(0.5, amount()))
            .prop_map(|(reference, of, amount)| Step::Refund { reference, of, amount }),
        3 => (withdrawal(), amount(), prop::bool::weighted(0.1))
            .prop_map(|(withdrawal, amount, other_destination)| Step::Request { withdrawal, amount, other_destination }),
        2 => withdrawal().prop_map(|withdrawal| Step::Approve { withdrawal }),
        1 => withdrawal().prop_map(|withdrawal| Step::Reject { withdrawal }),
        2 => withdrawal().prop_map(|withdrawal| Step::PayOut { withdrawal }),
        2 => amount().prop_map(|amount| Step::SetCreditLimit { amount }),
        1 => amount().prop_map(|amount| Step::SetThreshold { amount }),
        1 => Just(Step::Reopen),
    ]
}

fn payment_id(slot: u128) -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0002_0000 + slot,
    ))
}

fn withdrawal_id(slot: u128) -> WithdrawalId {
    WithdrawalId::from_uuid(Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0003_0000 + slot,
    ))
}

fn reference(slot: u8) -> LedgerReference {
    LedgerReference::parse(&format!("ref:{slot}")).unwrap()
}

/// The amount a reference is usually used with: 2.50 EUR per slot.
fn usual(slot: u8, amount: Option<Amount>) -> Money {
    amount.map_or_else(
        || Money::from_micros(2_500_000 * (i64::from(slot) + 1), Currency::EUR),
        Amount::money,
    )
}

fn staff() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(2))
}

/// An open, funded wallet driven through `handle`, with the log of every committed event.
struct Run {
    runtime: Runtime,
    live: Wallet,
    log: Vec<WalletEvent>,
    now: DateTime<Utc>,
}

impl Run {
    fn funded() -> Self {
        let mut run = Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            live: Wallet::default(),
            log: Vec::new(),
            now: Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap(),
        };
        let opening = Money::from_micros(OPENING_BALANCE_MICROS, Currency::EUR);
        for command in [
            WalletCommand::Open {
                account_id: AccountId::from_uuid(Uuid::from_u128(1)),
                currency: Currency::EUR,
                occurred_at: run.now,
            },
            WalletCommand::InitiateTopUp {
                payment_id: payment_id(OPENING_PAYMENT),
                amount: opening,
                gateway: PaymentGateway::Manual,
                gateway_reference: None,
                occurred_at: run.now,
            },
            WalletCommand::CompleteTopUp {
                payment_id: payment_id(OPENING_PAYMENT),
                amount_received: opening,
                occurred_at: run.now,
            },
        ] {
            run.execute(command).unwrap();
        }
        run
    }

    fn execute(&mut self, command: WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        let sink = EventSink::<Wallet>::default();
        let result = self.runtime.block_on(self.live.handle(command, &(), &sink));
        let events = self.runtime.block_on(sink.collect());
        if result.is_ok() {
            self.log.extend(events.iter().cloned());
        }
        result.map(|()| events)
    }

    fn command(&self, step: &Step) -> WalletCommand {
        let occurred_at = self.now;
        match *step {
            Step::Initiate {
                payment,
                amount,
                stripe,
            } => WalletCommand::InitiateTopUp {
                payment_id: payment_id(payment),
                amount: amount.money(),
                gateway: if stripe {
                    PaymentGateway::Stripe
                } else {
                    PaymentGateway::Manual
                },
                gateway_reference: Some(format!("gw-{payment}")),
                occurred_at,
            },
            Step::Complete { payment, received } => {
                let initiated = self
                    .live
                    .top_up(&payment_id(payment))
                    .map(TopUpState::amount);
                let amount_received = match (received, initiated) {
                    (Some(amount), _) => amount.money(),
                    (None, Some(initiated)) => initiated,
                    (None, None) => Amount::Eur(1_000_000).money(),
                };
                WalletCommand::CompleteTopUp {
                    payment_id: payment_id(payment),
                    amount_received,
                    occurred_at,
                }
            }
            Step::Fail { payment } => WalletCommand::FailTopUp {
                payment_id: payment_id(payment),
                reason: "declined".to_owned(),
                occurred_at,
            },
            Step::Debit {
                reference: slot,
                amount,
            } => WalletCommand::Debit {
                reference: reference(slot),
                amount: usual(slot, amount),
                reason: DebitReason::VmHour,
                occurred_at,
            },
            Step::Refund {
                reference: slot,
                of,
                amount,
            } => WalletCommand::Refund {
                reference: reference(slot),
                refunds_debit: of.map(reference),
                amount: usual(slot, amount),
                reason: RefundReason::VmHour,
                occurred_at,
            },
            Step::Request {
                withdrawal,
                amount,
                other_destination,
            } => WalletCommand::RequestWithdrawal {
                withdrawal_id: withdrawal_id(withdrawal),
                amount: amount.money(),
                destination: if other_destination {
                    "elsewhere"
                } else {
                    "DE89 3704"
                }
                .to_owned(),
                occurred_at,
            },
            Step::Approve { withdrawal } => WalletCommand::ApproveWithdrawal {
                withdrawal_id: withdrawal_id(withdrawal),
                approved_by: staff(),
                occurred_at,
            },
            Step::Reject { withdrawal } => WalletCommand::RejectWithdrawal {
                withdrawal_id: withdrawal_id(withdrawal),
                reason: "no".to_owned(),
                rejected_by: staff(),
                occurred_at,
            },
            Step::PayOut { withdrawal } => WalletCommand::MarkWithdrawalPaidOut {
                withdrawal_id: withdrawal_id(withdrawal),
                occurred_at,
            },
            Step::SetCreditLimit { amount } => WalletCommand::SetCreditLimit {
                amount: amount.money(),
                occurred_at,
            },
            Step::SetThreshold { amount } => WalletCommand::SetLowBalanceThreshold {
                amount: amount.money(),
                occurred_at,
            },
            Step::Reopen => WalletCommand::Open {
                account_id: AccountId::from_uuid(Uuid::from_u128(1)),
                currency: Currency::USD,
                occurred_at,
            },
        }
    }

    fn perform(&mut self, step: &Step) -> Result<Vec<WalletEvent>, WalletError> {
        self.now += TimeDelta::minutes(1);
        let command = self.command(step);
        self.execute(command)
    }
}

/// The movement an event records, read independently of `balance_movement`: signed amount,
/// amount and balance after.
fn movement(event: &WalletEvent) -> Option<(i128, Money, Money)> {
    match event {
        WalletEvent::TopUpCompleted {
            amount,
            balance_after,
            ..
        }
        | WalletEvent::WalletRefunded {
            amount,
            balance_after,
            ..
        } => Some((i128::from(amount.micros()), *amount, *balance_after)),
        WalletEvent::WalletDebited {
            amount,
            balance_after,
            ..
        }
        | WalletEvent::WithdrawalPaidOut {
            amount,
            balance_after,
            ..
        } => Some((-i128::from(amount.micros()), *amount, *balance_after)),
        _ => None,
    }
}

/// Every invariant of the ledger, checked against the live aggregate and the whole log.
fn check_invariants(run: &Run) -> Result<(), TestCaseError> {
    let wallet = &run.live;
    let balance = i128::from(wallet.balance().unwrap().micros());
    let reserved = i128::from(wallet.reserved().unwrap().micros());
    let credit_limit = i128::from(wallet.credit_limit().unwrap().micros());

    prop_assert!(
        balance >= -credit_limit,
        "balance {} below -{}",
        balance,
        credit_limit
    );
    prop_assert!(reserved >= 0, "reserved {}", reserved);
    prop_assert!(
        balance - reserved >= -credit_limit,
        "spendable below the limit"
    );
    prop_assert!(credit_limit >= 0);

    // The balance is the sum of the signed movements, and each records the running sum.
    let mut running: i128 = 0;
    for event in &run.log {
        let Some((signed, amount, balance_after)) = movement(event) else {
            prop_assert_eq!(event.balance_movement(), None);
            continue;
        };
        running += signed;
        prop_assert!(amount.is_positive(), "{:?}", event);
        prop_assert_eq!(amount.currency(), Currency::EUR);
        prop_assert_eq!(balance_after.currency(), Currency::EUR);
        prop_assert_eq!(i128::from(balance_after.micros()), running, "{:?}", event);
        prop_assert_eq!(
            event.balance_movement().map(|m| m.signed_micros()),
            Some(signed)
        );
    }
    prop_assert_eq!(running, balance);

    // The reservation is exactly the open withdrawals.
    let open_withdrawals: i128 = (0..WITHDRAWAL_SLOTS)
        .filter_map(|slot| wallet.withdrawal(&withdrawal_id(slot)))
        .filter(|w| {
            matches!(
                w.status(),
                WithdrawalStatus::Requested | WithdrawalStatus::Approved
            )
        })
        .map(|w| i128::from(w.amount().micros()))
        .sum();
    prop_assert_eq!(reserved, open_withdrawals);

    // No debit is refunded beyond itself.
    for slot in 0..REFERENCE_SLOTS {
        if let Some(LedgerEntry::Debit {
            amount_micros,
            refunded_micros,
        }) = wallet.ledger_entry(&reference(slot))
        {
            prop_assert!(0 <= *refunded_micros && refunded_micros <= amount_micros);
        }
    }

    // A top-up is settled at most once, a withdrawal paid out or rejected at most once.
    let mut settled_payments = Vec::new();
    let mut settled_withdrawals = Vec::new();
    for event in &run.log {
        match event {
            WalletEvent::TopUpCompleted { payment_id, .. }
            | WalletEvent::TopUpFailed { payment_id, .. } => {
                prop_assert!(
                    !settled_payments.contains(payment_id),
                    "{:?} settled twice",
                    payment_id
                );
                settled_payments.push(*payment_id);
            }
            WalletEvent::WithdrawalPaidOut { withdrawal_id, .. }
            | WalletEvent::WithdrawalRejected { withdrawal_id, .. } => {
                prop_assert!(
                    !settled_withdrawals.contains(withdrawal_id),
                    "{:?} settled twice",
                    withdrawal_id
                );
                settled_withdrawals.push(*withdrawal_id);
            }
            _ => {}
        }
    }

    // Replaying the stored events gives the live state.
    let mut replayed = Wallet::default();
    for event in &run.log {
        let stored: WalletEvent =
            serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap();
        replayed.apply(stored);
    }
    prop_assert_eq!(&replayed, wallet);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_ledger_invariants_hold_after_every_step(
        steps in prop::collection::vec(step(), 1..=MAX_STEPS)
    ) {
        let mut run = Run::funded();
        check_invariants(&run)?;

        for step in &steps {
            let reused_reference = match step {
                Step::Debit { reference: slot, .. } | Step::Refund { reference: slot, .. } => {
                    run.live.ledger_entry(&reference(*slot)).is_some()
                }
                _ => false,
            };
            let balance_before = run.live.balance();
            let logged_before = run.log.len();

            let outcome = run.perform(step);

            match &outcome {
                Ok(events) => prop_assert!(events.len() <= 1, "{:?} gave {:?}", step, events),
                Err(_) => prop_assert_eq!(run.log.len(), logged_before, "a refusal recorded events"),
            }
            if reused_reference {
                prop_assert_eq!(run.live.balance(), balance_before, "{:?} moved money again", step);
                prop_assert_eq!(run.log.len(), logged_before);
            }
            if matches!(step, Step::Reopen) {
                prop_assert_eq!(outcome.clone(), Err(WalletError::WalletAlreadyOpen));
            }
            check_invariants(&run)?;
        }
    }
}
