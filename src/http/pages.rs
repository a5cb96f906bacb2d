//! Server-rendered pages (askama, auto-escaped). No scripts: everything works without JavaScript.

use askama::Template;
use poem::http::StatusCode;
use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use poem::{Response, handler};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf: &'a str,
    pub request_id: &'a str,
    pub email: &'a str,
    pub client_name: Option<&'a str>,
    pub document: DocumentClient,
    pub error: Option<&'a str>,
    pub providers: Vec<ProviderButton>,
}

/// What the pages say about a client known only by its metadata document: the host that
/// published it, and whether the code goes to this very computer (a loopback redirect URI).
#[derive(Default)]
pub struct DocumentClient {
    pub host: Option<String>,
    pub loopback_redirect: bool,
}

pub struct ProviderButton {
    pub name: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub csrf: &'a str,
    pub request_id: &'a str,
    pub client_name: &'a str,
    pub document: DocumentClient,
    pub user_email: &'a str,
    pub scopes: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DeviceEntryPage<'a> {
    pub csrf: &'a str,
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirmPage<'a> {
    pub csrf: &'a str,
    pub ticket: &'a str,
    pub user_code: &'a str,
    pub client_name: &'a str,
    pub user_email: &'a str,
    pub scopes: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
    pub hidden: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    request_id: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "text/html; charset=utf-8")
            .header(CACHE_CONTROL, "no-store")
            .body(html),
        Err(error) => {
            tracing::error!(%error, "template failed to render");
            Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body("internal error")
        }
    }
}

pub fn error(status: StatusCode, title: &str, message: &str, request_id: Option<String>) -> Response {
    render(status, &ErrorPage { title, message, request_id })
}

pub fn message(title: &str, message: &str) -> Response {
    render(StatusCode::OK, &MessagePage { title, message })
}

pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "confirm who you are",
        "profile" => "see your name, picture and locale",
        "email" => "see your email address",
        "phone" => "see your phone number",
        "offline_access" => "stay signed in when you are away",
        "account" => "manage your oxidp account",
        "admin" => "administer oxidp",
        _ => "an application-specific permission",
    }
}

#[handler]
pub fn stylesheet() -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "text/css; charset=utf-8")
        .header(CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("../../static/oxidp.css"))
}
