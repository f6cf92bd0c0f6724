//! What the worker runs: the one-line bootstrap command printed on the master, and the bash
//! script the master serves for it. Pure text rendering; every value that goes into shell
//! code is single-quoted by [`sh_quote`].

/// Where the script extracts the bundle unless `DECNET_AGENT_DIR` is set.
pub const DEFAULT_AGENT_DIR: &str = "/etc/decnet/agent";

/// Quotes `s` as one POSIX shell word: `'...'`, with each `'` written as `'\''`. Inside single
/// quotes nothing is special (no `$`, backquote, backslash or newline handling), so any string
/// round-trips.
pub fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `s` as a shell word for display: unchanged when made only of characters that are never
/// special to a shell, else [`sh_quote`]d.
pub fn sh_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@%+=,".contains(&b));
    if plain { s.to_owned() } else { sh_quote(s) }
}

/// `host:port` for a URL: IPv6 literals get brackets.
pub fn url_authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Accepts an HTTP `Host` header value (`name`, `name:port`, `[v6]:port`) made only of
/// characters a host and port can contain; anything else is `None`. The script downloads the
/// bundle from the very endpoint the worker just reached and authenticated by key pin, which
/// works behind NAT and whatever name the operator used.
pub fn checked_host_header(host: &str) -> Option<&str> {
    let ok = !host.is_empty()
        && host.len() <= 260
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then_some(host)
}

/// The command the operator runs on the new worker.
///
/// The worker has no CA certificate yet, so curl cannot verify the master's chain: `-k` skips
/// that, and `--pinnedpubkey` makes curl abort unless the server's public key hashes to the
/// master's. That authenticates the master as strongly as a CA check would (a man in the middle
/// would need the master's private key), without shipping the CA out of band first.
pub fn bootstrap_command(master_address: &str, enroll_port: u16, token: &str, pin: &str) -> String {
    format!(
        "curl -fsSLk --pinnedpubkey {} https://{}/enroll/{token}.sh | sudo bash",
        sh_quote(&format!("sha256//{pin}")),
        url_authority(master_address, enroll_port),
    )
}

/// What the script needs to know.
pub struct ScriptParams<'a> {
    pub worker: &'a str,
    /// `Host` header the script was fetched with (already checked).
    pub host: &'a str,
    pub token: &'a str,
    /// Base64 SHA-256 of the master's SubjectPublicKeyInfo (curl's `sha256//` form without the prefix).
    pub pin: &'a str,
    /// Worker address and agent port, for the "start the agent" hint.
    pub address: &'a str,
    pub agent_port: u16,
}

/// Renders the bootstrap script. It fetches the bundle once, extracts only the three expected
/// files with umask 077, checks them, and prints how to start the agent.
pub fn render_script(p: &ScriptParams<'_>) -> String {
    let url = format!("https://{}/enroll/{}/bundle.tar", p.host, p.token);
    format!(
        r#"#!/usr/bin/env bash
# decnet: one-shot enrollment of worker {worker_comment}.
# Served once by the master; the bundle URL below works once, from this host only.
# Everything runs in main, called on the last line: a download cut short runs nothing.
set -euo pipefail

main() {{
  umask 077
  local WORKER={worker}
  local URL={url}
  local PIN={pin}
  local DIR="${{DECNET_AGENT_DIR:-{default_dir}}}"
  local tool
  for tool in curl tar mktemp; do
    command -v "$tool" >/dev/null 2>&1 || {{ echo "decnet enroll: $tool is required" >&2; exit 1; }}
  done

  tmp="$(mktemp -d)"
  trap 'rm -rf -- "$tmp"' EXIT

  # -k: the worker has no CA yet; --pinnedpubkey authenticates the master by its key instead.
  curl -fsSk --pinnedpubkey "$PIN" -o "$tmp/bundle.tar" -- "$URL" </dev/null

  mkdir -p -- "$DIR"
  chmod 700 -- "$DIR"
  # Only the three expected members, owned by whoever runs this.
  tar -xf "$tmp/bundle.tar" -C "$DIR" --no-same-owner -- ca.crt worker.crt worker.key </dev/null
  local f
  for f in ca.crt worker.crt worker.key; do
    if [ ! -s "$DIR/$f" ]; then
      echo "decnet enroll: $DIR/$f is missing after extraction" >&2
      exit 1
    fi
  done
  chmod 600 -- "$DIR/worker.key"
  chmod 644 -- "$DIR/ca.crt" "$DIR/worker.crt"

  echo "decnet: worker $WORKER enrolled; bundle in $DIR"
  echo "start the agent with:"
  # %q quotes the directory for copy/paste; the address arrives already shell-quoted.
  printf '  decnet agent --agent-dir %q --host %s --port %s\n' "$DIR" {address} {port}
}}

main "$@"
"#,
        worker_comment = p.worker.replace(['\n', '\r'], " "),
        worker = sh_quote(p.worker),
        url = sh_quote(&url),
        pin = sh_quote(&format!("sha256//{}", p.pin)),
        default_dir = DEFAULT_AGENT_DIR,
        address = sh_quote(&sh_word(p.address)),
        port = p.agent_port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn bash_echo(word: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s' {word}"))
            .output()
            .expect("bash");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn sh_quote_round_trips_through_bash() {
        for s in [
            "",
            "plain",
            "it's",
            "'",
            "''",
            "$(touch /tmp/pwned) `id` $HOME \\ \" ; | & > <",
            "line\nbreak",
            "*?[a]",
        ] {
            assert_eq!(bash_echo(&sh_quote(s)), s, "{s:?}");
        }
    }

    #[test]
    fn sh_word_quotes_only_when_needed() {
        assert_eq!(sh_word("10.0.0.1"), "10.0.0.1");
        assert_eq!(sh_word("fd00::1"), "fd00::1");
        assert_eq!(sh_word("a b"), "'a b'");
        assert_eq!(sh_word(""), "''");
        assert_eq!(sh_word("$x"), "'$x'");
    }

    #[test]
    fn authority_brackets_ipv6() {
        assert_eq!(url_authority("10.0.0.1", 8443), "10.0.0.1:8443");
        assert_eq!(url_authority("master.lan", 1), "master.lan:1");
        assert_eq!(url_authority("fd00::1", 8443), "[fd00::1]:8443");
        assert_eq!(url_authority("[fd00::1]", 8443), "[fd00::1]:8443");
    }

    #[test]
    fn host_header_check() {
        assert_eq!(
            checked_host_header("127.0.0.1:8443"),
            Some("127.0.0.1:8443")
        );
        assert_eq!(checked_host_header("[::1]:8443"), Some("[::1]:8443"));
        for bad in ["", "a b", "x'y", "x/y", "$(id)", "a\nb", "é"] {
            assert_eq!(checked_host_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn command_shape() {
        let c = bootstrap_command("10.0.0.1", 8443, "TOKEN", "abc+/=");
        assert_eq!(
            c,
            "curl -fsSLk --pinnedpubkey 'sha256//abc+/=' https://10.0.0.1:8443/enroll/TOKEN.sh | sudo bash"
        );
    }

    fn params<'a>(address: &'a str, worker: &'a str) -> ScriptParams<'a> {
        ScriptParams {
            worker,
            host: "127.0.0.1:8443",
            token: "tok",
            pin: "PIN=",
            address,
            agent_port: 8765,
        }
    }

    #[test]
    fn script_is_valid_bash_and_quotes_values() {
        let evil = "10.0.0.9'; touch /tmp/decnet-pwned; echo '$(id)`id`";
        let s = render_script(&params(evil, "w1"));
        assert!(s.starts_with("#!/usr/bin/env bash\n"));
        assert!(s.contains("umask 077"));
        assert!(
            s.trim_end().ends_with("main \"$@\""),
            "runs only once complete"
        );
        assert!(s.contains("URL='https://127.0.0.1:8443/enroll/tok/bundle.tar'"));
        assert!(s.contains("PIN='sha256//PIN='"));
        // A truncated download defines main but never calls it.
        let cut = &s[..s.rfind("main \"$@\"").unwrap()];
        let run = Command::new("bash").arg("-c").arg(cut).output().unwrap();
        assert!(run.status.success() && run.stdout.is_empty() && run.stderr.is_empty());
        assert!(s.contains(r#"DIR="${DECNET_AGENT_DIR:-/etc/decnet/agent}""#));
        let check = Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    #[test]
    fn start_hint_prints_the_literal_address_and_the_real_dir() {
        let evil = "10.0.0.9'; touch /tmp/x; echo '$(id)`id`\\";
        let s = render_script(&params(evil, "w1"));
        // Run only the hint line, with DIR set as the script sets it.
        let hint = s
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with("printf '  decnet agent"))
            .unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("DIR='/opt/my dir'; {hint}"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            printed.trim_end(),
            format!(
                "  decnet agent --agent-dir /opt/my\\ dir --host {} --port 8765",
                sh_quote(evil)
            )
        );
    }
}
