//! First start: the admin account, created once from settings or with a generated password.
//!
//! And the demo catalog, seeded once when `STRATUS_DEMO_CATALOG` is on ([`ensure_demo_catalog`]).

use actix_web::web;
use stratus_commands::metadata::CommandMetadata;
use stratus_domain::{check_password_strength, Email, PersonName, Role};
use stratus_projections::accounts;
use uuid::Uuid;

use crate::auth::random_token;
use crate::registration::{self, NewAccount, RegistrationFailed};
use crate::state::AppState;
// Demo catalog
use stratus_commands::catalog::CatalogWriteError;
use stratus_domain::catalog::{
    CatalogName, DatacenterCode, ImageVersion, MinDiskGib, NewDatacenter, NewImage, NewPlan,
    OsFamily, PlanCode, PlanDatacenters, PlanResources,
};
use stratus_domain::pricing::{
    CustomPricing, Percent, PeriodDiscounts, PeriodPrice, PriceTable, ResourceBounds, Resources,
    UnitPrices,
};
use stratus_domain::{Country, Currency, DatacenterId, ImageId, Money, PlanId};
use stratus_projections::catalog::{self as catalog_model, DatacenterFilter};

/// Random bytes of a generated admin password (printed once).
pub const GENERATED_PASSWORD_BYTES: usize = 18;

/// Failures creating the first admin.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("STRATUS_ADMIN_EMAIL is not valid: {0}")]
    Email(stratus_domain::ValueError),
    #[error("STRATUS_ADMIN_PASSWORD is too weak: {0}")]
    Password(stratus_domain::ValueError),
    #[error("creating the admin failed: {0}")]
    Failed(String),
}

/// What happened to the admin account.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    AlreadyExists,
    Created {
        email: String,
        generated_password: Option<String>,
    },
}

/// Creates the admin account unless an account with that email exists.
pub async fn ensure_admin(state: &web::Data<AppState>) -> Result<AdminOutcome, BootstrapError> {
    let settings = &state.settings;
    let email = Email::parse(&settings.admin_email).map_err(BootstrapError::Email)?;
    let existing = accounts::credentials_by_email(&state.pool, email.as_str())
        .await
        .map_err(|e| BootstrapError::Failed(e.to_string()))?;
    if existing.is_some() {
        return Ok(AdminOutcome::AlreadyExists);
    }
    let (password, generated) = match &settings.admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None => (random_token(GENERATED_PASSWORD_BYTES), true),
    };
    check_password_strength(&password, Some(&email)).map_err(BootstrapError::Password)?;
    let name =
        PersonName::parse("Administrator").map_err(|e| BootstrapError::Failed(e.to_string()))?;
    let account = NewAccount {
        name,
        email: email.clone(),
        phone: None,
        password: password.clone(),
        roles: vec![Role::Admin],
    };
    let metadata = |_| CommandMetadata::system(Uuid::now_v7(), "bootstrap_admin");
    match registration::register(state, account, metadata).await {
        Ok(_) => Ok(AdminOutcome::Created {
            email: email.as_str().to_owned(),
            generated_password: generated.then_some(password),
        }),
        // Another process created it first.
        Err(RegistrationFailed::EmailTaken) => Ok(AdminOutcome::AlreadyExists),
        Err(e) => Err(BootstrapError::Failed(e.to_string())),
    }
}

// --- Demo catalog --------------------------------------------------------------------------------

/// What [`ensure_demo_catalog`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum DemoCatalogOutcome {
    /// `STRATUS_DEMO_CATALOG` is off.
    Disabled,
    /// A datacenter exists already (an earlier seed, or the operator's own catalog), or another
    /// process is seeding right now.
    AlreadyPresent,
    /// The demo catalog was created.
    Seeded {
        datacenters: usize,
        images: usize,
        plans: usize,
    },
}

/// Monthly discounts of the demo plans' longer periods: quarterly, semiannual, annual.
const DEMO_PLAN_DISCOUNTS: [&str; 3] = ["5", "8", "15"];

/// One demo plan: code, name, vCPUs, memory (MiB), disk (GiB), included traffic (GiB), hourly
/// and monthly price in the settlement currency. Sized and priced like common small-VM offers.
type DemoPlan = (
    &'static str,
    &'static str,
    u32,
    u32,
    u32,
    u32,
    &'static str,
    &'static str,
);

const DEMO_PLANS: [DemoPlan; 4] = [
    ("s-1", "Small 1", 1, 1024, 25, 1024, "0.007", "4.50"),
    ("s-2", "Small 2", 2, 2048, 50, 2048, "0.014", "9.00"),
    ("m-4", "Medium 4", 4, 8192, 160, 4096, "0.036", "24.00"),
    ("m-8", "Medium 8", 8, 16384, 320, 5120, "0.071", "48.00"),
];

/// The demo images: name, version, family, smallest disk (GiB).
const DEMO_IMAGES: [(&str, &str, OsFamily, u32); 4] = [
    ("Debian", "12", OsFamily::Linux, 10),
    ("Ubuntu", "24.04", OsFamily::Linux, 10),
    ("Rocky Linux", "9", OsFamily::Linux, 10),
    ("Windows Server", "2022", OsFamily::Windows, 40),
];

fn seed_failed(err: impl std::fmt::Display) -> BootstrapError {
    BootstrapError::Failed(format!("seeding the demo catalog: {err}"))
}

/// Custom pricing of the demo's first datacenter, in `currency`.
fn demo_custom_pricing(currency: Currency) -> Result<CustomPricing, BootstrapError> {
    let price = |amount: &str| Money::from_decimal_str(amount, currency).map_err(seed_failed);
    let percent = |text: &str| Percent::parse(text).map_err(seed_failed);
    let size = |vcpus, memory_mib, disk_gib, ipv4, traffic_gib| Resources {
        vcpus,
        memory_mib,
        disk_gib,
        ipv4,
        traffic_gib,
    };
    CustomPricing::new(
        UnitPrices {
            vcpu: price("3.00")?,
            memory_gib: price("1.50")?,
            disk_gib: price("0.05")?,
            ipv4: price("1.00")?,
            traffic_gib: price("0.01")?,
        },
        ResourceBounds {
            min: size(1, 1024, 10, 0, 0),
            max: size(16, 65_536, 1000, 4, 10_240),
        },
        PeriodDiscounts {
            quarterly: percent("3")?,
            semiannual: percent("6")?,
            annual: percent("10")?,
        },
    )
    .map_err(seed_failed)
}

/// The price table of a demo plan, in `currency`.
fn demo_prices(
    currency: Currency,
    hourly: &str,
    monthly: &str,
) -> Result<PriceTable, BootstrapError> {
    let price = |amount: &str| Money::from_decimal_str(amount, currency).map_err(seed_failed);
    let [quarterly, semiannual, annual] = DEMO_PLAN_DISCOUNTS.map(|text| {
        Percent::parse(text)
            .map(|percent| PeriodPrice::Discount { percent })
            .map_err(seed_failed)
    });
    PriceTable::new(
        price(hourly)?,
        price(monthly)?,
        quarterly?,
        semiannual?,
        annual?,
    )
    .map_err(seed_failed)
}

/// Seeds a demo catalog on the first start, when `STRATUS_DEMO_CATALOG` is on and no datacenter
/// exists yet: `fra1` Frankfurt (DE, with custom pricing) and `ams1` Amsterdam (NL); Debian 12,
/// Ubuntu 24.04, Rocky Linux 9 and Windows Server 2022; plans `s-1` to `m-8` sold in both, priced
/// in the settlement currency. Runs through the catalog's write side like any admin change.
///
/// Whether a datacenter exists is read from the catalog read model once it has caught up with the
/// log. Two processes starting at once both find none; the datacenter code claim lets one seed and
/// the other stop.
pub async fn ensure_demo_catalog(
    state: &web::Data<AppState>,
) -> Result<DemoCatalogOutcome, BootstrapError> {
    if !state.settings.demo_catalog {
        return Ok(DemoCatalogOutcome::Disabled);
    }
    let head = state.feed.head().await.map_err(seed_failed)?;
    state
        .read_your_writes(Some(head), &[catalog_model::NAME])
        .await
        .map_err(seed_failed)?;
    let any = DatacenterFilter {
        limit: 1,
        ..DatacenterFilter::default()
    };
    let existing = catalog_model::list_datacenters(&state.pool, &any)
        .await
        .map_err(seed_failed)?;
    if !existing.is_empty() {
        return Ok(DemoCatalogOutcome::AlreadyPresent);
    }
    let catalog = &state.catalog;
    let currency = catalog.settlement_currency();
    let metadata = CommandMetadata::system(Uuid::now_v7(), "demo_catalog");
    let text = |value: &str| CatalogName::parse(value).map_err(seed_failed);
    let datacenters = [
        (
            "fra1",
            "Frankfurt",
            "DE",
            Some(demo_custom_pricing(currency)?),
        ),
        ("ams1", "Amsterdam", "NL", None),
    ];
    let mut datacenter_ids = Vec::new();
    for (code, name, country, custom_pricing) in datacenters {
        let id = DatacenterId::from_uuid(Uuid::now_v7());
        let datacenter = NewDatacenter {
            code: DatacenterCode::parse(code).map_err(seed_failed)?,
            name: text(name)?,
            country: Country::parse(country).map_err(seed_failed)?,
            available: true,
            custom_pricing,
        };
        match catalog.create_datacenter(id, datacenter, &metadata).await {
            Ok(_) => datacenter_ids.push(id),
            // Another process claimed the code first: it is seeding.
            Err(CatalogWriteError::CodeTaken) => return Ok(DemoCatalogOutcome::AlreadyPresent),
            Err(e) => return Err(seed_failed(e)),
        }
    }
    for (name, version, family, min_disk_gib) in DEMO_IMAGES {
        let image = NewImage {
            name: text(name)?,
            version: ImageVersion::parse(version).map_err(seed_failed)?,
            family,
            min_disk_gib: MinDiskGib::new(min_disk_gib).map_err(seed_failed)?,
            available: true,
        };
        catalog
            .create_image(ImageId::from_uuid(Uuid::now_v7()), image, &metadata)
            .await
            .map_err(seed_failed)?;
    }
    let sold_in = PlanDatacenters::new(datacenter_ids.iter().copied()).map_err(seed_failed)?;
    let mut last = None;
    for (code, name, vcpus, memory_mib, disk_gib, traffic_gib, hourly, monthly) in DEMO_PLANS {
        let resources = Resources {
            vcpus,
            memory_mib,
            disk_gib,
            ipv4: 1,
            traffic_gib,
        };
        let plan = NewPlan {
            code: PlanCode::parse(code).map_err(seed_failed)?,
            name: text(name)?,
            resources: PlanResources::new(resources).map_err(seed_failed)?,
            prices: demo_prices(currency, hourly, monthly)?,
            datacenters: sold_in.clone(),
        };
        last = catalog
            .create_plan(PlanId::from_uuid(Uuid::now_v7()), plan, &metadata)
            .await
            .map_err(seed_failed)?;
    }
    // Answer once the public catalog shows the seed.
    state
        .read_your_writes(last, &[catalog_model::NAME])
        .await
        .map_err(seed_failed)?;
    Ok(DemoCatalogOutcome::Seeded {
        datacenters: datacenter_ids.len(),
        images: DEMO_IMAGES.len(),
        plans: DEMO_PLANS.len(),
    })
}
