//! Token endpoint messages (RFC 6749 §5.1) and the JWT access token claims (RFC 9068 §2.2).

use serde::{Deserialize, Serialize};

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// RFC 9068 §2.2 claims of our access tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// RFC 7517 JWK for a P-256 public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_matches_rfc6749_example_fields() {
        let json = r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA"}"#;
        let t: TokenResponse = serde_json::from_str(json).unwrap();
        assert_eq!(t.expires_in, 3600);
        assert_eq!(serde_json::to_string(&t).unwrap(), json);
    }
}

/// ECDSA P-256 signatures are malleable: `(r, s)` and `(r, n - s)` both verify. Only the
/// low-S form (`s <= n/2`) is issued and accepted, so a token has exactly one valid
/// signature and a copy with the other form is refused.
pub mod p256_low_s {
    /// Half the order of the P-256 group, big-endian.
    const HALF_ORDER: [u8; 32] = [
        0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31,
        0x92, 0xa8,
    ];
    /// The order of the P-256 group, big-endian.
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    /// Whether a fixed-format (`r || s`, 64 bytes) signature has a low S.
    pub fn is_low(sig: &[u8]) -> bool {
        sig.len() == 64 && sig[32..] <= HALF_ORDER[..]
    }

    /// Rewrites a fixed-format signature into its low-S form (`s := n - s` when high).
    pub fn normalize(sig: &mut [u8]) {
        if sig.len() != 64 || is_low(sig) {
            return;
        }
        negate(sig);
    }

    /// `s := n - s`: the other, equally valid, signature of the same message.
    pub fn negate(sig: &mut [u8]) {
        if sig.len() != 64 {
            return;
        }
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(ORDER[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            sig[32 + i] = d.rem_euclid(256) as u8;
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn high_s_becomes_n_minus_s() {
            let mut sig = [0u8; 64];
            sig[32..].copy_from_slice(&ORDER);
            sig[63] -= 1; // s = n - 1, the highest valid S
            assert!(!is_low(&sig));
            normalize(&mut sig);
            let mut one = [0u8; 32];
            one[31] = 1;
            assert_eq!(sig[32..], one, "n - (n - 1) = 1");
            assert!(is_low(&sig));
            let mut half = [0u8; 64];
            half[32..].copy_from_slice(&HALF_ORDER);
            assert!(is_low(&half));
            half[63] += 1;
            assert!(!is_low(&half));
        }
    }
}
