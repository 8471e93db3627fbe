//! RFC 8628, the device authorization grant: the user code a person types on another
//! device, and the timings a polling client is held to.

/// RFC 8628 §6.1: consonants only (no vowels, so no words; no look-alikes such as 0/O, 1/I).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Eight characters of a 20-letter alphabet: 20^8 ≈ 2^34.6 codes, enough with the entry
/// limits and the 10-minute lifetime (RFC 8628 §5.1).
pub const USER_CODE_LENGTH: usize = 8;
/// Seconds a device code lives.
pub const DEVICE_CODE_TTL: i64 = 600;
/// RFC 8628 §3.2: the polling interval a client starts with.
pub const POLL_INTERVAL: i64 = 5;
/// RFC 8628 §3.5: what `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;

/// A user code from `random` bytes (one per character; rejection sampling keeps the letters
/// uniform). Returns `None` when the bytes ran out before eight characters were drawn.
pub fn user_code_from(random: &[u8]) -> Option<String> {
    // 240 = 12 × 20: bytes at or above it would favour the first letters.
    let code: String = random
        .iter()
        .filter(|b| **b < 240)
        .take(USER_CODE_LENGTH)
        .map(|b| USER_CODE_ALPHABET[usize::from(*b % 20)] as char)
        .collect();
    (code.len() == USER_CODE_LENGTH).then_some(code)
}

/// `BCDFGHJK` as a person reads it: `BCDF-GHJK`.
pub fn display(code: &str) -> String {
    if code.len() == USER_CODE_LENGTH {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// What a person typed, as the stored form: case, dashes and spaces ignored (RFC 8628 §6.1);
/// `None` when it cannot be a user code at all.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// RFC 8628 §3.5: a poll sooner than `interval` seconds after the previous one is too fast.
pub fn too_fast(last_polled_at: Option<i64>, interval: i64, now: i64) -> bool {
    last_polled_at.is_some_and(|last| now - last < interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_read_in_two_halves() {
        let bytes: Vec<u8> = (0..=255).collect();
        let code = user_code_from(&bytes).unwrap();
        assert_eq!(code, "BCDFGHJK");
        assert_eq!(display(&code), "BCDF-GHJK");
        assert!(
            user_code_from(&[250, 251, 1, 2]).is_none(),
            "too few usable bytes"
        );
        assert_eq!(normalize(" bcdf-ghjk ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize("BCDF GHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(
            normalize("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("BCDF-GHJ"), None);
    }

    #[test]
    fn polling_faster_than_the_interval_is_too_fast() {
        assert!(!too_fast(None, 5, 100));
        assert!(too_fast(Some(97), 5, 100));
        assert!(!too_fast(Some(95), 5, 100));
    }
}
