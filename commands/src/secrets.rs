//! Secrets derived from the server's challenge key: one-time codes, TOTP secrets and codes
//! (RFC 6238), signed links for email verification and password reset, and recovery codes.
//!
//! Events record only challenge ids. Everything secret is an HMAC of the id under a key that
//! never leaves the server (`STRATUS_CHALLENGE_SECRET`), so the log alone reveals no code, and the
//! message reactor can render the same code the aggregate will later check. Losing or changing
//! the key voids every outstanding code and link and every TOTP enrolment.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use stratus_domain::account::{constant_time_eq, ChallengeSecrets};
use stratus_domain::{AccountId, ChallengeId};

type HmacSha256 = Hmac<Sha256>;

/// Digits of every one-time and TOTP code.
pub const CODE_DIGITS: u32 = 6;
/// Length of a TOTP secret: 160 bits, the size RFC 4226 recommends for HMAC-SHA1.
pub const TOTP_SECRET_BYTES: usize = 20;
/// Recovery codes handed out when TOTP is enabled.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of one recovery code (without its dash): 10 base32 characters, 50 bits.
pub const RECOVERY_CODE_CHARS: usize = 10;
/// Bytes of the MAC in a link token: 128 bits.
const LINK_MAC_BYTES: usize = 16;
/// Issuer shown by authenticator apps.
pub const TOTP_ISSUER: &str = "Stratus";

/// What a signed link is for; part of the MAC, so a token for one purpose fails for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    VerifyEmail,
    ResetPassword,
}

impl LinkPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::VerifyEmail => b"verify-email",
            Self::ResetPassword => b"reset-password",
        }
    }
}

/// The server's challenge key and everything derived from it.
#[derive(Clone)]
pub struct ChallengeKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for ChallengeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKeys([redacted])")
    }
}

impl ChallengeKeys {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it total.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The TOTP secret of a setup.
    pub fn totp_secret(
        &self,
        account_id: AccountId,
        setup_id: ChallengeId,
    ) -> [u8; TOTP_SECRET_BYTES] {
        let digest = self.mac(&[
            b"totp",
            account_id.as_uuid().as_bytes(),
            setup_id.as_uuid().as_bytes(),
        ]);
        let mut secret = [0u8; TOTP_SECRET_BYTES];
        secret.copy_from_slice(&digest[..TOTP_SECRET_BYTES]);
        secret
    }

    /// A link token naming the account and the challenge, signed for `purpose`.
    pub fn link_token(
        &self,
        purpose: LinkPurpose,
        account_id: AccountId,
        challenge_id: ChallengeId,
    ) -> String {
        let account = account_id.as_uuid();
        let challenge = challenge_id.as_uuid();
        let mac = self.mac(&[
            b"link",
            purpose.label(),
            account.as_bytes(),
            challenge.as_bytes(),
        ]);
        let mut bytes = Vec::with_capacity(32 + LINK_MAC_BYTES);
        bytes.extend_from_slice(account.as_bytes());
        bytes.extend_from_slice(challenge.as_bytes());
        bytes.extend_from_slice(&mac[..LINK_MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The account and challenge of a genuine link token for `purpose`; `None` for anything else.
    pub fn open_link_token(
        &self,
        purpose: LinkPurpose,
        token: &str,
    ) -> Option<(AccountId, ChallengeId)> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if bytes.len() != 32 + LINK_MAC_BYTES {
            return None;
        }
        let account = uuid::Uuid::from_slice(&bytes[..16]).ok()?;
        let challenge = uuid::Uuid::from_slice(&bytes[16..32]).ok()?;
        let mac = self.mac(&[
            b"link",
            purpose.label(),
            account.as_bytes(),
            challenge.as_bytes(),
        ]);
        constant_time_eq(&mac[..LINK_MAC_BYTES], &bytes[32..]).then(|| {
            (
                AccountId::from_uuid(account),
                ChallengeId::from_uuid(challenge),
            )
        })
    }

    /// The `otpauth://` URI an authenticator app scans, and the base32 secret in it.
    pub fn otpauth(
        &self,
        account_id: AccountId,
        setup_id: ChallengeId,
        label: &str,
    ) -> (String, String) {
        let secret = base32(&self.totp_secret(account_id, setup_id));
        let uri = format!(
            "otpauth://totp/{issuer}:{label}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={CODE_DIGITS}&period={period}",
            issuer = TOTP_ISSUER,
            label = percent_encode(label),
            period = stratus_domain::account::TOTP_STEP_SECONDS,
        );
        (secret, uri)
    }
}

impl ChallengeSecrets for ChallengeKeys {
    fn code(&self, account_id: AccountId, challenge_id: ChallengeId) -> String {
        let digest = self.mac(&[
            b"code",
            account_id.as_uuid().as_bytes(),
            challenge_id.as_uuid().as_bytes(),
        ]);
        let number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        format!("{:06}", number % 10u32.pow(CODE_DIGITS))
    }

    fn totp_code(&self, account_id: AccountId, setup_id: ChallengeId, time_step: i64) -> String {
        hotp(&self.totp_secret(account_id, setup_id), time_step as u64)
    }
}

/// RFC 4226 HOTP with HMAC-SHA1 and six digits (TOTP is HOTP of the time step).
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 10u32.pow(CODE_DIGITS))
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Fresh recovery codes, shown to the account holder once (`abcde-fghij`).
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::thread_rng();
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let chars: String = (0..RECOVERY_CODE_CHARS)
                .map(|_| char::from(BASE32_ALPHABET[rng.gen_range(0..32)]).to_ascii_lowercase())
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// Whether `text` looks like a recovery code rather than a six-digit TOTP code.
pub fn is_recovery_code(text: &str) -> bool {
    normalise_recovery_code(text).len() == RECOVERY_CODE_CHARS
}

fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The stored form of a recovery code: SHA-256 of its normalised text. The codes carry 50 random
/// bits and are single-use, so a fast hash suffices.
pub fn recovery_code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(normalise_recovery_code(code).as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use uuid::Uuid;

    fn keys() -> ChallengeKeys {
        ChallengeKeys::new(b"test key of the challenge secrets")
    }

    fn ids() -> (AccountId, ChallengeId) {
        (
            AccountId::from_uuid(Uuid::from_u128(1)),
            ChallengeId::from_uuid(Uuid::from_u128(2)),
        )
    }

    #[test]
    fn hotp_matches_the_rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        let cases = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ];
        for (time, expected) in cases {
            assert_eq!(hotp(secret, time / 30), expected, "T = {time}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn codes_are_six_digits_and_differ_per_challenge_and_key() {
        let (account, challenge) = ids();
        let code = keys().code(account, challenge);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(code, keys().code(account, challenge));
        let other = ChallengeId::from_uuid(Uuid::from_u128(3));
        let codes: std::collections::HashSet<String> = (0..50u128)
            .map(|n| keys().code(account, ChallengeId::from_uuid(Uuid::from_u128(n))))
            .collect();
        assert!(codes.len() > 45, "codes repeat too often");
        assert_ne!(
            ChallengeKeys::new(b"another key").code(account, challenge),
            code
        );
        let _ = other;
    }

    #[test]
    fn a_link_token_opens_only_for_its_purpose_and_key() {
        let (account, challenge) = ids();
        let token = keys().link_token(LinkPurpose::VerifyEmail, account, challenge);
        assert_eq!(
            keys().open_link_token(LinkPurpose::VerifyEmail, &token),
            Some((account, challenge))
        );
        assert_eq!(
            keys().open_link_token(LinkPurpose::ResetPassword, &token),
            None
        );
        assert_eq!(
            ChallengeKeys::new(b"other").open_link_token(LinkPurpose::VerifyEmail, &token),
            None
        );
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            keys().open_link_token(LinkPurpose::VerifyEmail, &tampered),
            None
        );
        assert_eq!(
            keys().open_link_token(LinkPurpose::VerifyEmail, "garbage!"),
            None
        );
    }

    #[test]
    fn the_otpauth_uri_carries_the_secret_that_generates_the_codes() {
        let (account, setup) = ids();
        let (secret, uri) = keys().otpauth(account, setup, "ada@example.com");
        assert!(uri.starts_with("otpauth://totp/Stratus:ada@example.com?secret="));
        assert!(uri.contains(&secret));
        assert!(
            uri.contains("issuer=Stratus") && uri.contains("digits=6") && uri.contains("period=30")
        );
        assert_eq!(secret, base32(&keys().totp_secret(account, setup)));
        assert_eq!(
            keys().totp_code(account, setup, 1234),
            hotp(&keys().totp_secret(account, setup), 1234)
        );
    }

    #[test]
    fn recovery_codes_are_ten_distinct_codes_hashed_after_normalising() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let distinct: std::collections::HashSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
        for code in &codes {
            assert!(is_recovery_code(code));
            assert_eq!(
                recovery_code_hash(code),
                recovery_code_hash(&code.to_uppercase().replace('-', " "))
            );
        }
        assert!(!is_recovery_code("123456"));
    }
}
