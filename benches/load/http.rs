//! One keep-alive HTTP/1.1 connection per worker (hyper's low-level client, no pool), a
//! name-keyed cookie jar, and the few helpers the scenarios need.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use sha2::Digest;
use tokio::net::TcpStream;

/// Every request is abandoned after this long, so no loop can hang on a stuck server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: Bytes,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..400).contains(&self.status)
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("status {}: body is not JSON ({e})", self.status))
    }

    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(200).collect();
        format!("status {}: {}", self.status, text.replace('\n', " "))
    }
}

pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub connects: u64,
}

impl Conn {
    pub fn new(addr: SocketAddr, host: String) -> Conn {
        Conn { addr, host, sender: None, connects: 0 }
    }

    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr).await.map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, connection) =
                http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
            self.connects += 1;
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        Ok(sender)
    }

    /// Sends one request on this worker's connection (reconnecting once if the server closed it).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        cookies: Option<&str>,
        form: Option<String>,
    ) -> Result<Response, String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.send_inner(&method, path, auth, cookies, form.clone())).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(first)) => {
                // A keep-alive connection closed by the server between requests: one retry.
                self.sender = None;
                match tokio::time::timeout(REQUEST_TIMEOUT, self.send_inner(&method, path, auth, cookies, form)).await {
                    Ok(result) => result.map_err(|second| format!("{first}; retry: {second}")),
                    Err(_) => Err("timed out".into()),
                }
            }
            Err(_) => {
                self.sender = None;
                Err("timed out".into())
            }
        }
    }

    async fn send_inner(
        &mut self,
        method: &Method,
        path: &str,
        auth: Option<&str>,
        cookies: Option<&str>,
        form: Option<String>,
    ) -> Result<Response, String> {
        let mut builder = Request::builder().method(method.clone()).uri(path).header(HOST, self.host.as_str());
        if let Some(auth) = auth {
            builder = builder.header(AUTHORIZATION, auth);
        }
        if let Some(cookies) = cookies.filter(|c| !c.is_empty()) {
            builder = builder.header(COOKIE, cookies);
        }
        let body = match form {
            Some(form) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| format!("request: {e}"))?;
        let sender = self.ready().await?;
        let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let set_cookies =
            response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
        let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok(Response { status, location, set_cookies, body })
    }
}

/// Cookies by name only (one server, every path): enough for a login session.
#[derive(Default)]
pub struct Jar {
    cookies: BTreeMap<String, String>,
}

impl Jar {
    pub fn absorb(&mut self, response: &Response) {
        for line in &response.set_cookies {
            let mut parts = line.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { continue };
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-") || attr.contains("1970")
            });
            if expired || value.trim().is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    pub fn header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }
}

pub fn basic_auth(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", encode(id), encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

pub fn random_b64(bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// (verifier, S256 challenge)
pub fn pkce_pair() -> (String, String) {
    let verifier = random_b64(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The path and query of an absolute or relative URL (the bench talks to one server only).
pub fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(index) => rest[index..].to_string(),
            None => "/".into(),
        },
        None if url.starts_with('/') => url.to_string(),
        None => format!("/{url}"),
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(html_unescape(&tag[start..end]))
}

/// The first `<form>` of a page: its action and its inputs (name, value) in order.
pub struct HtmlForm {
    pub action: String,
    pub inputs: Vec<(String, String)>,
}

pub fn parse_form(html: &str) -> Option<HtmlForm> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>").map(|e| e + start).unwrap_or(html.len());
    let form = &html[start..end];
    let open_end = form.find('>')?;
    let action = attribute(&form[..open_end], "action").unwrap_or_default();
    let mut inputs = Vec::new();
    let mut rest = form;
    while let Some(index) = rest.find("<input") {
        let tag_end = rest[index..].find('>').map(|e| e + index).unwrap_or(rest.len());
        let tag = &rest[index..tag_end];
        if let Some(name) = attribute(tag, "name") {
            inputs.push((name, attribute(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    Some(HtmlForm { action, inputs })
}
