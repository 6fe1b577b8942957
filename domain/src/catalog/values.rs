//! The catalog's value types: codes, names, image versions and families, a plan's resources and
//! datacenters. Each has a fallible constructor and deserialises through it, so an event or a
//! request cannot carry an invalid one.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::DatacenterId;
use crate::pricing::{Resource, ResourceBounds, ResourceProblem, Resources, MIB_PER_GIB};

/// Shortest code: one letter and one more character (`x1`), so a code is never a bare letter.
pub const CODE_MIN_CHARS: usize = 2;
/// Longest datacenter code: region codes are short (`fra1`, `nyc3`, `ap-south-2`).
pub const DATACENTER_CODE_MAX_CHARS: usize = 16;
/// Longest plan code: room for families and generations (`cpu-optimized-32-gen2`).
pub const PLAN_CODE_MAX_CHARS: usize = 32;
/// Longest display name of a datacenter, image or plan: fits any UI and any column.
pub const CATALOG_NAME_MAX_CHARS: usize = 100;
/// Longest image version (`24.04`, `2022 Datacenter`, `9.4-rc1`).
pub const IMAGE_VERSION_MAX_CHARS: usize = 32;
/// Largest minimum disk an image may ask for: the largest plan disk.
pub const MAX_MIN_DISK_GIB: u32 = PLAN_MAX_DISK_GIB;
/// Most datacenters one plan may be sold in: far above any provider's region count, and it
/// keeps a plan's events small.
pub const MAX_PLAN_DATACENTERS: usize = 64;

/// Fewest vCPUs of a plan.
pub const PLAN_MIN_VCPUS: u32 = 1;
/// Most vCPUs of a plan: the largest hypervisor host we schedule on has 256 threads.
pub const PLAN_MAX_VCPUS: u32 = 256;
/// Least memory of a plan: below 256 MiB no supported image boots.
pub const PLAN_MIN_MEMORY_MIB: u32 = 256;
/// Most memory of a plan (4 TiB): the largest hypervisor host.
pub const PLAN_MAX_MEMORY_MIB: u32 = 4 * 1024 * 1024;
/// Smallest disk of a plan.
pub const PLAN_MIN_DISK_GIB: u32 = 1;
/// Largest disk of a plan (64 TiB): the largest volume the storage backends create.
pub const PLAN_MAX_DISK_GIB: u32 = 65_536;
/// Most IPv4 addresses of a plan: addresses are scarce; more go through support.
pub const PLAN_MAX_IPV4: u32 = 16;
/// Most included monthly traffic of a plan (1 PiB).
pub const PLAN_MAX_TRAFFIC_GIB: u32 = 1024 * 1024;

/// The range every plan's resources must fall in. IPv4 and traffic may be zero (an IPv6-only
/// plan, traffic billed separately).
pub const PLAN_LIMITS: ResourceBounds = ResourceBounds {
    min: Resources {
        vcpus: PLAN_MIN_VCPUS,
        memory_mib: PLAN_MIN_MEMORY_MIB,
        disk_gib: PLAN_MIN_DISK_GIB,
        ipv4: 0,
        traffic_gib: 0,
    },
    max: Resources {
        vcpus: PLAN_MAX_VCPUS,
        memory_mib: PLAN_MAX_MEMORY_MIB,
        disk_gib: PLAN_MAX_DISK_GIB,
        ipv4: PLAN_MAX_IPV4,
        traffic_gib: PLAN_MAX_TRAFFIC_GIB,
    },
};

/// Why a catalog input was refused. One variant per rule; the API reports [`Self::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogValueError {
    #[error("invalid datacenter code: {CODE_MIN_CHARS} to {DATACENTER_CODE_MAX_CHARS} characters a-z, 0-9 and '-', starting with a letter")]
    InvalidDatacenterCode,
    #[error("invalid plan code: {CODE_MIN_CHARS} to {PLAN_CODE_MAX_CHARS} characters a-z, 0-9 and '-', starting with a letter")]
    InvalidPlanCode,
    #[error("invalid name: 1 to {CATALOG_NAME_MAX_CHARS} characters without control characters")]
    InvalidName,
    #[error(
        "invalid version: 1 to {IMAGE_VERSION_MAX_CHARS} characters without control characters"
    )]
    InvalidImageVersion,
    #[error("unknown family: expected linux, windows or bsd")]
    UnknownOsFamily,
    #[error("the minimum disk must be between 1 and {MAX_MIN_DISK_GIB} GiB")]
    MinDiskOutOfRange,
    /// Each resource outside [`PLAN_LIMITS`], with its bounds.
    #[error("the resources are outside what a plan may have")]
    ResourcesOutOfBounds(Vec<(Resource, ResourceProblem)>),
    #[error("a plan must be sold in at least one datacenter")]
    NoDatacenters,
    #[error("a plan may be sold in at most {MAX_PLAN_DATACENTERS} datacenters")]
    TooManyDatacenters,
}

impl CatalogValueError {
    /// Stable machine-readable code for API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidDatacenterCode => "invalid_datacenter_code",
            Self::InvalidPlanCode => "invalid_plan_code",
            Self::InvalidName => "invalid_name",
            Self::InvalidImageVersion => "invalid_image_version",
            Self::UnknownOsFamily => "unknown_os_family",
            Self::MinDiskOutOfRange => "min_disk_out_of_range",
            Self::ResourcesOutOfBounds(_) => "resources_out_of_bounds",
            Self::NoDatacenters => "no_datacenters",
            Self::TooManyDatacenters => "too_many_datacenters",
        }
    }
}

/// Trims and lower-cases a code, then checks its syntax; `None` when it breaks a rule.
fn parse_code(input: &str, max_chars: usize) -> Option<String> {
    let code = input.trim().to_ascii_lowercase();
    let syntax = code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    // All ASCII once the syntax holds, so bytes are characters.
    (syntax && (CODE_MIN_CHARS..=max_chars).contains(&code.len())).then_some(code)
}

/// Trims a line of display text and checks its length and characters.
fn parse_text(input: &str, max_chars: usize) -> Option<String> {
    let text = input.trim();
    let chars = text.chars().count();
    ((1..=max_chars).contains(&chars) && !text.chars().any(char::is_control))
        .then(|| text.to_owned())
}

macro_rules! text_value {
    ($(#[$meta:meta])* $name:ident, $parse:expr, $error:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Normalises and checks the input.
            ///
            /// # Errors
            #[doc = concat!("[`CatalogValueError`]: `", stringify!($error), "`.")]
            pub fn parse(input: &str) -> Result<Self, CatalogValueError> {
                let parse: fn(&str) -> Option<String> = $parse;
                parse(input).map(Self).ok_or($error)
            }

            /// The normalised text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = CatalogValueError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

text_value!(
    /// A datacenter's short code (`fra1`): trimmed and lower-cased, then [`CODE_MIN_CHARS`] to
    /// [`DATACENTER_CODE_MAX_CHARS`] characters `a-z`, `0-9` and `-`, starting with a letter.
    /// Unique among datacenters.
    DatacenterCode,
    |input| parse_code(input, DATACENTER_CODE_MAX_CHARS),
    CatalogValueError::InvalidDatacenterCode
);

text_value!(
    /// A plan's short code (`s-2`): the syntax of [`DatacenterCode`], up to
    /// [`PLAN_CODE_MAX_CHARS`] characters. Unique among plans.
    PlanCode,
    |input| parse_code(input, PLAN_CODE_MAX_CHARS),
    CatalogValueError::InvalidPlanCode
);

text_value!(
    /// The display name of a datacenter, image or plan (`Frankfurt`, `Debian`, `Small 2`):
    /// trimmed, 1 to [`CATALOG_NAME_MAX_CHARS`] characters of any script, no control characters.
    CatalogName,
    |input| parse_text(input, CATALOG_NAME_MAX_CHARS),
    CatalogValueError::InvalidName
);

text_value!(
    /// The version of an image (`12`, `24.04`): trimmed, 1 to [`IMAGE_VERSION_MAX_CHARS`]
    /// characters, no control characters.
    ImageVersion,
    |input| parse_text(input, IMAGE_VERSION_MAX_CHARS),
    CatalogValueError::InvalidImageVersion
);

/// The family of an operating system image. Stored in events by its snake_case name; never rename
/// a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OsFamily {
    Linux,
    Windows,
    Bsd,
}

impl OsFamily {
    /// Every family, in declaration order.
    pub const ALL: [OsFamily; 3] = [Self::Linux, Self::Windows, Self::Bsd];

    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::Windows => "windows",
            Self::Bsd => "bsd",
        }
    }

    /// The family of a wire name (exact match).
    ///
    /// # Errors
    /// [`CatalogValueError::UnknownOsFamily`].
    pub fn parse(input: &str) -> Result<Self, CatalogValueError> {
        Self::ALL
            .into_iter()
            .find(|family| family.as_str() == input)
            .ok_or(CatalogValueError::UnknownOsFamily)
    }
}

impl fmt::Display for OsFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The smallest disk an image can be installed on, 1 to [`MAX_MIN_DISK_GIB`] GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MinDiskGib(u32);

impl MinDiskGib {
    /// # Errors
    /// [`CatalogValueError::MinDiskOutOfRange`] outside 1 to [`MAX_MIN_DISK_GIB`].
    pub fn new(gib: u32) -> Result<Self, CatalogValueError> {
        if (1..=MAX_MIN_DISK_GIB).contains(&gib) {
            Ok(Self(gib))
        } else {
            Err(CatalogValueError::MinDiskOutOfRange)
        }
    }

    /// The size in GiB.
    pub fn gib(&self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for MinDiskGib {
    type Error = CatalogValueError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<MinDiskGib> for u32 {
    fn from(value: MinDiskGib) -> Self {
        value.0
    }
}

/// The fixed size of a plan, inside [`PLAN_LIMITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Resources", into = "Resources")]
pub struct PlanResources(Resources);

impl PlanResources {
    /// # Errors
    /// [`CatalogValueError::ResourcesOutOfBounds`] listing every resource outside
    /// [`PLAN_LIMITS`].
    pub fn new(resources: Resources) -> Result<Self, CatalogValueError> {
        let problems: Vec<(Resource, ResourceProblem)> = Resource::ALL
            .into_iter()
            .filter_map(|resource| {
                let value = resources.get(resource);
                let (min, max) = (PLAN_LIMITS.min.get(resource), PLAN_LIMITS.max.get(resource));
                (value < min || value > max)
                    .then_some((resource, ResourceProblem::OutOfBounds { min, max }))
            })
            .collect();
        if problems.is_empty() {
            Ok(Self(resources))
        } else {
            Err(CatalogValueError::ResourcesOutOfBounds(problems))
        }
    }

    /// The resources.
    pub fn get(&self) -> Resources {
        self.0
    }
}

impl TryFrom<Resources> for PlanResources {
    type Error = CatalogValueError;
    fn try_from(value: Resources) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<PlanResources> for Resources {
    fn from(value: PlanResources) -> Self {
        value.0
    }
}

/// The datacenters a plan is sold in: 1 to [`MAX_PLAN_DATACENTERS`], each once, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "BTreeSet<DatacenterId>", into = "BTreeSet<DatacenterId>")]
pub struct PlanDatacenters(BTreeSet<DatacenterId>);

impl PlanDatacenters {
    /// Collects `ids`; a repeated id counts once.
    ///
    /// # Errors
    /// [`CatalogValueError::NoDatacenters`] or [`CatalogValueError::TooManyDatacenters`].
    pub fn new(ids: impl IntoIterator<Item = DatacenterId>) -> Result<Self, CatalogValueError> {
        let set: BTreeSet<DatacenterId> = ids.into_iter().collect();
        if set.is_empty() {
            return Err(CatalogValueError::NoDatacenters);
        }
        if set.len() > MAX_PLAN_DATACENTERS {
            return Err(CatalogValueError::TooManyDatacenters);
        }
        Ok(Self(set))
    }

    /// Whether the plan is sold in `datacenter`.
    pub fn contains(&self, datacenter: &DatacenterId) -> bool {
        self.0.contains(datacenter)
    }

    /// The ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &DatacenterId> {
        self.0.iter()
    }

    /// The ids as a list, in id order.
    pub fn to_vec(&self) -> Vec<DatacenterId> {
        self.0.iter().copied().collect()
    }
}

impl TryFrom<BTreeSet<DatacenterId>> for PlanDatacenters {
    type Error = CatalogValueError;
    fn try_from(value: BTreeSet<DatacenterId>) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<PlanDatacenters> for BTreeSet<DatacenterId> {
    fn from(value: PlanDatacenters) -> Self {
        value.0
    }
}

/// Which end of a [`ResourceBounds`] a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundsSide {
    Min,
    Max,
}

impl BoundsSide {
    /// The field name on the wire (`"min"`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
        }
    }
}

/// One resource bound that makes [`crate::pricing::CustomPricing::new`] refuse
/// [`crate::pricing::PricingError::InvalidBounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundsProblem {
    pub side: BoundsSide,
    pub resource: Resource,
    pub message: &'static str,
}

/// Explains field by field why `bounds` are refused by `CustomPricing::new` (a minimum above its
/// maximum, no vCPU, memory or disk in the minimum, memory not in whole GiB), so that a form can
/// show each problem beside its input. Empty exactly when the bounds are accepted.
pub fn describe_bounds_problems(bounds: &ResourceBounds) -> Vec<BoundsProblem> {
    let mut problems = Vec::new();
    let mut push = |side, resource, message| {
        problems.push(BoundsProblem {
            side,
            resource,
            message,
        });
    };
    for resource in Resource::ALL {
        let (min, max) = (bounds.min.get(resource), bounds.max.get(resource));
        let required = matches!(
            resource,
            Resource::Vcpus | Resource::MemoryMib | Resource::DiskGib
        );
        if required && min == 0 {
            push(BoundsSide::Min, resource, "must be at least 1");
        } else if min > max {
            push(BoundsSide::Min, resource, "must not exceed the maximum");
        }
        if resource == Resource::MemoryMib {
            for (side, value) in [(BoundsSide::Min, min), (BoundsSide::Max, max)] {
                if value % MIB_PER_GIB != 0 {
                    push(side, resource, "must be a multiple of 1024 (whole GiB)");
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests;
