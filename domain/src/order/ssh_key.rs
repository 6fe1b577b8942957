//! An SSH public key in OpenSSH's one-line format, checked down to its embedded key type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest key line accepted, in bytes: a 16,384-bit RSA key with a comment fits in 3 KiB, this
/// leaves room while keeping order events small.
pub const SSH_KEY_MAX_BYTES: usize = 8 * 1024;
/// Longest comment after the key.
pub const SSH_KEY_COMMENT_MAX_CHARS: usize = 255;

/// The key types accepted: what current OpenSSH accepts by default (`ssh-dss` is gone).
pub const SSH_KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// `<type> <base64 key blob> [comment]`, as in `~/.ssh/id_ed25519.pub`. The blob must decode and
/// start with the same key type it is labelled with, so a truncated or mislabelled paste is
/// refused here and not by the VM's first boot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshPublicKey(String);

/// Which rule a key broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SshKeyProblem {
    #[error("the key is empty")]
    Empty,
    #[error("the key is longer than {SSH_KEY_MAX_BYTES} bytes")]
    TooLong,
    #[error("unsupported key type: expected ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521 or sk-ssh-ed25519@openssh.com")]
    UnsupportedType,
    #[error("the key data is missing or is not valid base64")]
    BadEncoding,
    #[error("the key data is truncated or does not match its type")]
    TypeMismatch,
    #[error("the comment is too long or holds control characters")]
    BadComment,
}

impl SshPublicKey {
    /// # Errors
    /// The first [`SshKeyProblem`] found.
    pub fn parse(input: &str) -> Result<Self, SshKeyProblem> {
        let line = input.trim();
        if line.is_empty() {
            return Err(SshKeyProblem::Empty);
        }
        if line.len() > SSH_KEY_MAX_BYTES {
            return Err(SshKeyProblem::TooLong);
        }
        let mut parts = line.splitn(3, ' ');
        let key_type = parts.next().unwrap_or_default();
        if !SSH_KEY_TYPES.contains(&key_type) {
            return Err(SshKeyProblem::UnsupportedType);
        }
        let blob =
            decode_base64(parts.next().unwrap_or_default()).ok_or(SshKeyProblem::BadEncoding)?;
        if !blob_matches(&blob, key_type) {
            return Err(SshKeyProblem::TypeMismatch);
        }
        if let Some(comment) = parts.next() {
            if comment.chars().count() > SSH_KEY_COMMENT_MAX_CHARS
                || comment.chars().any(char::is_control)
            {
                return Err(SshKeyProblem::BadComment);
            }
        }
        Ok(Self(line.to_owned()))
    }

    /// The key line as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `blob` is a whole public key of `key_type` in SSH wire format (RFC 4253 §6.6): the
/// type name, then the fields of that type, each a big-endian `u32` length and that many bytes,
/// with nothing missing and nothing left over.
fn blob_matches(blob: &[u8], key_type: &str) -> bool {
    let Some(fields) = wire_fields(blob) else {
        return false;
    };
    let expected_fields = match key_type {
        "ssh-ed25519" => 2,
        _ => 3, // rsa: e, n; ecdsa: curve, point; sk-ed25519: key, application
    };
    let ed25519_key_ok = !key_type.contains("ed25519")
        || fields
            .get(1)
            .is_some_and(|key| key.len() == ED25519_KEY_BYTES);
    fields.len() == expected_fields
        && fields.first() == Some(&key_type.as_bytes())
        && fields.iter().skip(1).all(|field| !field.is_empty())
        && ed25519_key_ok
}

/// Bytes of an Ed25519 public key.
const ED25519_KEY_BYTES: usize = 32;

/// Splits an SSH wire-format blob into its length-prefixed fields; `None` when a length runs past
/// the end.
fn wire_fields(mut blob: &[u8]) -> Option<Vec<&[u8]>> {
    let mut fields = Vec::new();
    while !blob.is_empty() {
        let length = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?);
        let end = 4_usize.checked_add(usize::try_from(length).ok()?)?;
        fields.push(blob.get(4..end)?);
        blob = blob.get(end..)?;
    }
    Some(fields)
}

/// Standard base64 with padding, as OpenSSH writes it; `None` for anything else.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    let bytes = input.as_bytes();
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return None;
    }
    let value = |b: u8| -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some(u32::from(b - b'A')),
            b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let chunks = bytes.chunks(4).count();
    let mut out = Vec::with_capacity(chunks * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let padding = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != chunks) {
            return None;
        }
        let mut word = 0_u32;
        for &b in &chunk[..4 - padding] {
            word = (word << 6) | value(b)?;
        }
        word <<= 6 * padding;
        let decoded = word.to_be_bytes();
        out.extend_from_slice(&decoded[1..4 - padding]);
    }
    Some(out)
}

impl TryFrom<String> for SshPublicKey {
    type Error = SshKeyProblem;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SshPublicKey> for String {
    fn from(value: SshPublicKey) -> Self {
        value.0
    }
}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real public keys made by `ssh-keygen` for these tests (private halves discarded).
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1O+kiVnXJ9nEaUIdY/9Xy7U+vzZ2ZtNiQNH+SatmHc ops@example";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC+EGPgXAkOeMOzMMTo+9GIaYgA9KtO8C48vC862IHd3BIiTCUJUivWbwQ6F65CqQgZo6TpoyJW5Oe/oS6eWGvgzPOUn5UAdYsqKc6+YGMOnT7tQtQKNC++EgZ7Qdvj8YpQSsFcf8Ds+/Ucbk88hFFj+cwr8olPNXkkJdMYXZa1NCuCZuQTyu4Buc6A6Vd3BuABAvjLKqmQX33wqhjBHThwa/LeAOF0nfhuRR54brONUXKNkG2KdY9JJzkXX458Hvj59eXs420cUknbYa1MvmtUsFAtwaVyoLe6EpENsNznbR63Zq6C6YnzPkcHZU8I2Rr/mOJiu2camxqJWvKKT9Yl rsa@example";

    #[test]
    fn an_openssh_key_line_is_accepted_with_or_without_a_comment() {
        assert!(SshPublicKey::parse(ED25519).is_ok());
        assert!(SshPublicKey::parse(RSA).is_ok());
        let without_comment = ED25519
            .rsplit_once(' ')
            .map(|(key, _)| key)
            .unwrap_or(ED25519);
        assert!(SshPublicKey::parse(without_comment).is_ok());
        assert!(SshPublicKey::parse(&format!("  {ED25519}\n")).is_ok());
    }

    #[test]
    fn broken_keys_are_refused_with_the_rule_they_break() {
        use SshKeyProblem::*;
        let blob = ED25519.split(' ').nth(1).unwrap_or_default();
        let truncated = format!("ssh-ed25519 {}", &blob[..blob.len() - 4]);
        let mislabelled = format!("ssh-rsa {blob}");
        let long_comment = format!("ssh-ed25519 {blob} {}", "c".repeat(300));
        for (input, problem) in [
            ("", Empty),
            ("   ", Empty),
            ("ssh-dss AAAAB3NzaC1kc3M=", UnsupportedType),
            ("ed25519 AAAA", UnsupportedType),
            ("ssh-ed25519", BadEncoding),
            ("ssh-ed25519 not*base64", BadEncoding),
            ("ssh-ed25519 QUJD=A==", BadEncoding),
            (truncated.as_str(), TypeMismatch),
            (mislabelled.as_str(), TypeMismatch),
            ("ssh-ed25519 AAAA", TypeMismatch),
            (long_comment.as_str(), BadComment),
        ] {
            assert_eq!(SshPublicKey::parse(input), Err(problem), "{input:?}");
        }
        let huge = format!("ssh-rsa {}", "A".repeat(SSH_KEY_MAX_BYTES));
        assert_eq!(SshPublicKey::parse(&huge), Err(TooLong));
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("TWFu"), Some(b"Man".to_vec()));
        assert_eq!(decode_base64("TWE="), Some(b"Ma".to_vec()));
        assert_eq!(decode_base64("TQ=="), Some(b"M".to_vec()));
        assert_eq!(decode_base64("TQ"), None);
        assert_eq!(decode_base64("T==="), None);
    }
}
