//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! `OXIDP_DYNAMIC_REGISTRATION` says who may register: nobody (`off`), holders of an initial
//! access token (`token`), or anyone (`open`: limited per source address and in number, and
//! unused registrations expire). A registered client is an ordinary third-party client made
//! through [`crate::admin::clients::register`], so every rule of that path (redirect URIs, grant
//! types, the audit entry, the cache) holds; registration only narrows it. Each registration
//! gets a registration access token (a keyed hash is stored, a new one at every update) for
//! reading, updating and deleting it.

mod initial_tokens;
mod metadata;
pub mod metadata_document;

pub use initial_tokens::{IssuedToken, create_initial_token};
pub use metadata::{ClientMetadata, Echoed};

use serde_json::{Value, json};

use crate::admin::clients::{self, ClientChange, ClientError};
use crate::audit::{Actor, Initiator, Origin};
use crate::config::DynamicRegistration;
use crate::crypto::random_token;
use crate::kv::{Admission, Throttle};
use crate::oauth::client_auth::SECRET_HASH_PURPOSE;
use crate::state::AppState;
use crate::store::{Client, Registration, RegistrationStore};

const ACCESS_TOKEN_PURPOSE: &str = "registration-access-token";
/// [`Client::registered_via`] of dynamically registered clients.
pub const VIA_REGISTRATION: &str = "dynamic_registration";

/// The RFC 7591 §3.2.2 / RFC 7592 error answers, and oxidp's own limits.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidMetadata(String),
    /// Registration is off (or this kind of registration is not offered).
    #[error("dynamic client registration is not enabled on this server")]
    Disabled,
    /// A missing, unknown, expired or spent initial or registration access token.
    #[error("the access token is missing, invalid or expired")]
    InvalidToken,
    #[error("too many registrations from this address")]
    RateLimited { retry_after: i64 },
    #[error("this server takes no more open registrations")]
    Full,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(RegistrationError);

impl From<crate::kv::KvError> for RegistrationError {
    fn from(_: crate::kv::KvError) -> Self {
        RegistrationError::Unavailable
    }
}

impl From<ClientError> for RegistrationError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Invalid(field) if field.field == "redirect_uris" => {
                RegistrationError::InvalidRedirectUri(field.message)
            }
            ClientError::Invalid(field) => {
                RegistrationError::InvalidMetadata(format!("{}: {}", field.field, field.message))
            }
            ClientError::NotFound | ClientError::Builtin => RegistrationError::InvalidToken,
            ClientError::Unavailable => RegistrationError::Unavailable,
            ClientError::Internal(message) => RegistrationError::Internal(message),
        }
    }
}

/// The two ways of sending the secret as is, which a client may switch between.
fn is_secret_method(method: &str) -> bool {
    method == "client_secret_basic" || method == "client_secret_post"
}

fn mode_name(mode: DynamicRegistration) -> &'static str {
    match mode {
        DynamicRegistration::Open => "open",
        _ => "token",
    }
}

/// `POST /register`: `initial_token` is the Bearer token of the request, if any.
pub async fn register(
    state: &AppState,
    origin: &Origin,
    initial_token: Option<&str>,
    metadata: ClientMetadata,
) -> Result<Value, RegistrationError> {
    let mode = state.config.dynamic_registration;
    // Under `token`, nothing about the metadata rules is told to a caller without a live token.
    let token_hash = initial_token.map(|token| state.secret.keyed_hash(initial_tokens::PURPOSE, token));
    match mode {
        DynamicRegistration::Off => return Err(RegistrationError::Disabled),
        DynamicRegistration::Open => admit_open(state, origin).await?,
        DynamicRegistration::Token => {
            let hash = token_hash.as_deref().ok_or(RegistrationError::InvalidToken)?;
            if !state.db.registration_token_is_live(hash, state.now()).await? {
                return Err(RegistrationError::InvalidToken);
            }
        }
    }
    let (spec, echoed) = metadata.into_spec(mode)?;
    spec.validate(&state.config.signing_algs).map_err(ClientError::Invalid)?;
    check_outbound_urls(state, &spec)?;
    if let Some(jwt) = &spec.jwt_auth {
        jwt.validate(spec.public).map_err(ClientError::Invalid)?;
    }
    // The token is spent only for a registration that will be made.
    if mode == DynamicRegistration::Token {
        let hash = token_hash.as_deref().ok_or(RegistrationError::InvalidToken)?;
        state.db.spend_registration_token(hash, state.now()).await?.ok_or(RegistrationError::InvalidToken)?;
    }
    let by = Initiator::new(Actor::Anonymous, Origin { via: Some(VIA_REGISTRATION), ..origin.clone() });
    let (client, secret) = clients::register(state, &by, spec).await?;
    let access_token = random_token(32);
    let registration = Registration {
        client_id: client.id.clone(),
        mode: mode_name(mode).into(),
        access_token_hash: state.secret.keyed_hash(ACCESS_TOKEN_PURPOSE, &access_token),
        metadata: serde_json::to_string(&echoed).map_err(|e| RegistrationError::Internal(e.to_string()))?,
        created_at: state.now(),
    };
    if let Err(error) = state.db.create_registration(&registration).await {
        // A client nobody can manage is not left behind.
        let _ = clients::delete(state, &Initiator::system(), &client.id).await;
        return Err(error.into());
    }
    Ok(answer(state, &client, &registration, &echoed, secret.as_deref(), &access_token))
}

/// The registering party's URLs that oxidp will call go through the outgoing-request rule:
/// refused now when they could never pass it (each call checks the address again).
fn check_outbound_urls(state: &AppState, spec: &clients::ClientSpec) -> Result<(), RegistrationError> {
    let jwks_uri = spec.jwt_auth.as_ref().and_then(|jwt| jwt.jwks_uri.as_deref());
    let backchannel = spec.backchannel_logout.as_ref().map(|(uri, _)| uri.as_str());
    for (name, uri) in [("jwks_uri", jwks_uri), ("backchannel_logout_uri", backchannel)] {
        if let Some(uri) = uri {
            state.outbound.check_url(uri).map_err(|e| RegistrationError::InvalidMetadata(format!("{name}: {e}")))?;
        }
    }
    Ok(())
}

/// The per-address rate and the total number of open registrations.
async fn admit_open(state: &AppState, origin: &Origin) -> Result<(), RegistrationError> {
    let config = &state.config;
    let ip = origin.ip.as_deref().unwrap_or("unknown");
    let throttle = Throttle { limit: config.registration_rate_limit, window: 3600, free: 0, delay: 0, max_delay: 0 };
    match state.kv.admit(&format!("limit:register-client:ip:{ip}"), &throttle).await? {
        Admission::Admitted => {}
        Admission::Delayed { retry_after } | Admission::Locked { retry_after } => {
            return Err(RegistrationError::RateLimited { retry_after });
        }
    }
    if state.db.count_registrations("open").await? >= config.registration_max_open {
        return Err(RegistrationError::Full);
    }
    Ok(())
}

fn answer(
    state: &AppState,
    client: &Client,
    registration: &Registration,
    echoed: &Echoed,
    secret: Option<&str>,
    access_token: &str,
) -> Value {
    let mut body = metadata::describe(client, echoed, registration.created_at);
    if let Value::Object(fields) = &mut body {
        if let Some(secret) = secret {
            fields.insert("client_secret".into(), json!(secret));
        }
        fields.insert("registration_access_token".into(), json!(access_token));
        fields.insert("registration_client_uri".into(), json!(client_uri(state, &client.id)));
    }
    body
}

pub fn client_uri(state: &AppState, client_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    format!("{}/register/{encoded}", state.config.issuer)
}

/// The registration of `client_id` when `access_token` is its registration access token. Any
/// mismatch is the same `invalid_token`, so nobody learns which client ids exist (RFC 7592 §2).
async fn managed(
    state: &AppState,
    client_id: &str,
    access_token: Option<&str>,
) -> Result<(Client, Registration, Echoed), RegistrationError> {
    let token = access_token.ok_or(RegistrationError::InvalidToken)?;
    let registration = state.db.registration(client_id).await?.ok_or(RegistrationError::InvalidToken)?;
    if !state.secret.verify_keyed_hash(ACCESS_TOKEN_PURPOSE, token, &registration.access_token_hash) {
        return Err(RegistrationError::InvalidToken);
    }
    let client = clients::existing(state, client_id).await?;
    let echoed = serde_json::from_str(&registration.metadata).unwrap_or_default();
    Ok((client, registration, echoed))
}

fn client_actor(origin: &Origin, client_id: &str) -> Initiator {
    Initiator::new(Actor::Client(client_id.into()), Origin { via: Some(VIA_REGISTRATION), ..origin.clone() })
}

/// `GET /register/{client_id}` (RFC 7592 §2.1): the current metadata, without the secret.
pub async fn read(state: &AppState, client_id: &str, access_token: Option<&str>) -> Result<Value, RegistrationError> {
    let (client, registration, echoed) = managed(state, client_id, access_token).await?;
    let mut body = metadata::describe(&client, &echoed, registration.created_at);
    if let Value::Object(fields) = &mut body {
        fields.insert("registration_client_uri".into(), json!(client_uri(state, &client.id)));
    }
    Ok(body)
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the metadata replaces the registered one; the
/// answer carries a new registration access token and the old one stops working.
pub async fn update(
    state: &AppState,
    origin: &Origin,
    client_id: &str,
    access_token: Option<&str>,
    metadata: ClientMetadata,
) -> Result<Value, RegistrationError> {
    let (client, registration, registered) = managed(state, client_id, access_token).await?;
    if metadata.client_id.as_deref() != Some(client_id) {
        return Err(RegistrationError::InvalidMetadata("client_id must be the registered client's id".into()));
    }
    if let Some(secret) = metadata.client_secret.as_deref() {
        let matches = client
            .secret_hash
            .as_deref()
            .is_some_and(|hash| state.secret.verify_keyed_hash(SECRET_HASH_PURPOSE, secret, hash));
        if !matches {
            return Err(RegistrationError::InvalidMetadata("client_secret is not this client's secret".into()));
        }
    }
    let mode = if registration.mode == "open" { DynamicRegistration::Open } else { DynamicRegistration::Token };
    let (spec, echoed) = metadata.into_spec(mode)?;
    let method_changes = registered.token_endpoint_auth_method != echoed.token_endpoint_auth_method
        && !(is_secret_method(&registered.token_endpoint_auth_method)
            && is_secret_method(&echoed.token_endpoint_auth_method));
    if spec.public != client.is_public || method_changes {
        return Err(RegistrationError::InvalidMetadata("token_endpoint_auth_method cannot change".into()));
    }
    if registered.subject_type != echoed.subject_type {
        return Err(RegistrationError::InvalidMetadata("subject_type cannot change".into()));
    }
    check_outbound_urls(state, &spec)?;
    let change = ClientChange::from_client_metadata(spec);
    let updated = clients::update(state, &client_actor(origin, client_id), client_id, change).await?;
    let access_token = random_token(32);
    let hash = state.secret.keyed_hash(ACCESS_TOKEN_PURPOSE, &access_token);
    let stored = serde_json::to_string(&echoed).map_err(|e| RegistrationError::Internal(e.to_string()))?;
    state.db.update_registration(client_id, &hash, &stored).await?;
    Ok(answer(state, &updated, &registration, &echoed, None, &access_token))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client goes, and with it its consents
/// and grants (its tokens stop validating).
pub async fn delete(
    state: &AppState,
    origin: &Origin,
    client_id: &str,
    access_token: Option<&str>,
) -> Result<(), RegistrationError> {
    managed(state, client_id, access_token).await?;
    clients::delete(state, &client_actor(origin, client_id), client_id).await?;
    Ok(())
}

/// Housekeeping: openly registered clients unused for `OXIDP_REGISTRATION_UNUSED_TTL` go.
pub async fn purge_unused(state: &AppState, now: i64) -> crate::store::StoreResult<u64> {
    let before = now.saturating_sub(state.config.registration_unused_ttl);
    let deleted = state.db.delete_unused_open_registrations(before).await?;
    if deleted.is_empty() {
        return Ok(0);
    }
    crate::oauth::clients::changed(state).await?;
    for id in &deleted {
        let details = json!({ "reason": "an openly registered client unused for OXIDP_REGISTRATION_UNUSED_TTL" });
        Initiator::system().record(state, "client.delete", ("client", id), details).await?;
    }
    Ok(deleted.len() as u64)
}
