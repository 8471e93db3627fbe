//! The configuration pattern both servers follow: defaults, then an optional TOML file, then
//! environment variables; errors name the file or variable and the value that is wrong.

use std::path::Path;

use serde::de::DeserializeOwned;

/// The file's settings over the defaults, or the defaults when there is no file.
pub fn read_file<T: DeserializeOwned + Default>(path: Option<&Path>) -> anyhow::Result<T> {
    let Some(p) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(p)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// Parses an environment variable's value, naming it when it is not valid.
pub fn parse_var<T: std::str::FromStr>(key: &str, value: String) -> anyhow::Result<T> {
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("{key}={value:?} is not a valid value"))
}

/// The URL a server bound to `bind` answers at on this machine, when `bind` is a loopback or
/// wildcard address: `http://127.0.0.1:8101` for `0.0.0.0:8101`. Defaults that name a
/// loopback URL follow it, so that moving a port takes one variable.
pub fn loopback_url(bind: std::net::SocketAddr) -> Option<String> {
    let ip = bind.ip();
    if ip.is_loopback() {
        Some(format!("http://{bind}"))
    } else if ip.is_unspecified() {
        Some(format!("http://127.0.0.1:{}", bind.port()))
    } else {
        None
    }
}

/// A warning when `url` names a loopback host on another port than the one this server
/// listens on (`bind`, loopback or wildcard): clients would be sent where nothing answers.
pub fn port_mismatch(what: &str, url: &str, bind: std::net::SocketAddr) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (authority, 80),
    };
    let loopback_host = matches!(host, "localhost" | "[::1]")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    let local_bind = bind.ip().is_loopback() || bind.ip().is_unspecified();
    (loopback_host && local_bind && port != bind.port()).then(|| {
        format!(
            "{what} {url} names port {port}, but this server listens on {bind}: \
             clients will be sent where nothing answers"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        port: u16,
    }

    #[test]
    fn file_and_variable_errors_say_what_is_wrong() {
        assert_eq!(read_file::<Example>(None).unwrap(), Example::default());
        let dir = std::env::temp_dir().join(format!("settings-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "port = 8001\n").unwrap();
        assert_eq!(
            read_file::<Example>(Some(&file)).unwrap(),
            Example { port: 8001 }
        );
        std::fs::write(&file, "prot = 1\n").unwrap();
        assert!(
            read_file::<Example>(Some(&file))
                .unwrap_err()
                .to_string()
                .contains("c.toml")
        );
        assert!(
            read_file::<Example>(Some(&dir.join("missing.toml")))
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        assert_eq!(parse_var::<u16>("X", "80".into()).unwrap(), 80);
        assert_eq!(
            parse_var::<u16>("X", "eighty".into())
                .unwrap_err()
                .to_string(),
            r#"X="eighty" is not a valid value"#
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn loopback_defaults_follow_the_bind_address() {
        assert_eq!(
            loopback_url("0.0.0.0:8101".parse().unwrap()).as_deref(),
            Some("http://127.0.0.1:8101")
        );
        assert_eq!(
            loopback_url("127.0.0.1:9".parse().unwrap()).as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(loopback_url("10.0.0.5:8001".parse().unwrap()), None);
    }

    #[test]
    fn a_loopback_url_on_another_port_is_named() {
        let bind = "127.0.0.1:8101".parse().unwrap();
        let w = port_mismatch("issuer", "http://127.0.0.1:8001", bind).unwrap();
        assert!(w.contains("8001") && w.contains("127.0.0.1:8101"), "{w}");
        assert!(port_mismatch("issuer", "http://127.0.0.1:8101/mcp", bind).is_none());
        assert!(port_mismatch("issuer", "https://auth.example.com", bind).is_none());
        assert!(port_mismatch("issuer", "http://localhost/mcp", bind).is_some());
    }
}

/// Whether `name` may be a path segment named in configuration (a provider's callback path, a
/// gateway endpoint): lowercase ASCII letters, digits and `-`, not empty.
pub fn is_path_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
