//! The catalog: what can be ordered, where, and at which price. Three aggregates, each its own
//! event stream:
//!
//! - [`Datacenter`] (`"datacenter"`): a region with a [`DatacenterCode`] (`fra1`), a name, a
//!   country, whether it takes new orders, and optionally the [`CustomPricing`] of custom
//!   configurations (`None`: custom configurations are not sold there).
//! - [`OsImage`] (`"os_image"`): an operating system to install (`Debian` `12`, [`OsFamily`]),
//!   with the smallest disk it fits on, and whether it is offered.
//! - [`Plan`] (`"plan"`): a fixed VM size ([`PlanResources`]) with its [`PriceTable`] and the
//!   datacenters it is sold in. Its resources never change once created (running VMs rely on
//!   them); a retired plan stays readable by id (existing services keep it) but is not listed nor
//!   orderable, and can be reactivated.
//!
//! ## Rules
//!
//! - Inputs are value types parsed at the edge ([`values`]): holding a [`PlanResources`] or a
//!   [`PlanDatacenters`] proves it is within the catalog's limits.
//! - An aggregate is created once; every other command needs it to exist. An update names at
//!   least one field; fields equal to the current value record nothing, so a repeated update is
//!   a no-op.
//! - Every period of a plan has a positive price that can be computed
//!   ([`PlanError::PeriodNotPriceable`]): a 100 % period discount or an overflowing annual price
//!   is refused.
//! - Codes are unique across aggregates of a kind; the write side claims them
//!   (`unique_claims`) before `Create`, which the aggregate cannot see. Which currency prices are
//!   in (the settlement currency) and whether a datacenter a plan names exists are also checked
//!   by the write side, before the command.
//!
//! [`CustomPricing`]: crate::pricing::CustomPricing
//! [`PriceTable`]: crate::pricing::PriceTable

mod datacenter;
mod image;
mod plan;
pub mod values;

pub use datacenter::{
    Datacenter, DatacenterChanges, DatacenterCommand, DatacenterError, DatacenterEvent,
    NewDatacenter, DATACENTER_EVENT_TYPES,
};
pub use image::{
    ImageChanges, NewImage, OsImage, OsImageCommand, OsImageError, OsImageEvent,
    OS_IMAGE_EVENT_TYPES,
};
pub use plan::{
    NewPlan, Plan, PlanChanges, PlanCommand, PlanError, PlanEvent, PlanStatus, PLAN_EVENT_TYPES,
};
pub use values::{
    describe_bounds_problems, BoundsProblem, BoundsSide, CatalogName, CatalogValueError,
    DatacenterCode, ImageVersion, MinDiskGib, OsFamily, PlanCode, PlanDatacenters, PlanResources,
    CATALOG_NAME_MAX_CHARS, DATACENTER_CODE_MAX_CHARS, IMAGE_VERSION_MAX_CHARS, MAX_MIN_DISK_GIB,
    MAX_PLAN_DATACENTERS, PLAN_CODE_MAX_CHARS, PLAN_LIMITS,
};

/// The version every catalog event is currently written with.
const EVENT_VERSION: &str = "1";
