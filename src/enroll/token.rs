//! One-shot enrollment tokens: 256 random bits, URL-safe base64 without padding (43
//! characters). Only the SHA-256 of a token is ever stored, so the database alone does not
//! let anyone fetch a bundle.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Length of a token's text form: 32 bytes in unpadded base64.
pub const TOKEN_LEN: usize = 43;

/// A bearer token. `Debug` never prints it (it would end up in logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh token from the OS-seeded CSPRNG.
    pub fn generate() -> Token {
        let bytes: [u8; 32] = rand::random();
        Token(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses a token taken from a URL. Anything that is not exactly a canonical encoding of
    /// 32 bytes is `None` (the server answers 404), so odd input never reaches the database.
    pub fn parse(s: &str) -> Option<Token> {
        if s.len() != TOKEN_LEN {
            return None;
        }
        // Decoding also rejects non-canonical trailing bits, so each token has one spelling.
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        (bytes.len() == 32).then(|| Token(s.to_owned()))
    }

    /// The token text (secret: goes into the URL only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keys on: lowercase hex SHA-256 of the token text.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_url_safe_distinct_and_parse_back() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{}",
            a.expose()
        );
        assert_eq!(Token::parse(a.expose()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
    }

    #[test]
    fn hash_is_sha256_hex_of_the_text() {
        let t = Token::parse(&"A".repeat(43)).unwrap();
        let expected = hex(&Sha256::digest("A".repeat(43).as_bytes()));
        assert_eq!(t.hash(), expected);
        assert_eq!(t.hash().len(), 64);
        assert_ne!(t.hash(), Token::generate().hash());
    }

    #[test]
    fn rejects_malformed_tokens() {
        let good = Token::generate();
        let cases = [
            String::new(),
            "short".into(),
            format!("{}A", good.expose()),
            good.expose()[..42].to_string(),
            format!("{}=", &good.expose()[..42]),
            format!("{}/", &good.expose()[..42]),
            format!("{}+", &good.expose()[..42]),
            format!("{}.", &good.expose()[..42]),
            "é".repeat(21) + "A",
            "../".repeat(14) + "A",
            // Non-canonical: the last character carries bits beyond the 256.
            format!("{}B", &"A".repeat(42)),
        ];
        for c in cases {
            assert!(Token::parse(&c).is_none(), "{c:?} should be rejected");
        }
    }
}
