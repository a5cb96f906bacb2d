//! Swagger UI at `/docs` (with its own CSP allowing exactly its inline scripts, by hash) and the
//! document at `/openapi.json`. Swagger's Authorize button runs oxidp's code flow with PKCE
//! as the public first-party client `oxidp-api`.

use base64::Engine;
use poem::endpoint::make_sync;
use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use poem::{Endpoint, Request, Response};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The pages, built once at start.
pub struct Docs {
    pub ui_html: String,
    pub ui_csp: String,
    pub receiver_html: String,
    pub receiver_csp: String,
    pub spec_json: String,
}

impl Docs {
    pub async fn build(config: &Config) -> Docs {
        let service = super::service(config);
        // The template derives the redirect URI from the page's address, hash included, so a deep
        // link such as /docs#/Me/get_me sent `{issuer}/docs#/Me/get_me/oauth-receiver.html`, which
        // /authorize refuses: use the URI registered for oxidp-api instead.
        let receiver_uri =
            serde_json::to_string(&format!("{}/docs/oauth-receiver.html", config.issuer)).unwrap_or_default();
        let html = service.swagger_ui_html().replacen("SwaggerUIBundle({", "const ui = SwaggerUIBundle({", 1).replacen(
            "oauth2RedirectUrl: oauth2RedirectUrl,",
            &format!("oauth2RedirectUrl: {receiver_uri},"),
            1,
        );
        let init = r#"ui.initOAuth({ clientId: "oxidp-api", usePkceWithAuthorizationCodeGrant: true, scopes: "openid account" });"#;
        let ui_html = match html.rfind("</script>") {
            Some(at) => format!("{}\n    {init}\n{}", &html[..at], &html[at..]),
            None => html,
        };
        // The receiver page is part of the same swagger endpoint; fetch it in-process once.
        let receiver = service.swagger_ui();
        let receiver_html = receiver
            .get_response(Request::builder().uri_str("/oauth-receiver.html").finish())
            .await
            .into_body()
            .into_string()
            .await
            .unwrap_or_default();
        Docs {
            ui_csp: csp_for(&ui_html),
            receiver_csp: csp_for(&receiver_html),
            ui_html,
            receiver_html,
            spec_json: service.spec(),
        }
    }

    pub fn endpoint(docs: std::sync::Arc<Docs>) -> impl Endpoint {
        let (ui, receiver, spec) = (docs.clone(), docs.clone(), docs);
        poem::Route::new()
            .at("/docs", make_sync(move |_| html(&ui.ui_html, &ui.ui_csp)))
            .at("/docs/oauth-receiver.html", make_sync(move |_| html(&receiver.receiver_html, &receiver.receiver_csp)))
            .at(
                "/openapi.json",
                make_sync(move |_| {
                    Response::builder().header(CONTENT_TYPE, "application/json").body(spec.spec_json.clone())
                }),
            )
    }
}

fn html(body: &str, csp: &str) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(CACHE_CONTROL, "no-cache")
        .header("content-security-policy", csp)
        .body(body.to_string())
}

/// A CSP that allows exactly the page's inline scripts, by their SHA-256.
fn csp_for(page: &str) -> String {
    let hashes: Vec<String> = inline_scripts(page)
        .into_iter()
        .map(|script| {
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
        })
        .collect();
    format!(
        "default-src 'none'; script-src {}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        hashes.join(" ")
    )
}

/// The contents of the page's `<script>` elements, in order. Scanning from each opening tag to
/// the next closing tag (not splitting on "<script") keeps script text that mentions "<script".
fn inline_scripts(page: &str) -> Vec<&str> {
    let mut scripts = Vec::new();
    let mut rest = page;
    while let Some(open) = rest.find("<script") {
        let after_open = &rest[open..];
        let Some(tag_end) = after_open.find('>') else { break };
        let body = &after_open[tag_end + 1..];
        let Some(close) = body.find("</script>") else { break };
        scripts.push(&body[..close]);
        rest = &body[close + "</script>".len()..];
    }
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_each_inline_script() {
        let page = "<script charset=\"UTF-8\">a('<script')</script><p></p><script>b()</script>";
        assert_eq!(inline_scripts(page), vec!["a('<script')", "b()"]);
        assert_eq!(csp_for(page).matches("'sha256-").count(), 2);
    }

    #[tokio::test]
    async fn swagger_uses_the_registered_redirect_uri() {
        let config = Config { issuer: "https://id.example.com".into(), ..Config::default() };
        let docs = Docs::build(&config).await;
        assert!(docs.ui_html.contains(r#"oauth2RedirectUrl: "https://id.example.com/docs/oauth-receiver.html","#));
    }
}
