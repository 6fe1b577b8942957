//! The `Datacenter` aggregate: a region where VMs run, whether it takes new orders, and how it
//! prices custom configurations.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::values::{CatalogName, DatacenterCode};
use super::EVENT_VERSION;
use crate::ids::DatacenterId;
use crate::pricing::CustomPricing;
use crate::values::Country;

#[cfg(test)]
mod tests;

/// What a new datacenter is made of, every field already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDatacenter {
    pub code: DatacenterCode,
    pub name: CatalogName,
    pub country: Country,
    /// Whether it takes new orders.
    pub available: bool,
    /// How custom configurations are priced here; `None`: they are not sold here.
    pub custom_pricing: Option<CustomPricing>,
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatacenterChanges {
    pub name: Option<CatalogName>,
    pub country: Option<Country>,
    pub available: Option<bool>,
    /// `Some(Some(pricing))` sets the custom pricing, `Some(None)` removes it (custom
    /// configurations are no longer sold here), `None` leaves it.
    pub custom_pricing: Option<Option<CustomPricing>>,
}

impl DatacenterChanges {
    /// Whether no field is named.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.country.is_none()
            && self.available.is_none()
            && self.custom_pricing.is_none()
    }
}

/// What can be asked of a datacenter. Ids and time are chosen by the caller.
#[derive(Debug, Clone)]
pub enum DatacenterCommand {
    /// Add the datacenter to the catalog. Its code must have been claimed first.
    Create {
        datacenter_id: DatacenterId,
        datacenter: NewDatacenter,
        occurred_at: DateTime<Utc>,
    },
    /// Change some of its fields (at least one named).
    Update {
        changes: DatacenterChanges,
        occurred_at: DateTime<Utc>,
    },
}

/// What happened to a datacenter. A stored format: names, fields and versions are pinned by tests
/// and never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DatacenterEvent {
    /// The datacenter joined the catalog.
    DatacenterCreated {
        datacenter_id: DatacenterId,
        code: DatacenterCode,
        name: CatalogName,
        country: Country,
        available: bool,
        custom_pricing: Option<CustomPricing>,
        created_at: DateTime<Utc>,
    },
    /// Some of name, country and availability changed; only the changed ones are present.
    DatacenterUpdated {
        name: Option<CatalogName>,
        country: Option<Country>,
        available: Option<bool>,
        updated_at: DateTime<Utc>,
    },
    /// Custom configurations are sold here at these prices from now on.
    DatacenterCustomPricingSet {
        custom_pricing: CustomPricing,
        set_at: DateTime<Utc>,
    },
    /// Custom configurations are no longer sold here.
    DatacenterCustomPricingRemoved { removed_at: DateTime<Utc> },
}

/// Every `event_type()` a [`DatacenterEvent`] can have.
pub const DATACENTER_EVENT_TYPES: &[&str] = &[
    "DatacenterCreated",
    "DatacenterUpdated",
    "DatacenterCustomPricingSet",
    "DatacenterCustomPricingRemoved",
];

impl DomainEvent for DatacenterEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::DatacenterCreated { .. } => "DatacenterCreated",
            Self::DatacenterUpdated { .. } => "DatacenterUpdated",
            Self::DatacenterCustomPricingSet { .. } => "DatacenterCustomPricingSet",
            Self::DatacenterCustomPricingRemoved { .. } => "DatacenterCustomPricingRemoved",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why a datacenter command was refused. One variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatacenterError {
    /// `Create` on a datacenter that exists.
    #[error("the datacenter already exists")]
    AlreadyExists,
    /// Any command but `Create` on a datacenter that does not exist.
    #[error("no such datacenter")]
    NotFound,
    /// An update that names no field.
    #[error("the update names no field to change")]
    EmptyUpdate,
}

impl DatacenterError {
    /// Stable machine-readable code for API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "datacenter_already_exists",
            Self::NotFound => "datacenter_not_found",
            Self::EmptyUpdate => "empty_update",
        }
    }
}

/// The state a datacenter needs to decide, and what the write side asks of it. `None` until
/// [`DatacenterEvent::DatacenterCreated`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datacenter {
    state: Option<DatacenterState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DatacenterState {
    datacenter_id: DatacenterId,
    code: DatacenterCode,
    name: CatalogName,
    country: Country,
    available: bool,
    custom_pricing: Option<CustomPricing>,
}

impl Datacenter {
    /// Whether it was created.
    pub fn exists(&self) -> bool {
        self.state.is_some()
    }

    /// Its id, once created.
    pub fn id(&self) -> Option<DatacenterId> {
        self.state.as_ref().map(|s| s.datacenter_id)
    }

    /// Its unique code.
    pub fn code(&self) -> Option<&DatacenterCode> {
        self.state.as_ref().map(|s| &s.code)
    }

    /// Whether it takes new orders.
    pub fn is_available(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.available)
    }

    /// How it prices custom configurations; `None` when it does not sell them (or does not exist).
    pub fn custom_pricing(&self) -> Option<&CustomPricing> {
        self.state.as_ref().and_then(|s| s.custom_pricing.as_ref())
    }

    fn decide(&self, command: DatacenterCommand) -> Result<Vec<DatacenterEvent>, DatacenterError> {
        match (&self.state, command) {
            (
                None,
                DatacenterCommand::Create {
                    datacenter_id,
                    datacenter,
                    occurred_at,
                },
            ) => Ok(vec![DatacenterEvent::DatacenterCreated {
                datacenter_id,
                code: datacenter.code,
                name: datacenter.name,
                country: datacenter.country,
                available: datacenter.available,
                custom_pricing: datacenter.custom_pricing,
                created_at: occurred_at,
            }]),
            (Some(_), DatacenterCommand::Create { .. }) => Err(DatacenterError::AlreadyExists),
            (None, DatacenterCommand::Update { .. }) => Err(DatacenterError::NotFound),
            (
                Some(state),
                DatacenterCommand::Update {
                    changes,
                    occurred_at,
                },
            ) => state.update(changes, occurred_at),
        }
    }
}

impl DatacenterState {
    /// The events of an update: the changed plain fields in one event, a pricing change in its
    /// own; nothing when every named field already has its value.
    fn update(
        &self,
        changes: DatacenterChanges,
        at: DateTime<Utc>,
    ) -> Result<Vec<DatacenterEvent>, DatacenterError> {
        if changes.is_empty() {
            return Err(DatacenterError::EmptyUpdate);
        }
        let name = changes.name.filter(|name| *name != self.name);
        let country = changes.country.filter(|country| *country != self.country);
        let available = changes.available.filter(|a| *a != self.available);
        let mut events = Vec::new();
        if name.is_some() || country.is_some() || available.is_some() {
            events.push(DatacenterEvent::DatacenterUpdated {
                name,
                country,
                available,
                updated_at: at,
            });
        }
        match changes.custom_pricing {
            Some(wanted) if wanted == self.custom_pricing => {}
            Some(Some(custom_pricing)) => {
                events.push(DatacenterEvent::DatacenterCustomPricingSet {
                    custom_pricing,
                    set_at: at,
                })
            }
            Some(None) => {
                events.push(DatacenterEvent::DatacenterCustomPricingRemoved { removed_at: at })
            }
            None => {}
        }
        Ok(events)
    }
}

impl Aggregate for Datacenter {
    const TYPE: &'static str = "datacenter";
    type Command = DatacenterCommand;
    type Event = DatacenterEvent;
    type Error = DatacenterError;
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
                DatacenterEvent::DatacenterCreated {
                    datacenter_id,
                    code,
                    name,
                    country,
                    available,
                    custom_pricing,
                    ..
                },
            ) => {
                self.state = Some(DatacenterState {
                    datacenter_id,
                    code,
                    name,
                    country,
                    available,
                    custom_pricing,
                });
            }
            (
                Some(state),
                DatacenterEvent::DatacenterUpdated {
                    name,
                    country,
                    available,
                    ..
                },
            ) => {
                if let Some(name) = name {
                    state.name = name;
                }
                if let Some(country) = country {
                    state.country = country;
                }
                if let Some(available) = available {
                    state.available = available;
                }
            }
            (Some(state), DatacenterEvent::DatacenterCustomPricingSet { custom_pricing, .. }) => {
                state.custom_pricing = Some(custom_pricing);
            }
            (Some(state), DatacenterEvent::DatacenterCustomPricingRemoved { .. }) => {
                state.custom_pricing = None;
            }
            // `handle` emits nothing else: a second creation or a change before creation cannot
            // be in the stream.
            _ => {}
        }
    }
}
