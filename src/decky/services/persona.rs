//! What a decky claims to be (from the shard's `Personality`), with believable defaults.
//! Every string ends up in banners, so it is cleaned of control characters here: a personality
//! must never be able to inject protocol lines.

use crate::api::Personality;

pub const DEFAULT_SSH_BANNER: &str = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6";
pub const DEFAULT_HTTP_SERVER: &str = "Apache/2.4.52 (Ubuntu)";
pub const DEFAULT_FTP_BANNER: &str = "(vsFTPd 3.0.5)";
pub const DEFAULT_OS: &str = "Ubuntu 22.04.4 LTS";
/// Longest personality string kept.
const MAX_LEN: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persona {
    pub hostname: String,
    /// Full SSH identification string without CR LF, e.g. `SSH-2.0-OpenSSH_8.9p1`.
    pub ssh_banner: String,
    pub http_server: String,
    /// FTP greeting text after `220 `.
    pub ftp_banner: String,
    pub os: String,
}

impl Persona {
    /// Defaults for `decky`, overridden by whatever `p` sets.
    pub fn new(decky: &str, p: &Personality) -> Self {
        let pick = |v: &Option<String>, default: &str| {
            v.as_deref()
                .map(clean)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let hostname = pick(&p.hostname, decky);
        Persona {
            hostname: if hostname.is_empty() {
                "localhost".into()
            } else {
                hostname
            },
            ssh_banner: p
                .ssh_banner
                .as_deref()
                .and_then(ssh_banner)
                .unwrap_or_else(|| DEFAULT_SSH_BANNER.to_owned()),
            http_server: pick(&p.http_server, DEFAULT_HTTP_SERVER),
            ftp_banner: pick(&p.ftp_banner, DEFAULT_FTP_BANNER),
            os: pick(&p.os, DEFAULT_OS),
        }
    }

    /// First word of the OS string (`Ubuntu`), used where servers name their distro.
    pub fn distro(&self) -> &str {
        self.os.split_whitespace().next().unwrap_or("Ubuntu")
    }
}

/// Controls (CR/LF above all) become spaces; trimmed; at most [`MAX_LEN`] chars.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_LEN)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// RFC 4253 §4.2: `SSH-2.0-softwareversion SP comments`, printable US-ASCII, ≤ 253 chars
/// without CR LF. A bare software version gets the `SSH-2.0-` prefix; anything else unusable
/// falls back to the default.
fn ssh_banner(s: &str) -> Option<String> {
    let s = s.trim();
    let full = if s.starts_with("SSH-") {
        s.to_owned()
    } else {
        format!("SSH-2.0-{s}")
    };
    let ok = full.starts_with("SSH-2.0-")
        && full.len() > "SSH-2.0-".len()
        && full.len() <= 253
        && full.bytes().all(|b| (b' '..=b'~').contains(&b));
    if ok {
        Some(full)
    } else {
        tracing::warn!(banner = %s.escape_debug(), "unusable ssh banner, using the default");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let d = Persona::new("web", &Personality::default());
        assert_eq!(d.hostname, "web");
        assert_eq!(d.ssh_banner, DEFAULT_SSH_BANNER);
        assert_eq!(d.distro(), "Ubuntu");
        let p = Personality {
            hostname: Some("db-prod-2".into()),
            ssh_banner: Some("OpenSSH_7.4".into()),
            http_server: Some("nginx/1.18.0\r\nX-Evil: 1".into()),
            ftp_banner: Some("ProFTPD 1.3.5 Server".into()),
            os: Some("CentOS Linux 7 (Core)".into()),
        };
        let x = Persona::new("web", &p);
        assert_eq!(x.hostname, "db-prod-2");
        assert_eq!(x.ssh_banner, "SSH-2.0-OpenSSH_7.4");
        assert_eq!(x.http_server, "nginx/1.18.0  X-Evil: 1");
        assert_eq!(x.distro(), "CentOS");
    }

    #[test]
    fn bad_ssh_banners_fall_back() {
        for bad in [
            "SSH-1.5-old",
            "SSH-2.0-",
            "SSH-2.0-x\u{e9}",
            &"x".repeat(300),
        ] {
            assert_eq!(ssh_banner(bad), None, "{bad}");
        }
        assert_eq!(
            ssh_banner("SSH-2.0-OpenSSH_9.6 Debian").as_deref(),
            Some("SSH-2.0-OpenSSH_9.6 Debian")
        );
    }
}
