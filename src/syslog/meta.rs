//! Identifiers for decnet's own structured data.
//!
//! RFC 5424 §6.3.2 reserves SD-IDs without `@` for IANA; private ones must
//! be `name@<private enterprise number>`. We deliberately use the PEN that
//! RFC 5612 reserves for documentation (32473) and a generic name, so the
//! lines a decoy emits look like any example-derived logging setup and do
//! not reveal the product. Swap it for a real PEN only if that PEN is
//! equally unremarkable.

/// Private Enterprise Number reserved for documentation (RFC 5612).
pub const DOCUMENTATION_PEN: u32 = 32473;

/// SD-ID of the element carrying a decky's event fields, e.g.
/// `[meta@32473 src="203.0.113.7" user="root"]`.
pub const EVENT_SD_ID: &str = "meta@32473";
