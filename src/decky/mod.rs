//! What runs inside decky containers, and the local image they run from.
//!
//! - [`image`]: builds `decnet-decky:<version>-<sha12>` from the running `decnet` binary through
//!   the Docker build API (no registry is ever contacted).
//! - [`base`]: `decnet decky base`, the container that owns a decky's network namespace.
//! - [`serve`]: `decnet decky serve`, runs one or more [`services`] and logs every
//!   interaction as RFC 5424 lines on stdout.

pub mod base;
pub mod image;
pub mod serve;
pub mod services;
