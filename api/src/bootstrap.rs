//! First start: the admin account, created once from settings or with a generated password.

use actix_web::web;
use stratus_commands::metadata::CommandMetadata;
use stratus_domain::{check_password_strength, Email, PersonName, Role};
use stratus_projections::accounts;
use uuid::Uuid;

use crate::auth::random_token;
use crate::registration::{self, NewAccount, RegistrationFailed};
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
pub async fn ensure_admin(state: &web::Data<AppState>) -> Result<AdminOutcome, BootstrapError> {
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
    let name =
        PersonName::parse("Administrator").map_err(|e| BootstrapError::Failed(e.to_string()))?;
    let account = NewAccount {
        name,
        email: email.clone(),
        phone: None,
        password: password.clone(),
        roles: vec![Role::Admin],
    };
    let metadata = |_| CommandMetadata::system(Uuid::now_v7(), "bootstrap_admin");
    match registration::register(state, account, metadata).await {
        Ok(_) => Ok(AdminOutcome::Created {
            email: email.as_str().to_owned(),
            generated_password: generated.then_some(password),
        }),
        // Another process created it first.
        Err(RegistrationFailed::EmailTaken) => Ok(AdminOutcome::AlreadyExists),
        Err(e) => Err(BootstrapError::Failed(e.to_string())),
    }
}
