//! Integration tests for `decnet::syslog` (one binary to keep link time low).

mod envelope;
mod framing;
mod props;
mod rfc5424;
