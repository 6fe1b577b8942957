//! One module per resource of the HTTP API (API.md).

pub mod audit;
pub mod auth;
pub mod health;
pub mod me;
