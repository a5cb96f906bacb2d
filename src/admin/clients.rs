//! OAuth client registration, shared by `oxidp client create` and the admin API: one
//! validated [`ClientSpec`], errors naming the field (the CLI turns fields into flags).

use clap::Args;
use serde_json::{Value, json};

use crate::cli::CliError;
use crate::crypto::random_token;
use crate::oauth::client_auth::SECRET_HASH_PURPOSE;
use crate::oauth::{redirect_uri, scope};
use crate::state::AppState;
use crate::store::{Client, ClientStore, NewClient, StoreError};

const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

#[derive(Args, Debug)]
pub struct CreateClientArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE and token endpoint auth method `none`).
    #[arg(long)]
    pub public: bool,
    /// Skips the consent page and may request oxidp's own API scopes.
    #[arg(long)]
    pub first_party: bool,
    #[arg(long, value_delimiter = ',', default_value = "authorization_code,refresh_token")]
    pub grant_types: Vec<String>,
    #[arg(long, default_value = "openid profile email offline_access")]
    pub scopes: String,
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// RFC 8707 resource indicators this client may request.
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// May introspect any token.
    #[arg(long)]
    pub resource_server: bool,
    /// Allows an old confidential client to omit PKCE.
    #[arg(long)]
    pub pkce_exempt: bool,
    /// The JWS algorithm of this client's ID tokens: RS256 (default), ES256 or EdDSA.
    #[arg(long = "id-token-alg")]
    pub id_token_alg: Option<String>,
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
        }
    }

    fn from_args(args: &CreateClientArgs) -> Result<ClientSpec, FieldError> {
        Ok(ClientSpec {
            name: args.name.trim().to_string(),
            redirect_uris: args.redirect_uris.clone(),
            post_logout_redirect_uris: args.post_logout_redirect_uris.clone(),
            public: args.public,
            first_party: args.first_party,
            grant_types: args.grant_types.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect(),
            scopes: scope::parse(&args.scopes)
                .map_err(|_| field("scopes", "contains characters that are not allowed"))?,
            audiences: args.audiences.clone(),
            resources: args.resources.clone(),
            resource_server: args.resource_server,
            pkce_exempt: args.pkce_exempt,
            api_access: false,
            id_token_alg: args.id_token_alg.clone(),
        })
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
        }
    }
}

/// A rejected value and the field it came in.
#[derive(Debug)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field, message: message.into() }
}

/// The CLI flag for each field.
fn flag(field: &str) -> &'static str {
    match field {
        "redirect_uris" => "--redirect-uri",
        "post_logout_redirect_uris" => "--post-logout-redirect-uri",
        "grant_types" => "--grant-types",
        "scopes" => "--scopes",
        "audiences" => "--audience",
        "resources" => "--resource",
        "pkce_exempt" => "--pkce-exempt",
        "id_token_signed_response_alg" => "--id-token-alg",
        _ => "--name",
    }
}

/// Registers a client; the secret of a confidential client is returned (once).
pub async fn register(state: &AppState, spec: ClientSpec) -> Result<(Client, Option<String>), RegisterError> {
    spec.validate(&state.config.signing_algs).map_err(RegisterError::Invalid)?;
    let client_id = random_token(18);
    let secret = (!spec.public).then(|| random_token(32));
    let new = spec
        .into_new_client(client_id.clone(), secret.as_ref().map(|s| state.secret.keyed_hash(SECRET_HASH_PURPOSE, s)));
    state.db.create_client(new, state.now()).await.map_err(RegisterError::Store)?;
    crate::oauth::clients::changed(state).await.map_err(RegisterError::Store)?;
    let client = state
        .db
        .client_by_id(&client_id)
        .await
        .map_err(RegisterError::Store)?
        .ok_or_else(|| RegisterError::Store(StoreError::Corrupt("client vanished after insert".into())))?;
    Ok((client, secret))
}

/// A new secret for a confidential client; the old one stops working at once.
pub async fn rotate_secret(state: &AppState, client: &Client) -> Result<String, RegisterError> {
    if client.is_public {
        return Err(RegisterError::Invalid(field("public", "public clients have no secret")));
    }
    let secret = random_token(32);
    state
        .db
        .set_client_secret_hash(&client.id, &state.secret.keyed_hash(SECRET_HASH_PURPOSE, &secret), state.now())
        .await
        .map_err(RegisterError::Store)?;
    crate::oauth::clients::changed(state).await.map_err(RegisterError::Store)?;
    Ok(secret)
}

#[derive(Debug)]
pub enum RegisterError {
    Invalid(FieldError),
    Store(StoreError),
}

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
        "token_endpoint_auth_method": if client.is_public { "none" } else { "client_secret_basic" },
    })
}

/// `oxidp client create`.
pub async fn create(state: &AppState, args: CreateClientArgs) -> Result<Value, CliError> {
    let spec =
        ClientSpec::from_args(&args).map_err(|e| CliError::Invalid(format!("{}: {}", flag(e.field), e.message)))?;
    let (client, secret) = register(state, spec).await.map_err(|error| match error {
        RegisterError::Invalid(e) => CliError::Invalid(format!("{}: {}", flag(e.field), e.message)),
        RegisterError::Store(e) => CliError::Failed(e.to_string()),
    })?;
    let mut output = describe(&client);
    if let Some(secret) = secret {
        output["client_secret"] = Value::String(secret);
    }
    Ok(output)
}
