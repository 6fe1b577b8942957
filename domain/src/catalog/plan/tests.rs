//! Given/when/then tests for the `Plan` aggregate, and the pinned stored format of its events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::ids::DatacenterId;
use crate::pricing::{Percent, PeriodPrice, Resources};
use crate::values::{Currency, Money};

fn given(events: Vec<PlanEvent>) -> AggregateTestExecutor<Plan> {
    TestFramework::<Plan>::with(()).given(events)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap()
}

fn id() -> PlanId {
    PlanId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0f01))
}

fn datacenters(ns: &[u128]) -> PlanDatacenters {
    PlanDatacenters::new(ns.iter().map(|n| {
        DatacenterId::from_uuid(Uuid::from_u128(
            0x0195_4b3c_0000_7000_8000_0000_0000_0d00 + n,
        ))
    }))
    .unwrap()
}

fn name(text: &str) -> CatalogName {
    CatalogName::parse(text).unwrap()
}

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

fn discount(percent: &str) -> PeriodPrice {
    PeriodPrice::Discount {
        percent: Percent::parse(percent).unwrap(),
    }
}

fn prices(monthly: &str, quarterly: PeriodPrice) -> PriceTable {
    PriceTable::new(
        eur("0.012"),
        eur(monthly),
        quarterly,
        PeriodPrice::Price {
            amount: eur("39.00"),
        },
        discount("15"),
    )
    .unwrap()
}

fn resources() -> PlanResources {
    PlanResources::new(Resources {
        vcpus: 2,
        memory_mib: 2048,
        disk_gib: 50,
        ipv4: 1,
        traffic_gib: 2048,
    })
    .unwrap()
}

fn new_plan(prices: PriceTable) -> NewPlan {
    NewPlan {
        code: PlanCode::parse("s-2").unwrap(),
        name: name("Small 2"),
        resources: resources(),
        prices,
        datacenters: datacenters(&[1]),
    }
}

fn create(prices: PriceTable) -> PlanCommand {
    PlanCommand::Create {
        plan_id: id(),
        plan: new_plan(prices),
        occurred_at: now(),
    }
}

fn created() -> PlanEvent {
    PlanEvent::PlanCreated {
        plan_id: id(),
        code: PlanCode::parse("s-2").unwrap(),
        name: name("Small 2"),
        resources: resources(),
        prices: prices("7.00", discount("5")),
        datacenters: datacenters(&[1]),
        created_at: now(),
    }
}

fn update(changes: PlanChanges) -> PlanCommand {
    PlanCommand::Update {
        changes,
        occurred_at: now(),
    }
}

fn retired() -> PlanEvent {
    PlanEvent::PlanRetired { retired_at: now() }
}

fn replay(events: Vec<PlanEvent>) -> Plan {
    let mut plan = Plan::default();
    for event in events {
        plan.apply(event);
    }
    plan
}

#[tokio::test]
async fn creating_a_plan_records_it_active_with_every_field() {
    let validator = given(vec![])
        .when_async(create(prices("7.00", discount("5"))))
        .await;

    validator.then_expect_events(vec![created()]);
    assert_eq!(replay(vec![created()]).status(), Some(PlanStatus::Active));
}

#[tokio::test]
async fn a_plan_is_created_once() {
    let validator = given(vec![created()])
        .when_async(create(prices("7.00", discount("5"))))
        .await;

    validator.then_expect_error(PlanError::AlreadyExists);
}

#[tokio::test]
async fn nothing_but_creation_is_accepted_before_the_plan_exists() {
    let commands = [
        update(PlanChanges {
            name: Some(name("Renamed")),
            ..PlanChanges::default()
        }),
        PlanCommand::Retire { occurred_at: now() },
        PlanCommand::Reactivate { occurred_at: now() },
    ];

    for command in commands {
        let validator = given(vec![]).when_async(command).await;

        validator.then_expect_error(PlanError::NotFound);
    }
}

#[tokio::test]
async fn a_period_discount_of_one_hundred_percent_is_refused() {
    let free_quarter = prices("7.00", discount("100"));

    let on_create = given(vec![]).when_async(create(free_quarter)).await;
    let on_update = given(vec![created()])
        .when_async(update(PlanChanges {
            prices: Some(free_quarter),
            ..PlanChanges::default()
        }))
        .await;

    let refusal = PlanError::PeriodNotPriceable {
        period: BillingPeriod::Quarterly,
    };
    on_create.then_expect_error(refusal);
    on_update.then_expect_error(refusal);
}

#[tokio::test]
async fn a_price_table_whose_annual_price_overflows_is_refused() {
    let huge_monthly = Money::from_micros(i64::MAX / 10, Currency::EUR);
    let table = PriceTable::new(
        eur("1"),
        huge_monthly,
        PeriodPrice::Price { amount: eur("1") },
        PeriodPrice::Price { amount: eur("1") },
        discount("0"),
    )
    .unwrap();

    let validator = given(vec![]).when_async(create(table)).await;

    validator.then_expect_error(PlanError::PeriodNotPriceable {
        period: BillingPeriod::Annual,
    });
}

#[tokio::test]
async fn an_update_that_names_no_field_is_refused() {
    let validator = given(vec![created()])
        .when_async(update(PlanChanges::default()))
        .await;

    validator.then_expect_error(PlanError::EmptyUpdate);
}

#[tokio::test]
async fn an_update_records_only_the_fields_that_change() {
    let changes = PlanChanges {
        name: Some(name("Small 2")),
        prices: Some(prices("8.00", discount("5"))),
        datacenters: Some(datacenters(&[1, 2])),
    };

    let validator = given(vec![created()]).when_async(update(changes)).await;

    validator.then_expect_events(vec![PlanEvent::PlanUpdated {
        name: None,
        prices: Some(prices("8.00", discount("5"))),
        datacenters: Some(datacenters(&[1, 2])),
        updated_at: now(),
    }]);
}

#[tokio::test]
async fn an_update_to_the_current_values_records_nothing() {
    let changes = PlanChanges {
        prices: Some(prices("7.00", discount("5"))),
        datacenters: Some(datacenters(&[1])),
        ..PlanChanges::default()
    };

    let validator = given(vec![created()]).when_async(update(changes)).await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn a_retired_plan_can_still_be_repriced_for_the_services_that_keep_it() {
    let changes = PlanChanges {
        prices: Some(prices("8.00", discount("5"))),
        ..PlanChanges::default()
    };

    let validator = given(vec![created(), retired()])
        .when_async(update(changes))
        .await;

    validator.then_expect_events(vec![PlanEvent::PlanUpdated {
        name: None,
        prices: Some(prices("8.00", discount("5"))),
        datacenters: None,
        updated_at: now(),
    }]);
}

#[tokio::test]
async fn an_active_plan_is_retired_once() {
    let retire = given(vec![created()])
        .when_async(PlanCommand::Retire { occurred_at: now() })
        .await;
    let again = given(vec![created(), retired()])
        .when_async(PlanCommand::Retire { occurred_at: now() })
        .await;

    retire.then_expect_events(vec![retired()]);
    again.then_expect_error(PlanError::AlreadyRetired);
}

#[tokio::test]
async fn only_a_retired_plan_can_be_reactivated() {
    let reactivate = given(vec![created(), retired()])
        .when_async(PlanCommand::Reactivate { occurred_at: now() })
        .await;
    let active = given(vec![created()])
        .when_async(PlanCommand::Reactivate { occurred_at: now() })
        .await;

    reactivate.then_expect_events(vec![PlanEvent::PlanReactivated {
        reactivated_at: now(),
    }]);
    active.then_expect_error(PlanError::NotRetired);
}

#[test]
fn the_state_follows_the_events_and_the_resources_never_change() {
    let plan = replay(vec![
        created(),
        PlanEvent::PlanUpdated {
            name: Some(name("Small Two")),
            prices: Some(prices("8.00", discount("5"))),
            datacenters: Some(datacenters(&[2])),
            updated_at: now(),
        },
        retired(),
    ]);

    assert!(plan.exists());
    assert_eq!(plan.id(), Some(id()));
    assert_eq!(plan.code().map(PlanCode::as_str), Some("s-2"));
    assert_eq!(plan.status(), Some(PlanStatus::Retired));
    assert_eq!(plan.resources(), Some(resources()));
    assert_eq!(plan.prices(), Some(&prices("8.00", discount("5"))));
    let back = replay(vec![
        created(),
        retired(),
        PlanEvent::PlanReactivated {
            reactivated_at: now(),
        },
    ]);
    assert_eq!(back.status(), Some(PlanStatus::Active));
    assert_eq!(Plan::default().status(), None);
}

#[test]
fn the_aggregate_type_is_pinned_because_it_keys_the_event_store() {
    assert_eq!(Plan::TYPE, "plan");
}

fn one_of_each() -> Vec<PlanEvent> {
    vec![
        created(),
        PlanEvent::PlanUpdated {
            name: Some(name("Small Two")),
            prices: None,
            datacenters: Some(datacenters(&[1, 2])),
            updated_at: now(),
        },
        retired(),
        PlanEvent::PlanReactivated {
            reactivated_at: now(),
        },
    ]
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
            "PlanCreated",
            "PlanUpdated",
            "PlanRetired",
            "PlanReactivated"
        ]
    );
    assert_eq!(PLAN_EVENT_TYPES, names.as_slice());
}

#[test]
fn every_event_keeps_its_json_shape_and_round_trips() {
    let at = "2025-03-01T09:30:00Z";
    let money = |amount: &str| serde_json::json!({"amount": amount, "currency": "EUR"});
    let dc1 = "01954b3c-0000-7000-8000-000000000d01";
    let dc2 = "01954b3c-0000-7000-8000-000000000d02";
    let expected = [
        serde_json::json!({"PlanCreated": {
            "plan_id": "01954b3c-0000-7000-8000-000000000f01", "code": "s-2", "name": "Small 2",
            "resources": {"vcpus": 2, "memory_mib": 2048, "disk_gib": 50, "ipv4": 1, "traffic_gib": 2048},
            "prices": {
                "hourly": money("0.012000"), "monthly": money("7.000000"),
                "quarterly": {"kind": "discount", "percent": 500},
                "semiannual": {"kind": "price", "amount": money("39.000000")},
                "annual": {"kind": "discount", "percent": 1500},
            },
            "datacenters": [dc1], "created_at": at,
        }}),
        serde_json::json!({"PlanUpdated": {
            "name": "Small Two", "prices": null, "datacenters": [dc1, dc2], "updated_at": at,
        }}),
        serde_json::json!({"PlanRetired": {"retired_at": at}}),
        serde_json::json!({"PlanReactivated": {"reactivated_at": at}}),
    ];

    for (event, expected) in one_of_each().into_iter().zip(expected) {
        let json = serde_json::to_value(&event).unwrap();
        let back: PlanEvent = serde_json::from_value(json.clone()).unwrap();

        assert_eq!(json, expected, "{}", event.event_type());
        assert_eq!(back, event);
    }
}

#[test]
fn plan_status_names_are_pinned_because_they_are_stored() {
    let names = [
        (PlanStatus::Active, "active"),
        (PlanStatus::Retired, "retired"),
    ];

    assert_eq!(PlanStatus::ALL.len(), names.len());
    for (status, name) in names {
        assert_eq!(status.as_str(), name);
        assert_eq!(PlanStatus::from_name(name), Some(status));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(PlanStatus::from_name("Active"), None);
}

#[test]
fn every_plan_error_has_its_pinned_code() {
    let cases = [
        (PlanError::AlreadyExists, "plan_already_exists"),
        (PlanError::NotFound, "plan_not_found"),
        (PlanError::EmptyUpdate, "empty_update"),
        (PlanError::AlreadyRetired, "plan_already_retired"),
        (PlanError::NotRetired, "plan_not_retired"),
        (
            PlanError::PeriodNotPriceable {
                period: BillingPeriod::Annual,
            },
            "period_not_priceable",
        ),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn the_aggregate_state_round_trips_through_json_for_snapshots() {
    let plan = replay(one_of_each());

    let json = serde_json::to_string(&plan).unwrap();
    let back: Plan = serde_json::from_str(&json).unwrap();

    assert_eq!(back, plan);
}
