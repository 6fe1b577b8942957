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

/// Account statuses in the read model.
pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_SUSPENDED: &str = "suspended";
/// Session statuses in the read model.
pub const SESSION_ACTIVE: &str = "active";
pub const SESSION_ENDED: &str = "ended";
pub const SESSION_REVOKED: &str = "revoked";

/// Projects Account events into `accounts` and `account_sessions`.
#[derive(Debug, Default, Clone, Copy)]
pub struct AccountsProjection;

impl Subscriber for AccountsProjection {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Account as cqrs_es::Aggregate>::TYPE];
        Some(TYPES)
    }

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
            touch(
                tx,
                account_id,
                started_at,
                "failed_logins = 0, locked_until = NULL",
            )
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
        AccountEvent::LoginFailed {
            failures,
            failed_at,
            ..
        } => {
            let failures = i32::try_from(failures).unwrap_or(i32::MAX);
            update(tx, account_id, failed_at, "failed_logins = $3", failures).await?;
        }
        AccountEvent::AccountLocked {
            locked_until,
            locked_at,
            ..
        } => update(tx, account_id, locked_at, "locked_until = $3", locked_until).await?,
        AccountEvent::EmailVerified { verified_at, .. } => {
            touch(tx, account_id, verified_at, "email_verified = true").await?
        }
        AccountEvent::PhoneVerified {
            phone, verified_at, ..
        } => {
            let sql = "phone = $3, phone_verified = true";
            update(tx, account_id, verified_at, sql, phone.as_str().to_owned()).await?
        }
        AccountEvent::PhoneChanged { phone, changed_at } => {
            let phone = phone.map(|p| p.as_str().to_owned());
            let sql = "phone = $3, phone_verified = false";
            update(tx, account_id, changed_at, sql, phone).await?
        }
        AccountEvent::NameChanged { name, changed_at } => {
            update(
                tx,
                account_id,
                changed_at,
                "name = $3",
                name.as_str().to_owned(),
            )
            .await?
        }
        AccountEvent::PasswordReset {
            password_hash,
            reset_at,
            ..
        } => {
            let sql = "password_hash = $3, failed_logins = 0, locked_until = NULL";
            update(tx, account_id, reset_at, sql, password_hash).await?
        }
        AccountEvent::PasswordChanged {
            password_hash,
            changed_at,
        } => {
            update(
                tx,
                account_id,
                changed_at,
                "password_hash = $3",
                password_hash,
            )
            .await?
        }
        AccountEvent::TotpEnabled { enabled_at, .. } => {
            touch(tx, account_id, enabled_at, "mfa_enabled = true").await?
        }
        AccountEvent::TotpDisabled { disabled_at } => {
            touch(tx, account_id, disabled_at, "mfa_enabled = false").await?
        }
        AccountEvent::KycSubmitted {
            national_id,
            legal_name,
            country,
            submitted_at,
        } => {
            sqlx::query(
                "UPDATE accounts SET kyc_status = 'pending', kyc_national_id = $2, kyc_legal_name = $3, \
                 kyc_country = $4, kyc_submitted_at = $5, kyc_reviewed_at = NULL, kyc_reviewer = NULL, \
                 kyc_reason = NULL, updated_at = $5 WHERE account_id = $1",
            )
            .bind(account_id)
            .bind(national_id.as_str())
            .bind(legal_name.as_str())
            .bind(country.as_str())
            .bind(submitted_at)
            .execute(&mut *tx)
            .await?;
        }
        AccountEvent::KycApproved {
            reviewer,
            approved_at,
        } => {
            let sql = "kyc_status = 'approved', kyc_reviewed_at = $2, kyc_reviewer = $3";
            update(tx, account_id, approved_at, sql, reviewer.as_uuid()).await?
        }
        AccountEvent::KycRejected {
            reviewer,
            reason,
            rejected_at,
        } => {
            sqlx::query(
                "UPDATE accounts SET kyc_status = 'rejected', kyc_reviewed_at = $2, kyc_reviewer = $3, \
                 kyc_reason = $4, updated_at = $2 WHERE account_id = $1",
            )
            .bind(account_id)
            .bind(rejected_at)
            .bind(reviewer.as_uuid())
            .bind(reason.as_str())
            .execute(&mut *tx)
            .await?;
        }
        AccountEvent::AccountSuspended {
            reason,
            suspended_at,
            ..
        } => {
            let sql = "status = 'suspended', suspended_at = $2, suspension_reason = $3";
            update(
                tx,
                account_id,
                suspended_at,
                sql,
                reason.as_str().to_owned(),
            )
            .await?
        }
        AccountEvent::AccountReinstated { reinstated_at, .. } => {
            let sql = "status = 'active', suspended_at = NULL, suspension_reason = NULL, \
                       failed_logins = 0, locked_until = NULL";
            touch(tx, account_id, reinstated_at, sql).await?
        }
        AccountEvent::RolesChanged {
            roles, changed_at, ..
        } => {
            let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
            update(tx, account_id, changed_at, "roles = $3", roles).await?
        }
        // Challenges live in the aggregate and the message outbox, not in this read model.
        AccountEvent::EmailVerificationIssued { .. }
        | AccountEvent::PhoneVerificationIssued { .. }
        | AccountEvent::PhoneCodeRejected { .. }
        | AccountEvent::LoginCodeIssued { .. }
        | AccountEvent::LoginCodeRejected { .. }
        | AccountEvent::LoginCodeUsed { .. }
        | AccountEvent::PasswordResetIssued { .. }
        | AccountEvent::TotpSetupStarted { .. }
        | AccountEvent::TotpCodeAccepted { .. }
        | AccountEvent::RecoveryCodeUsed { .. } => {}
    }
    Ok(())
}

/// `UPDATE accounts SET {assignments}, updated_at = $2 WHERE account_id = $1` with `$3` = `value`.
async fn update<T>(
    tx: &mut PgConnection,
    account_id: Uuid,
    at: DateTime<Utc>,
    assignments: &str,
    value: T,
) -> Result<(), sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + 'static,
{
    let sql = format!("UPDATE accounts SET {assignments}, updated_at = $2 WHERE account_id = $1");
    sqlx::query(&sql)
        .bind(account_id)
        .bind(at)
        .bind(value)
        .execute(tx)
        .await?;
    Ok(())
}

/// [`update`] for assignments without a parameter.
async fn touch(
    tx: &mut PgConnection,
    account_id: Uuid,
    at: DateTime<Utc>,
    assignments: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!("UPDATE accounts SET {assignments}, updated_at = $2 WHERE account_id = $1");
    sqlx::query(&sql)
        .bind(account_id)
        .bind(at)
        .execute(tx)
        .await?;
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
    pub mfa_enabled: bool,
    pub kyc_status: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What staff see beyond [`AccountView`]: suspension and the identity check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffAccountView {
    #[serde(flatten)]
    pub account: AccountView,
    pub failed_logins: i32,
    pub suspended_at: Option<DateTime<Utc>>,
    pub suspension_reason: Option<String>,
    pub kyc: Option<KycView>,
    pub updated_at: DateTime<Utc>,
}

/// Submitted identity details and the decision on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KycView {
    pub status: String,
    pub national_id: Option<String>,
    pub legal_name: Option<String>,
    pub country: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewer: Option<Uuid>,
    pub reason: Option<String>,
}

/// What a login needs to check a password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account_id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub status: String,
    pub roles: Vec<String>,
    pub locked_until: Option<DateTime<Utc>>,
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

/// Who a presented access token speaks for right now: its session and its account.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub session_status: String,
    pub session_expires_at: DateTime<Utc>,
    pub account_status: String,
    pub roles: Vec<String>,
}

const ACCOUNT_COLUMNS: &str =
    "account_id, name, email, email_verified, phone, phone_verified, roles, status, \
     mfa_enabled, kyc_status, locked_until, created_at";

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
        mfa_enabled: row.try_get("mfa_enabled")?,
        kyc_status: row.try_get("kyc_status")?,
        locked_until: row.try_get("locked_until")?,
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

/// One account with what staff may see.
pub async fn get_staff_account(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<StaffAccountView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS}, failed_logins, suspended_at, suspension_reason, updated_at, \
         kyc_national_id, kyc_legal_name, kyc_country, kyc_submitted_at, kyc_reviewed_at, kyc_reviewer, kyc_reason \
         FROM accounts WHERE account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let account = account_of(&row)?;
    let kyc = (account.kyc_status != "not_submitted")
        .then(|| -> Result<KycView, sqlx::Error> {
            Ok(KycView {
                status: account.kyc_status.clone(),
                national_id: row.try_get("kyc_national_id")?,
                legal_name: row.try_get("kyc_legal_name")?,
                country: row.try_get("kyc_country")?,
                submitted_at: row.try_get("kyc_submitted_at")?,
                reviewed_at: row.try_get("kyc_reviewed_at")?,
                reviewer: row.try_get("kyc_reviewer")?,
                reason: row.try_get("kyc_reason")?,
            })
        })
        .transpose()?;
    Ok(Some(StaffAccountView {
        failed_logins: row.try_get("failed_logins")?,
        suspended_at: row.try_get("suspended_at")?,
        suspension_reason: row.try_get("suspension_reason")?,
        updated_at: row.try_get("updated_at")?,
        kyc,
        account,
    }))
}

/// Filters of the staff account list.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Part of the email or name, case-insensitive.
    pub query: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub kyc_status: Option<String>,
    /// Only accounts created before this one (newest first paging): `(created_at, account_id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Accounts matching `filter`, newest first.
pub async fn list_accounts(
    pool: &PgPool,
    filter: &AccountFilter,
) -> Result<Vec<AccountView>, sqlx::Error> {
    let pattern = filter.query.as_ref().map(|q| {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts \
         WHERE ($1::text IS NULL OR email ILIKE $1 OR name ILIKE $1) \
           AND ($2::text IS NULL OR $2 = ANY(roles)) \
           AND ($3::text IS NULL OR status = $3) \
           AND ($4::text IS NULL OR kyc_status = $4) \
           AND ($5::timestamptz IS NULL OR (created_at, account_id) < ($5, $6)) \
         ORDER BY created_at DESC, account_id DESC LIMIT $7"
    ))
    .bind(pattern)
    .bind(&filter.role)
    .bind(&filter.status)
    .bind(&filter.kyc_status)
    .bind(filter.before.map(|b| b.0))
    .bind(filter.before.map(|b| b.1))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(account_of).collect()
}

/// How many active accounts hold the admin role, leaving out `except`.
pub async fn count_active_admins(
    conn: &mut PgConnection,
    except: Option<Uuid>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM accounts WHERE 'admin' = ANY(roles) AND status = 'active' \
         AND ($1::uuid IS NULL OR account_id <> $1)",
    )
    .bind(except)
    .fetch_one(conn)
    .await
}

/// The credentials of the account registered with `email` (already normalised).
pub async fn credentials_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    credentials_where(pool, "email = $1", email.to_owned()).await
}

/// The credentials of the account whose *verified* phone is `phone` (E.164). A verified phone
/// belongs to one account: verification claims it in `unique_claims`.
pub async fn credentials_by_phone(
    pool: &PgPool,
    phone: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    credentials_where(pool, "phone = $1 AND phone_verified", phone.to_owned()).await
}

/// The credentials of one account by id.
pub async fn credentials_by_id(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<Credentials>, sqlx::Error> {
    credentials_where(pool, "account_id = $1", account_id).await
}

async fn credentials_where<T>(
    pool: &PgPool,
    condition: &str,
    value: T,
) -> Result<Option<Credentials>, sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + 'static,
{
    let row = sqlx::query(&format!(
        "SELECT account_id, email, password_hash, status, roles, locked_until FROM accounts \
         WHERE {condition} ORDER BY created_at LIMIT 1"
    ))
    .bind(value)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Credentials {
            account_id: row.try_get("account_id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            status: row.try_get("status")?,
            roles: row.try_get("roles")?,
            locked_until: row.try_get("locked_until")?,
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

/// The active sessions of one account, most recently used first.
pub async fn active_sessions(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<SessionView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM account_sessions WHERE account_id = $1 AND status = 'active' \
         AND expires_at > now() ORDER BY last_used_at DESC, session_id DESC"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(session_of).collect()
}

/// The session of an access token and its account, in one primary-key lookup each.
pub async fn principal(pool: &PgPool, session_id: Uuid) -> Result<Option<Principal>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT s.status AS session_status, s.expires_at, a.status AS account_status, a.roles \
         FROM account_sessions s JOIN accounts a ON a.account_id = s.account_id WHERE s.session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Principal {
            session_status: row.try_get("session_status")?,
            session_expires_at: row.try_get("expires_at")?,
            account_status: row.try_get("account_status")?,
            roles: row.try_get("roles")?,
        })
    })
    .transpose()
}
