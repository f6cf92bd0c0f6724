//! Agent errors.

use crate::api::NetworkDriver;
use crate::decky::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid shard {shard:?}: {reason}")]
    InvalidSpec { shard: String, reason: String },
    #[error(
        "LAN {lan:?}: cannot create a {driver} network{}: {reason}",
        parent.as_deref().map(|p| format!(" on parent NIC {p:?}")).unwrap_or_default()
    )]
    Network {
        lan: String,
        driver: &'static str,
        parent: Option<String>,
        reason: String,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("docker: {context}: {source}")]
    Docker {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl AgentError {
    /// Whether the request (not the host) is at fault: maps to HTTP 400/422.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            AgentError::InvalidSpec { .. } | AgentError::Network { .. }
        )
    }
}

pub fn driver_name(d: NetworkDriver) -> &'static str {
    match d {
        NetworkDriver::Bridge => "bridge",
        NetworkDriver::Macvlan => "macvlan",
        NetworkDriver::Ipvlan => "ipvlan",
    }
}

/// Adds context to a bollard result.
pub trait DockerContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, AgentError>;
}

impl<T> DockerContext<T> for Result<T, bollard::errors::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, AgentError> {
        self.map_err(|source| AgentError::Docker {
            context: context(),
            source,
        })
    }
}

/// Whether a bollard error is a 404 (already gone).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
