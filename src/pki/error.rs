//! The one error type of the PKI module.

use std::path::PathBuf;

use crate::pki::fingerprint::Fingerprint;
use crate::pki::identity::Role;
use crate::pki::verifier::RolePolicy;

/// Result alias for the PKI module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How an operator recovers from a broken master leaf (the master can simply reissue it).
pub const MASTER_LEAF_HINT: &str = "move master.crt and master.key away and restart the \
     master to issue a new master certificate from the CA";

/// How an operator recovers from a broken worker bundle; part of every bundle error so the
/// message alone is enough to act on.
pub const REENROLL_HINT: &str = "to re-enroll, run `decnet swarm enroll --name <worker> \
     --address <addr> --out-dir <dir>` on the master, then copy the bundle (ca.crt, worker.crt, \
     worker.key) into this directory";

/// Errors of the PKI module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Only one of `ca.crt` / `ca.key` exists. Never "repaired" by creating a new CA: that would
    /// silently orphan every enrolled worker.
    #[error(
        "CA directory {dir} is incomplete: {present} exists but {missing} does not; refusing to \
         create a new CA over it. Restore {missing} from a backup, or move {dir} away to start a \
         new CA (every worker must then be re-enrolled)"
    )]
    CaIncomplete {
        dir: PathBuf,
        present: PathBuf,
        missing: PathBuf,
    },

    /// `ca.key` is not the key of `ca.crt`.
    #[error(
        "CA key {key} does not belong to CA certificate {cert}; refusing to use or overwrite \
         them. Restore the matching pair from a backup, or move the directory away to start a \
         new CA (every worker must then be re-enrolled)"
    )]
    CaKeyMismatch { cert: PathBuf, key: PathBuf },

    /// A CA file exists but is unusable.
    #[error("invalid CA file {path}: {reason}")]
    InvalidCa { path: PathBuf, reason: String },

    /// A credential bundle file (worker bundle or the master's own leaf) is unusable.
    #[error("{path}: {problem}; {hint}")]
    Bundle {
        path: PathBuf,
        problem: BundleProblem,
        /// What the operator should do ([`REENROLL_HINT`] for worker bundles).
        hint: &'static str,
    },

    /// A worker name is not a lowercase DNS label, or is reserved.
    #[error("invalid worker name {name:?}: {reason}")]
    InvalidWorkerName { name: String, reason: &'static str },

    /// A certificate CN does not encode a decnet role.
    #[error("certificate common name {cn:?} is not a decnet identity: {reason}")]
    InvalidCommonName { cn: String, reason: String },

    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name {san:?}: {reason}")]
    InvalidSan { san: String, reason: &'static str },

    /// A fingerprint string could not be parsed.
    #[error(
        "invalid certificate fingerprint {input:?}: expected 64 hex digits, optionally as \
         colon-separated pairs"
    )]
    InvalidFingerprint { input: String },

    /// Requested leaf validity is empty, inverted or longer than allowed.
    #[error("invalid certificate validity: {reason}")]
    InvalidValidity { reason: String },

    /// rcgen refused to build a certificate or key.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),

    /// rustls refused a configuration (e.g. key does not match certificate).
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),

    /// A webpki verifier could not be built (e.g. unusable CA certificate).
    #[error("TLS verifier configuration error: {0}")]
    VerifierBuilder(#[from] rustls::server::VerifierBuilderError),

    /// The peer's certificate is on the revocation list.
    #[error("certificate {fingerprint} is revoked")]
    Revoked { fingerprint: Fingerprint },

    /// The peer's role is not accepted by this endpoint's policy.
    #[error("peer {role:?} (CN {cn:?}) is not allowed here; this endpoint accepts {policy}", cn = role.common_name())]
    RoleNotAllowed { role: Role, policy: RolePolicy },

    /// The peer sent no certificate.
    #[error("peer presented no certificate")]
    NoPeerCertificate,

    /// A certificate is not parseable X.509 or lacks a usable CN.
    #[error("cannot use certificate: {reason}")]
    CertificateParse { reason: String },

    /// A line of a revocation list file is not a fingerprint.
    #[error("{path}:{line}: {reason}")]
    RevocationListParse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What is wrong with one file of a credential bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleProblem {
    #[error("file is missing")]
    Missing,
    #[error("cannot read file: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("cannot parse {what}: {reason}")]
    Unparsable { what: &'static str, reason: String },
    #[error("private key does not match the certificate in {cert}")]
    KeyMismatch { cert: PathBuf },
    #[error("certificate is not signed by the CA in {ca} ({reason})")]
    NotSignedByCa { ca: PathBuf, reason: String },
    #[error("certificate is expired or not yet valid ({reason})")]
    NotValidNow { reason: String },
    #[error("certificate is not a decnet identity ({reason})")]
    BadIdentity { reason: String },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bundle(
        path: impl Into<PathBuf>,
        problem: BundleProblem,
        hint: &'static str,
    ) -> Self {
        Error::Bundle {
            path: path.into(),
            problem,
            hint,
        }
    }
}
