//! Given/when/then tests for the `Datacenter` aggregate, and the pinned stored format of its events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::pricing::{Percent, PeriodDiscounts, ResourceBounds, Resources, UnitPrices};
use crate::values::{Currency, Money};

fn given(events: Vec<DatacenterEvent>) -> AggregateTestExecutor<Datacenter> {
    TestFramework::<Datacenter>::with(()).given(events)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap()
}

fn id() -> DatacenterId {
    DatacenterId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0d01))
}

fn name(text: &str) -> CatalogName {
    CatalogName::parse(text).unwrap()
}

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

fn eur(amount: &str) -> Money {
    Money::from_decimal_str(amount, Currency::EUR).unwrap()
}

fn resources(vcpus: u32, memory_mib: u32, disk_gib: u32) -> Resources {
    Resources {
        vcpus,
        memory_mib,
        disk_gib,
        ipv4: 1,
        traffic_gib: 0,
    }
}

fn pricing(vcpu: &str) -> CustomPricing {
    CustomPricing::new(
        UnitPrices {
            vcpu: eur(vcpu),
            memory_gib: eur("1.50"),
            disk_gib: eur("0.05"),
            ipv4: eur("1.00"),
            traffic_gib: eur("0"),
        },
        ResourceBounds {
            min: resources(1, 1024, 10),
            max: resources(16, 65_536, 1000),
        },
        PeriodDiscounts {
            quarterly: Percent::parse("3").unwrap(),
            semiannual: Percent::parse("6").unwrap(),
            annual: Percent::parse("10").unwrap(),
        },
    )
    .unwrap()
}

fn create(custom_pricing: Option<CustomPricing>) -> DatacenterCommand {
    DatacenterCommand::Create {
        datacenter_id: id(),
        datacenter: NewDatacenter {
            code: DatacenterCode::parse("fra1").unwrap(),
            name: name("Frankfurt"),
            country: country("DE"),
            available: true,
            custom_pricing,
        },
        occurred_at: now(),
    }
}

fn created(custom_pricing: Option<CustomPricing>) -> DatacenterEvent {
    DatacenterEvent::DatacenterCreated {
        datacenter_id: id(),
        code: DatacenterCode::parse("fra1").unwrap(),
        name: name("Frankfurt"),
        country: country("DE"),
        available: true,
        custom_pricing,
        created_at: now(),
    }
}

fn update(changes: DatacenterChanges) -> DatacenterCommand {
    DatacenterCommand::Update {
        changes,
        occurred_at: now(),
    }
}

fn replay(events: Vec<DatacenterEvent>) -> Datacenter {
    let mut datacenter = Datacenter::default();
    for event in events {
        datacenter.apply(event);
    }
    datacenter
}

#[tokio::test]
async fn creating_a_datacenter_records_every_field() {
    let validator = given(vec![])
        .when_async(create(Some(pricing("3.50"))))
        .await;

    validator.then_expect_events(vec![created(Some(pricing("3.50")))]);
}

#[tokio::test]
async fn a_datacenter_is_created_once() {
    let validator = given(vec![created(None)]).when_async(create(None)).await;

    validator.then_expect_error(DatacenterError::AlreadyExists);
}

#[tokio::test]
async fn a_datacenter_that_does_not_exist_cannot_be_updated() {
    let changes = DatacenterChanges {
        available: Some(false),
        ..DatacenterChanges::default()
    };

    let validator = given(vec![]).when_async(update(changes)).await;

    validator.then_expect_error(DatacenterError::NotFound);
}

#[tokio::test]
async fn an_update_that_names_no_field_is_refused() {
    let validator = given(vec![created(None)])
        .when_async(update(DatacenterChanges::default()))
        .await;

    validator.then_expect_error(DatacenterError::EmptyUpdate);
}

#[tokio::test]
async fn an_update_records_only_the_fields_that_change() {
    let changes = DatacenterChanges {
        name: Some(name("Frankfurt")),
        country: Some(country("DE")),
        available: Some(false),
        custom_pricing: None,
    };

    let validator = given(vec![created(None)]).when_async(update(changes)).await;

    validator.then_expect_events(vec![DatacenterEvent::DatacenterUpdated {
        name: None,
        country: None,
        available: Some(false),
        updated_at: now(),
    }]);
}

#[tokio::test]
async fn an_update_to_the_current_values_records_nothing() {
    let changes = DatacenterChanges {
        name: Some(name("Frankfurt")),
        available: Some(true),
        custom_pricing: Some(Some(pricing("3.50"))),
        ..DatacenterChanges::default()
    };

    let validator = given(vec![created(Some(pricing("3.50")))])
        .when_async(update(changes))
        .await;

    validator.then_expect_events(vec![]);
}

#[tokio::test]
async fn new_custom_pricing_is_recorded_in_its_own_event() {
    let changes = DatacenterChanges {
        name: Some(name("Frankfurt am Main")),
        custom_pricing: Some(Some(pricing("4.00"))),
        ..DatacenterChanges::default()
    };

    let validator = given(vec![created(Some(pricing("3.50")))])
        .when_async(update(changes))
        .await;

    validator.then_expect_events(vec![
        DatacenterEvent::DatacenterUpdated {
            name: Some(name("Frankfurt am Main")),
            country: None,
            available: None,
            updated_at: now(),
        },
        DatacenterEvent::DatacenterCustomPricingSet {
            custom_pricing: pricing("4.00"),
            set_at: now(),
        },
    ]);
}

#[tokio::test]
async fn removing_custom_pricing_stops_custom_configurations_here() {
    let remove = DatacenterChanges {
        custom_pricing: Some(None),
        ..DatacenterChanges::default()
    };

    let validator = given(vec![created(Some(pricing("3.50")))])
        .when_async(update(remove.clone()))
        .await;
    validator.then_expect_events(vec![DatacenterEvent::DatacenterCustomPricingRemoved {
        removed_at: now(),
    }]);

    let again = given(vec![created(None)]).when_async(update(remove)).await;
    again.then_expect_events(vec![]);
}

#[test]
fn the_state_follows_the_events() {
    let datacenter = replay(vec![
        created(None),
        DatacenterEvent::DatacenterUpdated {
            name: None,
            country: None,
            available: Some(false),
            updated_at: now(),
        },
        DatacenterEvent::DatacenterCustomPricingSet {
            custom_pricing: pricing("3.50"),
            set_at: now(),
        },
    ]);

    assert!(datacenter.exists());
    assert_eq!(datacenter.id(), Some(id()));
    assert_eq!(datacenter.code().map(DatacenterCode::as_str), Some("fra1"));
    assert!(!datacenter.is_available());
    assert_eq!(datacenter.custom_pricing(), Some(&pricing("3.50")));

    let removed = replay(vec![
        created(Some(pricing("3.50"))),
        DatacenterEvent::DatacenterCustomPricingRemoved { removed_at: now() },
    ]);
    assert_eq!(removed.custom_pricing(), None);
    assert!(removed.is_available());
    assert!(!Datacenter::default().exists());
}

#[test]
fn the_aggregate_type_is_pinned_because_it_keys_the_event_store() {
    assert_eq!(Datacenter::TYPE, "datacenter");
}

fn one_of_each() -> Vec<DatacenterEvent> {
    vec![
        created(Some(pricing("3.50"))),
        DatacenterEvent::DatacenterUpdated {
            name: Some(name("Frankfurt am Main")),
            country: None,
            available: Some(false),
            updated_at: now(),
        },
        DatacenterEvent::DatacenterCustomPricingSet {
            custom_pricing: pricing("4.00"),
            set_at: now(),
        },
        DatacenterEvent::DatacenterCustomPricingRemoved { removed_at: now() },
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
            "DatacenterCreated",
            "DatacenterUpdated",
            "DatacenterCustomPricingSet",
            "DatacenterCustomPricingRemoved",
        ]
    );
    assert_eq!(DATACENTER_EVENT_TYPES, names.as_slice());
}

#[test]
fn every_event_keeps_its_json_shape_and_round_trips() {
    let at = "2025-03-01T09:30:00Z";
    let money = |amount: &str| serde_json::json!({"amount": amount, "currency": "EUR"});
    let bounds = |vcpus: u32, memory_mib: u32, disk_gib: u32| serde_json::json!({"vcpus": vcpus, "memory_mib": memory_mib, "disk_gib": disk_gib, "ipv4": 1, "traffic_gib": 0});
    let custom = |vcpu: &str| {
        serde_json::json!({
            "unit_prices": {
                "vcpu": money(vcpu), "memory_gib": money("1.500000"), "disk_gib": money("0.050000"),
                "ipv4": money("1.000000"), "traffic_gib": money("0.000000"),
            },
            "bounds": {"min": bounds(1, 1024, 10), "max": bounds(16, 65_536, 1000)},
            "period_discounts": {"quarterly": 300, "semiannual": 600, "annual": 1000},
        })
    };
    let expected = [
        serde_json::json!({"DatacenterCreated": {
            "datacenter_id": "01954b3c-0000-7000-8000-000000000d01", "code": "fra1",
            "name": "Frankfurt", "country": "DE", "available": true,
            "custom_pricing": custom("3.500000"), "created_at": at,
        }}),
        serde_json::json!({"DatacenterUpdated": {
            "name": "Frankfurt am Main", "country": null, "available": false, "updated_at": at,
        }}),
        serde_json::json!({"DatacenterCustomPricingSet": {
            "custom_pricing": custom("4.000000"), "set_at": at,
        }}),
        serde_json::json!({"DatacenterCustomPricingRemoved": {"removed_at": at}}),
    ];

    for (event, expected) in one_of_each().into_iter().zip(expected) {
        let json = serde_json::to_value(&event).unwrap();
        let back: DatacenterEvent = serde_json::from_value(json.clone()).unwrap();

        assert_eq!(json, expected, "{}", event.event_type());
        assert_eq!(back, event);
    }
}

#[test]
fn a_stored_event_with_an_invalid_code_does_not_deserialise() {
    let mut json = serde_json::to_value(created(None)).unwrap();
    json["DatacenterCreated"]["code"] = serde_json::json!("Not A Code");

    assert!(serde_json::from_value::<DatacenterEvent>(json).is_err());
}

#[test]
fn every_datacenter_error_has_its_pinned_code() {
    let cases = [
        (DatacenterError::AlreadyExists, "datacenter_already_exists"),
        (DatacenterError::NotFound, "datacenter_not_found"),
        (DatacenterError::EmptyUpdate, "empty_update"),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn the_aggregate_state_round_trips_through_json_for_snapshots() {
    let datacenter = replay(one_of_each());

    let json = serde_json::to_string(&datacenter).unwrap();
    let back: Datacenter = serde_json::from_str(&json).unwrap();

    assert_eq!(back, datacenter);
}
