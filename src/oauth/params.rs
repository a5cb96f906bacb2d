//! Request parameters from a query string or form body. RFC 6749 §3.1: parameters must
//! not repeat, so repeats are kept aside for the checks to refuse.

use std::collections::HashMap;

/// `+` is a space, then percent-decoding; `None` unless the result is valid UTF-8.
fn decode_component(raw: &[u8]) -> Option<String> {
    let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_encoding::percent_decode(&spaced).decode_utf8().ok().map(|text| text.into_owned())
}

#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

/// The longest single parameter value accepted anywhere (tokens and state included).
pub const MAX_PARAM_LEN: usize = 4096;

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes; `None` when they are not valid UTF-8
    /// after percent-decoding.
    pub fn parse(bytes: &[u8]) -> Option<Params> {
        let mut params = Params::default();
        for pair in bytes.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let (key, value) = (decode_component(key)?, decode_component(value)?);
            if params.values.contains_key(&key) {
                if !params.repeated.contains(&key) {
                    params.repeated.push(key);
                }
                continue;
            }
            params.values.insert(key, value);
        }
        Some(params)
    }

    /// The value, treating an empty value as absent (RFC 6749 §3.1).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|value| !value.is_empty())
    }

    pub fn is_repeated(&self, key: &str) -> bool {
        self.repeated.iter().any(|r| r == key)
    }

    pub fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }

    /// The first parameter whose value is longer than `MAX_PARAM_LEN`.
    pub fn first_oversized(&self) -> Option<&str> {
        self.values.iter().find(|(_, value)| value.len() > MAX_PARAM_LEN).map(|(key, _)| key.as_str())
    }

    /// The names that came more than once.
    pub fn repeated(&self) -> impl Iterator<Item = &str> {
        self.repeated.iter().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Params {
        let mut params = Params::default();
        for (key, value) in pairs {
            params.values.insert(key.to_string(), value.to_string());
        }
        params
    }
}

/// Repeated or oversized parameters are refused before anything else looks at them.
pub fn reject_malformed(params: &Params) -> Result<(), super::OAuthError> {
    if let Some(name) = params.first_repeated() {
        return Err(super::OAuthError::invalid_request(format!("parameter '{name}' is repeated")));
    }
    if let Some(name) = params.first_oversized() {
        return Err(super::OAuthError::invalid_request(format!("parameter '{name}' is too long")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_and_bad_utf8() {
        let params = Params::parse(b"a=1&b=2&a=3").expect("utf8");
        assert_eq!(params.get("a"), Some("1"));
        assert!(params.is_repeated("a"));
        assert!(!params.is_repeated("b"));
        assert!(Params::parse(b"a=%FF%FE").is_none());
        assert_eq!(Params::parse(b"a=").expect("ok").get("a"), None);
        assert_eq!(Params::parse(b"a=%EF%BF%BD+b").expect("U+FFFD itself is fine").get("a"), Some("\u{FFFD} b"));
        assert!(Params::parse(b"a=%C3%28").is_none());
    }
}
