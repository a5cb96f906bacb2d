//! Redirect URI rules: `matches` (registered vs presented) and `validate_registration`.
//! Input: the registered URI, a newline, the presented URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidp::oauth::redirect_uri::{matches, validate_registration};
use url::{Host, Url};

fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (registered, presented) = text.split_once('\n').unwrap_or((text, text));
    let _ = validate_registration(registered);
    let _ = validate_registration(presented);
    assert!(matches(registered, registered), "exact match is reflexive");
    if matches(registered, presented) && registered != presented {
        // Only the loopback exception lets two different strings match, and only in the port.
        let (r, p) = (Url::parse(registered).expect("registered parses"), Url::parse(presented).expect("parses"));
        assert!(is_loopback_http(&r) && is_loopback_http(&p), "{registered:?} ~ {presented:?}");
        assert_eq!(r.host(), p.host());
        assert_eq!((r.path(), r.query()), (p.path(), p.query()));
        assert!(p.username().is_empty() && p.password().is_none() && p.fragment().is_none());
    }
    if validate_registration(registered).is_ok() {
        let url = Url::parse(registered).expect("a valid registration parses");
        assert!(url.fragment().is_none());
        assert!(url.scheme() != "http" || is_loopback_http(&url), "plain http only on loopback IPs");
        assert!(!matches!(url.scheme(), "javascript" | "data" | "file" | "vbscript"));
    }
});
