//! One module per resource of the HTTP API (API.md).

pub mod admin_accounts;
pub mod admin_discount_codes;
pub mod admin_orders;
pub mod admin_wallets;
pub mod audit;
pub mod auth;
pub mod health;
pub mod invoices;
pub mod me;
pub mod orders;
pub mod passwords;
pub mod two_factor;
pub mod verification;
pub mod wallet;
// Catalog
pub mod admin_catalog;
pub mod catalog;
