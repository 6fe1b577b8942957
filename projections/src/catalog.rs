//! The catalog projection: `catalog_datacenters`, `catalog_images` and `catalog_plans`, and the
//! queries the catalog routes and the order flow run on them.
//!
//! Prices ([`PriceTable`]) and custom pricing ([`CustomPricing`]) are kept as the events store
//! them and read back into the domain types, so a reader prices an order with exactly what the
//! aggregate accepted; the columns beside them (currency, monthly price, resources, datacenters,
//! status) exist for filtering and ordering only. Times are the events' own times, so a rebuild
//! reproduces every row.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::catalog::{
    CatalogName, Datacenter, DatacenterCode, DatacenterEvent, ImageVersion, OsFamily, OsImage,
    OsImageEvent, Plan, PlanCode, PlanEvent, PlanStatus,
};
use stratus_domain::pricing::{CustomPricing, PriceTable, Resources};
use stratus_domain::{Country, DatacenterId, ImageId, PlanId};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::stored_event::StoredEvent;

/// The subscriber name of this projection.
pub const NAME: &str = "catalog";

/// Projects Datacenter, OsImage and Plan events into the catalog tables.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogProjection;

impl Subscriber for CatalogProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[Datacenter::TYPE, OsImage::TYPE, Plan::TYPE];
        Some(TYPES)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for event in events {
                let kind = event.aggregate_type.as_str();
                if kind == Datacenter::TYPE {
                    apply_datacenter(tx, event, decode(event)?).await?;
                } else if kind == OsImage::TYPE {
                    apply_image(tx, event, decode(event)?).await?;
                } else if kind == Plan::TYPE {
                    apply_plan(tx, event, decode(event)?).await?;
                }
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for table in ["catalog_plans", "catalog_images", "catalog_datacenters"] {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
}

fn decode<E: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<E, SubscriberError> {
    serde_json::from_value(event.payload.clone()).map_err(|e| SubscriberError::decode(event, e))
}

fn aggregate_uuid(event: &StoredEvent) -> Result<Uuid, SubscriberError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| SubscriberError::decode(event, e))
}

fn json_of(event: &StoredEvent, value: &impl serde::Serialize) -> Result<Value, SubscriberError> {
    serde_json::to_value(value).map_err(|e| SubscriberError::decode(event, e))
}

async fn apply_datacenter(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    event: DatacenterEvent,
) -> Result<(), SubscriberError> {
    let id = aggregate_uuid(stored)?;
    match event {
        DatacenterEvent::DatacenterCreated {
            code,
            name,
            country,
            available,
            custom_pricing,
            created_at,
            ..
        } => {
            let custom = custom_pricing
                .map(|pricing| json_of(stored, &pricing))
                .transpose()?;
            sqlx::query(
                "INSERT INTO catalog_datacenters (datacenter_id, code, name, country, available, \
                 custom_pricing, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (datacenter_id) DO NOTHING",
            )
            .bind(id)
            .bind(code.as_str())
            .bind(name.as_str())
            .bind(country.as_str())
            .bind(available)
            .bind(custom)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
        }
        DatacenterEvent::DatacenterUpdated {
            name,
            country,
            available,
            updated_at,
        } => {
            sqlx::query(
                "UPDATE catalog_datacenters SET name = COALESCE($2, name), \
                 country = COALESCE($3, country), available = COALESCE($4, available), \
                 updated_at = $5 WHERE datacenter_id = $1",
            )
            .bind(id)
            .bind(name.as_ref().map(CatalogName::as_str))
            .bind(country.as_ref().map(Country::as_str))
            .bind(available)
            .bind(updated_at)
            .execute(&mut *tx)
            .await?;
        }
        DatacenterEvent::DatacenterCustomPricingSet {
            custom_pricing,
            set_at,
        } => {
            set_custom_pricing(tx, id, Some(json_of(stored, &custom_pricing)?), set_at).await?;
        }
        DatacenterEvent::DatacenterCustomPricingRemoved { removed_at } => {
            set_custom_pricing(tx, id, None, removed_at).await?;
        }
    }
    Ok(())
}

async fn set_custom_pricing(
    tx: &mut PgConnection,
    id: Uuid,
    custom: Option<Value>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE catalog_datacenters SET custom_pricing = $2, updated_at = $3 \
         WHERE datacenter_id = $1",
    )
    .bind(id)
    .bind(custom)
    .bind(at)
    .execute(tx)
    .await?;
    Ok(())
}

async fn apply_image(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    event: OsImageEvent,
) -> Result<(), SubscriberError> {
    let id = aggregate_uuid(stored)?;
    match event {
        OsImageEvent::OsImageCreated {
            name,
            version,
            family,
            min_disk_gib,
            available,
            created_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO catalog_images (image_id, name, version, family, min_disk_gib, \
                 available, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (image_id) DO NOTHING",
            )
            .bind(id)
            .bind(name.as_str())
            .bind(version.as_str())
            .bind(family.as_str())
            .bind(i64::from(min_disk_gib.gib()))
            .bind(available)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
        }
        OsImageEvent::OsImageUpdated {
            name,
            version,
            family,
            min_disk_gib,
            available,
            updated_at,
        } => {
            sqlx::query(
                "UPDATE catalog_images SET name = COALESCE($2, name), \
                 version = COALESCE($3, version), family = COALESCE($4, family), \
                 min_disk_gib = COALESCE($5, min_disk_gib), available = COALESCE($6, available), \
                 updated_at = $7 WHERE image_id = $1",
            )
            .bind(id)
            .bind(name.as_ref().map(CatalogName::as_str))
            .bind(version.as_ref().map(ImageVersion::as_str))
            .bind(family.map(|f| f.as_str()))
            .bind(min_disk_gib.map(|d| i64::from(d.gib())))
            .bind(available)
            .bind(updated_at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

async fn apply_plan(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    event: PlanEvent,
) -> Result<(), SubscriberError> {
    let id = aggregate_uuid(stored)?;
    match event {
        PlanEvent::PlanCreated {
            code,
            name,
            resources,
            prices,
            datacenters,
            created_at,
            ..
        } => {
            let r = resources.get();
            let datacenter_ids: Vec<Uuid> = datacenters.iter().map(|d| d.as_uuid()).collect();
            sqlx::query(
                "INSERT INTO catalog_plans (plan_id, code, name, vcpus, memory_mib, disk_gib, \
                 ipv4, traffic_gib, prices, currency, monthly_micros, datacenter_ids, status, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
                 ON CONFLICT (plan_id) DO NOTHING",
            )
            .bind(id)
            .bind(code.as_str())
            .bind(name.as_str())
            .bind(i64::from(r.vcpus))
            .bind(i64::from(r.memory_mib))
            .bind(i64::from(r.disk_gib))
            .bind(i64::from(r.ipv4))
            .bind(i64::from(r.traffic_gib))
            .bind(json_of(stored, &prices)?)
            .bind(prices.currency().code())
            .bind(prices.monthly().micros())
            .bind(datacenter_ids)
            .bind(PlanStatus::Active.as_str())
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
        }
        PlanEvent::PlanUpdated {
            name,
            prices,
            datacenters,
            updated_at,
        } => {
            let prices_json = prices.map(|p| json_of(stored, &p)).transpose()?;
            let datacenter_ids: Option<Vec<Uuid>> =
                datacenters.map(|set| set.iter().map(|d| d.as_uuid()).collect());
            sqlx::query(
                "UPDATE catalog_plans SET name = COALESCE($2, name), \
                 prices = COALESCE($3, prices), currency = COALESCE($4, currency), \
                 monthly_micros = COALESCE($5, monthly_micros), \
                 datacenter_ids = COALESCE($6, datacenter_ids), updated_at = $7 \
                 WHERE plan_id = $1",
            )
            .bind(id)
            .bind(name.as_ref().map(CatalogName::as_str))
            .bind(prices_json)
            .bind(prices.map(|p| p.currency().code()))
            .bind(prices.map(|p| p.monthly().micros()))
            .bind(datacenter_ids)
            .bind(updated_at)
            .execute(&mut *tx)
            .await?;
        }
        PlanEvent::PlanRetired { retired_at } => {
            sqlx::query(
                "UPDATE catalog_plans SET status = $2, retired_at = $3, updated_at = $3 \
                 WHERE plan_id = $1",
            )
            .bind(id)
            .bind(PlanStatus::Retired.as_str())
            .bind(retired_at)
            .execute(&mut *tx)
            .await?;
        }
        PlanEvent::PlanReactivated { reactivated_at } => {
            sqlx::query(
                "UPDATE catalog_plans SET status = $2, retired_at = NULL, updated_at = $3 \
                 WHERE plan_id = $1",
            )
            .bind(id)
            .bind(PlanStatus::Active.as_str())
            .bind(reactivated_at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// One datacenter as the catalog shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DatacenterView {
    pub datacenter_id: DatacenterId,
    pub code: DatacenterCode,
    pub name: CatalogName,
    pub country: Country,
    /// Whether it takes new orders.
    pub available: bool,
    /// How it prices custom configurations; `None`: they are not sold here.
    pub custom_pricing: Option<CustomPricing>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One operating-system image as the catalog shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    pub image_id: ImageId,
    pub name: CatalogName,
    pub version: ImageVersion,
    pub family: OsFamily,
    /// The smallest disk it can be installed on.
    pub min_disk_gib: u32,
    /// Whether it is offered for new VMs.
    pub available: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One plan as the catalog shows it, retired or not.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub plan_id: PlanId,
    pub code: PlanCode,
    pub name: CatalogName,
    /// Fixed for the life of the plan.
    pub resources: Resources,
    pub prices: PriceTable,
    /// Where it is sold, in id order (never empty).
    pub datacenters: Vec<DatacenterId>,
    pub status: PlanStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while retired.
    pub retired_at: Option<DateTime<Utc>>,
}

impl PlanView {
    /// Whether new orders may use it (it is active).
    pub fn is_active(&self) -> bool {
        self.status == PlanStatus::Active
    }

    /// Whether it is sold in `datacenter`.
    pub fn is_sold_in(&self, datacenter: DatacenterId) -> bool {
        self.datacenters.contains(&datacenter)
    }
}

/// Filters of a datacenter list, sorted by code; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct DatacenterFilter {
    pub available: Option<bool>,
    /// Only datacenters after this one (the cursor of the previous page).
    pub after: Option<DatacenterId>,
    pub limit: i64,
}

/// Filters of an image list, sorted by name and version; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub available: Option<bool>,
    pub family: Option<OsFamily>,
    /// Only images after this one (the cursor of the previous page).
    pub after: Option<ImageId>,
    pub limit: i64,
}

/// Filters of a plan list, cheapest first (then by code); every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub status: Option<PlanStatus>,
    /// Only plans sold in this datacenter.
    pub datacenter: Option<DatacenterId>,
    /// Only plans after this one (the cursor of the previous page).
    pub after: Option<PlanId>,
    pub limit: i64,
}

fn decode_error(err: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(err))
}

fn count_of(row: &PgRow, column: &str) -> Result<u32, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(decode_error)
}

const DATACENTER_COLUMNS: &str =
    "datacenter_id, code, name, country, available, custom_pricing, created_at, updated_at";

const IMAGE_COLUMNS: &str =
    "image_id, name, version, family, min_disk_gib, available, created_at, updated_at";

const PLAN_COLUMNS: &str = "plan_id, code, name, vcpus, memory_mib, disk_gib, ipv4, traffic_gib, \
     prices, datacenter_ids, status, created_at, updated_at, retired_at";

fn datacenter_of(row: &PgRow) -> Result<DatacenterView, sqlx::Error> {
    let custom: Option<Value> = row.try_get("custom_pricing")?;
    Ok(DatacenterView {
        datacenter_id: DatacenterId::from_uuid(row.try_get("datacenter_id")?),
        code: DatacenterCode::parse(row.try_get("code")?).map_err(decode_error)?,
        name: CatalogName::parse(row.try_get("name")?).map_err(decode_error)?,
        country: Country::parse(row.try_get("country")?).map_err(decode_error)?,
        available: row.try_get("available")?,
        custom_pricing: custom
            .map(serde_json::from_value)
            .transpose()
            .map_err(decode_error)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn image_of(row: &PgRow) -> Result<ImageView, sqlx::Error> {
    Ok(ImageView {
        image_id: ImageId::from_uuid(row.try_get("image_id")?),
        name: CatalogName::parse(row.try_get("name")?).map_err(decode_error)?,
        version: ImageVersion::parse(row.try_get("version")?).map_err(decode_error)?,
        family: OsFamily::parse(row.try_get("family")?).map_err(decode_error)?,
        min_disk_gib: count_of(row, "min_disk_gib")?,
        available: row.try_get("available")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A stored status this code does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown plan status {0:?}")]
struct UnknownStatus(String);

fn plan_of(row: &PgRow) -> Result<PlanView, sqlx::Error> {
    let prices: Value = row.try_get("prices")?;
    let datacenters: Vec<Uuid> = row.try_get("datacenter_ids")?;
    let status: String = row.try_get("status")?;
    Ok(PlanView {
        plan_id: PlanId::from_uuid(row.try_get("plan_id")?),
        code: PlanCode::parse(row.try_get("code")?).map_err(decode_error)?,
        name: CatalogName::parse(row.try_get("name")?).map_err(decode_error)?,
        resources: Resources {
            vcpus: count_of(row, "vcpus")?,
            memory_mib: count_of(row, "memory_mib")?,
            disk_gib: count_of(row, "disk_gib")?,
            ipv4: count_of(row, "ipv4")?,
            traffic_gib: count_of(row, "traffic_gib")?,
        },
        prices: serde_json::from_value(prices).map_err(decode_error)?,
        datacenters: datacenters
            .into_iter()
            .map(DatacenterId::from_uuid)
            .collect(),
        status: PlanStatus::from_name(&status)
            .ok_or_else(|| decode_error(UnknownStatus(status.clone())))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

/// One datacenter by id, available or not.
pub async fn get_datacenter(
    pool: &PgPool,
    datacenter_id: DatacenterId,
) -> Result<Option<DatacenterView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {DATACENTER_COLUMNS} FROM catalog_datacenters WHERE datacenter_id = $1"
    ))
    .bind(datacenter_id.as_uuid())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(datacenter_of).transpose()
}

/// Datacenters by code.
pub async fn list_datacenters(
    pool: &PgPool,
    filter: &DatacenterFilter,
) -> Result<Vec<DatacenterView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {DATACENTER_COLUMNS} FROM catalog_datacenters \
         WHERE ($1::boolean IS NULL OR available = $1) \
           AND ($2::uuid IS NULL OR (code, datacenter_id) > \
                (SELECT c.code, c.datacenter_id FROM catalog_datacenters c WHERE c.datacenter_id = $2)) \
         ORDER BY code, datacenter_id LIMIT $3"
    ))
    .bind(filter.available)
    .bind(filter.after.map(|id| id.as_uuid()))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(datacenter_of).collect()
}

/// One image by id, available or not.
pub async fn get_image(pool: &PgPool, image_id: ImageId) -> Result<Option<ImageView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM catalog_images WHERE image_id = $1"
    ))
    .bind(image_id.as_uuid())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(image_of).transpose()
}

/// Images by name and version.
pub async fn list_images(
    pool: &PgPool,
    filter: &ImageFilter,
) -> Result<Vec<ImageView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM catalog_images \
         WHERE ($1::boolean IS NULL OR available = $1) \
           AND ($2::text IS NULL OR family = $2) \
           AND ($3::uuid IS NULL OR (name, version, image_id) > \
                (SELECT c.name, c.version, c.image_id FROM catalog_images c WHERE c.image_id = $3)) \
         ORDER BY name, version, image_id LIMIT $4"
    ))
    .bind(filter.available)
    .bind(filter.family.map(|f| f.as_str()))
    .bind(filter.after.map(|id| id.as_uuid()))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(image_of).collect()
}

/// One plan by id, active or retired (services on a retired plan keep reading it).
pub async fn get_plan(pool: &PgPool, plan_id: PlanId) -> Result<Option<PlanView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM catalog_plans WHERE plan_id = $1"
    ))
    .bind(plan_id.as_uuid())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(plan_of).transpose()
}

/// Plans, cheapest first, then by code.
pub async fn list_plans(pool: &PgPool, filter: &PlanFilter) -> Result<Vec<PlanView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM catalog_plans \
         WHERE ($1::text IS NULL OR status = $1) \
           AND ($2::uuid IS NULL OR datacenter_ids @> ARRAY[$2::uuid]) \
           AND ($3::uuid IS NULL OR (monthly_micros, code, plan_id) > \
                (SELECT c.monthly_micros, c.code, c.plan_id FROM catalog_plans c WHERE c.plan_id = $3)) \
         ORDER BY monthly_micros, code, plan_id LIMIT $4"
    ))
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.datacenter.map(|id| id.as_uuid()))
    .bind(filter.after.map(|id| id.as_uuid()))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(plan_of).collect()
}
