//! First start: the admin account, created once from settings or with a generated password.

use chrono::Utc;
use stratus_commands::metadata::CommandMetadata;
use stratus_commands::register_account::{self, RegisterError, Registration};
use stratus_domain::{check_password_strength, AccountId, Email, PersonName, Role};
use stratus_projections::accounts;
use uuid::Uuid;

use crate::auth::random_token;
use crate::state::AppState;

/// Random bytes of a generated admin password (printed once).
pub const GENERATED_PASSWORD_BYTES: usize = 18;

/// Failures creating the first admin.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("STRATUS_ADMIN_EMAIL is not valid: {0}")]
    Email(stratus_domain::ValueError),
    #[error("STRATUS_ADMIN_PASSWORD is too weak: {0}")]
    Password(stratus_domain::ValueError),
    #[error("creating the admin failed: {0}")]
    Failed(String),
}

/// What happened to the admin account.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    AlreadyExists,
    Created {
        email: String,
        generated_password: Option<String>,
    },
}

/// Creates the admin account unless an account with that email exists.
pub async fn ensure_admin(state: &AppState) -> Result<AdminOutcome, BootstrapError> {
    let settings = &state.settings;
    let email = Email::parse(&settings.admin_email).map_err(BootstrapError::Email)?;
    let existing = accounts::credentials_by_email(&state.pool, email.as_str())
        .await
        .map_err(|e| BootstrapError::Failed(e.to_string()))?;
    if existing.is_some() {
        return Ok(AdminOutcome::AlreadyExists);
    }
    let (password, generated) = match &settings.admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None => (random_token(GENERATED_PASSWORD_BYTES), true),
    };
    check_password_strength(&password, Some(&email)).map_err(BootstrapError::Password)?;
    let password_hash = state
        .passwords
        .hash(password.clone())
        .await
        .map_err(|e| BootstrapError::Failed(e.to_string()))?;
    let account_id = AccountId::from_uuid(Uuid::now_v7());
    let name =
        PersonName::parse("Administrator").map_err(|e| BootstrapError::Failed(e.to_string()))?;
    let registration = Registration {
        account_id,
        name,
        email: email.clone(),
        phone: None,
        password_hash,
        roles: vec![Role::Admin],
        occurred_at: Utc::now(),
    };
    let metadata = CommandMetadata::system(Uuid::now_v7(), "bootstrap_admin");
    match register_account::register(&state.accounts, &state.pool, registration, &metadata).await {
        Ok(appended) => {
            state
                .read_your_writes(appended.position, &[accounts::NAME])
                .await
                .map_err(|e| BootstrapError::Failed(e.to_string()))?;
            Ok(AdminOutcome::Created {
                email: email.as_str().to_owned(),
                generated_password: generated.then_some(password),
            })
        }
        // Another process created it first.
        Err(RegisterError::EmailTaken) => Ok(AdminOutcome::AlreadyExists),
        Err(RegisterError::Command(e)) => Err(BootstrapError::Failed(e.to_string())),
    }
}
