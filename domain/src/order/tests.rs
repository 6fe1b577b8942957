//! Given/when/then tests of the order's rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::pricing::{self, Offer, Percent, PeriodPrice, PriceTable, PricingRequest, TaxRate};
use crate::values::Currency;

fn given(events: Vec<OrderEvent>) -> AggregateTestExecutor<Order> {
    TestFramework::<Order>::with(()).given(events)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
}

fn eur(input: &str) -> Money {
    Money::from_decimal_str(input, Currency::EUR).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0000 + n)
}

fn resources() -> Resources {
    Resources {
        vcpus: 2,
        memory_mib: 2048,
        disk_gib: 40,
        ipv4: 1,
        traffic_gib: 1000,
    }
}

fn placement() -> Placement {
    let no_discount = PeriodPrice::Discount {
        percent: Percent::ZERO,
    };
    let prices = PriceTable::new(
        eur("0.01"),
        eur("7.00"),
        no_discount,
        no_discount,
        no_discount,
    )
    .unwrap();
    let quote = pricing::quote(&PricingRequest {
        offer: Offer::Plan {
            name: "S-2",
            prices: &prices,
        },
        billing_period: BillingPeriod::Monthly,
        discount: None,
        tax: TaxRate::none(),
    })
    .unwrap();
    Placement {
        order_id: OrderId::from_uuid(id(1)),
        account_id: AccountId::from_uuid(id(2)),
        item: OrderItem::Plan {
            plan_id: PlanId::from_uuid(id(3)),
            resources: resources(),
        },
        datacenter_id: DatacenterId::from_uuid(id(4)),
        image_id: ImageId::from_uuid(id(5)),
        hostname: Hostname::parse("web-1.example.com").unwrap(),
        ssh_keys: Vec::new(),
        billing_period: BillingPeriod::Monthly,
        quote,
        discount: None,
        invoice_id: InvoiceId::from_uuid(id(6)),
        placed_at: now(),
        pay_by: now() + Duration::hours(24),
    }
}

fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced(Box::new(placement()))
}

fn reference() -> LedgerReference {
    LedgerReference::parse("order:0195").unwrap()
}

fn pay(amount: &str, at: DateTime<Utc>) -> OrderCommand {
    OrderCommand::Pay {
        payment_reference: reference(),
        amount: eur(amount),
        paid_at: at,
    }
}

fn paid() -> OrderEvent {
    OrderEvent::OrderPaid {
        payment_reference: reference(),
        amount: eur("7.00"),
        paid_at: now(),
    }
}

#[test]
fn an_order_is_placed_pending_payment() {
    given(vec![])
        .when(OrderCommand::Place(Box::new(placement())))
        .then_expect_events(vec![placed()]);
}

#[test]
fn an_order_is_placed_only_once() {
    given(vec![placed()])
        .when(OrderCommand::Place(Box::new(placement())))
        .then_expect_error(OrderError::OrderAlreadyPlaced);
}

#[test]
fn a_deadline_before_the_placement_is_refused() {
    let mut early = placement();
    early.pay_by = early.placed_at;

    given(vec![])
        .when(OrderCommand::Place(Box::new(early)))
        .then_expect_error(OrderError::InvalidDeadline);
}

#[test]
fn too_many_ssh_keys_are_refused() {
    let key = SshPublicKey::parse(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1O+kiVnXJ9nEaUIdY/9Xy7U+vzZ2ZtNiQNH+SatmHc",
    )
    .unwrap();
    let mut crowded = placement();
    crowded.ssh_keys = vec![key; MAX_SSH_KEYS + 1];

    given(vec![])
        .when(OrderCommand::Place(Box::new(crowded)))
        .then_expect_error(OrderError::TooManySshKeys);
}

#[test]
fn nothing_but_placing_is_accepted_before_the_order_exists() {
    given(vec![])
        .when(pay("7.00", now()))
        .then_expect_error(OrderError::OrderNotFound);
    given(vec![])
        .when(OrderCommand::Cancel {
            by: CancelledBy::Customer,
            at: now(),
        })
        .then_expect_error(OrderError::OrderNotFound);
}

#[test]
fn a_pending_order_is_paid_with_exactly_its_total() {
    given(vec![placed()])
        .when(pay("7.00", now()))
        .then_expect_events(vec![paid()]);
    given(vec![placed()])
        .when(pay("6.99", now()))
        .then_expect_error(OrderError::PaymentAmountMismatch);
}

#[test]
fn paying_again_with_the_same_reference_changes_nothing() {
    given(vec![placed(), paid()])
        .when(pay("7.00", now()))
        .then_expect_events(vec![]);
}

#[test]
fn a_paid_order_is_not_paid_twice_by_another_payment() {
    given(vec![placed(), paid()])
        .when(OrderCommand::Pay {
            payment_reference: LedgerReference::parse("order:other").unwrap(),
            amount: eur("7.00"),
            paid_at: now(),
        })
        .then_expect_error(OrderError::NotPayable("paid"));
}

#[test]
fn payment_after_the_deadline_is_refused() {
    given(vec![placed()])
        .when(pay("7.00", now() + Duration::hours(25)))
        .then_expect_error(OrderError::PaymentWindowClosed);
}

#[test]
fn a_pending_order_is_cancelled_once_and_cancelling_again_changes_nothing() {
    let cancel = || OrderCommand::Cancel {
        by: CancelledBy::Customer,
        at: now(),
    };
    let cancelled = OrderEvent::OrderCancelled {
        by: CancelledBy::Customer,
        cancelled_at: now(),
    };

    given(vec![placed()])
        .when(cancel())
        .then_expect_events(vec![cancelled.clone()]);
    given(vec![placed(), cancelled.clone()])
        .when(cancel())
        .then_expect_events(vec![]);
    given(vec![placed(), cancelled])
        .when(pay("7.00", now()))
        .then_expect_error(OrderError::NotPayable("cancelled"));
}

#[test]
fn a_paid_order_cannot_be_cancelled_or_expire() {
    given(vec![placed(), paid()])
        .when(OrderCommand::Cancel {
            by: CancelledBy::Staff,
            at: now(),
        })
        .then_expect_error(OrderError::NotCancellable("paid"));
    given(vec![placed(), paid()])
        .when(OrderCommand::Expire {
            at: now() + Duration::days(2),
        })
        .then_expect_error(OrderError::NotCancellable("paid"));
}

#[test]
fn an_unpaid_order_expires_only_after_its_deadline() {
    let deadline = now() + Duration::hours(24);

    given(vec![placed()])
        .when(OrderCommand::Expire { at: deadline })
        .then_expect_error(OrderError::NotDueForExpiry);
    given(vec![placed()])
        .when(OrderCommand::Expire {
            at: deadline + Duration::seconds(1),
        })
        .then_expect_events(vec![OrderEvent::OrderExpired {
            expired_at: deadline + Duration::seconds(1),
        }]);
}

#[test]
fn an_expired_order_cannot_be_paid_and_expiring_again_changes_nothing() {
    let later = now() + Duration::days(2);
    let expired = OrderEvent::OrderExpired { expired_at: later };

    given(vec![placed(), expired.clone()])
        .when(pay("7.00", now()))
        .then_expect_error(OrderError::NotPayable("cancelled"));
    given(vec![placed(), expired])
        .when(OrderCommand::Expire { at: later })
        .then_expect_events(vec![]);
}

#[test]
fn order_event_names_are_pinned() {
    let names: Vec<String> = [
        placed(),
        paid(),
        OrderEvent::OrderCancelled {
            by: CancelledBy::Customer,
            cancelled_at: now(),
        },
        OrderEvent::OrderExpired { expired_at: now() },
    ]
    .iter()
    .map(DomainEvent::event_type)
    .collect();

    assert_eq!(
        names,
        ["OrderPlaced", "OrderPaid", "OrderCancelled", "OrderExpired"]
    );
    assert_eq!(paid().event_version(), "1");
}
