//! Password recovery: the forgot-password mail and the reset it leads to.
//!
//! A completed reset proves the mailbox (issue 12, item 4): whoever registered the address
//! before its owner, or linked an upstream identity to it, loses every credential they made.
//! The reset marks the email verified, removes every upstream identity linked before the email
//! was verified, revokes every API key, session, grant and consent of the account, and mails a
//! confirmation that says so.

use serde_json::json;

use super::limits::{self, Kind};
use super::{AccountError, RESET_PURPOSE, RESET_TTL, TOKEN_HASH_PURPOSE, check_new_password, replace_password};
use crate::audit::Initiator;
use crate::crypto::random_token;
use crate::state::AppState;
use crate::store::{ApiKeyStore, ConsentStore, IdentityStore, OneTimeTokenStore, User, UserStore};

/// Always succeeds from the caller's point of view (`Ok(true)` when a mail went out). An unknown
/// email takes the same path — token generation, keyed hash, a dummy password-hash check — so
/// neither the answer nor the work reveals whether an account exists. Over the limit per source
/// address (`ip`) or per email, nothing is done and nothing is sent; the answer is the same.
pub async fn forgot_password(state: &AppState, ip: Option<&str>, email: &str) -> Result<bool, AccountError> {
    match limits::admit(state, Kind::ForgotPassword, ip, email).await {
        Ok(()) => {}
        Err(AccountError::RateLimited { .. }) => return Ok(false),
        Err(other) => return Err(other),
    }
    let user = state.db.user_by_email(email).await?.filter(User::is_active);
    let token = random_token(32);
    let token_hash = state.secret.keyed_hash(TOKEN_HASH_PURPOSE, &token);
    let stored = user.as_ref().and_then(|user| user.password_hash.clone());
    // Equalises the work with a login attempt for both cases, through the one gate.
    state.password_gate.verify("forgot-password", stored).await?;
    let Some((user, address)) = user.and_then(|user| user.email.clone().map(|address| (user, address))) else {
        return Ok(false);
    };
    let now = state.now();
    state.db.insert_one_time_token(&token_hash, &user.id, RESET_PURPOSE, now, now + RESET_TTL).await?;
    let body = format!(
        "Someone asked to reset the password of your account at {issuer}. If it was you, use this code within one hour:\n\n\
         {token}\n\nPOST {{\"token\": \"...\", \"password\": \"...\"}} to {issuer}/api/v1/auth/reset-password. \
         If it was not you, ignore this message.",
        issuer = state.config.issuer
    );
    state
        .mailer
        .send(&address, "Reset your password", &body)
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))?;
    Ok(true)
}

/// Sets a new password, proves the mailbox and ends everything anyone else may have made on
/// the account (see the module). A password the policy refuses does not use up the code.
pub async fn reset_password(state: &AppState, by: &Initiator, token: &str, password: &str) -> Result<(), AccountError> {
    if token.is_empty() || token.len() > 256 {
        return Err(AccountError::BadToken);
    }
    let token_hash = state.secret.keyed_hash(TOKEN_HASH_PURPOSE, token);
    let owner =
        state.db.one_time_token_owner(&token_hash, RESET_PURPOSE, state.now()).await?.ok_or(AccountError::BadToken)?;
    let owner = state.db.user_by_id(&owner).await?.filter(User::is_active).ok_or(AccountError::BadToken)?;
    let Some(address) = owner.email.clone() else { return Err(AccountError::BadToken) };
    check_new_password(&address, password, "password")?;
    let user = super::use_token(state, token, RESET_PURPOSE).await?;
    replace_password(state, &user, password, None, None).await?;
    let now = state.now();
    // Identities linked before the mailbox was proven go: all of them when it never was.
    let removed = state.db.remove_identities_linked_before(&user.id, user.email_verified_at).await?;
    state.db.set_email_verified(&user.id, now).await?;
    let keys = state.db.revoke_user_api_keys(&user.id, now).await?;
    state.db.delete_user_consents(&user.id).await?;
    let details = json!({ "api_keys_revoked": keys, "identities_removed": removed, "email_verified": true });
    by.record(state, "user.password_reset", ("user", &user.id), details).await?;
    let mut body = format!(
        "The password of your account at {issuer} was reset. Every session, sign-in at an application and \
         API key of the account was ended or revoked",
        issuer = state.config.issuer
    );
    if !removed.is_empty() {
        body.push_str(&format!(", and these sign-in providers were unlinked: {}", removed.join(", ")));
    }
    body.push_str(". If it was not you, reset your password again now and contact the administrator.\n");
    state
        .mailer
        .send(&address, "Your password was reset", &body)
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))
}
