//! rustls verifiers that add revocation and role checks on top of webpki chain verification.
//!
//! Chain, validity, EKU and signature checks are delegated to rustls' webpki verifiers; only
//! after they pass do we (a) refuse revoked fingerprints and (b) refuse peers whose role is not
//! in the endpoint's [`RolePolicy`]. Failing inside the verifier aborts the handshake, so
//! application code never sees a connection from a peer it must not talk to.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::pki::error::Error;
use crate::pki::identity::{Role, RoleKind, WorkerName};
use crate::pki::peer::PeerIdentity;
use crate::pki::revocation::RevocationList;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    Exactly(Role),
    AnyOf(RoleKind),
}

/// Which peer roles an endpoint (or a client connection) accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolePolicy {
    rules: Vec<Rule>,
}

impl RolePolicy {
    /// Accepts exactly `role` (a specific identity).
    pub fn only(role: Role) -> Self {
        RolePolicy {
            rules: vec![Rule::Exactly(role)],
        }
    }

    /// Accepts any role of `kind` (e.g. any agent).
    pub fn any(kind: RoleKind) -> Self {
        RolePolicy {
            rules: vec![Rule::AnyOf(kind)],
        }
    }

    /// Also accepts what `other` accepts.
    pub fn or(mut self, other: RolePolicy) -> Self {
        self.rules.extend(other.rules);
        self
    }

    /// Worker agent API server: only the master may call it.
    pub fn agent_endpoint() -> Self {
        Self::only(Role::Master)
    }

    /// Worker updater server: only the master may push updates.
    pub fn updater_endpoint() -> Self {
        Self::only(Role::Master)
    }

    /// Master's log listener: any enrolled agent (the worker is then taken from the peer CN).
    pub fn log_listener() -> Self {
        Self::any(RoleKind::Agent)
    }

    /// Client side, master → worker `worker`'s agent: the server must be exactly that agent.
    pub fn agent_of(worker: WorkerName) -> Self {
        Self::only(Role::Agent { worker })
    }

    /// Client side, master → worker `worker`'s updater: the server must be exactly that updater.
    pub fn updater_of(worker: WorkerName) -> Self {
        Self::only(Role::Updater { worker })
    }

    /// Client side, worker → master (e.g. log shipping): the server must be the master.
    pub fn master() -> Self {
        Self::only(Role::Master)
    }

    /// Whether `role` is accepted.
    pub fn allows(&self, role: &Role) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::Exactly(r) => r == role,
            Rule::AnyOf(kind) => role.kind() == *kind,
        })
    }
}

impl fmt::Display for RolePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("nobody");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            match rule {
                Rule::Exactly(Role::Master) => f.write_str("the master")?,
                Rule::Exactly(role) => write!(
                    f,
                    "the {} of worker {:?}",
                    role.kind(),
                    role.worker().map(WorkerName::as_str).unwrap_or_default()
                )?,
                Rule::AnyOf(kind) => write!(f, "any {kind}")?,
            }
        }
        Ok(())
    }
}

/// Whether a client checks the server's name against the certificate's SANs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerNameCheck {
    /// Verify the hostname/IP we connect to against the certificate SANs (default).
    #[default]
    Verify,
    /// Verify the chain (CA, validity, EKU), revocation and role, but not the name.
    ///
    /// OK when the [`RolePolicy`] pins one exact identity (e.g. [`RolePolicy::agent_of`]): the
    /// role check then proves we reached that worker, whatever address it is reachable at (NAT,
    /// changed IP, SSH tunnel). Not OK with a broad policy such as "any agent", where the name
    /// is the only thing telling two workers apart.
    SkipNameOnly,
}

/// Revocation + role check of an already chain-verified end-entity certificate.
pub(crate) fn authorize(
    end_entity: &CertificateDer<'_>,
    policy: &RolePolicy,
    revoked: &RevocationList,
) -> Result<PeerIdentity, Error> {
    let fingerprint = crate::pki::fingerprint::Fingerprint::of_der(end_entity);
    if revoked.is_revoked(&fingerprint) {
        return Err(Error::Revoked { fingerprint });
    }
    let peer = PeerIdentity::from_cert(end_entity)?;
    if !policy.allows(&peer.role) {
        return Err(Error::RoleNotAllowed {
            role: peer.role,
            policy: policy.clone(),
        });
    }
    Ok(peer)
}

/// Maps our refusal into a rustls error: revocation gets the standard `Revoked` (alert
/// certificate_revoked); everything else carries the [`Error`] itself so callers can downcast.
fn refuse(side: &'static str, err: Error) -> rustls::Error {
    tracing::warn!(side, error = %err, "refusing TLS peer");
    match err {
        Error::Revoked { .. } => rustls::Error::InvalidCertificate(CertificateError::Revoked),
        other => {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(other))))
        }
    }
}

/// Server-side verifier of client certificates: webpki chain check, then revocation and role.
#[derive(Debug)]
pub struct PolicyClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    policy: RolePolicy,
    revoked: RevocationList,
}

impl PolicyClientVerifier {
    /// Wraps a (webpki) verifier that does the chain verification.
    pub fn new(
        inner: Arc<dyn ClientCertVerifier>,
        policy: RolePolicy,
        revoked: RevocationList,
    ) -> Self {
        PolicyClientVerifier {
            inner,
            policy,
            revoked,
        }
    }
}

impl ClientCertVerifier for PolicyClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        authorize(end_entity, &self.policy, &self.revoked).map_err(|e| refuse("server", e))?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Client-side verifier of server certificates: webpki chain (+ name) check, then revocation
/// and role.
#[derive(Debug)]
pub struct PolicyServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    name_check: ServerNameCheck,
    policy: RolePolicy,
    revoked: RevocationList,
}

impl PolicyServerVerifier {
    /// `inner` must have been built from the same `roots` and `provider`.
    pub fn new(
        inner: Arc<WebPkiServerVerifier>,
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        name_check: ServerNameCheck,
        policy: RolePolicy,
        revoked: RevocationList,
    ) -> Self {
        PolicyServerVerifier {
            inner,
            roots,
            provider,
            name_check,
            policy,
            revoked,
        }
    }
}

impl ServerCertVerifier for PolicyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = match self.name_check {
            ServerNameCheck::Verify => self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )?,
            ServerNameCheck::SkipNameOnly => {
                // Same webpki chain verification as `inner`, minus `verify_server_name`.
                let parsed = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                )?;
                ServerCertVerified::assertion()
            }
        };
        authorize(end_entity, &self.policy, &self.revoked).map_err(|e| refuse("client", e))?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let w1 = WorkerName::new("w1").unwrap();
        let w2 = WorkerName::new("w2").unwrap();
        let agent1 = Role::Agent { worker: w1.clone() };
        let agent2 = Role::Agent { worker: w2.clone() };
        let upd1 = Role::Updater { worker: w1.clone() };

        let agent_ep = RolePolicy::agent_endpoint();
        assert!(agent_ep.allows(&Role::Master));
        assert!(!agent_ep.allows(&agent1) && !agent_ep.allows(&upd1));

        let logs = RolePolicy::log_listener();
        assert!(logs.allows(&agent1) && logs.allows(&agent2));
        assert!(!logs.allows(&Role::Master) && !logs.allows(&upd1));

        let to_w1 = RolePolicy::agent_of(w1.clone());
        assert!(to_w1.allows(&agent1));
        assert!(!to_w1.allows(&agent2) && !to_w1.allows(&upd1) && !to_w1.allows(&Role::Master));

        let either = RolePolicy::master().or(RolePolicy::updater_of(w1));
        assert!(either.allows(&Role::Master) && either.allows(&upd1) && !either.allows(&agent1));
        assert_eq!(
            either.to_string(),
            "the master or the updater of worker \"w1\""
        );
        assert_eq!(logs.to_string(), "any agent");
    }
}
