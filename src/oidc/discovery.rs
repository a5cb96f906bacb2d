//! OIDC Discovery and RFC 8414 metadata, built once from the configuration.

use serde_json::{Value, json};

use crate::config::Config;
use crate::oauth::scope::STANDARD_SCOPES;

fn common(config: &Config) -> serde_json::Map<String, Value> {
    let issuer = &config.issuer;
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"];
    let mut assertion_algs: Vec<&str> = crate::crypto::jws::ASYMMETRIC.to_vec();
    assertion_algs.extend(crate::crypto::jws::HMAC);
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "pushed_authorization_request_endpoint": format!("{issuer}/par"),
        "device_authorization_endpoint": format!("{issuer}/device_authorization"),
        "require_pushed_authorization_requests": config.require_par,
        "scopes_supported": STANDARD_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::oauth::grant_types::DEVICE_CODE,
            crate::oauth::grant_types::TOKEN_EXCHANGE,
        ],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        // RFC 9101: request objects by value; by reference only PAR's own URNs (nothing fetched).
        "request_parameter_supported": true,
        "request_uri_parameter_supported": false,
        "request_object_signing_alg_values_supported": assertion_algs,
        "dpop_signing_alg_values_supported": crate::crypto::jws::DPOP,
        "service_documentation": format!("{issuer}/docs"),
    });
    let mut map = match document {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if config.client_id_metadata_documents == crate::config::Switch::On {
        map.insert("client_id_metadata_document_supported".into(), json!(true));
    }
    if config.dynamic_registration != crate::config::DynamicRegistration::Off {
        map.insert("registration_endpoint".into(), json!(format!("{issuer}/register")));
    }
    map
}

pub fn oauth_metadata(config: &Config) -> Value {
    Value::Object(common(config))
}

pub fn openid_configuration(config: &Config) -> Value {
    let issuer = &config.issuer;
    let mut document = common(config);
    let mut claims: Vec<&str> = super::claims::SUPPORTED.to_vec();
    claims.extend(super::claims::SUPPORTED_MORE);
    let extra = json!({
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "subject_types_supported": ["public", "pairwise"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "id_token_signing_alg_values_supported": config.signing_algs,
        "claims_supported": claims,
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
    });
    if let Value::Object(extra) = extra {
        document.extend(extra);
    }
    Value::Object(document)
}

/// Where the metadata of oxidp's own API (RFC 9728) is served, relative to the issuer.
pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource/api";

/// The URL of that metadata, named by the API's `WWW-Authenticate` challenges.
pub fn protected_resource_metadata_url(config: &Config) -> String {
    format!("{}{PROTECTED_RESOURCE_PATH}", config.issuer)
}

/// RFC 9728 metadata of the resource `{issuer}/api` (the audience of API access tokens): who
/// issues its tokens, which scopes reach it, and how to present them.
pub fn protected_resource_metadata(config: &Config) -> Value {
    let issuer = &config.issuer;
    json!({
        "resource": config.api_audience(),
        "authorization_servers": [issuer],
        "scopes_supported": [crate::oauth::scope::ACCOUNT, crate::oauth::scope::ADMIN],
        "bearer_methods_supported": ["header"],
        "resource_name": "oxidp API",
        "resource_documentation": format!("{issuer}/docs"),
    })
}
