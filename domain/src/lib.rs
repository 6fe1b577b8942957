//! # stratus-domain
//!
//! The heart of Stratus: aggregates that decide, the events they record, the commands they accept
//! and the value types those are built from. Everything else in the workspace (`commands`,
//! `projections`, `api`) depends on this crate; it depends on none of them.
//!
//! ## What this crate must never do
//!
//! No I/O of any kind: no database, no network, no files, no environment variables, no clock reads
//! (`Utc::now`), no randomness (`Uuid::now_v7`, `rand`). Time, ids, hashes and anything looked up
//! enter through commands, so every decision is a pure function of past events and one command and
//! can be tested without a runtime.
//!
//! ## Where to start reading
//!
//! 1. [`account`]: the `Account` aggregate. [`account::AccountCommand`] lists what can be asked,
//!    [`account::AccountEvent`] what gets recorded (a stored format: names never change), and
//!    [`account::AccountError`] every business rule that can refuse a command.
//! 2. [`wallet`]: the `Wallet` aggregate, a prepaid balance kept as a ledger: every movement event
//!    carries its amount and the balance after it; debits and refunds are idempotent by
//!    [`LedgerReference`].
//! 3. [`values`]: parse-don't-validate inputs ([`Email`], [`PersonName`], [`Phone`], [`Role`],
//!    [`Money`] and [`Currency`], [`LedgerReference`]) and the password policy. Once you hold one of
//!    these values it is valid.
//! 4. [`pricing`]: the catalog's price types and [`pricing::quote`], the one function that prices an
//!    order (for `POST /catalog/quote` and `POST /orders` alike).
//! 5. [`catalog`]: the `Datacenter`, `OsImage` and `Plan` aggregates (what can be ordered, where,
//!    at which price) and their value types.
//! 6. [`discount`]: the `DiscountCode` aggregate: a code's terms, the one eligibility check
//!    ([`discount::DiscountCode::check`]) shared by quotes and orders, and redemptions that hold a
//!    place in its limits until released.
//! 7. [`invoice`]: the `Invoice` aggregate (draft → issued → paid, or void) and
//!    [`invoice::InvoiceNumber`], the gapless per-year number (`2026-000042`).
//! 8. [`order`]: the `Order` aggregate: placed priced, paid once from the wallet, cancelled or
//!    expired while unpaid; and the hostname and SSH key values of an order.
//! 9. [`ids`]: typed identifiers ([`AccountId`], [`SessionId`], [`PaymentId`], [`WithdrawalId`],
//!    [`PlanId`], [`OrderId`], [`InvoiceId`], …).

pub mod account;
pub mod catalog;
pub mod discount;
pub mod ids;
pub mod invoice;
pub mod order;
pub mod pricing;
pub mod values;
pub mod wallet;

pub use ids::*;
pub use values::*;
