//! Worker enrollment: imperative (`decnet swarm enroll`) and one-shot
//! bootstrap tokens served by the master over HTTPS.
//!
//! STUB: filled in by the enrollment work (issue 6, item 2-3).

use crate::master::MasterTls;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    Other(String),
}

/// Serves `/enroll/<token>.sh` and the bundle on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    master: MasterTls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EnrollError> {
    let _ = (listener, master);
    shutdown.await;
    Ok(())
}
