//! Given/when/then tests for the `OsImage` aggregate, and the pinned stored format of its events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;

fn given(events: Vec<OsImageEvent>) -> AggregateTestExecutor<OsImage> {
    TestFramework::<OsImage>::with(()).given(events)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap()
}

fn id() -> ImageId {
    ImageId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0e01))
}

fn name(text: &str) -> CatalogName {
    CatalogName::parse(text).unwrap()
}

fn version(text: &str) -> ImageVersion {
    ImageVersion::parse(text).unwrap()
}

fn disk(gib: u32) -> MinDiskGib {
    MinDiskGib::new(gib).unwrap()
}

fn create() -> OsImageCommand {
    OsImageCommand::Create {
        image_id: id(),
        image: NewImage {
            name: name("Debian"),
            version: version("12"),
            family: OsFamily::Linux,
            min_disk_gib: disk(10),
            available: true,
        },
        occurred_at: now(),
    }
}

fn created() -> OsImageEvent {
    OsImageEvent::OsImageCreated {
        image_id: id(),
        name: name("Debian"),
        version: version("12"),
        family: OsFamily::Linux,
        min_disk_gib: disk(10),
        available: true,
        created_at: now(),
    }
}

fn update(changes: ImageChanges) -> OsImageCommand {
    OsImageCommand::Update {
        changes,
        occurred_at: now(),
    }
}

fn updated(changes: ImageChanges) -> OsImageEvent {
    OsImageEvent::OsImageUpdated {
        name: changes.name,
        version: changes.version,
        family: changes.family,
        min_disk_gib: changes.min_disk_gib,
        available: changes.available,
        updated_at: now(),
    }
}

fn replay(events: Vec<OsImageEvent>) -> OsImage {
    let mut image = OsImage::default();
    for event in events {
        image.apply(event);
    }
    image
}

#[tokio::test]
async fn creating_an_image_records_every_field() {
    let validator = given(vec![]).when_async(create()).await;

    validator.then_expect_events(vec![created()]);
}

#[tokio::test]
async fn an_image_is_created_once() {
    let validator = given(vec![created()]).when_async(create()).await;

    validator.then_expect_error(OsImageError::AlreadyExists);
}

#[tokio::test]
async fn an_image_that_does_not_exist_cannot_be_updated() {
    let changes = ImageChanges {
        available: Some(false),
        ..ImageChanges::default()
    };

    let validator = given(vec![]).when_async(update(changes)).await;

    validator.then_expect_error(OsImageError::NotFound);
}

#[tokio::test]
async fn an_update_that_names_no_field_is_refused() {
    let validator = given(vec![created()])
        .when_async(update(ImageChanges::default()))
        .await;

    validator.then_expect_error(OsImageError::EmptyUpdate);
}

#[tokio::test]
async fn an_update_records_only_the_fields_that_change() {
    let changes = ImageChanges {
        name: Some(name("Debian")),
        version: Some(version("13")),
        family: Some(OsFamily::Linux),
        min_disk_gib: Some(disk(20)),
        available: Some(true),
    };

    let validator = given(vec![created()]).when_async(update(changes)).await;

    validator.then_expect_events(vec![updated(ImageChanges {
        version: Some(version("13")),
        min_disk_gib: Some(disk(20)),
        ..ImageChanges::default()
    })]);
}

#[tokio::test]
async fn an_update_to_the_current_values_records_nothing() {
    let changes = ImageChanges {
        available: Some(true),
        family: Some(OsFamily::Linux),
        ..ImageChanges::default()
    };

    let validator = given(vec![created()]).when_async(update(changes)).await;

    validator.then_expect_events(vec![]);
}

#[test]
fn the_state_follows_the_events() {
    let image = replay(vec![
        created(),
        updated(ImageChanges {
            min_disk_gib: Some(disk(40)),
            available: Some(false),
            ..ImageChanges::default()
        }),
    ]);

    assert!(image.exists());
    assert_eq!(image.id(), Some(id()));
    assert_eq!(image.min_disk_gib(), Some(disk(40)));
    assert!(!image.is_available());
    assert!(!OsImage::default().exists());
}

#[test]
fn the_aggregate_type_is_pinned_because_it_keys_the_event_store() {
    assert_eq!(OsImage::TYPE, "os_image");
}

fn one_of_each() -> Vec<OsImageEvent> {
    vec![
        created(),
        updated(ImageChanges {
            name: Some(name("Debian GNU/Linux")),
            version: Some(version("13")),
            family: Some(OsFamily::Bsd),
            min_disk_gib: Some(disk(20)),
            available: Some(false),
        }),
    ]
}

#[test]
fn every_event_type_name_and_version_is_pinned() {
    let names: Vec<String> = one_of_each().iter().map(DomainEvent::event_type).collect();

    for event in one_of_each() {
        assert_eq!(event.event_version(), "1", "{}", event.event_type());
    }
    assert_eq!(names, ["OsImageCreated", "OsImageUpdated"]);
    assert_eq!(OS_IMAGE_EVENT_TYPES, names.as_slice());
}

#[test]
fn every_event_keeps_its_json_shape_and_round_trips() {
    let at = "2025-03-01T09:30:00Z";
    let expected = [
        serde_json::json!({"OsImageCreated": {
            "image_id": "01954b3c-0000-7000-8000-000000000e01", "name": "Debian", "version": "12",
            "family": "linux", "min_disk_gib": 10, "available": true, "created_at": at,
        }}),
        serde_json::json!({"OsImageUpdated": {
            "name": "Debian GNU/Linux", "version": "13", "family": "bsd", "min_disk_gib": 20,
            "available": false, "updated_at": at,
        }}),
    ];

    for (event, expected) in one_of_each().into_iter().zip(expected) {
        let json = serde_json::to_value(&event).unwrap();
        let back: OsImageEvent = serde_json::from_value(json.clone()).unwrap();

        assert_eq!(json, expected, "{}", event.event_type());
        assert_eq!(back, event);
    }
}

#[test]
fn every_image_error_has_its_pinned_code() {
    let cases = [
        (OsImageError::AlreadyExists, "image_already_exists"),
        (OsImageError::NotFound, "image_not_found"),
        (OsImageError::EmptyUpdate, "empty_update"),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn the_aggregate_state_round_trips_through_json_for_snapshots() {
    let image = replay(one_of_each());

    let json = serde_json::to_string(&image).unwrap();
    let back: OsImage = serde_json::from_str(&json).unwrap();

    assert_eq!(back, image);
}
