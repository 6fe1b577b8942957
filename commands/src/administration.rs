//! Staff actions that span accounts: changing roles and suspending, under the rule that the system
//! always keeps at least one active admin.
//!
//! The rule counts admins across aggregates, so no single aggregate can enforce it. Every change
//! that could take an admin away runs under one PostgreSQL advisory lock (held by a transaction,
//! so it is released even if this process dies), after the accounts read model has caught up with
//! the whole log, and it waits for its own events to be projected before letting go. Changes that
//! can only add admins need no lock. So the count each holder reads is exact.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use stratus_domain::account::{Account, AccountCommand, AccountError};
use stratus_domain::{AccountId, Reason, Role};
use stratus_projections::{accounts, Feed};

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;

/// Key of the advisory lock that serialises changes which could remove the last admin.
pub const ADMIN_ROSTER_LOCK: i64 = 0x5354_5241_5455_5301;
/// How long a guarded change waits for the accounts read model, before and after its command.
pub const ROSTER_CATCH_UP_TIMEOUT_MS: u64 = 5_000;

/// Why a guarded change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdminChangeError {
    #[error("the system must keep at least one active admin")]
    LastAdmin,
    #[error("the account does not exist")]
    NotFound,
    #[error("the accounts read model did not catch up in time")]
    Lagging,
    #[error(transparent)]
    Command(#[from] CommandError<AccountError>),
}

impl AdminChangeError {
    fn infra(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Command(CommandError::infra(err))
    }
}

/// A change that may take the admin role or activity away from `target`.
#[derive(Debug, Clone)]
pub enum RosterChange {
    Roles(Vec<Role>),
    Suspend(Reason),
}

/// Who changes whom, and how.
#[derive(Debug, Clone)]
pub struct RosterRequest {
    pub by: AccountId,
    pub target: AccountId,
    pub change: RosterChange,
    pub occurred_at: DateTime<Utc>,
}

/// Runs the change on the target under the last-admin rule.
pub async fn change(
    store: &AggregateStore<Account>,
    pool: &PgPool,
    feed: &Feed,
    request: RosterRequest,
    metadata: &CommandMetadata,
) -> Result<Appended<Account>, AdminChangeError> {
    let RosterRequest {
        by,
        target,
        change,
        occurred_at,
    } = request;
    let mut lock = pool.begin().await.map_err(AdminChangeError::infra)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADMIN_ROSTER_LOCK)
        .execute(&mut *lock)
        .await
        .map_err(AdminChangeError::infra)?;
    let timeout = Duration::from_millis(ROSTER_CATCH_UP_TIMEOUT_MS);
    let head = feed.head().await.map_err(AdminChangeError::infra)?;
    if !feed
        .wait_for(&[accounts::NAME], head, timeout)
        .await
        .map_err(AdminChangeError::infra)?
    {
        return Err(AdminChangeError::Lagging);
    }
    let current = accounts::get_account(pool, target.as_uuid())
        .await
        .map_err(AdminChangeError::infra)?
        .ok_or(AdminChangeError::NotFound)?;
    let is_active_admin = current.status == accounts::STATUS_ACTIVE
        && current.roles.iter().any(|r| r == Role::Admin.as_str());
    let removes_admin = match &change {
        RosterChange::Roles(roles) => !roles.contains(&Role::Admin),
        RosterChange::Suspend(_) => true,
    };
    if is_active_admin && removes_admin {
        let others = accounts::count_active_admins(&mut lock, Some(target.as_uuid()))
            .await
            .map_err(AdminChangeError::infra)?;
        if others == 0 {
            return Err(AdminChangeError::LastAdmin);
        }
    }
    let command = match change {
        RosterChange::Roles(roles) => AccountCommand::ChangeRoles {
            by,
            roles,
            occurred_at,
        },
        RosterChange::Suspend(reason) => AccountCommand::Suspend {
            by,
            reason,
            occurred_at,
        },
    };
    let appended = store
        .execute(&target.to_string(), command, metadata)
        .await?;
    if let Some(position) = appended.position {
        // The next holder of the lock must count with this change applied.
        if !feed
            .wait_for(&[accounts::NAME], position, timeout)
            .await
            .map_err(AdminChangeError::infra)?
        {
            tracing::warn!("released the admin roster lock before the read model caught up");
        }
    }
    lock.rollback().await.map_err(AdminChangeError::infra)?;
    Ok(appended)
}
