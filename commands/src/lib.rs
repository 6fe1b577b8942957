//! `stratus-commands`: the write side.
//!
//! Every change enters here as a typed domain command, is decided by its aggregate through cqrs-es,
//! and is appended to the PostgreSQL event store by postgres-es ([`aggregate_store`]). Unique values
//! across aggregates are claimed first ([`unique_claims`]); `Idempotency-Key`s of HTTP requests are
//! claimed and their answers kept in [`idempotency_keys`]. One module per use case
//! ([`register_account`], [`sessions`], [`phone_verification`], [`administration`],
//! [`discount_codes`]); the
//! secrets behind codes, links and TOTP are in [`secrets`]. Email and SMS leave through the
//! [`outbox`]: reactors such as [`account_messages`] enqueue rendered messages in their
//! transaction, a dispatcher sends them with retries. Ports to the outside world and their
//! adapters live beside them ([`payments`]: the payment gateway port, Stripe, bank transfers,
//! webhook signatures). [`catalog`] is the catalog's write side (code claims, prices in the
//! settlement currency, plans only in datacenters that exist). Invoices are drafted, numbered without gaps and issued in [`invoices`];
//! the [`invoice_issuer`] reactor issues any draft a crash left behind.
//!
//! This crate never reads read models to make a decision that the aggregate should make, and never
//! talks HTTP. Start reading at [`aggregate_store::AggregateStore::execute`].

pub mod account_messages;
pub mod administration;
pub mod aggregate_store;
pub mod catalog;
pub mod detached;
pub mod discount_codes;
pub mod idempotency_keys;
pub mod invoice_issuer;
pub mod invoices;
pub mod metadata;
pub mod order_settlement;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod phone_verification;
pub mod register_account;
pub mod secret;
pub mod secrets;
pub mod sessions;
pub mod unique_claims;
pub mod wallet_opener;
pub mod wallets;

pub use aggregate_store::{AggregateStore, Appended, CommandError};
pub use detached::detached;
pub use metadata::CommandMetadata;
