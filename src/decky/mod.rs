//! What runs inside decky containers, and the local image they run from.
//!
//! - [`image`]: builds `decnet-decky:<version>-<sha12>` from the running `decnet` binary through
//!   the Docker build API (no registry is ever contacted).
//! - [`base`]: `decnet decky base`, the container that owns a decky's network namespace.
//! - [`serve`]: `decnet decky serve`, a minimal per-service listener (replaced by the full fake
//!   services of issue #7).

pub mod base;
pub mod image;
pub mod serve;
