//! Property tests (proptest) for the pure protocol rules an attacker controls the input of:
//! PKCE S256, scope strings, redirect-URI matching and the outbound address rule. The fuzz targets under `fuzz/` look
//! for crashes in the same functions; these look for wrong answers.

// A failing test or a broken benchmark set-up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oxidp::oauth::{pkce, redirect_uri, scope};
use oxidp::outbound::{OutboundPolicy, is_forbidden};
use proptest::prelude::*;
use sha2::Digest;

/// The S256 challenge of a verifier, computed independently of oxidp.
fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn valid_verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

/// A character RFC 7636 does not allow in a verifier.
fn non_unreserved_char() -> impl Strategy<Value = char> {
    any::<char>().prop_filter("not unreserved", |c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
fn scope_token() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![Just(0x21u8), 0x23u8..=0x5B, 0x5Du8..=0x7E].prop_map(char::from), 1..12)
        .prop_map(|chars| chars.into_iter().collect())
}

/// A character that may not appear inside a scope token (the space separates tokens).
fn forbidden_scope_char() -> impl Strategy<Value = char> {
    any::<char>().prop_filter("not a scope-token character", |c| {
        *c != ' ' && !(*c == '!' || ('#'..='[').contains(c) || (']'..='~').contains(c))
    })
}

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}\\.(example|test|org)"
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-zA-Z0-9_-]{1,8}){0,3}/?".prop_map(|p| if p.is_empty() { "/".to_string() } else { p })
}

fn query() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z]{1,5}=[a-z0-9]{0,5}")
}

fn uri(scheme: &str, authority: &str, path: &str, query: &Option<String>) -> String {
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

fn with_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // ---- PKCE (RFC 7636, S256 only)

    #[test]
    fn pkce_a_valid_verifier_matches_its_own_challenge(verifier in valid_verifier()) {
        let challenge = challenge_of(&verifier);
        prop_assert!(pkce::is_valid_verifier(&verifier));
        prop_assert!(pkce::is_valid_challenge(&challenge));
        prop_assert!(pkce::s256_matches(&verifier, &challenge));
    }

    #[test]
    fn pkce_a_verifier_matches_no_other_challenge(a in valid_verifier(), b in valid_verifier()) {
        prop_assume!(a != b);
        prop_assert!(!pkce::s256_matches(&a, &challenge_of(&b)));
        prop_assert!(!pkce::s256_matches(&b, &challenge_of(&a)));
    }

    #[test]
    fn pkce_the_challenge_itself_or_a_changed_one_never_matches(verifier in valid_verifier(), at in 0usize..43) {
        let challenge = challenge_of(&verifier);
        // `plain` would accept the verifier as its own challenge: S256 must not.
        prop_assert!(!pkce::s256_matches(&verifier, &verifier));
        let mut changed: Vec<u8> = challenge.clone().into_bytes();
        changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).expect("ascii");
        prop_assert!(!pkce::s256_matches(&verifier, &changed));
        // Truncated or extended challenges never match either.
        prop_assert!(!pkce::s256_matches(&verifier, &challenge[..at]));
        let extended = format!("{challenge}A");
        prop_assert!(!pkce::s256_matches(&verifier, &extended));
    }

    #[test]
    fn pkce_verifiers_of_wrong_length_or_alphabet_are_invalid(
        verifier in valid_verifier(),
        bad in non_unreserved_char(),
        at in 0usize..128,
        short in "[A-Za-z0-9._~-]{0,42}",
        long in "[A-Za-z0-9._~-]{129,200}",
    ) {
        let at = at % verifier.len();
        let mut with_bad = verifier.clone();
        with_bad.insert(at, bad);
        prop_assert!(!pkce::is_valid_verifier(&with_bad), "{with_bad:?}");
        prop_assert!(!pkce::is_valid_verifier(&short));
        prop_assert!(!pkce::is_valid_verifier(&long));
    }

    #[test]
    fn pkce_challenges_are_exactly_43_base64url_characters(text in "\\PC{0,60}") {
        let expected = text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        prop_assert_eq!(pkce::is_valid_challenge(&text), expected);
    }

    // ---- scope strings (RFC 6749 §3.3)

    #[test]
    fn scope_parse_of_join_is_idempotent_and_distinct(tokens in proptest::collection::vec(scope_token(), 0..10)) {
        let text = tokens.join(" ");
        let parsed = scope::parse(&text).expect("valid tokens parse");
        // Order of first appearance, duplicates dropped.
        let mut expected: Vec<String> = Vec::new();
        for token in &tokens {
            if !expected.contains(token) {
                expected.push(token.clone());
            }
        }
        prop_assert_eq!(&parsed, &expected);
        let again = scope::parse(&scope::join(&parsed)).expect("joined scopes parse");
        prop_assert_eq!(&again, &parsed);
    }

    #[test]
    fn scope_extra_spaces_change_nothing(tokens in proptest::collection::vec(scope_token(), 0..6), pad in 1usize..4) {
        let spaced = tokens.join(&" ".repeat(pad));
        let padded = format!("{}{spaced}{}", " ".repeat(pad), " ".repeat(pad));
        prop_assert_eq!(scope::parse(&padded).expect("valid"), scope::parse(&tokens.join(" ")).expect("valid"));
    }

    #[test]
    fn scope_a_forbidden_character_is_refused(
        before in scope_token(),
        bad in forbidden_scope_char(),
        after in proptest::option::of(scope_token()),
        others in proptest::collection::vec(scope_token(), 0..3),
    ) {
        let poisoned = format!("{before}{bad}{}", after.unwrap_or_default());
        let mut tokens = others;
        tokens.push(poisoned);
        prop_assert!(scope::parse(&tokens.join(" ")).is_err(), "{tokens:?}");
    }

    #[test]
    fn scope_any_text_parses_to_valid_distinct_tokens_or_is_refused(text in "\\PC{0,80}") {
        if let Ok(parsed) = scope::parse(&text) {
            for (index, token) in parsed.iter().enumerate() {
                prop_assert!(!token.is_empty());
                prop_assert!(token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)));
                prop_assert!(!parsed[..index].contains(token), "duplicate {token}");
            }
        }
    }

    // ---- redirect URIs (exact match; loopback IP literals accept any port, RFC 8252 §7.3)

    #[test]
    fn redirect_exact_match_is_reflexive(text in "\\PC{0,80}") {
        prop_assert!(redirect_uri::matches(&text, &text));
    }

    #[test]
    fn redirect_loopback_ip_accepts_any_port(
        v6 in any::<bool>(),
        registered_port in proptest::option::of(1u16..),
        presented_port in 1u16..,
        path in path(),
        query in query(),
    ) {
        let ip = if v6 { "[::1]" } else { "127.0.0.1" };
        let registered = uri("http", &with_port(ip, registered_port), &path, &query);
        let presented = uri("http", &with_port(ip, Some(presented_port)), &path, &query);
        prop_assert!(redirect_uri::validate_registration(&registered).is_ok(), "{registered}");
        prop_assert!(redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
    }

    #[test]
    fn redirect_loopback_port_freedom_changes_nothing_else(
        v6 in any::<bool>(),
        port in 1u16..,
        path in path(),
        other_path in path(),
        query in query(),
        other_query in query(),
        https in any::<bool>(),
        other_v6 in any::<bool>(),
    ) {
        let ip = if v6 { "[::1]" } else { "127.0.0.1" };
        let registered = uri("http", ip, &path, &query);
        if other_path != path {
            let presented = uri("http", &with_port(ip, Some(port)), &other_path, &query);
            prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
        }
        if other_query != query {
            let presented = uri("http", &with_port(ip, Some(port)), &path, &other_query);
            prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
        }
        if https {
            let presented = uri("https", &with_port(ip, Some(port)), &path, &query);
            prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
        }
        if other_v6 != v6 {
            let other_ip = if other_v6 { "[::1]" } else { "127.0.0.1" };
            let presented = uri("http", &with_port(other_ip, Some(port)), &path, &query);
            prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
        }
        for presented in [
            uri("http", &format!("user@{}", with_port(ip, Some(port))), &path, &query),
            format!("{}#fragment", uri("http", &with_port(ip, Some(port)), &path, &query)),
        ] {
            prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
        }
    }

    #[test]
    fn redirect_registered_uri_never_matches_another_host_port_path_or_query(
        host in host(),
        other_host in host(),
        port in proptest::option::of(1u16..),
        other_port in proptest::option::of(1u16..),
        path in path(),
        other_path in path(),
        query in query(),
        other_query in query(),
    ) {
        let registered = uri("https", &with_port(&host, port), &path, &query);
        prop_assert!(redirect_uri::validate_registration(&registered).is_ok(), "{registered}");
        let variants = [
            (other_host != host, uri("https", &with_port(&other_host, port), &path, &query)),
            (other_port != port, uri("https", &with_port(&host, other_port), &path, &query)),
            (other_path != path, uri("https", &with_port(&host, port), &other_path, &query)),
            (other_query != query, uri("https", &with_port(&host, port), &path, &other_query)),
            (true, uri("http", &with_port(&host, port), &path, &query)),
            (true, format!("{registered}#x")),
            (true, uri("https", &format!("user@{}", with_port(&host, port)), &path, &query)),
        ];
        for (differs, presented) in variants {
            if differs {
                prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
            }
        }
    }

    #[test]
    fn redirect_localhost_never_gets_the_loopback_exception(
        port in proptest::option::of(1u16..),
        other_port in 1u16..,
        path in path(),
        https in any::<bool>(),
    ) {
        let scheme = if https { "https" } else { "http" };
        let registered = uri(scheme, &with_port("localhost", port), &path, &None);
        let presented = uri(scheme, &with_port("localhost", Some(other_port)), &path, &None);
        prop_assume!(registered != presented);
        prop_assert!(!redirect_uri::matches(&registered, &presented), "{registered} vs {presented}");
        if !https {
            prop_assert!(redirect_uri::validate_registration(&registered).is_err(), "{registered}");
        }
    }

    #[test]
    fn redirect_plain_http_registration_only_on_loopback_ips(host in host(), path in path()) {
        let (plain, tls) = (format!("http://{host}{path}"), format!("https://{host}{path}"));
        prop_assert!(redirect_uri::validate_registration(&plain).is_err(), "{plain}");
        prop_assert!(redirect_uri::validate_registration(&tls).is_ok(), "{tls}");
    }

    #[test]
    fn redirect_matching_any_text_never_panics(a in "\\PC{0,60}", b in "\\PC{0,60}") {
        let _ = redirect_uri::matches(&a, &b);
        let _ = redirect_uri::validate_registration(&a);
    }

    // ---- outbound requests: which addresses an untrusted URL may reach (src/outbound/address.rs)

    #[test]
    fn outbound_ipv4_mapped_ipv6_gets_the_ipv4_answer(bits in any::<u32>(), allow_loopback in any::<bool>()) {
        let policy = OutboundPolicy { allow_cidrs: Vec::new(), allow_loopback };
        let v4 = Ipv4Addr::from(bits);
        prop_assert_eq!(is_forbidden(IpAddr::V4(v4), &policy), is_forbidden(IpAddr::V6(v4.to_ipv6_mapped()), &policy));
        // NAT64 and 6to4 forms of a forbidden address are forbidden too.
        if is_forbidden(IpAddr::V4(v4), &policy) && !v4.is_loopback() {
            let nat64 = Ipv6Addr::from(0x0064_ff9b_0000_0000_0000_0000_0000_0000u128 | u128::from(bits));
            let six_to_four = Ipv6Addr::from((0x2002u128 << 112) | (u128::from(bits) << 80) | 1);
            prop_assert!(is_forbidden(IpAddr::V6(nat64), &policy), "{}", nat64);
            prop_assert!(is_forbidden(IpAddr::V6(six_to_four), &policy), "{}", six_to_four);
        }
    }

    #[test]
    fn outbound_private_loopback_and_link_local_are_always_forbidden(
        block in 0usize..6,
        low in any::<u32>(),
    ) {
        // (network, host bits) of 10/8, 127/8, 172.16/12, 192.168/16, 169.254/16, 100.64/10
        let (net, host_bits) = [
            (0x0a00_0000u32, 24), (0x7f00_0000, 24), (0xac10_0000, 20), (0xc0a8_0000, 16), (0xa9fe_0000, 16),
            (0x6440_0000, 22),
        ][block];
        let ip = IpAddr::V4(Ipv4Addr::from(net | (low & ((1u32 << host_bits) - 1))));
        prop_assert!(is_forbidden(ip, &OutboundPolicy::default()), "{}", ip);
        // Only an explicit allowance lifts it.
        let listed = OutboundPolicy { allow_cidrs: vec![ipnet::IpNet::new(ip, 32).unwrap()], allow_loopback: false };
        prop_assert!(!is_forbidden(ip, &listed), "{}", ip);
    }

    #[test]
    fn redirect_any_127_8_address_is_loopback(b in any::<u8>(), c in any::<u8>(), d in 1u8..255, port in 1u16..) {
        let registered = format!("http://127.{b}.{c}.{d}/cb");
        let presented = format!("http://127.{b}.{c}.{d}:{port}/cb");
        prop_assert!(redirect_uri::validate_registration(&registered).is_ok(), "{}", registered);
        prop_assert!(redirect_uri::matches(&registered, &presented), "{} vs {}", registered, presented);
    }
}
