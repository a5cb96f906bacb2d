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
        let html = service.swagger_ui_html().replacen(
            "SwaggerUIBundle({",
            "const ui = SwaggerUIBundle({",
            1,
        );
        let init = r#"ui.initOAuth({ clientId: "oxidp-api", usePkceWithAuthorizationCodeGrant: true, scopes: "openid account" });"#;
        let ui_html = match html.rfind("</script>") {
            Some(at) => format!("{}\n    {init}\n{}", &html[..at], &html[at..]),
            None => html,
        };
        // The receiver page is part of the same swagger endpoint; fetch it in-process once.
        let receiver = service.swagger_ui();
        let receiver_html = match receiver.get_response(Request::builder().uri_str("/oauth-receiver.html").finish()).await.into_body().into_string().await {
            Ok(text) => text,
            Err(_) => String::new(),
        };
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
                make_sync(move |_| Response::builder().header(CONTENT_TYPE, "application/json").body(spec.spec_json.clone())),
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
        .map(|script| format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))))
        .collect();
    format!(
        "default-src 'none'; script-src {}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        hashes.join(" ")
    )
}

fn inline_scripts(page: &str) -> impl Iterator<Item = &str> {
    page.split("<script").skip(1).filter_map(|rest| {
        let open_end = rest.find('>')?;
        let content = &rest[open_end + 1..];
        let close = content.find("</script>")?;
        Some(&content[..close])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_each_inline_script() {
        let page = "<script charset=\"UTF-8\">a()</script><p></p><script>b()</script>";
        let scripts: Vec<&str> = inline_scripts(page).collect();
        assert_eq!(scripts, vec!["a()", "b()"]);
        assert_eq!(csp_for(page).matches("'sha256-").count(), 2);
    }
}
