//! Opening an account with a password, whichever door it comes through: `POST /auth/register`,
//! the first admin at start-up, or staff accounts made by tools and tests.

use actix_web::web;
use chrono::Utc;
use stratus_commands::detached::TaskLost;
use stratus_commands::register_account::{self, RegisterError, Registration};
use stratus_commands::{detached, CommandError, CommandMetadata};
use stratus_domain::account::AccountError;
use stratus_domain::{AccountId, Email, PersonName, Phone, Role};
use stratus_projections::{accounts, FeedError};
use uuid::Uuid;

use crate::auth::PasswordError;
use crate::state::{AppState, Consistency};

/// A validated account to open. The password is plaintext here and only its hash goes further.
#[derive(Debug)]
pub struct NewAccount {
    pub name: PersonName,
    pub email: Email,
    pub phone: Option<Phone>,
    pub password: String,
    pub roles: Vec<Role>,
}

/// Why an account was not opened.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationFailed {
    #[error("the email is already registered")]
    EmailTaken,
    #[error(transparent)]
    Command(CommandError<AccountError>),
    #[error(transparent)]
    Hashing(#[from] PasswordError),
    #[error(transparent)]
    Lost(#[from] TaskLost),
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// Hashes the password, claims the email and registers the account on a detached task, then waits
/// (bounded) for the accounts read model. `metadata` receives the new account's id.
pub async fn register(
    state: &web::Data<AppState>,
    account: NewAccount,
    metadata: impl FnOnce(AccountId) -> CommandMetadata,
) -> Result<(AccountId, Consistency), RegistrationFailed> {
    let password_hash = state.passwords.hash(account.password).await?;
    let account_id = AccountId::from_uuid(Uuid::now_v7());
    let registration = Registration {
        account_id,
        name: account.name,
        email: account.email,
        phone: account.phone,
        password_hash,
        roles: account.roles,
        email_verification: crate::challenges::mint(
            crate::challenges::EMAIL_VERIFICATION_TTL_MINUTES,
        ),
        occurred_at: Utc::now(),
    };
    let metadata = metadata(account_id);
    let worker = state.clone();
    let appended = detached(async move {
        register_account::register(&worker.accounts, &worker.pool, registration, &metadata).await
    })
    .await?
    .map_err(|e| match e {
        RegisterError::EmailTaken => RegistrationFailed::EmailTaken,
        RegisterError::Command(e) => RegistrationFailed::Command(e),
    })?;
    let consistency = state
        .read_your_writes(appended.position, &[accounts::NAME])
        .await?;
    Ok((account_id, consistency))
}
