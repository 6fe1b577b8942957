//! Registering an account: claim the email, then let the Account aggregate record it.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::PgPool;
use stratus_domain::account::{Account, AccountCommand, AccountError, Challenge};
use stratus_domain::{AccountId, Email, PersonName, Phone, Role};

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;
use crate::unique_claims::{self, ClaimError};

/// The claim scope of account emails.
pub const EMAIL_SCOPE: &str = "account.email";

/// Everything a registration records. The password arrives already hashed: plaintext never
/// reaches an event.
#[derive(Debug, Clone)]
pub struct Registration {
    pub account_id: AccountId,
    pub name: PersonName,
    pub email: Email,
    pub phone: Option<Phone>,
    pub password_hash: String,
    pub roles: Vec<Role>,
    /// The first email verification link, sent by the message reactor.
    pub email_verification: Challenge,
    pub occurred_at: DateTime<Utc>,
}

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the email is already registered")]
    EmailTaken,
    #[error(transparent)]
    Command(#[from] CommandError<AccountError>),
}

/// Claims the email for the new account and registers it; the claim is released if the aggregate
/// refuses. Run it [`crate::detached`] so that a vanished caller cannot leave a claim behind.
pub async fn register(
    store: &AggregateStore<Account>,
    pool: &PgPool,
    registration: Registration,
    metadata: &CommandMetadata,
) -> Result<Appended<Account>, RegisterError> {
    let owner = registration.account_id.to_string();
    let email = registration.email.as_str().to_owned();
    match unique_claims::claim(pool, EMAIL_SCOPE, &email, Account::TYPE, &owner).await {
        Ok(()) => {}
        Err(ClaimError::Taken) => return Err(RegisterError::EmailTaken),
        Err(ClaimError::Database(e)) => return Err(CommandError::infra(e).into()),
    }
    let command = AccountCommand::Register {
        account_id: registration.account_id,
        name: registration.name,
        email: registration.email,
        phone: registration.phone,
        password_hash: registration.password_hash,
        roles: registration.roles,
        email_verification: registration.email_verification,
        occurred_at: registration.occurred_at,
    };
    match store.execute(&owner, command, metadata).await {
        Ok(appended) => Ok(appended),
        Err(err) => {
            if let Err(release_err) =
                unique_claims::release(pool, EMAIL_SCOPE, &email, &owner).await
            {
                tracing::error!(error = %release_err, "could not release an email claim after a refused registration");
            }
            Err(err.into())
        }
    }
}
