//! SHA-256 fingerprints of DER certificates: the identity the store and revocation list key on.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::pki::error::Error;

/// SHA-256 of a certificate's DER encoding. Displays as 64 lowercase hex digits; parses that
/// form (any case) or the colon-separated form `AB:CD:...` printed by `openssl x509 -fingerprint`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of DER bytes (a `CertificateDer` derefs to `[u8]`).
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Colon-separated uppercase form, as `openssl x509 -noout -fingerprint -sha256` prints it.
    pub fn to_colon_hex(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        parts.join(":")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidFingerprint {
            input: s.chars().take(200).collect(),
        };
        let trimmed = s.trim();
        // Accept either 64 contiguous hex digits or 32 colon-separated pairs, never a mix:
        // a half-colon string is more likely a copy/paste accident than a fingerprint.
        let hex: Vec<u8> = if trimmed.contains(':') {
            let parts: Vec<&str> = trimmed.split(':').collect();
            if parts.len() != 32 || parts.iter().any(|p| p.len() != 2) {
                return Err(bad());
            }
            parts.concat().into_bytes()
        } else {
            trimmed.as_bytes().to_vec()
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let &[hi, lo] = pair else {
                return Err(bad());
            };
            *slot = (hex_val(hi).ok_or_else(bad)? << 4) | hex_val(lo).ok_or_else(bad)?;
        }
        Ok(Fingerprint(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_round_trip() {
        let fp = Fingerprint::of_der(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(fp.to_string(), hex);
        assert_eq!(hex.parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(hex.to_uppercase().parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(fp.to_colon_hex().parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(format!("  {hex}\n").parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(format!("{fp:?}"), format!("Fingerprint({hex})"));
    }

    #[test]
    fn rejects_garbage() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let cases = [
            "".to_string(),
            "zz".to_string(),
            hex[..62].to_string(),
            format!("{hex}00"),
            hex.replace('a', "g"),
            format!("{}:{}", &hex[..2], &hex[2..]),
            ":".repeat(31),
            "é".repeat(32),
            "ü:".repeat(31) + "ü",
        ];
        for c in cases {
            assert!(
                matches!(
                    c.parse::<Fingerprint>(),
                    Err(Error::InvalidFingerprint { .. })
                ),
                "{c:?} should be rejected"
            );
        }
    }
}
