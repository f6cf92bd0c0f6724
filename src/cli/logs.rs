use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::CliError;
use crate::logplane::eventdb::{EventDb, EventFilter, StoredEvent, timestamp_text};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  decnet logs --since 1h\n  decnet logs -f --service ssh\n  decnet logs --decky web-01 --raw"
)]
pub struct LogsArgs {
    /// Keep printing new events as they arrive.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[arg(long)]
    pub worker: Option<String>,
    #[arg(long)]
    pub decky: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    /// Events received since: a duration (30s, 10m, 2h, 7d) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Print the verbatim RFC 5424 lines.
    #[arg(long)]
    pub raw: bool,
    /// At most this many events (without -f: the newest ones).
    #[arg(long)]
    pub limit: Option<i64>,
    /// Event database [default: $DECNET_HOME/events.db]
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// `10m` → now − 10 minutes; RFC 3339 accepted as is. Pure, for tests.
pub fn parse_since(s: &str, now: jiff::Timestamp) -> Result<String, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(timestamp_text(t));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("--since {s:?}: use a duration like 30s, 10m, 2h, 7d or an RFC 3339 time")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("--since {s:?}: unit must be s, m, h or d")),
    };
    let t = now
        .checked_sub(jiff::SignedDuration::from_secs(secs))
        .map_err(|e| format!("--since {s:?}: {e}"))?;
    Ok(timestamp_text(t))
}

/// One event as a line: time worker/decky service event src_ip k=v...
pub fn format_event(e: &StoredEvent, raw: bool) -> String {
    if raw {
        return String::from_utf8_lossy(&e.raw).into_owned();
    }
    let mut s = format!(
        "{} {}/{} {} {}",
        e.timestamp.as_deref().unwrap_or(&e.received_at),
        e.source_worker,
        e.hostname.as_deref().unwrap_or("-"),
        e.app_name.as_deref().unwrap_or("-"),
        e.msgid.as_deref().unwrap_or("-"),
    );
    if let Some(fields) = e
        .fields
        .as_deref()
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        && let Some(elements) = fields.as_object()
    {
        for params in elements.values().filter_map(Value::as_object) {
            for (k, v) in params {
                let v = v.as_str().unwrap_or_default();
                if v.contains(' ') || v.is_empty() {
                    s.push_str(&format!(" {k}={v:?}"));
                } else {
                    s.push_str(&format!(" {k}={v}"));
                }
            }
        }
    }
    if let Some(m) = e.msg.as_deref().filter(|m| !m.is_empty()) {
        s.push_str(&format!(" msg={m:?}"));
    }
    if let Some(err) = &e.parse_error {
        s.push_str(&format!(
            " (not RFC 5424: {err}) raw={:?}",
            String::from_utf8_lossy(&e.raw)
        ));
    }
    s
}

pub async fn run(home: &Path, args: LogsArgs) -> Result<(), CliError> {
    let path = args.db.clone().unwrap_or_else(|| home.join("events.db"));
    if !path.exists() && !args.follow {
        return Err(CliError::Other(format!(
            "no event database at {}; start the listener (decnet listener, or decnet up) first",
            path.display()
        )));
    }
    let db = EventDb::open(&path)
        .await
        .map_err(|e| CliError::Other(e.to_string()))?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, jiff::Timestamp::now()))
        .transpose()
        .map_err(CliError::Usage)?;
    let mut filter = EventFilter {
        worker: args.worker,
        decky: args.decky,
        service: args.service,
        since,
        after_id: 0,
        limit: 10_000,
    };
    if let Some(limit) = args.limit {
        // The newest `limit`: start after the right id.
        let all = db
            .query(&EventFilter {
                limit: 0,
                ..filter.clone()
            })
            .await
            .map_err(|e| CliError::Other(e.to_string()))?;
        filter.after_id = all
            .len()
            .checked_sub(limit.max(0) as usize)
            .and_then(|i| i.checked_sub(1))
            .map_or(0, |i| all[i].id);
    }
    loop {
        let batch = db
            .query(&filter)
            .await
            .map_err(|e| CliError::Other(e.to_string()))?;
        for e in &batch {
            println!("{}", format_event(e, args.raw));
        }
        if let Some(last) = batch.last() {
            filter.after_id = last.id;
        }
        if batch.len() as i64 == filter.limit {
            continue;
        }
        if !args.follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_times() {
        let now: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        assert_eq!(
            parse_since("10m", now).unwrap(),
            "2026-11-23T09:50:00.000000Z"
        );
        assert_eq!(
            parse_since("2h", now).unwrap(),
            "2026-11-23T08:00:00.000000Z"
        );
        assert_eq!(
            parse_since("2026-11-20T00:00:00Z", now).unwrap(),
            "2026-11-20T00:00:00.000000Z"
        );
        for bad in ["", "10", "x", "5y", "-3m"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
