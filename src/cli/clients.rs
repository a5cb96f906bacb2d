//! `oxidp client create`: flags into a [`ClientSpec`], field errors back into flags.

use clap::Args;
use serde_json::Value;

use super::CliError;
use crate::admin::client_jwt::JwtAuthSpec;
use crate::admin::client_pairwise::pairwise_choice;
use crate::admin::clients::{self, ClientError, ClientSpec, FieldError};
use crate::audit::Initiator;
use crate::oauth::scope;
use crate::state::AppState;

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
    /// Comma-separated; default authorization_code,refresh_token.
    #[arg(long, value_delimiter = ',')]
    pub grant_types: Option<Vec<String>>,
    /// Space-separated; default "openid profile email offline_access".
    #[arg(long)]
    pub scopes: Option<String>,
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
    /// Authorization requests must be pushed to /par first (RFC 9126).
    #[arg(long)]
    pub require_par: bool,
    /// Every token request must carry a DPoP proof (RFC 9449 `dpop_bound_access_tokens`).
    #[arg(long)]
    pub dpop_bound_access_tokens: bool,
    /// `private_key_jwt` or `client_secret_jwt` (RFC 7523); default: the secret is sent as is.
    #[arg(long)]
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JSON JWK set (`private_key_jwt`).
    #[arg(long)]
    pub jwks: Option<String>,
    /// Where the client publishes its JWK set (`private_key_jwt`).
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// The one algorithm the client signs its assertions with.
    #[arg(long)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The one algorithm the client signs its request objects (RFC 9101) with.
    #[arg(long)]
    pub request_object_signing_alg: Option<String>,
    /// `public` (default) or `pairwise` subject identifiers (OIDC Core §8).
    #[arg(long)]
    pub subject_type: Option<String>,
    /// A JSON list of the client's redirect URIs whose host is its pairwise sector.
    #[arg(long)]
    pub sector_identifier_uri: Option<String>,
    /// Where logout tokens are POSTed when a session the client took part in ends.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Logout tokens must carry `sid` (`backchannel_logout_session_required`).
    #[arg(long, requires = "backchannel_logout_uri")]
    pub backchannel_logout_session_required: bool,
}

impl CreateClientArgs {
    fn into_spec(self) -> Result<ClientSpec, FieldError> {
        let grant_types = match &self.grant_types {
            Some(named) => named.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect(),
            None => clients::default_grant_types(),
        };
        let scopes = match &self.scopes {
            Some(text) => {
                scope::parse(text).map_err(|_| clients::field("scopes", "contains characters that are not allowed"))?
            }
            None => clients::default_scopes(),
        };
        let pairwise = pairwise_choice(self.subject_type.as_deref(), self.sector_identifier_uri.clone())?;
        Ok(ClientSpec {
            pairwise,
            name: self.name.trim().to_string(),
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            public: self.public,
            first_party: self.first_party,
            grant_types,
            scopes,
            audiences: self.audiences,
            resources: self.resources,
            resource_server: self.resource_server,
            pkce_exempt: self.pkce_exempt,
            api_access: false,
            id_token_alg: self.id_token_alg,
            require_par: self.require_par,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            backchannel_logout: self.backchannel_logout_uri.map(|uri| (uri, self.backchannel_logout_session_required)),
            registered_via: None,
            jwt_auth: match self.token_endpoint_auth_method {
                None if self.jwks.is_none() && self.jwks_uri.is_none() && self.request_object_signing_alg.is_none() => {
                    None
                }
                method => Some(JwtAuthSpec {
                    method: method.unwrap_or_default(),
                    jwks: self.jwks,
                    jwks_uri: self.jwks_uri,
                    signing_alg: self.token_endpoint_auth_signing_alg,
                    request_object_alg: self.request_object_signing_alg,
                }),
            },
        })
    }
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
        "public" => "--public",
        "token_endpoint_auth_method" => "--token-endpoint-auth-method",
        "token_endpoint_auth_signing_alg" => "--token-endpoint-auth-signing-alg",
        "request_object_signing_alg" => "--request-object-signing-alg",
        "jwks" => "--jwks",
        "jwks_uri" => "--jwks-uri",
        "subject_type" => "--subject-type",
        "sector_identifier_uri" => "--sector-identifier-uri",
        "backchannel_logout_uri" => "--backchannel-logout-uri",
        _ => "--name",
    }
}

fn invalid(error: FieldError) -> CliError {
    CliError::Invalid(format!("{}: {}", flag(error.field), error.message))
}

/// Registers a client (audited as the CLI); the output carries a confidential client's secret once.
pub async fn create_client(state: &AppState, args: CreateClientArgs) -> Result<Value, CliError> {
    let spec = args.into_spec().map_err(invalid)?;
    let (client, secret) = clients::register(state, &Initiator::cli(), spec).await.map_err(|error| match error {
        ClientError::Invalid(e) => invalid(e),
        other => CliError::Failed(other.to_string()),
    })?;
    let mut output = clients::describe(&client);
    if let Some(secret) = secret {
        output["client_secret"] = Value::String(secret);
    }
    Ok(output)
}
