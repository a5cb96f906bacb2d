//! External bearer tokens: JWT access tokens from configured trusted issuers
//! (`OXIDP_TRUSTED_ISSUER__<NAME>__*`), accepted by the account API in place of oxidp's own.
//!
//! A token is accepted when its `iss` is exactly a configured issuer, its signature verifies
//! with a key of that issuer's JWKS (asymmetric algorithms only), its `aud` names the issuer's
//! configured audience and `exp` has not passed on oxidp's clock. The user is found by
//! (issuer name, `sub`), or made (or linked) by the rules of SPEC §2, like an upstream login.
//! The JWKS is cached per issuer and fetched again on an unknown `kid` (at most every 30 s,
//! whatever the outcome, since anyone can present a token).

use std::sync::Arc;

use serde_json::{Map, Value};

pub mod registry;

use crate::audit::Origin;
use crate::crypto::jws::{find_key, unverified_claims, verifier_for};
use crate::federation::{FederationError, Resolution, UpstreamProfile, linking, outbound};
use crate::state::AppState;
use crate::store::{IdentityStore, User, UserStore};
use josekit::jwk::Jwk;

pub use registry::TrustedIssuers;
use registry::{KeySet, TrustedIssuer};

const KEYS_MAX_AGE: i64 = 3600;
const KEYS_REFRESH_INTERVAL: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum TrustedTokenError {
    /// `iss` names no configured issuer.
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token is not for this audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the issuer's keys cannot be fetched: {0}")]
    Unreachable(String),
    /// An account with the token's email exists and may not be linked automatically.
    #[error("an account with this email exists and is not linked to this issuer")]
    IdentityConflict,
    #[error("the token carries no email address, and oxidp makes users only with one")]
    NoEmail,
    #[error("the account is disabled")]
    Disabled,
    #[error("unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(TrustedTokenError);

impl From<FederationError> for TrustedTokenError {
    fn from(error: FederationError) -> Self {
        match error {
            FederationError::NoEmail => TrustedTokenError::NoEmail,
            FederationError::AccountDisabled => TrustedTokenError::Disabled,
            FederationError::AlreadyLinked | FederationError::AdminNotLinked => TrustedTokenError::IdentityConflict,
            FederationError::InvalidResponse(message) => TrustedTokenError::Invalid(message),
            FederationError::Unavailable => TrustedTokenError::Unavailable,
            other => TrustedTokenError::Internal(other.to_string()),
        }
    }
}

/// `None` when the token is not one for this module: not a JWT, or issued by oxidp itself (its
/// own validation applies). Otherwise the user the token authenticates, or why not.
pub async fn authenticate(state: &AppState, token: &str) -> Option<Result<User, TrustedTokenError>> {
    let claims = unverified_claims(token)?;
    let issuer = claims.get("iss").and_then(Value::as_str)?;
    if issuer == state.config.issuer {
        return None;
    }
    let Some(trusted) = state.trusted_issuers.issuers.iter().find(|trusted| trusted.config.issuer == issuer) else {
        return Some(Err(TrustedTokenError::UnknownIssuer));
    };
    Some(trusted.authenticate(state, token).await)
}

impl TrustedIssuer {
    async fn authenticate(&self, state: &AppState, token: &str) -> Result<User, TrustedTokenError> {
        let claims = self.verify(state, token).await?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.config.issuer.as_str()) {
            return Err(TrustedTokenError::Invalid("issuer mismatch".into()));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or(TrustedTokenError::Invalid("no exp".into()))?;
        let now = state.now();
        if exp <= now {
            return Err(TrustedTokenError::Expired);
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now) {
            return Err(TrustedTokenError::Invalid("not valid yet".into()));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.config.audience,
            Some(Value::Array(items)) => items.iter().any(|aud| aud.as_str() == Some(self.config.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(TrustedTokenError::WrongAudience);
        }
        let subject = text("sub").filter(|sub| !sub.is_empty() && sub.len() <= 255);
        let subject = subject.ok_or(TrustedTokenError::Invalid("no sub".into()))?.to_string();
        let user = match self.known_user(state, &subject).await? {
            Some(user) => user,
            None => self.first_use(state, token, &claims, subject).await?,
        };
        if user.is_active() { Ok(user) } else { Err(TrustedTokenError::Disabled) }
    }

    async fn known_user(&self, state: &AppState, subject: &str) -> Result<Option<User>, TrustedTokenError> {
        match state.db.identity(&self.name, subject).await? {
            Some(identity) => Ok(state.db.user_by_id(&identity.user_id).await?),
            None => Ok(None),
        }
    }

    /// The first token of a subject: find or make its user by the linking rules.
    async fn first_use(
        &self,
        state: &AppState,
        token: &str,
        claims: &Map<String, Value>,
        subject: String,
    ) -> Result<User, TrustedTokenError> {
        let mut profile = UpstreamProfile {
            subject,
            email: claims.get("email").and_then(Value::as_str).map(str::to_string),
            email_verified: claims.get("email_verified").and_then(Value::as_bool).unwrap_or(false),
            name: claims.get("name").and_then(Value::as_str).map(str::to_string),
        };
        if profile.email.is_none() {
            self.fill_from_userinfo(state, token, &mut profile).await;
        }
        let trust = linking::EmailTrust {
            verified: self.config.trust_email.unwrap_or(false),
            unverified: self.config.trust_unverified_email,
        };
        // First use of an external token: audited as arriving with a bearer token.
        let origin = Origin { via: Some("bearer_token"), ..Origin::default() };
        match linking::resolve(state, &origin, &self.name, trust, &profile).await? {
            Resolution::Known(user) | Resolution::Created(user) | Resolution::Linked(user) => Ok(user),
            Resolution::SignInToLink(_) => Err(TrustedTokenError::IdentityConflict),
        }
    }

    /// Without an email claim, the issuer's userinfo endpoint (from discovery) may know it; the
    /// token is sent only to its own issuer, and only for the same subject.
    async fn fill_from_userinfo(&self, state: &AppState, token: &str, profile: &mut UpstreamProfile) {
        let Ok(keys) = self.keys(state, false).await else { return };
        let Some(endpoint) = keys.userinfo_endpoint.as_deref() else { return };
        let Ok(response) = self.http.get(endpoint).bearer_auth(token).send().await else { return };
        if !response.status().is_success() {
            return;
        }
        let Ok(body) = outbound::body(response).await else { return };
        let Ok(info) = serde_json::from_slice::<Map<String, Value>>(&body) else { return };
        if info.get("sub").and_then(Value::as_str) != Some(profile.subject.as_str()) {
            return;
        }
        profile.email = info.get("email").and_then(Value::as_str).map(str::to_string);
        profile.email_verified = info.get("email_verified").and_then(Value::as_bool).unwrap_or(false);
        if profile.name.is_none() {
            profile.name = info.get("name").and_then(Value::as_str).map(str::to_string);
        }
    }

    /// Verifies the signature with the issuer's keys, fetching them again once for an unknown `kid`.
    async fn verify(&self, state: &AppState, token: &str) -> Result<Map<String, Value>, TrustedTokenError> {
        let header = josekit::jwt::decode_header(token).map_err(|e| TrustedTokenError::Invalid(e.to_string()))?;
        let alg = header.claim("alg").and_then(Value::as_str).unwrap_or_default().to_string();
        // Only asymmetric signatures: a shared secret would let the issuer's other clients forge tokens.
        if !crate::crypto::jws::ASYMMETRIC.contains(&alg.as_str()) {
            return Err(TrustedTokenError::Invalid(format!("algorithm {alg:?} is not accepted")));
        }
        if !self.config.accepts_type(header.claim("typ").and_then(Value::as_str)) {
            return Err(TrustedTokenError::Invalid("its typ is not a configured token type".into()));
        }
        let kid = header.claim("kid").and_then(Value::as_str).map(str::to_string);
        let keys = self.keys(state, false).await?;
        let keys = match find_key(&keys.keys, kid.as_deref(), &alg) {
            Some(_) => keys,
            None => self.keys(state, true).await?,
        };
        let jwk = find_key(&keys.keys, kid.as_deref(), &alg)
            .ok_or(TrustedTokenError::Invalid("no key for its kid".into()))?;
        let verifier = verifier_for(&alg, jwk).map_err(TrustedTokenError::Invalid)?;
        let (payload, _) = josekit::jwt::decode_with_verifier(token, verifier.as_ref())
            .map_err(|e| TrustedTokenError::Invalid(format!("signature: {e}")))?;
        Ok(payload.claims_set().clone())
    }

    /// The issuer's keys: cached for an hour; fetched again for an unknown `kid`, but at most
    /// once per interval whatever the outcome, so tokens made up by anyone cannot make oxidp
    /// hammer the issuer (or wait on it while it is down).
    async fn keys(&self, state: &AppState, refresh: bool) -> Result<Arc<KeySet>, TrustedTokenError> {
        let now = state.now();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let tried_recently = cache.last_attempt.is_some_and(|at| at + KEYS_REFRESH_INTERVAL > now);
            if let Some(current) = &cache.keys {
                let fresh = current.fetched_at + KEYS_MAX_AGE > now;
                if (fresh && !refresh) || tried_recently {
                    return Ok(current.clone());
                }
            } else if tried_recently {
                return Err(TrustedTokenError::Unreachable(format!(
                    "{}: keys unavailable, retrying shortly",
                    self.name
                )));
            }
            cache.last_attempt = Some(now);
        }
        let (jwks_url, userinfo_endpoint) = self.endpoints().await?;
        let document = self.get_json(&jwks_url).await?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| TrustedTokenError::Unreachable("the JWKS has no keys".into()))?
            .iter()
            .filter_map(|key| key.as_object().cloned())
            .filter_map(|key| Jwk::from_map(key).ok())
            .collect();
        let set = Arc::new(KeySet { keys, userinfo_endpoint, fetched_at: now });
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).keys = Some(set.clone());
        Ok(set)
    }

    /// The JWKS URL (configured, or from discovery) and the userinfo endpoint when discovery has one.
    async fn endpoints(&self) -> Result<(String, Option<String>), TrustedTokenError> {
        let issuer = &self.config.issuer;
        let separator = if issuer.ends_with('/') { "" } else { "/" };
        let discovery_url = format!("{issuer}{separator}.well-known/openid-configuration");
        let discovery = match self.get_json(&discovery_url).await {
            Ok(document) if document.get("issuer").and_then(Value::as_str) == Some(issuer.as_str()) => Some(document),
            Ok(_) => None,
            Err(error) if self.config.jwks_url.is_none() => return Err(error),
            Err(_) => None,
        };
        let from_discovery = |name: &str| discovery.as_ref().and_then(|d| d.get(name)).and_then(Value::as_str);
        let jwks_url = match (&self.config.jwks_url, from_discovery("jwks_uri")) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) => url.to_string(),
            (None, None) => return Err(TrustedTokenError::Unreachable("discovery names no jwks_uri".into())),
        };
        Ok((jwks_url, from_discovery("userinfo_endpoint").map(str::to_string)))
    }

    async fn get_json(&self, url: &str) -> Result<Map<String, Value>, TrustedTokenError> {
        let unreachable = |message: String| TrustedTokenError::Unreachable(format!("{}: {message}", self.name));
        let response = self.http.get(url).send().await.map_err(|e| unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unreachable(format!("{url} answered {}", response.status())));
        }
        let body = outbound::body(response).await.map_err(|e| unreachable(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| unreachable(format!("{url}: {e}")))
    }
}
