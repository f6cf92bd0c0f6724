use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CliError, open_store};
use crate::api::Kind;
use crate::manifest;
use crate::store::DeleteOutcome;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  decnet delete wk w3\n  decnet delete -f examples/fleet-shard.yaml\n  \
    decnet delete topology maze --wait --timeout 120"
)]
pub struct DeleteArgs {
    /// Kind, then one or more names.
    #[arg(required_unless_present = "files", num_args = 1..)]
    pub target: Vec<String>,
    /// Delete what these files (or directories) define.
    #[arg(
        short = 'f',
        long = "filename",
        conflicts_with = "target",
        value_name = "PATH"
    )]
    pub files: Vec<PathBuf>,
    /// Wait until objects with finalizers are really gone (a controller must be running).
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

pub async fn run(home: &Path, args: DeleteArgs) -> Result<(), CliError> {
    let mut targets: Vec<(Kind, String)> = Vec::new();
    if args.files.is_empty() {
        let (kind, names) = args
            .target
            .split_first()
            .ok_or_else(|| CliError::Usage("give KIND NAME... or -f FILE".into()))?;
        let kind = Kind::parse(kind).map_err(|e| CliError::Usage(e.to_string()))?;
        if names.is_empty() {
            return Err(CliError::Usage(format!(
                "name the {kind} to delete: decnet delete {} NAME",
                kind.plural()
            )));
        }
        targets.extend(names.iter().map(|n| (kind, n.clone())));
    } else {
        for f in &args.files {
            for file in
                manifest::collect_files(f, false).map_err(|e| CliError::Other(e.to_string()))?
            {
                let text =
                    manifest::read_source(&file).map_err(|e| CliError::Other(e.to_string()))?;
                let docs = manifest::parse_manifests(&file.display().to_string(), &text).map_err(
                    |es| {
                        CliError::Other(
                            es.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("\n"),
                        )
                    },
                )?;
                targets.extend(docs.into_iter().map(|m| (m.kind, m.name)));
            }
        }
    }
    let store = open_store(home).await?;
    let mut missing = 0;
    let mut waiting = Vec::new();
    for (kind, name) in targets {
        let label = format!("{}.decnet.io/{name}", kind.as_str().to_lowercase());
        match store.delete(kind, &name).await? {
            DeleteOutcome::Deleted => println!("{label} deleted"),
            DeleteOutcome::Terminating => {
                println!("{label} terminating (waiting for its finalizers)");
                waiting.push((kind, name));
            }
            DeleteOutcome::NotFound => {
                eprintln!("error: {kind} {name:?} not found");
                missing += 1;
            }
        }
    }
    if args.wait && !waiting.is_empty() {
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for (kind, name) in waiting {
                if store.get(kind, &name).await?.is_some() {
                    still.push((kind, name));
                } else {
                    println!("{}.decnet.io/{name} deleted", kind.as_str().to_lowercase());
                }
            }
            waiting = still;
            if !waiting.is_empty() && Instant::now() >= deadline {
                return Err(CliError::Other(format!(
                    "timed out after {}s; still terminating: {}. Is the controller running (decnet controller)?",
                    args.timeout,
                    waiting
                        .iter()
                        .map(|(k, n)| format!("{k}/{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if missing > 0 {
        return Err(CliError::Reported(format!("{missing} not found")));
    }
    Ok(())
}
