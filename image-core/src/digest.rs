//! The digest grammar of the OCI image-spec (descriptor.md, "Digests"):
//!
//! ```text
//! digest                ::= algorithm ":" encoded
//! algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
//! algorithm-component   ::= [a-z0-9]+
//! algorithm-separator   ::= [+._-]
//! encoded               ::= [a-zA-Z0-9=_-]+
//! ```
//!
//! Registered algorithms are `sha256` (64 lowercase hex characters) and `sha512` (128).
//! `sha384` is not registered, but oci-spec (which decodes the documents afterwards) requires
//! 96 lowercase hex characters for it, so [`parse`] checks that too and reports it with a
//! precise reason; for verification it counts as unregistered.
//!
//! **Unregistered algorithms.** The spec lets implementations accept an unregistered algorithm
//! only if they can verify it. Its own schema validator accepts them (`multihash+base58:…`,
//! `sha256+b64u:…` are valid in the test vectors), so [`parse`] (and therefore document
//! validation) accepts any algorithm that follows the grammar. Verifying content is another
//! matter: [`verify`] and [`compute`] know only sha256 and sha512 and report anything else as
//! [`DigestError::Unregistered`] ("unregistered digest algorithm"), which callers that read
//! blobs (the layout reader) must treat as an error.

use crate::validate::walker::quote_short as q;
use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;

/// A digest algorithm registered by the image-spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm named `name`, `None` if it is not registered.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// `sha256` or `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The length of the encoded part: lowercase hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The digest of `bytes` as `name:hex`.
    pub fn digest(self, bytes: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            Algorithm::Sha512 => format!("sha512:{}", hex::encode(Sha512::digest(bytes))),
        }
    }
}

/// A digest split into its parts, borrowed from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub algorithm: &'a str,
    pub encoded: &'a str,
    /// `Some` when the algorithm is registered (and then `encoded` has been checked to be the
    /// right number of lowercase hex characters).
    pub registered: Option<Algorithm>,
}

/// Why a string is not a valid digest. `Display` gives the reason, quoting the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// No `:` between algorithm and encoded part.
    MissingColon(String),
    /// The algorithm part does not follow `[a-z0-9]+([+._-][a-z0-9]+)*`.
    BadAlgorithm(String),
    /// The encoded part is empty or has characters outside `[a-zA-Z0-9=_-]`.
    BadEncoded(String),
    /// A registered algorithm whose encoded part is not the right number of lowercase hex
    /// characters.
    BadHex { digest: String, hex_len: usize },
    /// The algorithm follows the grammar but is not registered: content cannot be verified.
    Unregistered(String),
    /// The content does not have this digest.
    Mismatch { expected: String, actual: String },
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::MissingColon(d) => {
                write!(
                    f,
                    "{} is not a digest: expected \"algorithm:encoded\"",
                    q(d)
                )
            }
            DigestError::BadAlgorithm(d) => write!(
                f,
                "{} has an invalid algorithm: expected lowercase letters and digits \
                 separated by single '+', '.', '_' or '-'",
                q(d)
            ),
            DigestError::BadEncoded(d) => write!(
                f,
                "{} has an invalid encoded part: expected one or more of a-z A-Z 0-9 = _ -",
                q(d)
            ),
            DigestError::BadHex { digest, hex_len } => {
                write!(f, "{} is not {hex_len} lowercase hex characters", q(digest))
            }
            DigestError::Unregistered(d) => write!(
                f,
                "{} uses an unregistered digest algorithm: only sha256 and sha512 can be \
                 verified",
                q(d)
            ),
            DigestError::Mismatch { expected, actual } => {
                write!(f, "content has digest {actual:?}, expected {expected:?}")
            }
        }
    }
}

impl std::error::Error for DigestError {}

/// Parses `digest` per the grammar; registered algorithms must have an encoded part of exactly
/// the right number of lowercase hex characters. Unregistered algorithms are accepted (see the
/// module documentation): check [`Parsed::registered`] or call [`require_registered`].
pub fn parse(digest: &str) -> Result<Parsed<'_>, DigestError> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(DigestError::MissingColon(digest.to_owned()));
    };
    if !algorithm_ok(algorithm) {
        return Err(DigestError::BadAlgorithm(digest.to_owned()));
    }
    if encoded.is_empty()
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
    {
        return Err(DigestError::BadEncoded(digest.to_owned()));
    }
    let registered = Algorithm::from_name(algorithm);
    let hex_len = match (registered, algorithm) {
        (Some(alg), _) => Some(alg.hex_len()),
        (None, "sha384") => Some(96),
        _ => None,
    };
    if let Some(hex_len) = hex_len {
        let hex_ok = encoded.len() == hex_len
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(DigestError::BadHex {
                digest: digest.to_owned(),
                hex_len,
            });
        }
    }
    Ok(Parsed {
        algorithm,
        encoded,
        registered,
    })
}

fn algorithm_ok(algorithm: &str) -> bool {
    // Components are non-empty runs of [a-z0-9]; a separator may only stand between two.
    !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Parses `digest` and requires a registered algorithm (one that content can be verified with).
pub fn require_registered(digest: &str) -> Result<Algorithm, DigestError> {
    parse(digest)?
        .registered
        .ok_or_else(|| DigestError::Unregistered(digest.to_owned()))
}

/// The digest of `bytes` with the algorithm of `like` (a digest string), e.g. to compare with it.
pub fn compute(like: &str, bytes: &[u8]) -> Result<String, DigestError> {
    Ok(require_registered(like)?.digest(bytes))
}

/// Checks that `bytes` have digest `expected`.
pub fn verify(expected: &str, bytes: &[u8]) -> Result<(), DigestError> {
    let actual = compute(expected, bytes)?;
    if actual == expected {
        Ok(())
    } else {
        Err(DigestError::Mismatch {
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// `sha256:` followed by the hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Algorithm::Sha256.digest(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_JSON: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn grammar() {
        assert!(parse(EMPTY_JSON).is_ok());
        assert!(parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").is_ok());
        assert!(
            parse("sha256+b64u.unknownlength:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564=").is_ok()
        );
        assert!(matches!(
            parse("sha256+foo+-b:abc"),
            Err(DigestError::BadAlgorithm(_))
        ));
        assert!(matches!(
            parse("+sha256:abc"),
            Err(DigestError::BadAlgorithm(_))
        ));
        assert!(matches!(
            parse("sha256-:abc"),
            Err(DigestError::BadAlgorithm(_))
        ));
        assert!(matches!(parse(":abc"), Err(DigestError::BadAlgorithm(_))));
        assert!(matches!(
            parse("SHA256:abc"),
            Err(DigestError::BadAlgorithm(_))
        ));
        assert!(matches!(parse("sha256"), Err(DigestError::MissingColon(_))));
        assert!(matches!(parse("foo:"), Err(DigestError::BadEncoded(_))));
        assert!(matches!(parse("foo:a:b"), Err(DigestError::BadEncoded(_))));
        assert!(matches!(
            parse("sha256:ab"),
            Err(DigestError::BadHex { .. })
        ));
        assert!(matches!(
            parse(&EMPTY_JSON.to_uppercase().replace("SHA256", "sha256")),
            Err(DigestError::BadHex { .. })
        ));
        assert!(matches!(
            parse(&format!("sha512:{}", "a".repeat(64))),
            Err(DigestError::BadHex { .. })
        ));
        assert!(parse(&format!("sha512:{}", "a".repeat(128))).is_ok());
        assert!(matches!(
            parse("sha384:abc"),
            Err(DigestError::BadHex { hex_len: 96, .. })
        ));
        let sha384 = format!("sha384:{}", "b".repeat(96));
        assert_eq!(parse(&sha384).map(|p| p.registered), Ok(None));
    }

    #[test]
    fn messages() {
        assert_eq!(
            parse("sha256:ab").unwrap_err().to_string(),
            "\"sha256:ab\" is not 64 lowercase hex characters"
        );
        assert_eq!(
            require_registered("md5:abc").unwrap_err().to_string(),
            "\"md5:abc\" uses an unregistered digest algorithm: only sha256 and sha512 can be verified"
        );
    }

    #[test]
    fn verification() {
        assert_eq!(sha256(b"{}"), EMPTY_JSON);
        assert!(verify(EMPTY_JSON, b"{}").is_ok());
        assert!(matches!(
            verify(EMPTY_JSON, b"{ }"),
            Err(DigestError::Mismatch { .. })
        ));
        let d512 = Algorithm::Sha512.digest(b"x");
        assert!(verify(&d512, b"x").is_ok());
        assert!(matches!(
            verify("md5:abc", b"x"),
            Err(DigestError::Unregistered(_))
        ));
    }
}
