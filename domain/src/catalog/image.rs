//! The `OsImage` aggregate: an operating system customers can install, the smallest disk it fits
//! on, and whether it is offered.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::values::{CatalogName, ImageVersion, MinDiskGib, OsFamily};
use super::EVENT_VERSION;
use crate::ids::ImageId;

#[cfg(test)]
mod tests;

/// What a new image is made of, every field already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    /// The distribution or product (`Debian`, `Windows Server`).
    pub name: CatalogName,
    pub version: ImageVersion,
    pub family: OsFamily,
    pub min_disk_gib: MinDiskGib,
    /// Whether it is offered for new VMs.
    pub available: bool,
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageChanges {
    pub name: Option<CatalogName>,
    pub version: Option<ImageVersion>,
    pub family: Option<OsFamily>,
    pub min_disk_gib: Option<MinDiskGib>,
    pub available: Option<bool>,
}

impl ImageChanges {
    /// Whether no field is named.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.version.is_none()
            && self.family.is_none()
            && self.min_disk_gib.is_none()
            && self.available.is_none()
    }
}

/// What can be asked of an image. Ids and time are chosen by the caller.
#[derive(Debug, Clone)]
pub enum OsImageCommand {
    /// Add the image to the catalog.
    Create {
        image_id: ImageId,
        image: NewImage,
        occurred_at: DateTime<Utc>,
    },
    /// Change some of its fields (at least one named).
    Update {
        changes: ImageChanges,
        occurred_at: DateTime<Utc>,
    },
}

/// What happened to an image. A stored format: names, fields and versions are pinned by tests and
/// never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OsImageEvent {
    /// The image joined the catalog.
    OsImageCreated {
        image_id: ImageId,
        name: CatalogName,
        version: ImageVersion,
        family: OsFamily,
        min_disk_gib: MinDiskGib,
        available: bool,
        created_at: DateTime<Utc>,
    },
    /// Some fields changed; only the changed ones are present.
    OsImageUpdated {
        name: Option<CatalogName>,
        version: Option<ImageVersion>,
        family: Option<OsFamily>,
        min_disk_gib: Option<MinDiskGib>,
        available: Option<bool>,
        updated_at: DateTime<Utc>,
    },
}

/// Every `event_type()` an [`OsImageEvent`] can have.
pub const OS_IMAGE_EVENT_TYPES: &[&str] = &["OsImageCreated", "OsImageUpdated"];

impl DomainEvent for OsImageEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::OsImageCreated { .. } => "OsImageCreated",
            Self::OsImageUpdated { .. } => "OsImageUpdated",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why an image command was refused. One variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OsImageError {
    /// `Create` on an image that exists.
    #[error("the image already exists")]
    AlreadyExists,
    /// Any command but `Create` on an image that does not exist.
    #[error("no such image")]
    NotFound,
    /// An update that names no field.
    #[error("the update names no field to change")]
    EmptyUpdate,
}

impl OsImageError {
    /// Stable machine-readable code for API error bodies. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "image_already_exists",
            Self::NotFound => "image_not_found",
            Self::EmptyUpdate => "empty_update",
        }
    }
}

/// The state an image needs to decide. `None` until [`OsImageEvent::OsImageCreated`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsImage {
    state: Option<ImageState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ImageState {
    image_id: ImageId,
    name: CatalogName,
    version: ImageVersion,
    family: OsFamily,
    min_disk_gib: MinDiskGib,
    available: bool,
}

impl OsImage {
    /// Whether it was created.
    pub fn exists(&self) -> bool {
        self.state.is_some()
    }

    /// Its id, once created.
    pub fn id(&self) -> Option<ImageId> {
        self.state.as_ref().map(|s| s.image_id)
    }

    /// Whether it is offered for new VMs.
    pub fn is_available(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.available)
    }

    /// The smallest disk it fits on.
    pub fn min_disk_gib(&self) -> Option<MinDiskGib> {
        self.state.as_ref().map(|s| s.min_disk_gib)
    }

    fn decide(&self, command: OsImageCommand) -> Result<Vec<OsImageEvent>, OsImageError> {
        match (&self.state, command) {
            (
                None,
                OsImageCommand::Create {
                    image_id,
                    image,
                    occurred_at,
                },
            ) => Ok(vec![OsImageEvent::OsImageCreated {
                image_id,
                name: image.name,
                version: image.version,
                family: image.family,
                min_disk_gib: image.min_disk_gib,
                available: image.available,
                created_at: occurred_at,
            }]),
            (Some(_), OsImageCommand::Create { .. }) => Err(OsImageError::AlreadyExists),
            (None, OsImageCommand::Update { .. }) => Err(OsImageError::NotFound),
            (
                Some(state),
                OsImageCommand::Update {
                    changes,
                    occurred_at,
                },
            ) => {
                if changes.is_empty() {
                    return Err(OsImageError::EmptyUpdate);
                }
                let changed = ImageChanges {
                    name: changes.name.filter(|v| *v != state.name),
                    version: changes.version.filter(|v| *v != state.version),
                    family: changes.family.filter(|v| *v != state.family),
                    min_disk_gib: changes.min_disk_gib.filter(|v| *v != state.min_disk_gib),
                    available: changes.available.filter(|v| *v != state.available),
                };
                if changed.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![OsImageEvent::OsImageUpdated {
                    name: changed.name,
                    version: changed.version,
                    family: changed.family,
                    min_disk_gib: changed.min_disk_gib,
                    available: changed.available,
                    updated_at: occurred_at,
                }])
            }
        }
    }
}

impl Aggregate for OsImage {
    const TYPE: &'static str = "os_image";
    type Command = OsImageCommand;
    type Event = OsImageEvent;
    type Error = OsImageError;
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
                OsImageEvent::OsImageCreated {
                    image_id,
                    name,
                    version,
                    family,
                    min_disk_gib,
                    available,
                    ..
                },
            ) => {
                self.state = Some(ImageState {
                    image_id,
                    name,
                    version,
                    family,
                    min_disk_gib,
                    available,
                });
            }
            (
                Some(state),
                OsImageEvent::OsImageUpdated {
                    name,
                    version,
                    family,
                    min_disk_gib,
                    available,
                    ..
                },
            ) => {
                if let Some(name) = name {
                    state.name = name;
                }
                if let Some(version) = version {
                    state.version = version;
                }
                if let Some(family) = family {
                    state.family = family;
                }
                if let Some(min_disk_gib) = min_disk_gib {
                    state.min_disk_gib = min_disk_gib;
                }
                if let Some(available) = available {
                    state.available = available;
                }
            }
            // `handle` emits nothing else: a second creation or a change before creation cannot
            // be in the stream.
            _ => {}
        }
    }
}
