//! Redirect URI rules: exact match, except that a registered loopback IP literal accepts
//! any port (RFC 8252 §7.3). `localhost` never gets that exception.

use url::{Host, Url};

pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(registered), Ok(presented)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    is_loopback_ip(&registered)
        && registered.scheme() == presented.scheme()
        && registered.host() == presented.host()
        && presented.username().is_empty()
        && presented.password().is_none()
        && registered.path() == presented.path()
        && registered.query() == presented.query()
        && presented.fragment().is_none()
}

/// `http://127.0.0.1…` or `http://[::1]…`
fn is_loopback_ip(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// Checks a URI an operator registers: absolute, no fragment, and plain `http` only on loopback IPs.
pub fn validate_registration(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("'{uri}' must not contain a fragment"));
    }
    if url.scheme() == "http" && !is_loopback_ip(&url) {
        return Err(format!("'{uri}': plain http is only allowed for 127.0.0.1 and [::1]"));
    }
    if matches!(url.scheme(), "javascript" | "data" | "file" | "vbscript") {
        return Err(format!("'{uri}': scheme not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_loopback_rules() {
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches("https://app.example/cb", "https://app.example/cb/"));
        assert!(!matches("https://app.example/cb", "https://app.example:444/cb"));
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:53817/cb"));
        assert!(matches("http://127.0.0.1:8000/cb", "http://127.0.0.1:9000/cb"));
        assert!(matches("http://[::1]/cb", "http://[::1]:4000/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5000/other"));
        assert!(!matches("http://localhost/cb", "http://localhost:5000/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://user@127.0.0.1:5000/cb"));
        assert!(!matches("http://127.0.0.1/cb", "https://127.0.0.1:5000/cb"));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_registration("https://app.example/cb").is_ok());
        assert!(validate_registration("http://127.0.0.1/cb").is_ok());
        assert!(validate_registration("com.example.app:/oauth").is_ok());
        assert!(validate_registration("http://app.example/cb").is_err());
        assert!(validate_registration("https://app.example/cb#x").is_err());
        assert!(validate_registration("/relative").is_err());
    }
}
