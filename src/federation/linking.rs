//! Which oxidp user an upstream identity signs in as (SPEC §2).
//!
//! Identities are keyed by (provider, upstream subject). A known identity signs in as its user.
//! A new one links automatically to the account with the same email only when the upstream
//! asserts the email verified, the provider is trusted for email, the local email is verified
//! and the account is not an administrator. Otherwise, when the email is free, a new user is
//! made; when it is taken, the account's owner must prove it (sign in with the password) before
//! the identity is linked: a [`LinkOffer`] keeps the identity meanwhile.
//!
//! An email is *proven* when the upstream asserts it verified and the provider is trusted for
//! email (`trust_email`). An account made from an upstream without a proven email has no email
//! at all, so it is never mailed or reset by mail (issue 12, item 4). An email the upstream does
//! not even assert verified is never matched against accounts either (no link, no offer). The
//! operator may opt in per upstream to unverified emails (`trust_unverified_email`, dangerous:
//! whoever controls an account there can claim any address and pre-hijack the local account).
//!
//! Races are decided by the unique constraints, as in `permissions::upstream`: whoever loses
//! reads the winner on the next round.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::FederationError;
use super::profile::UpstreamProfile;
use crate::audit::{Actor, Initiator, Origin};
use crate::crypto::{constant_time_eq, random_token};
use crate::state::AppState;
use crate::store::{IdentityStore, LinkOutcome, NewUser, StoreError, User, UserStore};

/// Rounds after a lost race before giving up (the caller answers "unavailable").
const ATTEMPTS: usize = 5;
/// How long the owner has to sign in and link.
pub const OFFER_TTL: i64 = 10 * 60;
const OFFER_KEY_PURPOSE: &str = "federation-link";
const OFFER_BINDING_PURPOSE: &str = "federation-link-binding";

#[derive(Debug, Clone)]
pub enum Resolution {
    /// The identity was known; its user signs in.
    Known(User),
    /// A new user was made with the identity.
    Created(User),
    /// The identity was linked to the existing account with the same verified email.
    Linked(User),
    /// The email belongs to an account that may not be linked automatically: its owner must
    /// sign in to link (or this is someone else claiming their email).
    SignInToLink(User),
}

impl Resolution {
    pub fn how(&self) -> &'static str {
        match self {
            Resolution::Known(_) => "known",
            Resolution::Created(_) => "created",
            Resolution::Linked(_) => "linked",
            Resolution::SignInToLink(_) => "sign_in_to_link",
        }
    }
}

/// How far an upstream's emails are believed.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmailTrust {
    /// Emails it asserts verified are proven (`trust_email`).
    pub verified: bool,
    /// Emails it does not assert verified are used anyway, unverified (`trust_unverified_email`;
    /// dangerous, off by default).
    pub unverified: bool,
}

/// What the profile's email may be used for.
#[derive(Debug, Clone, Copy)]
struct EmailUse<'a> {
    email: &'a str,
    /// Asserted verified by a provider trusted for email: stored verified, links automatically
    /// to a verified account.
    proven: bool,
    /// Stored on a new account (proven, or the operator's dangerous opt-in).
    stored: bool,
}

/// The profile's email when it is one (a malformed claim counts as none) and may be used at
/// all: asserted verified by the upstream (an account with it may then be offered for linking,
/// which its owner confirms with the password), or the operator opted in for unverified ones.
fn usable_email(profile: &UpstreamProfile, trust: EmailTrust) -> Option<EmailUse<'_>> {
    let email =
        profile.email.as_deref().map(str::trim).filter(|email| crate::account::policy::check_email(email).is_ok())?;
    let proven = profile.email_verified && trust.verified;
    (profile.email_verified || trust.unverified).then_some(EmailUse {
        email,
        proven,
        stored: proven || trust.unverified,
    })
}

fn usable_name(profile: &UpstreamProfile) -> Option<String> {
    let name = profile.name.as_deref()?.trim();
    let fits = !name.is_empty() && name.chars().count() <= 256 && !name.chars().any(char::is_control);
    fits.then(|| name.to_string())
}

/// Finds or makes the user of (provider, subject) by the rules above. A new user, a new link
/// and an email that is not linked automatically are audited (from `origin`).
pub async fn resolve(
    state: &AppState,
    origin: &Origin,
    provider: &str,
    trust: EmailTrust,
    profile: &UpstreamProfile,
) -> Result<Resolution, FederationError> {
    let resolution = find_or_make(state, provider, trust, profile).await?;
    let (actor, action, user) = match &resolution {
        Resolution::Known(_) => return Ok(resolution),
        Resolution::Created(user) => (Actor::User(user.id.clone()), "user.federated_create", user),
        Resolution::Linked(user) => (Actor::User(user.id.clone()), "identity.link", user),
        Resolution::SignInToLink(owner) => (Actor::Anonymous, "login.federated_not_linked", owner),
    };
    let details = json!({ "provider": provider, "upstream_sub": profile.subject, "automatic": true });
    Initiator::new(actor, origin.clone()).record(state, action, ("user", &user.id), details).await?;
    Ok(resolution)
}

async fn find_or_make(
    state: &AppState,
    provider: &str,
    trust: EmailTrust,
    profile: &UpstreamProfile,
) -> Result<Resolution, FederationError> {
    if profile.subject.is_empty() || profile.subject.len() > 255 {
        return Err(FederationError::InvalidResponse("the upstream subject is empty or too long".into()));
    }
    let email = usable_email(profile, trust);
    for _ in 0..ATTEMPTS {
        if let Some(identity) = state.db.identity(provider, &profile.subject).await? {
            match state.db.user_by_id(&identity.user_id).await? {
                Some(user) => return Ok(Resolution::Known(user)),
                None => continue,
            }
        }
        let owner = match email {
            Some(usable) => state.db.user_by_email(usable.email).await?,
            None => None,
        };
        if let (Some(owner), Some(EmailUse { email, proven, .. })) = (owner, email) {
            if !owner.is_active() {
                return Err(FederationError::AccountDisabled);
            }
            let automatic = proven && owner.email_verified && !owner.is_admin();
            if !automatic {
                return Ok(Resolution::SignInToLink(owner));
            }
            match state.db.link_identity_unless_admin(&owner.id, provider, &profile.subject, email, state.now()).await?
            {
                LinkOutcome::Linked => {
                    let user = state.db.user_by_id(&owner.id).await?.unwrap_or(owner);
                    return Ok(Resolution::Linked(user));
                }
                // Taken meanwhile: the next round signs in as the winner.
                LinkOutcome::SubjectTaken => continue,
                // Promoted meanwhile.
                LinkOutcome::UserIsAdmin => return Ok(Resolution::SignInToLink(owner)),
                LinkOutcome::ProviderAlreadyLinked => return Err(FederationError::AlreadyLinked),
            }
        }
        let new_user = NewUser {
            // No usable email: an account without one (never mailed, reset or linked by email).
            email: email.filter(|usable| usable.stored).map(|usable| usable.email.to_string()),
            // An untrusted provider's word does not verify an address.
            email_verified: email.is_some_and(|usable| usable.proven),
            password_hash: None,
            name: usable_name(profile),
            role: "user".into(),
        };
        match state.db.create_user_with_identity(new_user, provider, &profile.subject, state.now()).await {
            Ok(user_id) => {
                if let Some(user) = state.db.user_by_id(&user_id).await? {
                    return Ok(Resolution::Created(user));
                }
            }
            // The email or the identity was taken meanwhile: look again.
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(FederationError::Unavailable)
}

/// An upstream identity waiting for its account's owner to sign in and link it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkOffer {
    pub provider: String,
    pub subject: String,
    pub email: String,
    pub owner_id: String,
    /// The pending authorization request to continue afterwards.
    pub request_id: Option<String>,
}

pub struct SavedOffer {
    pub id: String,
    /// The value of the cookie that binds the offer to this browser.
    pub binding: String,
}

fn offer_key(state: &AppState, id: &str) -> String {
    format!("federation-link:{}", state.secret.keyed_hash(OFFER_KEY_PURPOSE, id))
}

pub fn offer_binding(state: &AppState, id: &str) -> String {
    state.secret.keyed_hash(OFFER_BINDING_PURPOSE, id)
}

pub async fn save_offer(state: &AppState, offer: &LinkOffer) -> Result<SavedOffer, FederationError> {
    let id = random_token(24);
    let bytes = serde_json::to_vec(offer).map_err(|e| FederationError::Internal(e.to_string()))?;
    state.kv.put(&offer_key(state, &id), bytes, OFFER_TTL).await?;
    Ok(SavedOffer { binding: offer_binding(state, &id), id })
}

/// The offer, when it exists and this browser holds its binding cookie. It stays until it is
/// used, so a mistyped password can be corrected (the password checks have their own limits).
pub async fn load_offer(
    state: &AppState,
    id: Option<&str>,
    binding_cookie: Option<&str>,
) -> Result<LinkOffer, FederationError> {
    let id = id.filter(|id| !id.is_empty() && id.len() <= 64).ok_or(FederationError::StateMissing)?;
    let cookie = binding_cookie.ok_or(FederationError::NotBound)?;
    if !constant_time_eq(cookie.as_bytes(), offer_binding(state, id).as_bytes()) {
        return Err(FederationError::StateMismatch);
    }
    let bytes = state.kv.get(&offer_key(state, id)).await?.ok_or(FederationError::StateUnknown)?;
    serde_json::from_slice(&bytes).map_err(|e| FederationError::Internal(e.to_string()))
}

/// Links the offered identity to `user`, who has just signed in as the offer's account owner.
/// The offer is used up either way.
pub async fn accept_offer(
    state: &AppState,
    origin: &Origin,
    id: &str,
    offer: &LinkOffer,
    user: &User,
) -> Result<(), FederationError> {
    link_offered(state, id, offer, user).await?;
    let details = json!({ "provider": offer.provider, "upstream_sub": offer.subject, "automatic": false });
    Initiator::new(Actor::User(user.id.clone()), origin.clone())
        .record(state, "identity.link", ("user", &user.id), details)
        .await?;
    Ok(())
}

async fn link_offered(state: &AppState, id: &str, offer: &LinkOffer, user: &User) -> Result<(), FederationError> {
    // Single use: of two concurrent submissions, only the one that takes it links.
    if state.kv.take(&offer_key(state, id)).await?.is_none() {
        return Err(FederationError::StateUnknown);
    }
    if user.id != offer.owner_id {
        return Err(FederationError::WrongAccount);
    }
    match state
        .db
        .link_identity_unless_admin(&user.id, &offer.provider, &offer.subject, &offer.email, state.now())
        .await?
    {
        LinkOutcome::Linked => Ok(()),
        // Linked meanwhile (another tab): fine when it went to this very user.
        LinkOutcome::SubjectTaken => match state.db.identity(&offer.provider, &offer.subject).await? {
            Some(identity) if identity.user_id == user.id => Ok(()),
            _ => Err(FederationError::AlreadyLinked),
        },
        LinkOutcome::ProviderAlreadyLinked => Err(FederationError::AlreadyLinked),
        LinkOutcome::UserIsAdmin => Err(FederationError::AdminNotLinked),
    }
}
