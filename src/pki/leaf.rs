//! Leaf certificate options: validity window and subject alternative names.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::SanType;
use time::OffsetDateTime;

use crate::pki::error::{Error, Result};

/// Longest leaf validity we issue (the CA/Browser-era 825-day cap; keeps a leaked key from
/// being useful forever even if nobody revokes it).
pub const MAX_LEAF_VALIDITY: Duration = Duration::from_secs(825 * 86_400);

/// Backdating of `not_before`, to tolerate small clock skew between master and workers.
const SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// Validity of an issued leaf.
///
/// Default: valid from 5 minutes ago for [`MAX_LEAF_VALIDITY`]. `not_before` / `not_after`
/// override the window (e.g. a window in the past, to test expiry). The span may never exceed
/// [`MAX_LEAF_VALIDITY`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafOptions {
    /// Lifetime used when `not_after` is not given.
    pub validity: Duration,
    /// Start of validity; default: now minus a small clock-skew allowance.
    pub not_before: Option<SystemTime>,
    /// End of validity; default: `not_before + validity`.
    pub not_after: Option<SystemTime>,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            validity: MAX_LEAF_VALIDITY,
            not_before: None,
            not_after: None,
        }
    }
}

impl LeafOptions {
    /// Default options with a lifetime of `days` (capped by validation at 825).
    pub fn with_validity_days(days: u64) -> Self {
        LeafOptions {
            validity: Duration::from_secs(days.saturating_mul(86_400)),
            ..Self::default()
        }
    }

    /// An explicit validity window.
    pub fn with_window(not_before: SystemTime, not_after: SystemTime) -> Self {
        LeafOptions {
            not_before: Some(not_before),
            not_after: Some(not_after),
            ..Self::default()
        }
    }

    /// Resolves the window against `now`, enforcing the cap.
    pub(crate) fn window(&self, now: SystemTime) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let not_before = match self.not_before {
            Some(t) => t,
            None => now.checked_sub(SKEW_ALLOWANCE).unwrap_or(now),
        };
        let not_after = match self.not_after {
            Some(t) => t,
            None => not_before
                .checked_add(self.validity)
                .ok_or_else(|| invalid("validity overflows the clock".into()))?,
        };
        let span = not_after
            .duration_since(not_before)
            .map_err(|_| invalid("not_after is before not_before".into()))?;
        if span.is_zero() {
            return Err(invalid("not_after equals not_before".into()));
        }
        if span > MAX_LEAF_VALIDITY {
            return Err(invalid(format!(
                "{} days requested, at most 825 days allowed",
                span.as_secs().div_ceil(86_400)
            )));
        }
        Ok((to_offset(not_before)?, to_offset(not_after)?))
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidValidity { reason }
}

/// `SystemTime` → `OffsetDateTime` without the panicking `From` impl.
pub(crate) fn to_offset(t: SystemTime) -> Result<OffsetDateTime> {
    let secs: i64 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).map_err(|_| invalid("time out of range".into()))?,
        Err(e) => i64::try_from(e.duration().as_secs())
            .map(|s| -s)
            .map_err(|_| invalid("time out of range".into()))?,
    };
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| invalid(format!("time out of range: {e}")))
}

/// Parses SAN strings: IP literals become IP SANs, everything else must be a DNS name.
pub(crate) fn parse_sans<S: AsRef<str>>(sans: &[S]) -> Result<Vec<SanType>> {
    sans.iter()
        .map(|s| {
            let s = s.as_ref();
            if let Ok(ip) = s.parse::<IpAddr>() {
                return Ok(SanType::IpAddress(ip));
            }
            let dns = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
            validate_dns_name(&dns).map_err(|reason| Error::InvalidSan {
                san: s.chars().take(300).collect(),
                reason,
            })?;
            Ok(SanType::DnsName(dns.try_into()?))
        })
        .collect()
}

/// Hostname syntax (LDH labels). Wildcards are deliberately not supported: every decnet
/// endpoint has its own certificate.
fn validate_dns_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must be 1-63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("not an IP address, and a DNS name may only contain a-z, 0-9, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a DNS label must not start or end with '-'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_window_is_825_days() {
        let now = SystemTime::now();
        let (nb, na) = LeafOptions::default().window(now).unwrap();
        assert_eq!((na - nb).whole_days(), 825);
    }

    #[test]
    fn window_is_validated() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        assert!(LeafOptions::with_validity_days(826).window(now).is_err());
        assert!(
            LeafOptions::with_validity_days(u64::MAX)
                .window(now)
                .is_err()
        );
        assert!(LeafOptions::with_validity_days(0).window(now).is_err());
        assert!(LeafOptions::with_validity_days(90).window(now).is_ok());
        assert!(
            LeafOptions::with_window(now, now - day)
                .window(now)
                .is_err()
        );
        assert!(
            LeafOptions::with_window(now - 2 * day, now - day)
                .window(now)
                .is_ok()
        );
    }

    #[test]
    fn sans() {
        let parsed = parse_sans(&["10.0.0.1", "::1", "Host.Example.com.", "w1"]).unwrap();
        assert!(matches!(parsed[0], SanType::IpAddress(_)));
        assert!(matches!(parsed[1], SanType::IpAddress(_)));
        assert!(matches!(&parsed[2], SanType::DnsName(n) if n.as_str() == "host.example.com"));
        for bad in [
            "",
            "a..b",
            "-a",
            "a b",
            "*.example.com",
            "é.com",
            "10.0.0.1:80",
        ] {
            assert!(parse_sans(&[bad]).is_err(), "{bad:?}");
        }
    }
}
