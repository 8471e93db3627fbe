//! URI rules: issuer spelling, redirect URI registration and matching (OAuth 2.1 §2.3.1,
//! RFC 8252 §7.3 loopback ports), and RFC 8707 resource indicator normalisation.

use std::net::IpAddr;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("not an absolute URI")]
    NotAbsolute,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("scheme {0:?} is not allowed")]
    Scheme(String),
    #[error("http is only allowed for loopback hosts (127.0.0.0/8, [::1], localhost)")]
    InsecureHttp,
    #[error("must not have a trailing slash")]
    TrailingSlash,
    #[error("must not contain a query")]
    Query,
    #[error("must not contain user information")]
    UserInfo,
    #[error("must include the MCP endpoint path, e.g. /mcp")]
    NoPath,
    #[error(
        "the out-of-band redirect (urn:ietf:wg:oauth:2.0:oob, paste the code back) is retired \
         (OAuth 2.1, RFC 8252 §8.4): a client without a browser uses the device flow instead \
         (RFC 8628, device_authorization_endpoint in this server's metadata)"
    )]
    OutOfBand,
}

/// True for `localhost` and IP literals in 127.0.0.0/8 or `::1`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether an IP address is one a server-side fetch must never reach (SSRF).
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking 198.18/15
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(v4));
            }
            // Ranges that embed an IPv4 address which a NAT64, SIIT or 6to4 gateway would
            // reach on our behalf: judge the embedded address.
            let v4 = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                is_private_address(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)))
            };
            if seg[..6] == [0; 6] // ::/96, IPv4-compatible
                || (seg[..2] == [0x64, 0xff9b] && seg[2..6] == [0; 4]) // NAT64 64:ff9b::/96
                || (seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0)
            // SIIT ::ffff:0:0:0/96
            {
                return v4(seg[6], seg[7]);
            }
            if seg[0] == 0x2002 {
                return v4(seg[1], seg[2]); // 6to4 2002:AABB:CCDD::/48
            }
            // Local-use NAT64 (any IPv4 behind it, by design), Teredo (the IPv4 address is
            // obfuscated) and the discard-only prefix are refused whole.
            (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)
                || (seg[0] == 0x2001 && seg[1] == 0)
                || (seg[0] == 0x0100 && seg[1..4] == [0; 3])
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link local
                || seg[0] == 0x2001 && seg[1] == 0x0db8 // documentation
        }
    }
}

/// Validates an issuer identifier (RFC 8414 §2): https (or http when allowed for local use),
/// no query, no fragment, and no trailing slash so one spelling is used everywhere.
pub fn validate_issuer(issuer: &str, allow_http: bool) -> Result<Url, UriError> {
    let url = Url::parse(issuer).map_err(|_| UriError::NotAbsolute)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(UriError::InsecureHttp),
        other => return Err(UriError::Scheme(other.to_owned())),
    }
    if issuer.ends_with('/') {
        return Err(UriError::TrailingSlash);
    }
    if url.query().is_some() {
        return Err(UriError::Query);
    }
    if url.fragment().is_some() {
        return Err(UriError::Fragment);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriError::UserInfo);
    }
    Ok(url)
}

/// Registration-time rules for a redirect URI (OAuth 2.1 §2.3.1, RFC 8252 §7, MCP
/// "Communication Security"): absolute, no fragment, https or loopback http or a
/// private-use scheme for native apps; never a script-bearing scheme.
pub fn validate_redirect_uri(uri: &str) -> Result<Url, UriError> {
    if uri.starts_with("urn:ietf:wg:oauth:2.0:oob") {
        return Err(UriError::OutOfBand);
    }
    let url = Url::parse(uri).map_err(|_| UriError::NotAbsolute)?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(UriError::Fragment);
    }
    match url.scheme() {
        "https" if url.host().is_none() => return Err(UriError::NotAbsolute),
        "https" => {}
        "http" if !is_loopback_host(&url) => return Err(UriError::InsecureHttp),
        "http" => {}
        // Private-use URI schemes (RFC 8252 §7.1) in reverse domain form, e.g.
        // `com.example.app:/cb`, and the few MCP clients known to use a bare scheme.
        scheme if is_private_use_scheme(scheme) || KNOWN_APP_SCHEMES.contains(&scheme) => {}
        other => return Err(UriError::Scheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriError::UserInfo);
    }
    Ok(url)
}

/// Bare (not reverse-domain) schemes of widely used MCP clients, accepted as redirect URIs.
pub const KNOWN_APP_SCHEMES: &[&str] = &["cursor"];

/// RFC 8252 §7.1: a private-use scheme is a reverse domain name of at least two labels,
/// each a letter followed by letters, digits or hyphens (`com.example.app`).
fn is_private_use_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            l.starts_with(|c: char| c.is_ascii_alphabetic())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Does the `redirect_uri` of a request match a registered one? Exact string comparison,
/// except that for loopback `http` URIs the port is ignored (RFC 8252 §7.3), extended to
/// `localhost` because native MCP clients register it that way.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    if reg.scheme() != "http" || req.scheme() != "http" {
        return false;
    }
    if !is_loopback_host(&reg) || reg.host_str() != req.host_str() {
        return false;
    }
    // Everything but the port must be byte-identical; compare the originals with the
    // authority replaced, so that parsing never normalises a difference away.
    strip_port(registered) == strip_port(requested) && strip_port(registered).is_some()
}

/// `http://host[:port]rest` → `http://host` + `rest`.
fn strip_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let host = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (h, after) = authority.split_at(close + 1);
        if !(after.is_empty() || after[1..].bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        h
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    Some(format!("http://{host}{tail}"))
}

/// The spelling rule for a resource server's own URI (RFC 8707 §2, RFC 9728 §1.2, MCP
/// "Canonical Server URI"): an absolute http(s) URL with a host and a path (the MCP endpoint),
/// no trailing slash, no query, no fragment, no user information. One spelling, so that the
/// metadata, the challenges and `aud` agree byte for byte.
pub fn validate_resource(resource: &str) -> Result<Url, UriError> {
    let url = Url::parse(resource).map_err(|_| UriError::NotAbsolute)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UriError::Scheme(url.scheme().to_owned()));
    }
    if url.host().is_none() {
        return Err(UriError::NotAbsolute);
    }
    if resource.ends_with('/') && url.path() != "/" {
        return Err(UriError::TrailingSlash);
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(UriError::NoPath);
    }
    if url.query().is_some() {
        return Err(UriError::Query);
    }
    if url.fragment().is_some() || resource.contains('#') {
        return Err(UriError::Fragment);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriError::UserInfo);
    }
    Ok(url)
}

/// RFC 8707 §2 resource indicator, normalised for comparison: lowercase scheme and host,
/// default port dropped, empty path ≡ `/`, no fragment. The result is a comparison key;
/// the registered spelling is what goes into tokens.
pub fn normalize_resource(resource: &str) -> Result<String, UriError> {
    let url = Url::parse(resource).map_err(|_| UriError::NotAbsolute)?;
    if url.fragment().is_some() {
        return Err(UriError::Fragment);
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(UriError::NotAbsolute);
    }
    // `Url` already lowercases scheme and host, drops default ports and turns an empty
    // path into "/". A trailing slash on a longer path stays significant.
    let mut s = url.to_string();
    if url.path() == "/" && url.query().is_none() {
        s.truncate(s.len() - 1);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_registration_rules() {
        let cases: &[(&str, bool, &str)] = &[
            ("https://app.example.com/cb", true, "https"),
            ("http://127.0.0.1:3000/callback", true, "loopback ip"),
            ("http://localhost/callback", true, "localhost without port"),
            ("http://[::1]:8080/cb", true, "ipv6 loopback"),
            ("http://example.com/cb", false, "non-loopback http"),
            ("https://app.example.com/cb#frag", false, "fragment"),
            ("https://app.example.com/cb#", false, "empty fragment"),
            ("javascript:alert(1)", false, "javascript"),
            ("data:text/html,hi", false, "data"),
            (
                "com.example.app:/oauth2redirect",
                true,
                "private-use scheme",
            ),
            (
                "cursor://anysphere.cursor-retrieval/oauth/callback",
                true,
                "custom scheme",
            ),
            ("/relative", false, "relative"),
            ("ftp://files.example/cb", false, "ftp"),
            ("myapp:/cb", false, "bare private-use scheme"),
            ("blob:https://a.example/x", false, "blob"),
            (
                "com.example-app.native:/cb",
                true,
                "reverse domain with hyphen",
            ),
            ("x.1a:/cb", false, "label starting with a digit"),
            ("https://user:pw@app.example.com/cb", false, "userinfo"),
        ];
        for (uri, ok, why) in cases {
            assert_eq!(validate_redirect_uri(uri).is_ok(), *ok, "{why}: {uri}");
        }
    }

    #[test]
    fn the_out_of_band_redirect_points_at_the_device_flow() {
        for uri in [
            "urn:ietf:wg:oauth:2.0:oob",
            "urn:ietf:wg:oauth:2.0:oob:auto",
        ] {
            let e = validate_redirect_uri(uri).unwrap_err();
            assert_eq!(e, UriError::OutOfBand);
            assert!(e.to_string().contains("device flow"), "{e}");
        }
    }

    #[test]
    fn redirect_uri_matching_is_exact_except_loopback_port() {
        let cases: &[(&str, &str, bool, &str)] = &[
            (
                "https://a.example/cb",
                "https://a.example/cb",
                true,
                "identical",
            ),
            (
                "https://a.example/cb",
                "https://a.example/cb/",
                false,
                "trailing slash",
            ),
            (
                "https://a.example/cb",
                "https://A.example/cb",
                false,
                "case",
            ),
            (
                "https://a.example:443/cb",
                "https://a.example/cb",
                false,
                "explicit port",
            ),
            (
                "https://a.example/cb",
                "https://a.example/cb?x=1",
                false,
                "extra query",
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:51234/cb",
                true,
                "loopback port",
            ),
            (
                "http://127.0.0.1/cb",
                "http://127.0.0.1:51234/cb",
                true,
                "portless registered",
            ),
            (
                "http://localhost:1/cb",
                "http://localhost:2/cb",
                true,
                "localhost port",
            ),
            ("http://[::1]:1/cb", "http://[::1]:2/cb", true, "ipv6 port"),
            (
                "http://127.0.0.1:3000/cb",
                "http://localhost:3000/cb",
                false,
                "host differs",
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/other",
                false,
                "path differs",
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/cb?a=b",
                false,
                "query differs",
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:x/cb",
                false,
                "bad port",
            ),
            (
                "http://127.0.0.1/cb",
                "http://evil@127.0.0.1:1/cb",
                false,
                "userinfo",
            ),
            (
                "https://127.0.0.1:1/cb",
                "https://127.0.0.1:2/cb",
                false,
                "https keeps ports",
            ),
        ];
        for (reg, req, ok, why) in cases {
            assert_eq!(redirect_uri_matches(reg, req), *ok, "{why}: {reg} vs {req}");
        }
    }

    #[test]
    fn resource_normalisation() {
        let cases: &[(&str, &str)] = &[
            ("HTTPS://Example.COM/mcp", "https://example.com/mcp"),
            ("https://example.com:443/mcp", "https://example.com/mcp"),
            ("http://127.0.0.1:80/mcp", "http://127.0.0.1/mcp"),
            ("https://example.com/", "https://example.com"),
            ("https://example.com", "https://example.com"),
            ("http://127.0.0.1:8002/mcp", "http://127.0.0.1:8002/mcp"),
            ("https://example.com/mcp/", "https://example.com/mcp/"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_resource(input).unwrap(), *want, "{input}");
        }
        assert_eq!(
            normalize_resource("https://e.com/mcp#x"),
            Err(UriError::Fragment)
        );
        assert!(normalize_resource("urn:x").is_err());
    }

    #[test]
    fn issuer_rules() {
        assert!(validate_issuer("https://auth.example.com", false).is_ok());
        assert_eq!(
            validate_issuer("https://auth.example.com/", false),
            Err(UriError::TrailingSlash)
        );
        assert_eq!(
            validate_issuer("http://127.0.0.1:8001", false),
            Err(UriError::InsecureHttp)
        );
        assert!(validate_issuer("http://127.0.0.1:8001", true).is_ok());
        assert_eq!(
            validate_issuer("https://a.example?x=1", false),
            Err(UriError::Query)
        );
    }

    #[test]
    fn resource_spelling() {
        assert!(validate_resource("https://mcp.example.com/mcp").is_ok());
        assert!(validate_resource("http://127.0.0.1:8002/mcp").is_ok());
        for (bad, why) in [
            ("https://mcp.example.com/mcp/", UriError::TrailingSlash),
            ("https://mcp.example.com/", UriError::NoPath),
            ("https://mcp.example.com", UriError::NoPath),
            ("https://mcp.example.com/mcp?x=1", UriError::Query),
            ("https://mcp.example.com/mcp#f", UriError::Fragment),
            ("https://u:p@mcp.example.com/mcp", UriError::UserInfo),
            ("ftp://mcp.example.com/mcp", UriError::Scheme("ftp".into())),
            ("mcp", UriError::NotAbsolute),
        ] {
            assert_eq!(validate_resource(bad).unwrap_err(), why, "{bad}");
        }
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::808:808",
            "2002:c0a8:101::1",
            "::127.0.0.1",
            "::ffff:0:a00:1",
            "2001:0:4136:e378::1",
        ] {
            assert!(is_private_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_private_address(ip.parse().unwrap()), "{ip}");
        }
    }
}
