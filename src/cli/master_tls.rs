//! The master's TLS identity, shared by every master-side server and client:
//! the CA (created on first use), the master's leaf, and the live revocation
//! list loaded from the store.

use std::path::Path;
use std::sync::Arc;

use super::{CliError, open_store};
use crate::api::{Kind, Swarm};
use crate::pki::{self, Bundle, CertificateAuthority, Fingerprint, RevocationList, RolePolicy};
use crate::store::{Selector, Store};

pub struct MasterTls {
    pub store: Store,
    pub ca: CertificateAuthority,
    pub bundle: Bundle,
    pub revoked: RevocationList,
}

impl MasterTls {
    /// Loads (or on first use creates) the CA and the master certificate.
    /// The master's SANs: loopback, this host's name, and every Swarm's
    /// `masterAddress` (what workers dial).
    pub async fn load(home: &Path) -> Result<MasterTls, CliError> {
        let store = open_store(home).await?;
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
        .map_err(|e| CliError::Other(e.to_string()))?
        .map_err(|e| CliError::Other(e.to_string()))?;
        let revoked = RevocationList::new();
        let me = MasterTls {
            store,
            ca,
            bundle,
            revoked,
        };
        me.refresh_revocations().await?;
        Ok(me)
    }

    /// Reloads the revocation list from the store (the verifiers read it
    /// live, so running servers refuse newly revoked certificates).
    pub async fn refresh_revocations(&self) -> Result<(), CliError> {
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

    pub fn server_config(&self, policy: RolePolicy) -> Result<Arc<rustls::ServerConfig>, CliError> {
        pki::server_config(&self.bundle, policy, self.revoked.clone())
            .map_err(|e| CliError::Other(e.to_string()))
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn termination() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
