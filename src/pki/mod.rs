//! PKI and mutual TLS for decnet.
//!
//! Every cross-host connection (master ⇄ worker agent, updater, log shipping) is mutual TLS
//! against one private CA that lives on the master. Identity is the certificate's CN, which
//! encodes a [`Role`]; which roles may talk to which endpoint, and which certificates are
//! revoked, is enforced inside the rustls verifiers ([`verifier`]), so a handler never sees a
//! connection from a peer it should not talk to.
//!
//! Layout:
//! - [`ca`]: the CA on the master (`<home>/ca/ca.crt`, `<home>/ca/ca.key`) and leaf issuance.
//! - [`leaf`]: leaf validity options.
//! - [`identity`]: worker names, roles and CN parsing.
//! - [`fingerprint`]: SHA-256 certificate fingerprints.
//! - [`revocation`]: the live, shared revocation set.
//! - [`verifier`]: role policies and the rustls verifier wrappers.
//! - [`tls`]: the one place where rustls server/client configs are built.
//! - [`bundle`]: certificate + key + CA on disk (worker bundles, the master's own leaf).
//! - [`peer`]: the authenticated identity of the peer of a finished handshake.
//!
//! File operations are synchronous and small; async callers should use `spawn_blocking`.

pub mod bundle;
pub mod ca;
pub mod error;
mod files;
pub mod fingerprint;
pub mod identity;
pub mod leaf;
pub mod peer;
pub mod revocation;
pub mod tls;
pub mod verifier;

pub use bundle::{Bundle, MASTER_CERT_FILE, MASTER_KEY_FILE, master_bundle};
pub use ca::CertificateAuthority;
pub use error::{BundleProblem, Error, Result};
pub use fingerprint::Fingerprint;
pub use identity::{Role, RoleKind, WorkerName};
pub use leaf::LeafOptions;
pub use peer::PeerIdentity;
pub use revocation::RevocationList;
pub use tls::{
    client_config, provider, server_config, server_config_without_client_auth, server_name,
};
pub use verifier::{PolicyClientVerifier, PolicyServerVerifier, RolePolicy, ServerNameCheck};
