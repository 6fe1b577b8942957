//! System tests: one process, one throwaway PostgreSQL cluster, a fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod aggregate_cache;
mod architecture;
mod audit;
mod authorization;
mod bad_input;
mod commands;
mod disconnect;
mod discount_codes;
mod feed;
mod idempotency;
mod identity;
mod identity_messages;
mod invoices;
mod ledger;
mod operations;
mod orders;
mod outbox;
mod payments;
mod wallet;
// Catalog
mod catalog;
