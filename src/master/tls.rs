//! The master's TLS identity, shared by every master-side server and client:
//! the CA (created on first use), the master's leaf, and the live revocation
//! list loaded from the store.

use std::path::Path;
use std::sync::Arc;

use super::MasterError;
use crate::api::{Kind, Swarm, WorkerSpec};
use crate::pki::{
    self, Bundle, CertificateAuthority, Fingerprint, RevocationList, RolePolicy, ServerNameCheck,
    WorkerName,
};
use crate::store::{Selector, Store};

#[derive(Clone)]
pub struct MasterTls {
    pub store: Store,
    pub ca: Arc<CertificateAuthority>,
    pub bundle: Arc<Bundle>,
    /// Shared with every verifier built from here: revoking is live.
    pub revoked: RevocationList,
}

impl MasterTls {
    /// Loads (or on first use creates) the CA and the master certificate.
    /// The master's SANs: loopback, this host's name, and every Swarm's
    /// `masterAddress` (what workers dial).
    pub async fn load(home: &Path, store: Store) -> Result<MasterTls, MasterError> {
        let mut sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
            let h = h.trim();
            if !h.is_empty() {
                sans.push(h.to_string());
            }
        }
        for s in store.list(Kind::Swarm, &Selector::default()).await? {
            if let Ok(swarm) = serde_json::from_value::<Swarm>(s) {
                sans.push(swarm.spec.master_address);
            }
        }
        sans.dedup();
        let (ca, bundle) = tokio::task::spawn_blocking({
            let home = home.to_path_buf();
            move || -> Result<_, pki::Error> {
                let ca =
                    CertificateAuthority::load_or_create(&CertificateAuthority::dir_in(&home))?;
                let bundle = pki::master_bundle(&home, &ca, &sans)?;
                Ok((ca, bundle))
            }
        })
        .await
        .map_err(|e| MasterError::Join(e.to_string()))??;
        let me = MasterTls {
            store,
            ca: Arc::new(ca),
            bundle: Arc::new(bundle),
            revoked: RevocationList::new(),
        };
        me.refresh_revocations().await?;
        Ok(me)
    }

    /// Reloads the revocation list from the store (the verifiers read it
    /// live, so running servers refuse newly revoked certificates).
    pub async fn refresh_revocations(&self) -> Result<(), MasterError> {
        let fps: Vec<Fingerprint> = self
            .store
            .revocations()
            .await?
            .into_iter()
            .filter_map(|r| r.fingerprint.parse().ok())
            .collect();
        self.revoked.replace_all(fps);
        Ok(())
    }

    /// Reloads the revocation list every `period` until `shutdown`, so revocations written by
    /// other processes (the CLI, a controller) reach this process's verifiers.
    pub async fn follow_revocations(
        &self,
        period: std::time::Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.refresh_revocations().await {
                tracing::warn!(error = %e, "reloading revocations failed");
            }
        }
    }

    /// Revokes a certificate in the store and, at once, in every running verifier.
    pub async fn revoke(
        &self,
        fingerprint: &str,
        subject: &str,
        reason: &str,
    ) -> Result<(), MasterError> {
        self.store.revoke(fingerprint, subject, reason).await?;
        self.refresh_revocations().await
    }

    /// Issues worker `name`'s agent bundle off the async runtime (key generation is CPU-bound).
    pub async fn issue_worker(
        &self,
        name: &str,
        spec: &WorkerSpec,
        validity_days: u32,
    ) -> Result<Bundle, MasterError> {
        let (ca, name, spec) = (self.ca.clone(), name.to_string(), spec.clone());
        tokio::task::spawn_blocking(move || {
            super::issue_worker_bundle(&ca, &name, &spec, validity_days)
        })
        .await
        .map_err(|e| MasterError::Join(e.to_string()))?
        .map_err(MasterError::from)
    }

    pub fn server_config(
        &self,
        policy: RolePolicy,
    ) -> Result<Arc<rustls::ServerConfig>, MasterError> {
        Ok(pki::server_config(
            &self.bundle,
            policy,
            self.revoked.clone(),
        )?)
    }

    /// Client config for talking to `worker`'s agent (only that agent's cert is accepted).
    pub fn agent_client_config(
        &self,
        worker: &str,
    ) -> Result<Arc<rustls::ClientConfig>, MasterError> {
        Ok(pki::client_config(
            &self.bundle,
            RolePolicy::agent_of(WorkerName::new(worker)?),
            self.revoked.clone(),
            ServerNameCheck::Verify,
        )?)
    }
}
