//! Redirect URI rules: exact match, except that a registered loopback IP literal accepts
//! any port (RFC 8252 §7.3). Loopback is all of 127.0.0.0/8 and ::1, the one predicate of
//! `crate::outbound`; `localhost` never gets that exception.

use url::Url;

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

/// `http://127.x.y.z…` or `http://[::1]…`
fn is_loopback_ip(url: &Url) -> bool {
    url.scheme() == "http" && url.host().is_some_and(|host| crate::outbound::is_loopback_host(&host))
}

/// Checks a URI an operator registers: absolute, no fragment, and plain `http` only on loopback IPs.
pub fn validate_registration(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("'{uri}' must not contain a fragment"));
    }
    if url.scheme() == "http" && !is_loopback_ip(&url) {
        return Err(format!("'{uri}': plain http is only allowed for loopback IP addresses (127.0.0.0/8, [::1])"));
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
        // Loopback is all of 127.0.0.0/8, but the host itself must still match.
        assert!(matches("http://127.0.0.2/cb", "http://127.0.0.2:5000/cb"));
        assert!(matches("http://127.1.2.3:80/cb", "http://127.1.2.3:8080/cb"));
        assert!(!matches("http://127.0.0.2/cb", "http://127.0.0.1:5000/cb"));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_registration("https://app.example/cb").is_ok());
        assert!(validate_registration("http://127.0.0.1/cb").is_ok());
        assert!(validate_registration("http://127.0.0.2/cb").is_ok());
        assert!(validate_registration("http://127.255.0.9:4000/cb").is_ok());
        assert!(validate_registration("http://[::1]/cb").is_ok());
        assert!(validate_registration("http://128.0.0.1/cb").is_err());
        assert!(validate_registration("http://localhost/cb").is_err());
        assert!(validate_registration("com.example.app:/oauth").is_ok());
        assert!(validate_registration("http://app.example/cb").is_err());
        assert!(validate_registration("https://app.example/cb#x").is_err());
        assert!(validate_registration("/relative").is_err());
    }
}
