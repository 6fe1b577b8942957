//! The accounts projection: `accounts` and `account_sessions`, and the queries the API runs on them.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use stratus_domain::account::{Account, AccountEvent};
use uuid::Uuid;

use crate::feed::{Subscriber, SubscriberError};
use crate::stored_event::StoredEvent;

/// The subscriber name of this projection.
pub const NAME: &str = "accounts";

/// Account status in the read model.
pub const STATUS_ACTIVE: &str = "active";
/// Session statuses in the read model.
pub const SESSION_ACTIVE: &str = "active";
pub const SESSION_ENDED: &str = "ended";
pub const SESSION_REVOKED: &str = "revoked";

/// Projects Account events into `accounts` and `account_sessions`.
#[derive(Debug, Default, Clone, Copy)]
pub struct AccountsProjection;

impl Subscriber for AccountsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for event in events {
                if event.aggregate_type != <Account as cqrs_es::Aggregate>::TYPE {
                    continue;
                }
                let decoded: AccountEvent = serde_json::from_value(event.payload.clone())
                    .map_err(|e| SubscriberError::decode(event, e))?;
                apply_one(tx, event, decoded).await?;
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM account_sessions")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM accounts")
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

fn account_uuid(event: &StoredEvent) -> Result<Uuid, SubscriberError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| SubscriberError::decode(event, e))
}

async fn apply_one(
    tx: &mut PgConnection,
    stored: &StoredEvent,
    event: AccountEvent,
) -> Result<(), SubscriberError> {
    let account_id = account_uuid(stored)?;
    match event {
        AccountEvent::AccountRegistered {
            name,
            email,
            phone,
            password_hash,
            roles,
            registered_at,
            ..
        } => {
            let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
            sqlx::query(
                "INSERT INTO accounts (account_id, name, email, phone, password_hash, roles, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(account_id)
            .bind(name.as_str())
            .bind(email.as_str())
            .bind(phone.as_ref().map(|p| p.as_str().to_owned()))
            .bind(password_hash)
            .bind(roles)
            .bind(STATUS_ACTIVE)
            .bind(registered_at)
            .execute(&mut *tx)
            .await?;
        }
        AccountEvent::SessionStarted {
            session_id,
            expires_at,
            client_ip,
            user_agent,
            started_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO account_sessions (session_id, account_id, status, client_ip, user_agent, expires_at, created_at, last_used_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(session_id.as_uuid())
            .bind(account_id)
            .bind(SESSION_ACTIVE)
            .bind(client_ip)
            .bind(user_agent)
            .bind(expires_at)
            .bind(started_at)
            .execute(&mut *tx)
            .await?;
        }
        AccountEvent::SessionRefreshed {
            session_id,
            expires_at,
            refreshed_at,
            ..
        } => {
            sqlx::query("UPDATE account_sessions SET expires_at = $2, last_used_at = $3 WHERE session_id = $1")
                .bind(session_id.as_uuid())
                .bind(expires_at)
                .bind(refreshed_at)
                .execute(&mut *tx)
                .await?;
        }
        AccountEvent::SessionEnded {
            session_id,
            ended_at,
        } => {
            end_session(tx, session_id.as_uuid(), SESSION_ENDED, "logout", ended_at).await?;
        }
        AccountEvent::SessionRevoked {
            session_id,
            reason,
            revoked_at,
        } => {
            end_session(
                tx,
                session_id.as_uuid(),
                SESSION_REVOKED,
                reason.as_str(),
                revoked_at,
            )
            .await?;
        }
    }
    Ok(())
}

async fn end_session(
    tx: &mut PgConnection,
    session_id: Uuid,
    status: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE account_sessions SET status = $2, end_reason = $3, ended_at = $4, last_used_at = $4 WHERE session_id = $1",
    )
    .bind(session_id)
    .bind(status)
    .bind(reason)
    .bind(at)
    .execute(tx)
    .await?;
    Ok(())
}

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    pub account_id: Uuid,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub roles: Vec<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// What a login needs to check a password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account_id: Uuid,
    pub password_hash: String,
    pub status: String,
    pub roles: Vec<String>,
}

/// A session as the read model holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    pub session_id: Uuid,
    pub account_id: Uuid,
    pub status: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

const ACCOUNT_COLUMNS: &str =
    "account_id, name, email, email_verified, phone, phone_verified, roles, status, created_at";

fn account_of(row: &sqlx::postgres::PgRow) -> Result<AccountView, sqlx::Error> {
    Ok(AccountView {
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        email_verified: row.try_get("email_verified")?,
        phone: row.try_get("phone")?,
        phone_verified: row.try_get("phone_verified")?,
        roles: row.try_get("roles")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

/// One account by id.
pub async fn get_account(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<AccountView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(account_of).transpose()
}

/// The credentials of the account registered with `email` (already normalised).
pub async fn credentials_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    credentials_where(pool, "email", email).await
}

/// The credentials of the account whose phone is `phone` (E.164). A phone is not unique across
/// accounts yet (verification comes with issue 3): the oldest account with it wins.
pub async fn credentials_by_phone(
    pool: &PgPool,
    phone: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    credentials_where(pool, "phone", phone).await
}

async fn credentials_where(
    pool: &PgPool,
    column: &str,
    value: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT account_id, password_hash, status, roles FROM accounts WHERE {column} = $1 \
         ORDER BY created_at LIMIT 1"
    ))
    .bind(value)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Credentials {
            account_id: row.try_get("account_id")?,
            password_hash: row.try_get("password_hash")?,
            status: row.try_get("status")?,
            roles: row.try_get("roles")?,
        })
    })
    .transpose()
}

const SESSION_COLUMNS: &str =
    "session_id, account_id, status, client_ip, user_agent, expires_at, created_at, last_used_at";

fn session_of(row: &sqlx::postgres::PgRow) -> Result<SessionView, sqlx::Error> {
    Ok(SessionView {
        session_id: row.try_get("session_id")?,
        account_id: row.try_get("account_id")?,
        status: row.try_get("status")?,
        client_ip: row.try_get("client_ip")?,
        user_agent: row.try_get("user_agent")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// One session by id.
pub async fn get_session(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<SessionView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM account_sessions WHERE session_id = $1"
    ))
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(session_of).transpose()
}
