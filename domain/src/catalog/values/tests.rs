//! The rules of the catalog's value types, one test per rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use uuid::Uuid;

use super::*;
use crate::pricing::{CustomPricing, PeriodDiscounts, PricingError, UnitPrices};
use crate::values::{Currency, Money};

fn resources(vcpus: u32, memory_mib: u32, disk_gib: u32, ipv4: u32, traffic_gib: u32) -> Resources {
    Resources {
        vcpus,
        memory_mib,
        disk_gib,
        ipv4,
        traffic_gib,
    }
}

fn datacenter(n: u128) -> DatacenterId {
    DatacenterId::from_uuid(Uuid::from_u128(n))
}

#[test]
fn a_datacenter_code_is_trimmed_and_lower_cased() {
    let code = DatacenterCode::parse("  FRA1 ").unwrap();

    assert_eq!(code.as_str(), "fra1");
}

#[test]
fn a_code_has_letters_digits_and_hyphens_and_starts_with_a_letter() {
    for good in ["fra1", "ap-south-2", "x1", "abcdefghijklmnop"] {
        assert!(DatacenterCode::parse(good).is_ok(), "{good:?}");
    }
    for bad in [
        "",
        "f",
        "1fra",
        "-fra",
        "fra_1",
        "fra 1",
        "frä1",
        "abcdefghijklmnopq",
    ] {
        assert_eq!(
            DatacenterCode::parse(bad),
            Err(CatalogValueError::InvalidDatacenterCode),
            "{bad:?}"
        );
    }
}

#[test]
fn a_plan_code_may_be_longer_than_a_datacenter_code() {
    let long = "cpu-optimized-32-gen2-abcdefghij";
    assert_eq!(long.len(), PLAN_CODE_MAX_CHARS);

    assert_eq!(PlanCode::parse(long).unwrap().as_str(), long);
    assert_eq!(
        PlanCode::parse(&format!("{long}x")),
        Err(CatalogValueError::InvalidPlanCode)
    );
    assert_eq!(
        PlanCode::parse("2-small"),
        Err(CatalogValueError::InvalidPlanCode)
    );
}

#[test]
fn a_catalog_name_is_trimmed_bounded_and_free_of_control_characters() {
    assert_eq!(
        CatalogName::parse("  Frankfurt ").unwrap().as_str(),
        "Frankfurt"
    );
    assert_eq!(
        CatalogName::parse("Zürich 東京").unwrap().as_str(),
        "Zürich 東京"
    );
    assert!(CatalogName::parse(&"é".repeat(CATALOG_NAME_MAX_CHARS)).is_ok());
    for bad in [
        "".to_owned(),
        "   ".to_owned(),
        "a\nb".to_owned(),
        "é".repeat(CATALOG_NAME_MAX_CHARS + 1),
    ] {
        assert_eq!(
            CatalogName::parse(&bad),
            Err(CatalogValueError::InvalidName),
            "{bad:?}"
        );
    }
}

#[test]
fn an_image_version_is_short_text() {
    assert_eq!(ImageVersion::parse(" 24.04 ").unwrap().as_str(), "24.04");
    assert_eq!(
        ImageVersion::parse(&"9".repeat(IMAGE_VERSION_MAX_CHARS + 1)),
        Err(CatalogValueError::InvalidImageVersion)
    );
    assert_eq!(
        ImageVersion::parse("12\t"),
        Ok(ImageVersion::parse("12").unwrap()),
        "trailing whitespace is trimmed"
    );
    assert_eq!(
        ImageVersion::parse("1\u{7}2"),
        Err(CatalogValueError::InvalidImageVersion)
    );
}

#[test]
fn os_family_names_are_pinned_because_they_are_stored_in_events() {
    let names = [
        (OsFamily::Linux, "linux"),
        (OsFamily::Windows, "windows"),
        (OsFamily::Bsd, "bsd"),
    ];

    assert_eq!(OsFamily::ALL.len(), names.len());
    for (family, name) in names {
        assert_eq!(family.as_str(), name);
        assert_eq!(OsFamily::parse(name), Ok(family));
        assert_eq!(
            serde_json::to_string(&family).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(
        OsFamily::parse("Linux"),
        Err(CatalogValueError::UnknownOsFamily)
    );
}

#[test]
fn the_minimum_disk_is_between_one_gib_and_the_largest_plan_disk() {
    assert_eq!(MinDiskGib::new(1).unwrap().gib(), 1);
    assert_eq!(MinDiskGib::new(MAX_MIN_DISK_GIB).unwrap().gib(), 65_536);
    for bad in [0, MAX_MIN_DISK_GIB + 1] {
        assert_eq!(
            MinDiskGib::new(bad),
            Err(CatalogValueError::MinDiskOutOfRange)
        );
    }
    assert!(serde_json::from_str::<MinDiskGib>("0").is_err());
}

#[test]
fn plan_resources_inside_the_limits_are_accepted() {
    let small = resources(1, 256, 1, 0, 0);
    let large = resources(256, 4 * 1024 * 1024, 65_536, 16, 1024 * 1024);

    assert_eq!(PlanResources::new(small).unwrap().get(), small);
    assert_eq!(PlanResources::new(large).unwrap().get(), large);
}

#[test]
fn plan_resources_outside_the_limits_name_every_resource_with_its_bounds() {
    let result = PlanResources::new(resources(0, 255, 0, 17, 1024 * 1024 + 1));

    assert_eq!(
        result,
        Err(CatalogValueError::ResourcesOutOfBounds(vec![
            (
                Resource::Vcpus,
                ResourceProblem::OutOfBounds { min: 1, max: 256 }
            ),
            (
                Resource::MemoryMib,
                ResourceProblem::OutOfBounds {
                    min: 256,
                    max: 4_194_304
                }
            ),
            (
                Resource::DiskGib,
                ResourceProblem::OutOfBounds {
                    min: 1,
                    max: 65_536
                }
            ),
            (
                Resource::Ipv4,
                ResourceProblem::OutOfBounds { min: 0, max: 16 }
            ),
            (
                Resource::TrafficGib,
                ResourceProblem::OutOfBounds {
                    min: 0,
                    max: 1_048_576
                }
            ),
        ]))
    );
}

#[test]
fn stored_plan_resources_are_checked_when_read_back() {
    let json = serde_json::json!({"vcpus": 0, "memory_mib": 1024, "disk_gib": 10, "ipv4": 1, "traffic_gib": 0});

    assert!(serde_json::from_value::<PlanResources>(json).is_err());
}

#[test]
fn plan_datacenters_are_a_non_empty_bounded_set() {
    let set = PlanDatacenters::new([datacenter(2), datacenter(1), datacenter(2)]).unwrap();

    assert_eq!(set.to_vec(), vec![datacenter(1), datacenter(2)]);
    assert!(set.contains(&datacenter(1)));
    assert!(!set.contains(&datacenter(3)));
    assert_eq!(
        PlanDatacenters::new([]),
        Err(CatalogValueError::NoDatacenters)
    );
    let too_many = (0..=MAX_PLAN_DATACENTERS as u128).map(datacenter);
    assert_eq!(
        PlanDatacenters::new(too_many),
        Err(CatalogValueError::TooManyDatacenters)
    );
    assert!(serde_json::from_str::<PlanDatacenters>("[]").is_err());
}

#[test]
fn every_catalog_value_error_has_its_pinned_code() {
    let cases = [
        (
            CatalogValueError::InvalidDatacenterCode,
            "invalid_datacenter_code",
        ),
        (CatalogValueError::InvalidPlanCode, "invalid_plan_code"),
        (CatalogValueError::InvalidName, "invalid_name"),
        (
            CatalogValueError::InvalidImageVersion,
            "invalid_image_version",
        ),
        (CatalogValueError::UnknownOsFamily, "unknown_os_family"),
        (
            CatalogValueError::MinDiskOutOfRange,
            "min_disk_out_of_range",
        ),
        (
            CatalogValueError::ResourcesOutOfBounds(vec![]),
            "resources_out_of_bounds",
        ),
        (CatalogValueError::NoDatacenters, "no_datacenters"),
        (
            CatalogValueError::TooManyDatacenters,
            "too_many_datacenters",
        ),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code);
    }
}

fn bounds(min: Resources, max: Resources) -> ResourceBounds {
    ResourceBounds { min, max }
}

#[test]
fn bounds_problems_name_the_side_and_resource_of_each_problem() {
    let problems = describe_bounds_problems(&bounds(
        resources(0, 1024, 20, 2, 0),
        resources(8, 1500, 10, 1, 0),
    ));

    let named: Vec<(BoundsSide, Resource)> =
        problems.iter().map(|p| (p.side, p.resource)).collect();
    assert_eq!(
        named,
        vec![
            (BoundsSide::Min, Resource::Vcpus),
            (BoundsSide::Max, Resource::MemoryMib),
            (BoundsSide::Min, Resource::DiskGib),
            (BoundsSide::Min, Resource::Ipv4),
        ]
    );
}

#[test]
fn bounds_problems_are_empty_exactly_when_custom_pricing_accepts_the_bounds() {
    let eur = |amount: &str| Money::from_decimal_str(amount, Currency::EUR).unwrap();
    let prices = UnitPrices {
        vcpu: eur("3"),
        memory_gib: eur("1"),
        disk_gib: eur("0.05"),
        ipv4: eur("1"),
        traffic_gib: eur("0"),
    };
    let values = [0, 1, 512, 1024, 2048];
    let mut checked = 0;
    for &a in &values {
        for &b in &values {
            for &c in &values {
                let min = resources(a, b, c, a, b);
                let max = resources(b, c, a, c, a);
                let bounds = bounds(min, max);

                let accepted =
                    CustomPricing::new(prices, bounds, PeriodDiscounts::default()).is_ok();
                let described = describe_bounds_problems(&bounds);

                assert_eq!(accepted, described.is_empty(), "{bounds:?}: {described:?}");
                if !accepted {
                    assert_eq!(
                        CustomPricing::new(prices, bounds, PeriodDiscounts::default()),
                        Err(PricingError::InvalidBounds)
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 125);
}
