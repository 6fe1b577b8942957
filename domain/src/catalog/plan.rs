//! The `Plan` aggregate: a fixed VM size with its prices and the datacenters it is sold in.
//!
//! Resources are fixed at creation: VMs running on a plan rely on them, so a different size is a
//! different plan. Retiring takes a plan off the shelf (not listed, not orderable) while the
//! services already on it keep it (grandfathering); reactivating puts it back.

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::values::{CatalogName, PlanCode, PlanDatacenters, PlanResources};
use super::EVENT_VERSION;
use crate::ids::PlanId;
use crate::pricing::{BillingPeriod, PriceTable};

#[cfg(test)]
mod tests;

/// What a new plan is made of, every field already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPlan {
    pub code: PlanCode,
    pub name: CatalogName,
    pub resources: PlanResources,
    pub prices: PriceTable,
    pub datacenters: PlanDatacenters,
}

/// The fields an update changes; `None` leaves a field as it is. Resources cannot change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanChanges {
    pub name: Option<CatalogName>,
    pub prices: Option<PriceTable>,
    pub datacenters: Option<PlanDatacenters>,
}

impl PlanChanges {
    /// Whether no field is named.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.prices.is_none() && self.datacenters.is_none()
    }
}

/// Whether a plan can be ordered. Stored by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Listed and orderable.
    Active,
    /// Not listed nor orderable; services already on it keep it.
    Retired,
}

impl PlanStatus {
    /// Every status, in declaration order.
    pub const ALL: [PlanStatus; 2] = [Self::Active, Self::Retired];

    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    /// The status of a stored or wire name (exact match); `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

impl fmt::Display for PlanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be asked of a plan. Ids and time are chosen by the caller.
#[derive(Debug, Clone)]
pub enum PlanCommand {
    /// Add the plan to the catalog, active. Its code must have been claimed first.
    Create {
        plan_id: PlanId,
        plan: NewPlan,
        occurred_at: DateTime<Utc>,
    },
    /// Change its name, prices or datacenters (at least one named).
    Update {
        changes: PlanChanges,
        occurred_at: DateTime<Utc>,
    },
    /// Take an active plan off the shelf.
    Retire { occurred_at: DateTime<Utc> },
    /// Put a retired plan back on the shelf.
    Reactivate { occurred_at: DateTime<Utc> },
}

/// What happened to a plan. A stored format: names, fields and versions are pinned by tests and
/// never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanEvent {
    /// The plan joined the catalog, active.
    PlanCreated {
        plan_id: PlanId,
        code: PlanCode,
        name: CatalogName,
        resources: PlanResources,
        prices: PriceTable,
        datacenters: PlanDatacenters,
        created_at: DateTime<Utc>,
    },
    /// Some of name, prices and datacenters changed; only the changed ones are present.
    PlanUpdated {
        name: Option<CatalogName>,
        prices: Option<PriceTable>,
        datacenters: Option<PlanDatacenters>,
        updated_at: DateTime<Utc>,
    },
    /// The plan is no longer listed nor orderable.
    PlanRetired { retired_at: DateTime<Utc> },
    /// The plan is listed and orderable again.
    PlanReactivated { reactivated_at: DateTime<Utc> },
}

/// Every `event_type()` a [`PlanEvent`] can have.
pub const PLAN_EVENT_TYPES: &[&str] = &[
    "PlanCreated",
    "PlanUpdated",
    "PlanRetired",
    "PlanReactivated",
];

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::PlanCreated { .. } => "PlanCreated",
            Self::PlanUpdated { .. } => "PlanUpdated",
            Self::PlanRetired { .. } => "PlanRetired",
            Self::PlanReactivated { .. } => "PlanReactivated",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why a plan command was refused. One variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `Create` on a plan that exists.
    #[error("the plan already exists")]
    AlreadyExists,
    /// Any command but `Create` on a plan that does not exist.
    #[error("no such plan")]
    NotFound,
    /// An update that names no field.
    #[error("the update names no field to change")]
    EmptyUpdate,
    /// `Retire` on a retired plan.
    #[error("the plan is already retired")]
    AlreadyRetired,
    /// `Reactivate` on an active plan.
    #[error("the plan is not retired")]
    NotRetired,
    /// The price of a period is zero (a 100 % discount) or too large to compute.
    #[error("the {period} price must be greater than zero and computable")]
    PeriodNotPriceable { period: BillingPeriod },
}

impl PlanError {
    /// Stable machine-readable code for API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "plan_already_exists",
            Self::NotFound => "plan_not_found",
            Self::EmptyUpdate => "empty_update",
            Self::AlreadyRetired => "plan_already_retired",
            Self::NotRetired => "plan_not_retired",
            Self::PeriodNotPriceable { .. } => "period_not_priceable",
        }
    }
}

/// Refuses a price table in which some period has no positive, computable price.
fn check_priceable(prices: &PriceTable) -> Result<(), PlanError> {
    for period in BillingPeriod::ALL {
        match prices.price_for(period) {
            Ok(price) if price.is_positive() => {}
            _ => return Err(PlanError::PeriodNotPriceable { period }),
        }
    }
    Ok(())
}

/// The state a plan needs to decide. `None` until [`PlanEvent::PlanCreated`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    state: Option<PlanState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PlanState {
    plan_id: PlanId,
    code: PlanCode,
    name: CatalogName,
    resources: PlanResources,
    prices: PriceTable,
    datacenters: PlanDatacenters,
    status: PlanStatus,
}

impl Plan {
    /// Whether it was created.
    pub fn exists(&self) -> bool {
        self.state.is_some()
    }

    /// Its id, once created.
    pub fn id(&self) -> Option<PlanId> {
        self.state.as_ref().map(|s| s.plan_id)
    }

    /// Its unique code, once created.
    pub fn code(&self) -> Option<&PlanCode> {
        self.state.as_ref().map(|s| &s.code)
    }

    /// Active or retired, once created.
    pub fn status(&self) -> Option<PlanStatus> {
        self.state.as_ref().map(|s| s.status)
    }

    /// Its fixed resources, once created.
    pub fn resources(&self) -> Option<PlanResources> {
        self.state.as_ref().map(|s| s.resources)
    }

    /// Its prices, once created.
    pub fn prices(&self) -> Option<&PriceTable> {
        self.state.as_ref().map(|s| &s.prices)
    }

    fn decide(&self, command: PlanCommand) -> Result<Vec<PlanEvent>, PlanError> {
        let Some(state) = &self.state else {
            return match command {
                PlanCommand::Create {
                    plan_id,
                    plan,
                    occurred_at,
                } => {
                    check_priceable(&plan.prices)?;
                    Ok(vec![PlanEvent::PlanCreated {
                        plan_id,
                        code: plan.code,
                        name: plan.name,
                        resources: plan.resources,
                        prices: plan.prices,
                        datacenters: plan.datacenters,
                        created_at: occurred_at,
                    }])
                }
                _ => Err(PlanError::NotFound),
            };
        };
        match command {
            PlanCommand::Create { .. } => Err(PlanError::AlreadyExists),
            PlanCommand::Update {
                changes,
                occurred_at,
            } => state.update(changes, occurred_at),
            PlanCommand::Retire { occurred_at } => match state.status {
                PlanStatus::Retired => Err(PlanError::AlreadyRetired),
                PlanStatus::Active => Ok(vec![PlanEvent::PlanRetired {
                    retired_at: occurred_at,
                }]),
            },
            PlanCommand::Reactivate { occurred_at } => match state.status {
                PlanStatus::Active => Err(PlanError::NotRetired),
                PlanStatus::Retired => Ok(vec![PlanEvent::PlanReactivated {
                    reactivated_at: occurred_at,
                }]),
            },
        }
    }
}

impl PlanState {
    fn update(&self, changes: PlanChanges, at: DateTime<Utc>) -> Result<Vec<PlanEvent>, PlanError> {
        if changes.is_empty() {
            return Err(PlanError::EmptyUpdate);
        }
        if let Some(prices) = &changes.prices {
            check_priceable(prices)?;
        }
        let name = changes.name.filter(|v| *v != self.name);
        let prices = changes.prices.filter(|v| *v != self.prices);
        let datacenters = changes.datacenters.filter(|v| *v != self.datacenters);
        if name.is_none() && prices.is_none() && datacenters.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![PlanEvent::PlanUpdated {
            name,
            prices,
            datacenters,
            updated_at: at,
        }])
    }
}

impl Aggregate for Plan {
    const TYPE: &'static str = "plan";
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = PlanError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match (&mut self.state, event) {
            (
                None,
                PlanEvent::PlanCreated {
                    plan_id,
                    code,
                    name,
                    resources,
                    prices,
                    datacenters,
                    ..
                },
            ) => {
                self.state = Some(PlanState {
                    plan_id,
                    code,
                    name,
                    resources,
                    prices,
                    datacenters,
                    status: PlanStatus::Active,
                });
            }
            (
                Some(state),
                PlanEvent::PlanUpdated {
                    name,
                    prices,
                    datacenters,
                    ..
                },
            ) => {
                if let Some(name) = name {
                    state.name = name;
                }
                if let Some(prices) = prices {
                    state.prices = prices;
                }
                if let Some(datacenters) = datacenters {
                    state.datacenters = datacenters;
                }
            }
            (Some(state), PlanEvent::PlanRetired { .. }) => state.status = PlanStatus::Retired,
            (Some(state), PlanEvent::PlanReactivated { .. }) => state.status = PlanStatus::Active,
            // `handle` emits nothing else: a second creation or a change before creation cannot
            // be in the stream.
            _ => {}
        }
    }
}
