//! The DPoP scheme at oxidp's own API (RFC 9449 §7): `Authorization: DPoP <token>` is turned
//! into `Bearer` for poem-openapi's security schemes, and what the proof check needs is kept on
//! the request (checked by `caller::check_dpop`).

use poem::Request;

use crate::oauth::dpop;
use crate::state::SharedState;

/// A request that presented its token with the DPoP scheme (RFC 9449 §7): the middleware
/// around the API turns `Authorization: DPoP` into `Bearer` for the security schemes and keeps
/// here what the proof check needs.
#[derive(Debug, Clone)]
pub struct DpopScheme {
    pub proofs: Vec<String>,
    pub method: String,
    pub url: String,
}

/// Before the API's security schemes look at the request: `Authorization: DPoP <token>`
/// becomes `Bearer <token>`, remembered as [`DpopScheme`] with `htu` = issuer + path.
pub fn accept_dpop_scheme(req: &mut Request) {
    let Some(issuer) = req.data::<SharedState>().map(|state| state.config.issuer.clone()) else { return };
    let token = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(dpop::SCHEME))
        .map(|(_, token)| token.trim().to_string());
    let Some(token) = token else { return };
    let Ok(bearer) = poem::http::HeaderValue::from_str(&format!("Bearer {token}")) else { return };
    let proofs =
        req.headers().get_all("dpop").iter().map(|value| value.to_str().unwrap_or_default().to_string()).collect();
    let scheme = DpopScheme {
        proofs,
        method: req.method().as_str().to_string(),
        url: format!("{issuer}{}", req.original_uri().path()),
    };
    req.headers_mut().insert(poem::http::header::AUTHORIZATION, bearer);
    req.extensions_mut().insert(scheme);
}
