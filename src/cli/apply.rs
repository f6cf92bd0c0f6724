use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{CliError, open_store};
use crate::api::Kind;
use crate::manifest::{self, Manifest, ManifestError};
use crate::store::{Selector, semantics};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  decnet apply -f examples/\n  decnet apply -f fleet.yaml --dry-run\n  \
    cat worker.yaml | decnet apply -f -\n  decnet apply -f gitops/ --prune -l team=blue"
)]
pub struct ApplyArgs {
    /// File, directory (its *.yaml, *.yml, *.json) or - for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Also read subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Only apply (and with --prune, only prune) objects matching this selector.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Delete objects that match -l, were created by apply, and are no longer
    /// in the given files (GitOps). Skipped if any file has an error.
    #[arg(long, requires = "selector")]
    pub prune: bool,
    /// Validate and show what would change, without writing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(home: &Path, args: ApplyArgs) -> Result<(), CliError> {
    let selector = match &args.selector {
        Some(s) => Selector::parse(s).map_err(|e| CliError::Usage(e.to_string()))?,
        None => Selector::default(),
    };
    let mut files = Vec::new();
    let mut errors: Vec<ManifestError> = Vec::new();
    for f in &args.files {
        match manifest::collect_files(f, args.recursive) {
            Ok(found) if found.is_empty() => errors.push(ManifestError {
                source: f.display().to_string(),
                document: None,
                line: None,
                object: None,
                problems: vec!["no *.yaml, *.yml or *.json files here".into()],
            }),
            Ok(found) => files.extend(found),
            Err(e) => errors.push(e),
        }
    }

    // Parse and validate everything before writing anything.
    let mut parsed: Vec<(String, Vec<Manifest>)> = Vec::new();
    for file in &files {
        let source = file.display().to_string();
        let text = match manifest::read_source(file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match manifest::parse_manifests(&source, &text) {
            Ok(docs) => parsed.push((source, docs)),
            Err(es) => errors.extend(es),
        }
    }

    let store = open_store(home).await?;
    let suffix = if args.dry_run { " (dry run)" } else { "" };
    let mut applied: HashSet<(Kind, String)> = HashSet::new();
    let mut store_errors = 0;
    for (source, docs) in parsed {
        let docs: Vec<(Kind, serde_json::Value)> = docs
            .into_iter()
            .filter(|m| selector.is_empty() || selector.matches_json(&semantics::labels_of(&m.doc)))
            .map(|m| (m.kind, m.doc))
            .collect();
        // One transaction per file: a file lands whole or not at all.
        match store.apply_all(&docs, args.dry_run).await {
            Ok(outcomes) => {
                for ((kind, doc), outcome) in docs.iter().zip(outcomes) {
                    let name = semantics::name_of(doc).unwrap_or_default();
                    println!(
                        "{}.decnet.io/{name} {}{suffix}",
                        kind.as_str().to_lowercase(),
                        outcome.as_str()
                    );
                    applied.insert((*kind, name.to_string()));
                }
            }
            Err(e) => {
                store_errors += 1;
                eprintln!("error: {source}: {e}; nothing from this file was applied");
            }
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    let failed = !errors.is_empty() || store_errors > 0;
    if args.prune {
        if failed {
            eprintln!(
                "warning: --prune skipped because some files failed (pruning an incomplete set would delete live objects)"
            );
        } else {
            prune(&store, &selector, &applied, args.dry_run).await?;
        }
    }
    if failed {
        let n = errors.len() + store_errors;
        return Err(CliError::Reported(format!(
            "{n} error{} (see above); files with errors were not applied",
            if n == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

async fn prune(
    store: &crate::store::Store,
    selector: &Selector,
    applied: &HashSet<(Kind, String)>,
    dry_run: bool,
) -> Result<(), CliError> {
    let suffix = if dry_run { " (dry run)" } else { "" };
    for kind in Kind::ALL.into_iter().rev() {
        for obj in store.list(kind, selector).await? {
            let name = semantics::name_of(&obj).unwrap_or_default().to_string();
            let by_apply = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(semantics::APPLIED_ANNOTATION))
                .is_some();
            // Controller-made objects (with owners) are never pruned.
            let owned = !semantics::owner_uids(&obj).is_empty();
            if !by_apply || owned || applied.contains(&(kind, name.clone())) {
                continue;
            }
            if !dry_run {
                store.delete(kind, &name).await?;
            }
            println!(
                "{}.decnet.io/{name} pruned{suffix}",
                kind.as_str().to_lowercase()
            );
        }
    }
    Ok(())
}
