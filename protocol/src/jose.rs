//! JSON Web Tokens (RFC 7515, RFC 7519) for both servers, on `jsonwebtoken` with ring as
//! the only crypto provider. One place decides what a token must look like before its
//! signature is even checked: a `kid`, an algorithm from the caller's allow-list, the
//! expected `typ` (RFC 9068 §4: `at+jwt`), no `crit` (RFC 7515 §4.1.11: no extension is
//! understood here), and for ES256 the low-S form of the signature only.
//!
//! Claims are returned as they are: expiry, issuer and audience are the caller's to judge
//! with its own clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::token::p256_low_s;

/// RFC 9068 `typ` of an access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("wrong or missing typ")]
    Type,
    #[error("a critical header extension is not understood")]
    Critical,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
}

/// A key that verifies signatures of one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl VerifyingKey {
    /// A P-256 public key from its JWK coordinates.
    pub fn es256(kid: &str, x: &str, y: &str) -> Result<Self, JoseError> {
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            key: DecodingKey::from_ec_components(x, y).map_err(|_| JoseError::Malformed)?,
        })
    }

    /// Every usable key of a JWKS document (RFC 7517 §5): EC P-256, RSA and Ed25519 keys
    /// with a `kid`; keys of other kinds are skipped.
    pub fn from_jwks(doc: &serde_json::Value) -> Vec<Self> {
        let Some(keys) = doc.get("keys").and_then(|k| k.as_array()) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| {
                let s = |name: &str| k.get(name).and_then(|v| v.as_str());
                let kid = s("kid")?.to_owned();
                if s("use").is_some_and(|u| u != "sig") {
                    return None;
                }
                let (alg, key) = match (s("kty")?, s("crv")) {
                    ("EC", Some("P-256")) => (
                        Algorithm::ES256,
                        DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?,
                    ),
                    ("RSA", _) => (
                        match s("alg") {
                            None | Some("RS256") => Algorithm::RS256,
                            Some(_) => return None,
                        },
                        DecodingKey::from_rsa_components(s("n")?, s("e")?).ok()?,
                    ),
                    ("OKP", Some("Ed25519")) => (
                        Algorithm::EdDSA,
                        DecodingKey::from_ed_components(s("x")?).ok()?,
                    ),
                    _ => return None,
                };
                Some(Self { kid, alg, key })
            })
            .collect()
    }
}

/// The header fields read before anything else, with the checks that need no key.
fn check_header(
    token: &str,
    allowed: &[Algorithm],
    typ: Option<&str>,
) -> Result<(String, Algorithm), JoseError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed);
    };
    let header: serde_json::Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JoseError::Malformed)?;
    if header.get("crit").is_some() {
        return Err(JoseError::Critical);
    }
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .and_then(|a| a.parse::<Algorithm>().ok())
        .ok_or(JoseError::Algorithm)?;
    if !allowed.contains(&alg) {
        return Err(JoseError::Algorithm);
    }
    if let Some(want) = typ {
        // RFC 9068 §4: "at+jwt", or the full media type "application/at+jwt".
        let got = header
            .get("typ")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        let got = got.strip_prefix("application/").unwrap_or(got);
        if !got.eq_ignore_ascii_case(want) {
            return Err(JoseError::Type);
        }
    }
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .ok_or(JoseError::UnknownKey)?;
    Ok((kid.to_owned(), alg))
}

/// The `kid` of a compact JWS's protected header, unverified.
pub fn header_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

/// Verifies `token` with the key of its `kid` among `keys` and returns its claims.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &[VerifyingKey],
    allowed: &[Algorithm],
    typ: Option<&str>,
) -> Result<T, JoseError> {
    verify_with(token, allowed, typ, |kid, alg| {
        keys.iter().find(|k| k.kid == kid && k.alg == alg)
    })
}

/// `verify` for another issuer's tokens (an upstream provider's id_tokens): ES256 signatures
/// in either S form, since most signers do not normalise (RFC 7518 does not ask them to).
/// Our own tokens are checked with `verify`, which refuses the high-S twin of a signature.
pub fn verify_foreign<T: DeserializeOwned>(
    token: &str,
    keys: &[VerifyingKey],
    allowed: &[Algorithm],
    typ: Option<&str>,
) -> Result<T, JoseError> {
    verify_inner(token, allowed, typ, false, |kid, alg| {
        keys.iter().find(|k| k.kid == kid && k.alg == alg)
    })
}

/// `verify`, with the key found by `key(kid, alg)`: for callers whose keys are not one slice
/// (the authorization server filters its own by publication time).
pub fn verify_with<'k, T: DeserializeOwned>(
    token: &str,
    allowed: &[Algorithm],
    typ: Option<&str>,
    key: impl FnOnce(&str, Algorithm) -> Option<&'k VerifyingKey>,
) -> Result<T, JoseError> {
    verify_inner(token, allowed, typ, true, key)
}

fn verify_inner<'k, T: DeserializeOwned>(
    token: &str,
    allowed: &[Algorithm],
    typ: Option<&str>,
    low_s_only: bool,
    key: impl FnOnce(&str, Algorithm) -> Option<&'k VerifyingKey>,
) -> Result<T, JoseError> {
    let (kid, alg) = check_header(token, allowed, typ)?;
    let key = key(&kid, alg).ok_or(JoseError::UnknownKey)?;
    if alg == Algorithm::ES256 && low_s_only {
        let sig = token.rsplit('.').next().unwrap_or_default();
        let sig = B64.decode(sig).map_err(|_| JoseError::Malformed)?;
        if !p256_low_s::is_low(&sig) {
            return Err(JoseError::Signature);
        }
    }
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(token, &key.key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => JoseError::Signature,
            _ => JoseError::Malformed,
        })
}

/// An ES256 signer: the P-256 private key parsed once and the protected header encoded once,
/// so that signing a token is one serialisation and one ECDSA signature. Signatures come out
/// in the low-S form.
pub struct Es256Signer {
    /// base64url of the protected header, the first part of every token.
    header: String,
    pair: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl Es256Signer {
    /// A signer for a PKCS#8 P-256 key whose tokens carry `kid` and `typ`.
    pub fn new(pkcs8: &[u8], kid: &str, typ: &str) -> Result<Self, JoseError> {
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|_| JoseError::Malformed)?;
        let header = serde_json::json!({"typ": typ, "alg": "ES256", "kid": kid});
        Ok(Self {
            header: B64.encode(header.to_string()),
            pair,
            rng,
        })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, JoseError> {
        let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Malformed)?;
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 92);
        token.push_str(&self.header);
        token.push('.');
        B64.encode_string(&payload, &mut token);
        let sig = self
            .pair
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| JoseError::Signature)?;
        let mut sig = sig.as_ref().to_vec();
        p256_low_s::normalize(&mut sig);
        token.push('.');
        B64.encode_string(&sig, &mut token);
        Ok(token)
    }
}

/// Signs `claims` as an ES256 token of type `typ` with a PKCS#8 P-256 private key, in the
/// low-S form. For one-off tokens; a server signing many keeps an `Es256Signer`.
pub fn sign_es256<T: Serialize>(
    claims: &T,
    kid: &str,
    typ: &str,
    pkcs8: &[u8],
) -> Result<String, JoseError> {
    Es256Signer::new(pkcs8, kid, typ)?.sign(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    fn enc(v: &Value) -> String {
        B64.encode(v.to_string())
    }

    /// A 2048-bit RSA key (PKCS#1 DER) made for these tests, and its modulus.
    const RSA_DER: &str = include_str!("jose_test_rsa_pkcs1.b64");
    const RSA_N: &str = include_str!("jose_test_rsa_n.b64");

    fn rsa_token(header: Value, claims: &Value) -> String {
        let der = base64::engine::general_purpose::STANDARD
            .decode(RSA_DER.trim())
            .unwrap();
        let header: Header = serde_json::from_value(header).unwrap();
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).unwrap()
    }

    fn jwks() -> Vec<VerifyingKey> {
        VerifyingKey::from_jwks(&json!({"keys": [
            {"kty": "RSA", "kid": "r1", "n": RSA_N.trim(), "e": "AQAB", "alg": "RS256", "use": "sig"},
        ]}))
    }

    #[test]
    fn rs256_id_tokens_verify_against_a_jwks() {
        let claims = json!({"iss": "https://idp.example", "sub": "248289761001", "aud": "c"});
        let token = rsa_token(json!({"alg": "RS256", "kid": "r1", "typ": "JWT"}), &claims);
        let got: Value = verify(&token, &jwks(), &[Algorithm::RS256], None).unwrap();
        assert_eq!(got, claims);
        // Not in the allow-list, unknown kid, tampered payload.
        assert_eq!(
            verify::<Value>(&token, &jwks(), &[Algorithm::ES256], None).unwrap_err(),
            JoseError::Algorithm
        );
        let other = rsa_token(json!({"alg": "RS256", "kid": "r2"}), &claims);
        assert_eq!(
            verify::<Value>(&other, &jwks(), &[Algorithm::RS256], None).unwrap_err(),
            JoseError::UnknownKey
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = enc(&json!({"sub": "admin"}));
        parts[1] = &forged;
        assert_eq!(
            verify::<Value>(&parts.join("."), &jwks(), &[Algorithm::RS256], None).unwrap_err(),
            JoseError::Signature
        );
    }

    #[test]
    fn header_rules_come_before_the_signature() {
        let claims = json!({"sub": "x"});
        let crit = rsa_token(json!({"alg": "RS256", "kid": "r1"}), &claims);
        // Splice a crit member into an otherwise valid header: refused whatever it says.
        let with_crit = format!(
            "{}.{}",
            enc(&json!({"alg": "RS256", "kid": "r1", "crit": ["exp"], "exp": 1})),
            crit.split_once('.').unwrap().1
        );
        assert_eq!(
            verify::<Value>(&with_crit, &jwks(), &[Algorithm::RS256], None).unwrap_err(),
            JoseError::Critical
        );
        let typed = rsa_token(json!({"alg": "RS256", "kid": "r1", "typ": "JWT"}), &claims);
        assert_eq!(
            verify::<Value>(&typed, &jwks(), &[Algorithm::RS256], Some(ACCESS_TOKEN_TYP))
                .unwrap_err(),
            JoseError::Type
        );
        let at = rsa_token(
            json!({"alg": "RS256", "kid": "r1", "typ": "application/at+jwt"}),
            &claims,
        );
        assert!(verify::<Value>(&at, &jwks(), &[Algorithm::RS256], Some(ACCESS_TOKEN_TYP)).is_ok());
        let none = format!(
            "{}.{}.",
            enc(&json!({"alg": "none", "kid": "r1"})),
            enc(&claims)
        );
        assert_eq!(
            verify::<Value>(&none, &jwks(), &[Algorithm::RS256], None).unwrap_err(),
            JoseError::Algorithm
        );
        for garbage in ["", "a.b", "a.b.c.d", "!!.e30.x"] {
            assert!(verify::<Value>(garbage, &jwks(), &[Algorithm::RS256], None).is_err());
        }
    }

    #[test]
    fn ed25519_tokens_verify() {
        use ring::signature::{Ed25519KeyPair, KeyPair};
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = B64.encode(pair.public_key().as_ref());
        let keys = VerifyingKey::from_jwks(&json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "e1", "x": x}]}));
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("e1".into());
        let claims = json!({"sub": "ed"});
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(pkcs8.as_ref()))
                .unwrap();
        let got: Value = verify(&token, &keys, &[Algorithm::EdDSA], None).unwrap();
        assert_eq!(got, claims);
    }

    #[test]
    fn es256_tokens_are_signed_low_s_and_high_s_twins_refused() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
        let key = VerifyingKey::es256("k", &B64.encode(x), &B64.encode(y)).unwrap();
        let claims = json!({"sub": "u"});
        for _ in 0..16 {
            let t = sign_es256(&claims, "k", ACCESS_TOKEN_TYP, pkcs8.as_ref()).unwrap();
            let got: Value = verify(
                &t,
                std::slice::from_ref(&key),
                &[Algorithm::ES256],
                Some(ACCESS_TOKEN_TYP),
            )
            .unwrap();
            assert_eq!(got, claims);
        }
        let t = sign_es256(&claims, "k", ACCESS_TOKEN_TYP, pkcs8.as_ref()).unwrap();
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut sig = B64.decode(sig).unwrap();
        p256_low_s::negate(&mut sig);
        let twin = format!("{input}.{}", B64.encode(sig));
        assert_eq!(
            verify::<Value>(&twin, std::slice::from_ref(&key), &[Algorithm::ES256], None)
                .unwrap_err(),
            JoseError::Signature
        );
        // Another issuer's token in the high-S form is still a valid signature.
        let got: Value =
            verify_foreign(&twin, std::slice::from_ref(&key), &[Algorithm::ES256], None).unwrap();
        assert_eq!(got, claims);
    }
}
