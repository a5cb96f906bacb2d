//! Kubernetes service links: the variables the kubelet puts into every pod of a namespace for
//! each Service in it, unless the pod sets `enableServiceLinks: false`. A Service named `oxidp`
//! (or `oxidp-<x>`) yields names that start with `OXIDP_`, which the loader would otherwise
//! refuse as unknown settings. For a Service `S` with cluster IP `IP` (`S` in upper case, `-`
//! as `_`; `OXIDP` or `OXIDP_<X>` here) and ports `N` (named `NAME`, protocol `P`):
//!
//! | name | value |
//! | --- | --- |
//! | `S_SERVICE_HOST` | `IP` |
//! | `S_SERVICE_PORT`, `S_SERVICE_PORT_<NAME>` | the first port, each named port |
//! | `S_PORT` | `p://IP:N` of the first port (`p` = `P` in lower case; `[IP]` for IPv6) |
//! | `S_PORT_<N>_<P>` | `p://IP:N` |
//! | `S_PORT_<N>_<P>_PROTO`, `_PORT`, `_ADDR` | `p`, `N`, `IP` |
//!
//! A variable is a service link only when both its name and its value have one of these
//! shapes: `OXIDP_PORT=8080` is a mistake and stays refused.

use std::net::{IpAddr, SocketAddr};

const PREFIX: &str = "OXIDP";
const PROTOCOLS: [&str; 3] = ["tcp", "udp", "sctp"];

/// Whether `name=value` is a variable the kubelet sets for a Service named `oxidp` or `oxidp-<x>`.
pub fn is_service_link(name: &str, value: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    if !rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
        return false;
    }
    // `rest` is `_<X>` (or nothing, for the Service `oxidp`) followed by a suffix; `<X>` may
    // hold underscores itself, so every underscore is tried as the start of the suffix.
    rest.match_indices('_').any(|(at, _)| {
        let service = &rest[..at];
        (service.is_empty() || service.len() > 1) && suffix_matches(&rest[at..], value)
    })
}

/// The `OXIDP_*` service-link variables of this process's environment, by name.
pub fn in_environment() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, value)| is_service_link(name, value))
        .map(|(name, _)| name)
        .collect();
    names.sort();
    names
}

fn suffix_matches(suffix: &str, value: &str) -> bool {
    match suffix {
        "_SERVICE_HOST" => value.parse::<IpAddr>().is_ok(),
        "_SERVICE_PORT" => port(value).is_some(),
        "_PORT" => link_url(value, None, None),
        _ => {
            if let Some(port_name) = suffix.strip_prefix("_SERVICE_PORT_") {
                !port_name.is_empty() && port(value).is_some()
            } else if let Some(link) = suffix.strip_prefix("_PORT_") {
                port_link(link, value)
            } else {
                false
            }
        }
    }
}

/// `<N>_<P>` with an optional `_PROTO`, `_PORT` or `_ADDR`.
fn port_link(link: &str, value: &str) -> bool {
    let mut parts = link.splitn(3, '_');
    let (Some(number), Some(protocol)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(number) = port(number) else {
        return false;
    };
    let protocol = protocol.to_ascii_lowercase();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return false;
    }
    match parts.next() {
        None => link_url(value, Some(&protocol), Some(number)),
        Some("PROTO") => value == protocol,
        Some("PORT") => port(value) == Some(number),
        Some("ADDR") => value.parse::<IpAddr>().is_ok(),
        Some(_) => false,
    }
}

/// A port number as the kubelet writes it: 1 to 65535, no sign, no leading zero.
fn port(text: &str) -> Option<u16> {
    let number: u16 = text.parse().ok()?;
    (number != 0 && number.to_string() == text).then_some(number)
}

/// `p://IP:N`, with the protocol and port given when the name fixes them.
fn link_url(value: &str, protocol: Option<&str>, number: Option<u16>) -> bool {
    let Some((scheme, address)) = value.split_once("://") else {
        return false;
    };
    let Ok(address) = address.parse::<SocketAddr>() else {
        return false;
    };
    PROTOCOLS.contains(&scheme)
        && protocol.is_none_or(|protocol| protocol == scheme)
        && address.port() != 0
        && number.is_none_or(|number| number == address.port())
}

#[cfg(test)]
// figment's `Jail` fixes the closures' error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    /// What the kubelet sets for Service `oxidp` (10.96.0.20, port 80 named `http`) and
    /// Service `oxidp-metrics` (fd00::30, ports 9100 `metrics` and 9101/UDP `stats`).
    const KUBERNETES: [(&str, &str); 17] = [
        ("OXIDP_SERVICE_HOST", "10.96.0.20"),
        ("OXIDP_SERVICE_PORT", "80"),
        ("OXIDP_SERVICE_PORT_HTTP", "80"),
        ("OXIDP_PORT", "tcp://10.96.0.20:80"),
        ("OXIDP_PORT_80_TCP", "tcp://10.96.0.20:80"),
        ("OXIDP_PORT_80_TCP_PROTO", "tcp"),
        ("OXIDP_PORT_80_TCP_PORT", "80"),
        ("OXIDP_PORT_80_TCP_ADDR", "10.96.0.20"),
        ("OXIDP_METRICS_SERVICE_HOST", "fd00::30"),
        ("OXIDP_METRICS_SERVICE_PORT", "9100"),
        ("OXIDP_METRICS_SERVICE_PORT_METRICS", "9100"),
        ("OXIDP_METRICS_PORT", "tcp://[fd00::30]:9100"),
        ("OXIDP_METRICS_PORT_9100_TCP", "tcp://[fd00::30]:9100"),
        ("OXIDP_METRICS_PORT_9101_UDP", "udp://[fd00::30]:9101"),
        ("OXIDP_METRICS_PORT_9101_UDP_PROTO", "udp"),
        ("OXIDP_METRICS_PORT_9101_UDP_PORT", "9101"),
        ("OXIDP_METRICS_PORT_9101_UDP_ADDR", "fd00::30"),
    ];

    #[test]
    fn every_shape_the_kubelet_sets_is_a_service_link() {
        for (name, value) in KUBERNETES {
            assert!(is_service_link(name, value), "{name}={value}");
        }
        // Services with dashes and digits in their names, SCTP, the first port over UDP.
        for (name, value) in [
            ("OXIDP_ADMIN_API_SERVICE_HOST", "10.0.0.1"),
            ("OXIDP_2_SERVICE_PORT_HTTPS_ALT", "8443"),
            ("OXIDP_X_PORT", "udp://10.0.0.1:53"),
            ("OXIDP_X_PORT_3868_SCTP", "sctp://10.0.0.1:3868"),
            ("OXIDP_X_PORT_3868_SCTP_PROTO", "sctp"),
            ("OXIDP_PORT_65535_TCP_PORT", "65535"),
            // A Service named `oxidp-x-port-80-tcp`: its `_PORT` holds a URL.
            ("OXIDP_X_PORT_80_TCP_PORT", "tcp://10.0.0.1:443"),
        ] {
            assert!(is_service_link(name, value), "{name}={value}");
        }
    }

    #[test]
    fn a_name_of_the_right_shape_with_a_wrong_value_is_not() {
        for (name, value) in [
            // The typo this all must keep refusing.
            ("OXIDP_PORT", "8080"),
            ("OXIDP_PORT", "0.0.0.0:8080"),
            ("OXIDP_PORT", "http://10.0.0.1:80"),
            ("OXIDP_PORT", "tcp://oxidp:80"),
            ("OXIDP_PORT", "tcp://10.0.0.1:0"),
            ("OXIDP_PORT", "TCP://10.0.0.1:80"),
            ("OXIDP_SERVICE_HOST", "oxidp.default.svc"),
            ("OXIDP_SERVICE_HOST", ""),
            ("OXIDP_SERVICE_PORT", "http"),
            ("OXIDP_SERVICE_PORT", "0"),
            ("OXIDP_SERVICE_PORT", "080"),
            ("OXIDP_SERVICE_PORT", "65536"),
            ("OXIDP_SERVICE_PORT_HTTP", "+80"),
            // The port and protocol in the name must match the value.
            ("OXIDP_PORT_80_TCP", "tcp://10.0.0.1:81"),
            ("OXIDP_PORT_80_TCP", "udp://10.0.0.1:80"),
            ("OXIDP_PORT_80_TCP_PORT", "81"),
            ("OXIDP_PORT_80_TCP_PROTO", "udp"),
            ("OXIDP_PORT_80_TCP_PROTO", "TCP"),
            ("OXIDP_PORT_80_TCP_ADDR", "localhost"),
        ] {
            assert!(!is_service_link(name, value), "{name}={value}");
        }
    }

    #[test]
    fn other_names_are_not() {
        for (name, value) in [
            ("OXIDP_BIND", "10.0.0.1"),
            ("OXIDP_HOST", "10.0.0.1"),
            ("OXIDP_SERVICE", "80"),
            ("OXIDP_SERVICE_PORT_", "80"),
            ("OXIDP__SERVICE_HOST", "10.0.0.1"),
            ("OXIDPX_SERVICE_HOST", "10.0.0.1"),
            ("OTHER_SERVICE_HOST", "10.0.0.1"),
            ("oxidp_service_host", "10.0.0.1"),
            ("OXIDP_service_HOST", "10.0.0.1"),
            ("OXIDP_PORT_80", "tcp://10.0.0.1:80"),
            ("OXIDP_PORT_80_HTTP", "tcp://10.0.0.1:80"),
            ("OXIDP_PORT_80_TCP_HOST", "10.0.0.1"),
            ("OXIDP_PORT_X_TCP", "tcp://10.0.0.1:80"),
            ("OXIDP_PORT_80_TCP_ADDR_X", "10.0.0.1"),
        ] {
            assert!(!is_service_link(name, value), "{name}={value}");
        }
    }

    #[test]
    fn no_setting_is_mistaken_for_a_service_link() {
        let defaults = serde_json::to_value(crate::config::Config::default()).expect("serialise");
        let fields: Vec<String> = defaults.as_object().expect("an object").keys().cloned().collect();
        assert!(fields.contains(&"bind".to_string()) && fields.len() > 40, "{fields:?}");
        let values = ["10.0.0.1", "fd00::1", "80", "tcp", "udp", "tcp://10.0.0.1:80", "udp://[fd00::1]:80"];
        for field in fields {
            let name = format!("OXIDP_{}", field.to_ascii_uppercase());
            for value in values {
                assert!(!is_service_link(&name, value), "the setting {name} would be ignored");
            }
        }
    }

    #[test]
    fn the_environment_is_scanned_by_name_and_value() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OXIDP_SERVICE_HOST", "10.96.0.20");
            jail.set_env("OXIDP_PORT_80_TCP_PORT", "80");
            jail.set_env("OXIDP_PORT", "8080");
            let found = in_environment();
            assert!(found.contains(&"OXIDP_SERVICE_HOST".to_string()), "{found:?}");
            assert!(found.contains(&"OXIDP_PORT_80_TCP_PORT".to_string()), "{found:?}");
            assert!(!found.contains(&"OXIDP_PORT".to_string()), "{found:?}");
            Ok(())
        });
    }
}
