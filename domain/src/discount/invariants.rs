//! Property test: for any sequence of redeem, release and update commands, active redemptions
//! never exceed the limits, each order holds at most one place, and the state equals a replay of
//! the log (through JSON, as events come back from the store).
//!
//! Commands go through the real `Aggregate::handle` and `EventSink`, so the live aggregate is
//! exactly what cqrs-es would hold. Active redemptions are counted from the log by this test's own
//! bookkeeping, not by the aggregate's accessors, which are checked against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::runtime::Runtime;

use super::*;
use crate::pricing::Percent;

/// Few enough orders and accounts that sequences often hit the same one again.
const ORDER_SLOTS: u128 = 12;
const ACCOUNT_SLOTS: u128 = 4;
const MAX_STEPS: usize = 80;

#[derive(Debug, Clone)]
enum Step {
    Redeem {
        order: u128,
        account: u128,
        first_order: bool,
        annual: bool,
    },
    Release {
        order: u128,
    },
    SetMaxRedemptions(Option<u32>),
    SetMaxPerAccount(Option<u32>),
    SetActive(bool),
    SetFirstOrderOnly(bool),
}

fn limit() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![1 => Just(None), 1 => Just(Some(0)), 6 => (1_u32..6).prop_map(Some)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..ORDER_SLOTS, 0..ACCOUNT_SLOTS, prop::bool::weighted(0.8), prop::bool::weighted(0.2))
            .prop_map(|(order, account, first_order, annual)| Step::Redeem { order, account, first_order, annual }),
        4 => (0..ORDER_SLOTS).prop_map(|order| Step::Release { order }),
        2 => limit().prop_map(Step::SetMaxRedemptions),
        2 => limit().prop_map(Step::SetMaxPerAccount),
        1 => any::<bool>().prop_map(Step::SetActive),
        1 => prop::bool::weighted(0.2).prop_map(Step::SetFirstOrderOnly),
    ]
}

fn order_id(slot: u128) -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0004_0000 + slot,
    ))
}

fn account_id(slot: u128) -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0005_0000 + slot,
    ))
}

/// A created code driven through `handle`, with every committed event.
struct Run {
    runtime: Runtime,
    live: DiscountCode,
    log: Vec<DiscountEvent>,
    now: DateTime<Utc>,
}

impl Run {
    fn created(max_redemptions: Option<u32>, max_per_account: Option<u32>) -> Self {
        let mut run = Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            live: DiscountCode::default(),
            log: Vec::new(),
            now: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
        };
        let terms = DiscountTerms {
            max_redemptions,
            max_per_account,
            // Monthly only, so that annual requests are refused by a rule that is not a limit.
            billing_periods: [BillingPeriod::Monthly].into(),
            ..DiscountTerms::new(DiscountValue::PercentOff {
                percent: Percent::parse("10").unwrap(),
            })
        };
        run.execute(DiscountCommand::Create {
            code: CodeText::parse("PROPTEST").unwrap(),
            terms,
            occurred_at: run.now,
        })
        .unwrap();
        run
    }

    fn execute(&mut self, command: DiscountCommand) -> Result<Vec<DiscountEvent>, DiscountError> {
        let sink = EventSink::<DiscountCode>::default();
        let services = DiscountServices {
            settlement: Currency::EUR,
        };
        let result = self
            .runtime
            .block_on(self.live.handle(command, &services, &sink));
        let events = self.runtime.block_on(sink.collect());
        if result.is_ok() {
            self.log.extend(events.iter().cloned());
        }
        result.map(|()| events)
    }

    fn command(&self, step: &Step) -> DiscountCommand {
        let at = self.now;
        let patch = |patch: TermsPatch| DiscountCommand::Update {
            patch,
            occurred_at: at,
        };
        match *step {
            Step::Redeem {
                order,
                account,
                first_order,
                annual,
            } => DiscountCommand::Redeem {
                order_id: order_id(order),
                account_id: account_id(account),
                plan_id: None,
                billing_period: if annual {
                    BillingPeriod::Annual
                } else {
                    BillingPeriod::Monthly
                },
                first_order,
                at,
            },
            Step::Release { order } => DiscountCommand::Release {
                order_id: order_id(order),
                at,
            },
            Step::SetMaxRedemptions(max) => patch(TermsPatch {
                max_redemptions: Some(max),
                ..TermsPatch::default()
            }),
            Step::SetMaxPerAccount(max) => patch(TermsPatch {
                max_per_account: Some(max),
                ..TermsPatch::default()
            }),
            Step::SetActive(active) => patch(TermsPatch {
                active: Some(active),
                ..TermsPatch::default()
            }),
            Step::SetFirstOrderOnly(first_order_only) => patch(TermsPatch {
                first_order_only: Some(first_order_only),
                ..TermsPatch::default()
            }),
        }
    }

    fn perform(&mut self, step: &Step) -> Result<Vec<DiscountEvent>, DiscountError> {
        self.now += TimeDelta::minutes(1);
        let command = self.command(step);
        self.execute(command)
    }
}

/// The active orders (with their account) according to the log alone.
fn active_from_log(log: &[DiscountEvent]) -> Result<BTreeMap<OrderId, AccountId>, TestCaseError> {
    let mut active = BTreeMap::new();
    for event in log {
        match event {
            DiscountEvent::DiscountRedeemed {
                order_id,
                account_id,
                ..
            } => {
                prop_assert!(
                    active.insert(*order_id, *account_id).is_none(),
                    "order {} redeemed twice while active",
                    order_id
                );
            }
            DiscountEvent::RedemptionReleased {
                order_id,
                account_id,
                ..
            } => {
                prop_assert_eq!(active.remove(order_id), Some(*account_id));
            }
            DiscountEvent::DiscountCodeCreated { .. }
            | DiscountEvent::DiscountCodeUpdated { .. } => {}
        }
    }
    Ok(active)
}

fn check_invariants(run: &Run) -> Result<(), TestCaseError> {
    let terms = run.live.terms().unwrap();
    let active = active_from_log(&run.log)?;
    let total = u32::try_from(active.len()).unwrap();
    let mut per_account: BTreeMap<AccountId, u32> = BTreeMap::new();
    for account in active.values() {
        *per_account.entry(*account).or_default() += 1;
    }

    if let Some(max) = terms.max_redemptions {
        prop_assert!(total <= max, "{} active over a limit of {}", total, max);
    }
    if let Some(max) = terms.max_per_account {
        for (account, used) in &per_account {
            prop_assert!(*used <= max, "{} uses {} over {}", account, used, max);
        }
    }
    prop_assert_eq!(run.live.active_redemptions(), total);
    for slot in 0..ACCOUNT_SLOTS {
        let account = account_id(slot);
        prop_assert_eq!(
            run.live.active_redemptions_of(&account),
            per_account.get(&account).copied().unwrap_or(0)
        );
    }
    for slot in 0..ORDER_SLOTS {
        let order = order_id(slot);
        prop_assert_eq!(run.live.is_redeemed_by(&order), active.contains_key(&order));
    }

    let mut replayed = DiscountCode::default();
    for event in &run.log {
        let json = serde_json::to_string(event).unwrap();
        replayed.apply(serde_json::from_str(&json).unwrap());
    }
    prop_assert_eq!(&replayed, &run.live);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn active_redemptions_never_exceed_the_limits_whatever_the_commands(
        max_redemptions in limit().prop_filter("a valid limit", |l| *l != Some(0)),
        max_per_account in limit().prop_filter("a valid limit", |l| *l != Some(0)),
        steps in prop::collection::vec(step(), 1..MAX_STEPS),
    ) {
        let mut run = Run::created(max_redemptions, max_per_account);
        check_invariants(&run)?;
        for step in &steps {
            let before = run.live.clone();
            let result = run.perform(step);
            match (&result, step) {
                // A refusal changes nothing.
                (Err(_), _) => prop_assert_eq!(&run.live, &before),
                // A redemption or release records at most one event.
                (Ok(events), _) => prop_assert!(events.len() <= 1, "{:?}", events),
            }
            if let (Ok(events), Step::Redeem { order, .. }) = (&result, step) {
                if before.is_redeemed_by(&order_id(*order)) {
                    prop_assert!(events.is_empty(), "a repeat recorded {:?}", events);
                }
            }
            check_invariants(&run)?;
        }
    }
}
