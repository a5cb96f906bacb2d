//! OAuth clients, the one implementation behind `oxidp client create` and the admin API:
//! register, update, delete and rotate the secret of a validated [`ClientSpec`], each
//! invalidating the client cache and writing its audit entry. Errors name the field (the CLI
//! turns fields into flags).

use serde_json::{Value, json};

pub use super::field::{FieldError, field};
use crate::audit::Initiator;
use crate::crypto::random_token;
use crate::oauth::client_auth::SECRET_HASH_PURPOSE;
use crate::oauth::{redirect_uri, scope};
use crate::state::AppState;
use crate::store::{BackchannelStore, Client, ClientJwtAuthStore, ClientStore, GrantStore, NewClient, StoreError};

const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    crate::oauth::grant_types::DEVICE_CODE,
    crate::oauth::grant_types::TOKEN_EXCHANGE,
];

/// What a client gets when its registration names no grant types.
pub const DEFAULT_GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];
/// What a client gets when its registration names no scopes.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The default grant types, owned.
pub fn default_grant_types() -> Vec<String> {
    DEFAULT_GRANT_TYPES.map(String::from).to_vec()
}

/// The default scopes, owned.
pub fn default_scopes() -> Vec<String> {
    DEFAULT_SCOPES.map(String::from).to_vec()
}

/// Everything an operator decides about a client.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub resource_server: bool,
    pub pkce_exempt: bool,
    /// May request `account`/`admin` without being first-party.
    pub api_access: bool,
    /// `id_token_signed_response_alg`; `None` is RS256.
    pub id_token_alg: Option<String>,
    /// `require_pushed_authorization_requests` (RFC 9126 §6).
    pub require_par: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): a DPoP proof at every token request.
    pub dpop_bound_access_tokens: bool,
    /// JWT client authentication instead of a secret sent as is; `None` for secrets and public clients.
    pub jwt_auth: Option<super::client_jwt::JwtAuthSpec>,
    /// Pairwise subject identifiers (OIDC Core §8.1); `None` for public ones.
    pub pairwise: Option<super::client_pairwise::PairwiseSpec>,
    /// `backchannel_logout_uri` and `backchannel_logout_session_required` (set at registration).
    pub backchannel_logout: Option<(String, bool)>,
    /// How a self-registered client came (see [`Client::registered_via`]); `None` for an administrator's.
    pub registered_via: Option<String>,
}

impl ClientSpec {
    pub fn of(client: &Client) -> ClientSpec {
        ClientSpec {
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            public: client.is_public,
            first_party: client.first_party,
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
            audiences: client.audiences.clone(),
            resources: client.resources.clone(),
            resource_server: client.resource_server,
            pkce_exempt: client.pkce_exempt,
            api_access: client.api_access,
            id_token_alg: client.id_token_alg.clone(),
            require_par: client.require_par,
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
            jwt_auth: None,
            pairwise: None,
            backchannel_logout: None,
            registered_via: client.registered_via.clone(),
        }
    }

    /// Checks the spec; `signing_algs` are the algorithms this deployment holds keys for.
    pub fn validate(&self, signing_algs: &[String]) -> Result<(), FieldError> {
        if let Some(alg) = &self.id_token_alg
            && !signing_algs.contains(alg)
        {
            return Err(field(
                "id_token_signed_response_alg",
                format!("'{alg}' is not offered here (offered: {})", signing_algs.join(", ")),
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(field("name", "must be 1 to 100 characters"));
        }
        if let Some(unknown) = self.grant_types.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
            return Err(field(
                "grant_types",
                format!("unknown grant type '{unknown}' (known: {})", GRANT_TYPES.join(", ")),
            ));
        }
        if self.grant_types.is_empty() {
            return Err(field("grant_types", "must name at least one grant type"));
        }
        if self.public && self.grant_types.iter().any(|g| g == "client_credentials") {
            return Err(field("grant_types", "client_credentials is not allowed for a public client"));
        }
        if self.public && self.grant_types.iter().any(|g| g == crate::oauth::grant_types::TOKEN_EXCHANGE) {
            return Err(field("grant_types", "token exchange is not allowed for a public client"));
        }
        if self.public && self.resource_server {
            return Err(field(
                "resource_server",
                "a public client cannot be a resource server: it has no secret, so anyone could introspect with its id",
            ));
        }
        if self.public && self.pkce_exempt {
            return Err(field("pkce_exempt", "only confidential clients may be exempt from PKCE"));
        }
        if self.grant_types.iter().any(|g| g == "authorization_code") && self.redirect_uris.is_empty() {
            return Err(field("redirect_uris", "required for the authorization_code grant"));
        }
        for uri in &self.redirect_uris {
            redirect_uri::validate_registration(uri).map_err(|e| field("redirect_uris", e))?;
        }
        for uri in &self.post_logout_redirect_uris {
            redirect_uri::validate_registration(uri).map_err(|e| field("post_logout_redirect_uris", e))?;
        }
        for resource in &self.resources {
            let url = url::Url::parse(resource).map_err(|e| field("resources", format!("'{resource}': {e}")))?;
            if url.fragment().is_some() {
                return Err(field("resources", format!("'{resource}' must not contain a fragment")));
            }
        }
        if self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(field("audiences", "must not be empty"));
        }
        if self.scopes.iter().any(|s| scope::parse(s).map(|parsed| parsed.len() != 1).unwrap_or(true)) {
            return Err(field("scopes", "each scope must be one token of allowed characters"));
        }
        if self.scopes.iter().any(|s| scope::is_api_scope(s)) && !(self.first_party || self.api_access) {
            return Err(field(
                "scopes",
                "account and admin are only for first-party clients or clients with API access",
            ));
        }
        Ok(())
    }

    fn into_new_client(self, id: String, secret_hash: Option<String>) -> NewClient {
        NewClient {
            id,
            name: self.name.trim().to_string(),
            secret_hash,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scopes: self.scopes,
            audiences: self.audiences,
            resources: self.resources,
            is_public: self.public,
            first_party: self.first_party,
            resource_server: self.resource_server,
            pkce_exempt: self.pkce_exempt,
            api_access: self.api_access,
            id_token_alg: self.id_token_alg,
            require_par: self.require_par,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            registered_via: self.registered_via,
        }
    }
}

/// Registers a client; the secret of a confidential client is returned (once).
pub async fn register(
    state: &AppState,
    by: &Initiator,
    spec: ClientSpec,
) -> Result<(Client, Option<String>), ClientError> {
    register_as(state, by, random_token(18), spec).await
}

/// As [`register`], under a given id (a client ID metadata document's URL).
pub async fn register_as(
    state: &AppState,
    by: &Initiator,
    client_id: String,
    spec: ClientSpec,
) -> Result<(Client, Option<String>), ClientError> {
    spec.validate(&state.config.signing_algs).map_err(ClientError::Invalid)?;
    if let Some(jwt) = &spec.jwt_auth {
        jwt.validate(spec.public).map_err(ClientError::Invalid)?;
    }
    let pairwise = match &spec.pairwise {
        Some(pairwise) => {
            let uri = pairwise.sector_identifier_uri.as_deref();
            let sector = super::client_pairwise::sector(state, &client_id, &spec.redirect_uris, uri).await;
            Some((sector.map_err(ClientError::Invalid)?, pairwise.clone()))
        }
        None => None,
    };
    if let Some((uri, _)) = &spec.backchannel_logout {
        validate_backchannel_uri(uri).map_err(ClientError::Invalid)?;
    }
    let backchannel_logout = spec.backchannel_logout.clone();
    let jwt_auth = spec.jwt_auth.clone();
    // 64 characters for an HMAC secret: HS512 wants a key at least as long as its output.
    let length = if jwt_auth.is_some() { 48 } else { 32 };
    let mut secret = (!spec.public).then(|| random_token(length));
    // A JWT-authenticating client never has a keyed-hash secret: it cannot send one as is.
    let secret_hash =
        secret.as_ref().filter(|_| jwt_auth.is_none()).map(|s| state.secret.keyed_hash(SECRET_HASH_PURPOSE, s));
    let new = spec.into_new_client(client_id.clone(), secret_hash);
    state.db.create_client(new, state.now()).await?;
    if let Some(jwt) = &jwt_auth {
        secret = jwt.store(state, &client_id, secret).await?;
    }
    if let Some((sector, pairwise)) = pairwise {
        super::client_pairwise::store(state, &client_id, sector, &pairwise).await?;
    }
    if let Some((uri, session_required)) = &backchannel_logout {
        state.db.set_backchannel_logout(&client_id, Some((uri, *session_required))).await?;
    }
    crate::oauth::clients::changed(state).await?;
    let client = state
        .db
        .client_by_id(&client_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("client vanished after insert".into()))?;
    by.record(state, "client.create", ("client", &client.id), describe(&client)).await?;
    Ok((client, secret))
}

/// Fields to change; `None` leaves a field as it is. Whether a client is public cannot change.
#[derive(Debug, Default)]
pub struct ClientChange {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub resource_server: Option<bool>,
    pub pkce_exempt: Option<bool>,
    pub api_access: Option<bool>,
    pub id_token_alg: Option<String>,
    pub require_par: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
    /// New keys and algorithms of a JWT-authenticating client (the method itself cannot change).
    pub jwt_auth: Option<super::client_jwt::JwtAuthSpec>,
    /// `Some(None)` removes the back-channel logout URI.
    pub backchannel_logout: Option<Option<(String, bool)>>,
}

impl ClientChange {
    /// What a client's own metadata (a dynamic registration's update, a refreshed metadata
    /// document) may replace; rights an administrator grants are never among them.
    pub fn from_client_metadata(spec: ClientSpec) -> ClientChange {
        ClientChange {
            name: Some(spec.name),
            redirect_uris: Some(spec.redirect_uris),
            post_logout_redirect_uris: Some(spec.post_logout_redirect_uris),
            grant_types: Some(spec.grant_types),
            scopes: Some(spec.scopes),
            id_token_alg: spec.id_token_alg,
            require_par: Some(spec.require_par),
            dpop_bound_access_tokens: Some(spec.dpop_bound_access_tokens),
            jwt_auth: spec.jwt_auth,
            backchannel_logout: Some(spec.backchannel_logout),
            ..ClientChange::default()
        }
    }

    fn apply_to(self, spec: ClientSpec) -> ClientSpec {
        ClientSpec {
            name: self.name.unwrap_or(spec.name),
            redirect_uris: self.redirect_uris.unwrap_or(spec.redirect_uris),
            post_logout_redirect_uris: self.post_logout_redirect_uris.unwrap_or(spec.post_logout_redirect_uris),
            public: spec.public,
            first_party: self.first_party.unwrap_or(spec.first_party),
            grant_types: self.grant_types.unwrap_or(spec.grant_types),
            scopes: self.scopes.unwrap_or(spec.scopes),
            audiences: self.audiences.unwrap_or(spec.audiences),
            resources: self.resources.unwrap_or(spec.resources),
            resource_server: self.resource_server.unwrap_or(spec.resource_server),
            pkce_exempt: self.pkce_exempt.unwrap_or(spec.pkce_exempt),
            api_access: self.api_access.unwrap_or(spec.api_access),
            id_token_alg: self.id_token_alg.or(spec.id_token_alg),
            require_par: self.require_par.unwrap_or(spec.require_par),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.unwrap_or(spec.dpop_bound_access_tokens),
            jwt_auth: spec.jwt_auth,
            pairwise: spec.pairwise,
            backchannel_logout: spec.backchannel_logout,
            registered_via: spec.registered_via,
        }
    }
}

/// The client, or `NotFound`.
pub async fn existing(state: &AppState, id: &str) -> Result<Client, ClientError> {
    state.db.client_by_id(id).await?.ok_or(ClientError::NotFound)
}

/// The built-in client backs the JSON API and Swagger UI: it is not edited like the others.
fn refuse_builtin(id: &str) -> Result<(), ClientError> {
    if id == crate::oauth::first_party::BUILTIN_CLIENT_ID { Err(ClientError::Builtin) } else { Ok(()) }
}

pub async fn update(
    state: &AppState,
    by: &Initiator,
    id: &str,
    mut change: ClientChange,
) -> Result<Client, ClientError> {
    refuse_builtin(id)?;
    let current = existing(state, id).await?;
    let jwt_auth = change.jwt_auth.take();
    let backchannel_logout = change.backchannel_logout.take();
    let spec = change.apply_to(ClientSpec::of(&current));
    spec.validate(&state.config.signing_algs).map_err(ClientError::Invalid)?;
    if let Some(jwt) = &jwt_auth {
        jwt.validate(spec.public).map_err(ClientError::Invalid)?;
        let method = state.db.client_jwt_auth(id).await?.map(|auth| auth.method);
        if method.as_deref() != Some(jwt.method.as_str()) {
            return Err(ClientError::Invalid(field("token_endpoint_auth_method", "cannot change")));
        }
    }
    if let Some(Some((uri, _))) = &backchannel_logout {
        validate_backchannel_uri(uri).map_err(ClientError::Invalid)?;
    }
    if spec.redirect_uris != current.redirect_uris {
        super::client_pairwise::keep_sector(state, id, &spec.redirect_uris).await.map_err(ClientError::Invalid)?;
    }
    let updated = spec.into_new_client(current.id.clone(), None);
    state.db.update_client(&updated, state.now()).await?;
    if let Some(jwt) = &jwt_auth {
        jwt.replace(state, id).await?;
    }
    if let Some(settings) = &backchannel_logout {
        let settings = settings.as_ref().map(|(uri, required)| (uri.as_str(), *required));
        state.db.set_backchannel_logout(id, settings).await?;
    }
    crate::oauth::clients::changed(state).await?;
    let client = existing(state, id).await?;
    by.record(state, "client.update", ("client", &client.id), describe(&client)).await?;
    Ok(client)
}

/// Deletes a client; its consents go with it, its grants are revoked and its tokens stop validating.
pub async fn delete(state: &AppState, by: &Initiator, id: &str) -> Result<(), ClientError> {
    refuse_builtin(id)?;
    if !state.db.delete_client(id).await? {
        return Err(ClientError::NotFound);
    }
    state.db.revoke_client_grants(id, state.now()).await?;
    crate::oauth::clients::changed(state).await?;
    by.record(state, "client.delete", ("client", id), json!({})).await?;
    Ok(())
}

/// Disables (or enables again) a client: while disabled it is unknown to every protocol path
/// (authorization, token, introspection, logout) and its tokens stop validating, but it keeps
/// its settings, consents and registration, and a metadata document cannot bring it back.
pub async fn set_disabled(state: &AppState, by: &Initiator, id: &str, disabled: bool) -> Result<Client, ClientError> {
    refuse_builtin(id)?;
    let current = existing(state, id).await?;
    if current.disabled_at.is_some() != disabled {
        let now = state.now();
        if !state.db.set_client_disabled(id, disabled.then_some(now), now).await? {
            return Err(ClientError::NotFound);
        }
        crate::oauth::clients::changed(state).await?;
        let action = if disabled { "client.disable" } else { "client.enable" };
        by.record(state, action, ("client", id), json!({ "registered_via": current.registered_via })).await?;
    }
    existing(state, id).await
}

/// A new secret for a confidential client; the old one stops working at once.
pub async fn rotate_secret(state: &AppState, by: &Initiator, id: &str) -> Result<String, ClientError> {
    let client = existing(state, id).await?;
    if client.is_public {
        return Err(ClientError::Invalid(field("public", "public clients have no secret")));
    }
    let secret = random_token(48);
    if !super::client_jwt::rotate_secret(state, &client.id, &secret).await.map_err(ClientError::Invalid)? {
        let hash = state.secret.keyed_hash(SECRET_HASH_PURPOSE, &secret);
        state.db.set_client_secret_hash(&client.id, &hash, state.now()).await?;
    }
    crate::oauth::clients::changed(state).await?;
    by.record(state, "client.rotate_secret", ("client", &client.id), json!({})).await?;
    Ok(secret)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(FieldError),
    #[error("no such client")]
    NotFound,
    #[error("the built-in oxidp-api client cannot be changed")]
    Builtin,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(ClientError);

pub fn describe(client: &Client) -> Value {
    json!({
        "client_id": client.id,
        "name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "scopes": scope::join(&client.scopes),
        "audiences": client.audiences,
        "resources": client.resources,
        "public": client.is_public,
        "first_party": client.first_party,
        "resource_server": client.resource_server,
        "require_pushed_authorization_requests": client.require_par,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "token_endpoint_auth_method": if client.is_public { "none" } else { "client_secret_basic" },
        "registered_via": client.registered_via,
    })
}

/// Public clients that earlier versions let be resource servers lose that right at start: with
/// no secret, anyone knowing the client_id could introspect every token (issue #12). Each is
/// logged and audited; later starts find none.
pub async fn demote_public_resource_servers(state: &AppState) -> Result<Vec<String>, ClientError> {
    let demoted = state.db.demote_public_resource_servers(state.now()).await?;
    if demoted.is_empty() {
        return Ok(demoted);
    }
    crate::oauth::clients::changed(state).await?;
    let by = Initiator::system();
    for id in &demoted {
        tracing::warn!(client_id = %id, "public client is no longer a resource server (it has no secret to introspect with)");
        let details = json!({ "resource_server": false, "reason": "public clients cannot be resource servers" });
        by.record(state, "client.update", ("client", id), details).await?;
    }
    Ok(demoted)
}

/// An administrator's `backchannel_logout_uri`: an absolute http(s) URL without a fragment
/// (it may name a private network; dynamically registered URLs are checked more strictly).
pub fn validate_backchannel_uri(uri: &str) -> Result<(), FieldError> {
    let parsed = url::Url::parse(uri).map_err(|_| field("backchannel_logout_uri", "is not an absolute URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(field("backchannel_logout_uri", "must be an http(s) URL"));
    }
    if parsed.fragment().is_some() {
        return Err(field("backchannel_logout_uri", "must not have a fragment"));
    }
    Ok(())
}
