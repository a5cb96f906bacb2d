use clap::Args;
use serde_json::{Value, json};

use crate::cli::CliError;
use crate::crypto::random_token;
use crate::oauth::client_auth::SECRET_HASH_PURPOSE;
use crate::oauth::{redirect_uri, scope};
use crate::state::AppState;
use crate::store::{ClientStore, NewClient};

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
}

pub async fn create(state: &AppState, args: CreateClientArgs) -> Result<Value, CliError> {
    let invalid = |message: String| CliError::Invalid(message);
    if args.name.trim().is_empty() {
        return Err(invalid("--name must not be empty".into()));
    }
    let grant_types: Vec<String> =
        args.grant_types.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
    if let Some(unknown) = grant_types.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(invalid(format!(
            "--grant-types: unknown grant type '{unknown}' (known: {})",
            GRANT_TYPES.join(", ")
        )));
    }
    if grant_types.is_empty() {
        return Err(invalid("--grant-types must name at least one grant type".into()));
    }
    if args.public && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(invalid("--grant-types: client_credentials is not allowed for a --public client".into()));
    }
    if args.public && args.pkce_exempt {
        return Err(invalid("--pkce-exempt is only for confidential clients".into()));
    }
    if grant_types.iter().any(|g| g == "authorization_code") && args.redirect_uris.is_empty() {
        return Err(invalid("--redirect-uri is required for the authorization_code grant".into()));
    }
    for uri in &args.redirect_uris {
        redirect_uri::validate_registration(uri).map_err(|e| invalid(format!("--redirect-uri {e}")))?;
    }
    for uri in &args.post_logout_redirect_uris {
        redirect_uri::validate_registration(uri).map_err(|e| invalid(format!("--post-logout-redirect-uri {e}")))?;
    }
    for resource in &args.resources {
        let url = url::Url::parse(resource).map_err(|e| invalid(format!("--resource '{resource}': {e}")))?;
        if url.fragment().is_some() {
            return Err(invalid(format!("--resource '{resource}' must not contain a fragment")));
        }
    }
    if args.audiences.iter().any(|a| a.trim().is_empty()) {
        return Err(invalid("--audience must not be empty".into()));
    }
    let scopes =
        scope::parse(&args.scopes).map_err(|_| invalid("--scopes contains characters that are not allowed".into()))?;
    if scopes.iter().any(|s| scope::is_api_scope(s)) && !args.first_party {
        return Err(invalid("--scopes: account and admin are only for --first-party clients".into()));
    }

    let client_id = random_token(18);
    let secret = (!args.public).then(|| random_token(32));
    let client = NewClient {
        id: client_id.clone(),
        name: args.name.trim().to_string(),
        secret_hash: secret.as_ref().map(|s| state.secret.keyed_hash(SECRET_HASH_PURPOSE, s)),
        redirect_uris: args.redirect_uris.clone(),
        post_logout_redirect_uris: args.post_logout_redirect_uris.clone(),
        grant_types: grant_types.clone(),
        scopes: scopes.clone(),
        audiences: args.audiences.clone(),
        resources: args.resources.clone(),
        is_public: args.public,
        first_party: args.first_party,
        resource_server: args.resource_server,
        pkce_exempt: args.pkce_exempt,
        api_access: false,
    };
    state.db.create_client(client, state.now()).await.map_err(|e| CliError::Failed(e.to_string()))?;
    let mut output = json!({
        "client_id": client_id,
        "name": args.name.trim(),
        "redirect_uris": args.redirect_uris,
        "post_logout_redirect_uris": args.post_logout_redirect_uris,
        "grant_types": grant_types,
        "scopes": scope::join(&scopes),
        "audiences": args.audiences,
        "resources": args.resources,
        "public": args.public,
        "first_party": args.first_party,
        "resource_server": args.resource_server,
        "token_endpoint_auth_method": if args.public { "none" } else { "client_secret_basic" },
    });
    if let Some(secret) = secret {
        output["client_secret"] = Value::String(secret);
    }
    Ok(output)
}
