//! `stratus-projections`: reading the event log in commit order and keeping read models.
//!
//! The log is read only through [`feed`]: one runner per subscriber, fenced by transaction id so that
//! an event from a transaction that commits late is never skipped, with the subscriber's checkpoint
//! moved in the same transaction as its writes. Projectors ([`accounts`], [`ledger`], [`invoices`]) are
//! subscribers that write read-model tables; the API reads those tables through the query functions
//! next to each projector ([`catalog`] also answers the order flow's lookups of plans, datacenters
//! and images). [`ledger::verify`] checks the ledger and the wallets read model against a
//! fresh replay of the log (`stratus audit verify`). [`discount_codes`] keeps codes, their terms
//! and their redemptions for the admin routes.
//!
//! This crate never decides anything: it holds no business rule and never appends events.
//! Start reading at [`feed::Feed`].

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod discount_codes;
pub mod feed;
pub mod invoices;
pub mod ledger;
pub mod orders;
pub mod position;
pub mod rebuild;
pub mod stored_event;
pub mod wallets;

pub use feed::{Feed, FeedError, Subscriber, SubscriberError};
pub use position::FeedPosition;
pub use stored_event::StoredEvent;

/// The schema migrations of the whole system (event store and read models), embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
