//! `stratus-api`: the HTTP API and the composition root of Stratus, with the `stratus` binary.
//!
//! The only crate that knows actix-web. Handlers are thin: extract → authorise → build the command
//! → execute with metadata → map the result ([`error`] holds the one mapping table). Configuration
//! is read once ([`settings`]); the process is assembled in [`lifecycle`]; the command line lives
//! in [`cli`]. Start reading at [`http::server`] for the route table.

pub mod auth;
pub mod bootstrap;
pub mod challenges;
pub mod cli;
pub mod cluster;
pub mod database;
pub mod error;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod invoice_pdf;
pub mod invoice_settings;
pub mod lifecycle;
pub mod openapi;
pub mod order_settings;
pub mod payment_settings;
pub mod principals;
pub mod rate_limit;
pub mod registration;
pub mod routes;
pub mod settings;
pub mod state;
pub mod telemetry;
