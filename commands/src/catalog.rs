//! Catalog use cases: creating and changing datacenters, OS images and plans, retiring and
//! reactivating plans.
//!
//! The aggregates decide; this module does what they cannot see: it claims datacenter and plan
//! codes in `unique_claims` before `Create` (released when the command fails), keeps every price in
//! the deployment's settlement currency, and checks that the datacenters a plan names exist, by
//! loading them from the event store (not a read model that may lag).

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::Aggregate;
use sqlx::PgPool;
use stratus_domain::catalog::{
    Datacenter, DatacenterChanges, DatacenterCommand, DatacenterError, ImageChanges, NewDatacenter,
    NewImage, NewPlan, OsImage, OsImageCommand, OsImageError, Plan, PlanChanges, PlanCommand,
    PlanDatacenters, PlanError,
};
use stratus_domain::pricing::{CustomPricing, PriceTable};
use stratus_domain::{Currency, DatacenterId, ImageId, PlanId};
use stratus_projections::FeedPosition;

use crate::aggregate_store::{AggregateStore, CommandError};
use crate::metadata::CommandMetadata;
use crate::unique_claims::{self, ClaimError};

/// The `unique_claims` scope of datacenter codes.
pub const DATACENTER_CODE_SCOPE: &str = "datacenter_code";
/// The `unique_claims` scope of plan codes.
pub const PLAN_CODE_SCOPE: &str = "plan_code";

/// Why a catalog change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CatalogWriteError<E: std::error::Error> {
    /// Another datacenter (or plan) already has this code.
    #[error("the code is already taken")]
    CodeTaken,
    /// A price is not in the settlement currency.
    #[error("prices must be in the settlement currency {expected}, not {found}")]
    NotSettlementCurrency { expected: Currency, found: Currency },
    /// A plan names a datacenter that does not exist.
    #[error("no datacenter {0}")]
    UnknownDatacenter(DatacenterId),
    /// The aggregate refused, or the store failed.
    #[error(transparent)]
    Command(#[from] CommandError<E>),
}

/// What a catalog change answers: the feed position of its last event, for read-your-writes
/// (`None` when nothing changed).
pub type CatalogResult<E> = Result<Option<FeedPosition>, CatalogWriteError<E>>;

/// The catalog's write side: the three stores and the currency every price must be in.
#[derive(Clone)]
pub struct Catalog {
    datacenters: Arc<AggregateStore<Datacenter>>,
    images: Arc<AggregateStore<OsImage>>,
    plans: Arc<AggregateStore<Plan>>,
    pool: PgPool,
    settlement: Currency,
}

impl Catalog {
    /// The catalog on `pool`, priced in `settlement`.
    pub fn new(pool: PgPool, settlement: Currency) -> Self {
        Self {
            datacenters: Arc::new(AggregateStore::new(pool.clone(), ())),
            images: Arc::new(AggregateStore::new(pool.clone(), ())),
            plans: Arc::new(AggregateStore::new(pool.clone(), ())),
            pool,
            settlement,
        }
    }

    /// The currency every price of the catalog is in.
    pub fn settlement_currency(&self) -> Currency {
        self.settlement
    }

    /// Adds a datacenter under a new code.
    pub async fn create_datacenter(
        &self,
        datacenter_id: DatacenterId,
        datacenter: NewDatacenter,
        metadata: &CommandMetadata,
    ) -> CatalogResult<DatacenterError> {
        self.check_custom_pricing(datacenter.custom_pricing.as_ref())?;
        let code = datacenter.code.as_str().to_owned();
        let command = DatacenterCommand::Create {
            datacenter_id,
            datacenter,
            occurred_at: Utc::now(),
        };
        let id = datacenter_id.to_string();
        claimed(
            &self.pool,
            DATACENTER_CODE_SCOPE,
            &code,
            Datacenter::TYPE,
            &id,
            self.datacenters.execute(&id, command, metadata),
        )
        .await
    }

    /// Changes some fields of a datacenter.
    pub async fn update_datacenter(
        &self,
        datacenter_id: DatacenterId,
        changes: DatacenterChanges,
        metadata: &CommandMetadata,
    ) -> CatalogResult<DatacenterError> {
        if let Some(Some(pricing)) = &changes.custom_pricing {
            self.check_custom_pricing(Some(pricing))?;
        }
        let command = DatacenterCommand::Update {
            changes,
            occurred_at: Utc::now(),
        };
        let appended = self
            .datacenters
            .execute(&datacenter_id.to_string(), command, metadata)
            .await?;
        Ok(appended.position)
    }

    /// Adds an operating-system image.
    pub async fn create_image(
        &self,
        image_id: ImageId,
        image: NewImage,
        metadata: &CommandMetadata,
    ) -> CatalogResult<OsImageError> {
        let command = OsImageCommand::Create {
            image_id,
            image,
            occurred_at: Utc::now(),
        };
        let appended = self
            .images
            .execute(&image_id.to_string(), command, metadata)
            .await?;
        Ok(appended.position)
    }

    /// Changes some fields of an image.
    pub async fn update_image(
        &self,
        image_id: ImageId,
        changes: ImageChanges,
        metadata: &CommandMetadata,
    ) -> CatalogResult<OsImageError> {
        let command = OsImageCommand::Update {
            changes,
            occurred_at: Utc::now(),
        };
        let appended = self
            .images
            .execute(&image_id.to_string(), command, metadata)
            .await?;
        Ok(appended.position)
    }

    /// Adds a plan under a new code, sold in datacenters that exist.
    pub async fn create_plan(
        &self,
        plan_id: PlanId,
        plan: NewPlan,
        metadata: &CommandMetadata,
    ) -> CatalogResult<PlanError> {
        self.check_prices(&plan.prices)?;
        self.check_datacenters(&plan.datacenters).await?;
        let code = plan.code.as_str().to_owned();
        let command = PlanCommand::Create {
            plan_id,
            plan,
            occurred_at: Utc::now(),
        };
        let id = plan_id.to_string();
        claimed(
            &self.pool,
            PLAN_CODE_SCOPE,
            &code,
            Plan::TYPE,
            &id,
            self.plans.execute(&id, command, metadata),
        )
        .await
    }

    /// Changes the name, prices or datacenters of a plan (its resources never change).
    pub async fn update_plan(
        &self,
        plan_id: PlanId,
        changes: PlanChanges,
        metadata: &CommandMetadata,
    ) -> CatalogResult<PlanError> {
        if let Some(prices) = &changes.prices {
            self.check_prices(prices)?;
        }
        if let Some(datacenters) = &changes.datacenters {
            self.check_datacenters(datacenters).await?;
        }
        let command = PlanCommand::Update {
            changes,
            occurred_at: Utc::now(),
        };
        self.run_plan(plan_id, command, metadata).await
    }

    /// Takes a plan off the shelf; services already on it keep it.
    pub async fn retire_plan(
        &self,
        plan_id: PlanId,
        metadata: &CommandMetadata,
    ) -> CatalogResult<PlanError> {
        let command = PlanCommand::Retire {
            occurred_at: Utc::now(),
        };
        self.run_plan(plan_id, command, metadata).await
    }

    /// Puts a retired plan back on the shelf.
    pub async fn reactivate_plan(
        &self,
        plan_id: PlanId,
        metadata: &CommandMetadata,
    ) -> CatalogResult<PlanError> {
        let command = PlanCommand::Reactivate {
            occurred_at: Utc::now(),
        };
        self.run_plan(plan_id, command, metadata).await
    }

    /// The datacenter as its events left it (a default, not-existing state when unknown).
    pub async fn load_datacenter(
        &self,
        datacenter_id: DatacenterId,
    ) -> Result<Datacenter, CommandError<DatacenterError>> {
        self.datacenters.load(&datacenter_id.to_string()).await
    }

    async fn run_plan(
        &self,
        plan_id: PlanId,
        command: PlanCommand,
        metadata: &CommandMetadata,
    ) -> CatalogResult<PlanError> {
        let appended = self
            .plans
            .execute(&plan_id.to_string(), command, metadata)
            .await?;
        Ok(appended.position)
    }

    fn check_currency<E: std::error::Error>(
        &self,
        found: Currency,
    ) -> Result<(), CatalogWriteError<E>> {
        if found == self.settlement {
            Ok(())
        } else {
            Err(CatalogWriteError::NotSettlementCurrency {
                expected: self.settlement,
                found,
            })
        }
    }

    fn check_prices(&self, prices: &PriceTable) -> Result<(), CatalogWriteError<PlanError>> {
        // `PriceTable::new` keeps every price in the monthly price's currency.
        self.check_currency(prices.currency())
    }

    fn check_custom_pricing(
        &self,
        pricing: Option<&CustomPricing>,
    ) -> Result<(), CatalogWriteError<DatacenterError>> {
        // `CustomPricing::new` keeps every unit price in one currency.
        pricing.map_or(Ok(()), |p| self.check_currency(p.currency()))
    }

    /// Refuses the first datacenter (in id order) that was never created.
    async fn check_datacenters(
        &self,
        datacenters: &PlanDatacenters,
    ) -> Result<(), CatalogWriteError<PlanError>> {
        for datacenter_id in datacenters.iter() {
            let datacenter = self
                .load_datacenter(*datacenter_id)
                .await
                .map_err(|e| CommandError::Infrastructure(Box::new(e)))?;
            if !datacenter.exists() {
                return Err(CatalogWriteError::UnknownDatacenter(*datacenter_id));
            }
        }
        Ok(())
    }
}

/// Claims `code` in `scope` for the aggregate `owner_type/owner_id`, runs `create`, and gives the
/// claim back when it fails.
async fn claimed<A, F>(
    pool: &PgPool,
    scope: &str,
    code: &str,
    owner_type: &str,
    owner_id: &str,
    create: F,
) -> CatalogResult<A::Error>
where
    A: Aggregate,
    A::Error: Send + Sync + 'static,
    F: std::future::Future<
        Output = Result<crate::aggregate_store::Appended<A>, CommandError<A::Error>>,
    >,
{
    match unique_claims::claim(pool, scope, code, owner_type, owner_id).await {
        Ok(()) => {}
        Err(ClaimError::Taken) => return Err(CatalogWriteError::CodeTaken),
        Err(ClaimError::Database(e)) => return Err(CommandError::infra(e).into()),
    }
    match create.await {
        Ok(appended) => Ok(appended.position),
        Err(err) => {
            if let Err(release_err) = unique_claims::release(pool, scope, code, owner_id).await {
                tracing::error!(error = %release_err, scope, "could not release a code claim after a failed create");
            }
            Err(err.into())
        }
    }
}
