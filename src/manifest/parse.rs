use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ManifestError;
use crate::api::{Kind, validate::validate_document};

/// One valid document.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub document: usize,
    pub kind: Kind,
    pub name: String,
    pub doc: Value,
}

/// The files a `-f` argument names: a file, `-` (stdin), or a directory's
/// `*.yaml`/`*.yml`/`*.json` in name order (recursively with `recursive`).
pub fn collect_files(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, ManifestError> {
    let fail = |msg: String| ManifestError {
        source: path.display().to_string(),
        document: None,
        line: None,
        object: None,
        problems: vec![msg],
    };
    if path.as_os_str() == "-" {
        return Ok(vec![path.to_path_buf()]);
    }
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| fail(format!("cannot list directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                out.extend(collect_files(&p, true)?);
            }
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// Reads a file (or stdin for `-`) as UTF-8.
pub fn read_source(path: &Path) -> Result<String, ManifestError> {
    let source = path.display().to_string();
    let fail = |msg: String| ManifestError {
        source: source.clone(),
        document: None,
        line: None,
        object: None,
        problems: vec![msg],
    };
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| fail(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text: {e}")))
}

/// Splits a YAML stream into documents with their 1-based start lines. A
/// `---` at column 0 always starts a document (block content is indented).
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker || line == "..." {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 1;
            if is_marker {
                // Content on the marker line belongs to the new document.
                cur.push_str(line[3..].trim_start());
                cur.push('\n');
            }
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    docs.push((start, cur));
    docs
}

fn is_blank(doc: &str) -> bool {
    doc.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

/// Parses and validates every document of one file. Returns all documents
/// or every error found (so one run reports everything to fix).
pub fn parse_manifests(source: &str, text: &str) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let mut index = 0;
    for (line, chunk) in split_documents(text) {
        if is_blank(&chunk) {
            continue;
        }
        index += 1;
        let mut fail = |object: Option<String>, problems: Vec<String>| {
            errors.push(ManifestError {
                source: source.to_string(),
                document: Some(index),
                line: Some(line),
                object,
                problems,
            })
        };
        let value: Value = match serde_saphyr::from_str(&chunk) {
            Ok(v) => v,
            Err(_) => {
                // Re-parse padded to the document's place in the file so the
                // error's line numbers and snippet match what the user sees.
                let padded = "\n".repeat(line.saturating_sub(1)) + &chunk;
                let e = serde_saphyr::from_str::<Value>(&padded)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                fail(None, vec![format!("YAML syntax error: {e}")]);
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let kind_str = value.get("kind").and_then(Value::as_str);
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = match kind_str.map(Kind::parse) {
            Some(Ok(k)) if kind_str == Some(k.as_str()) => k,
            Some(Ok(k)) => {
                fail(
                    None,
                    vec![format!(
                        "kind: write {:?} exactly (the kind field is case-sensitive)",
                        k.as_str()
                    )],
                );
                continue;
            }
            Some(Err(e)) => {
                fail(None, vec![format!("kind: {e}")]);
                continue;
            }
            None => {
                fail(
                    None,
                    vec!["kind: required; allowed: Swarm, Worker, Topology, DeckyShard".into()],
                );
                continue;
            }
        };
        let object = Some(format!("{kind}/{name}"));
        let problems: Vec<String> = validate_document(kind, &value)
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        if !problems.is_empty() {
            fail(object, problems);
            continue;
        }
        // The schema passed; decoding into the Rust type must too. If not, the
        // schema is missing a rule: still refuse, never store what we can't read.
        let value = match normalize(kind, value) {
            Ok(v) => v,
            Err(e) => {
                fail(object, vec![e]);
                continue;
            }
        };
        ok.push(Manifest {
            source: source.to_string(),
            document: index,
            kind,
            name,
            doc: value,
        });
    }
    // The same object twice in one file is almost always a copy-paste error.
    for (i, m) in ok.iter().enumerate() {
        if ok[..i].iter().any(|o| o.kind == m.kind && o.name == m.name) {
            errors.push(ManifestError {
                source: source.to_string(),
                document: Some(m.document),
                line: None,
                object: Some(format!("{}/{}", m.kind, m.name)),
                problems: vec!["defined twice in this file; keep one".into()],
            });
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(errors)
    }
}

/// Decodes into the Rust type and writes the spec back with its defaults
/// filled in, as an API server applies schema defaults before storing.
fn normalize(kind: Kind, mut v: Value) -> Result<Value, String> {
    use crate::api::{DeckyShardSpec, SwarmSpec, TopologySpec, WorkerSpec};
    fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(
        spec: &Value,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(spec.clone())?)
    }
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let spec = match kind {
        Kind::Swarm => roundtrip::<SwarmSpec>(&spec),
        Kind::Worker => roundtrip::<WorkerSpec>(&spec),
        Kind::Topology => roundtrip::<TopologySpec>(&spec),
        Kind::DeckyShard => roundtrip::<DeckyShardSpec>(&spec),
    }
    .map_err(|e| format!("spec: {e}"))?;
    v["spec"] = spec;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_lines() {
        let docs = split_documents("a: 1\n---\nb: 2\n--- {c: 3}\n...\n");
        assert_eq!(docs[0], (1, "a: 1\n".to_string()));
        // Each document keeps its marker line (blank) so YAML line numbers stay aligned.
        assert_eq!(docs[1], (2, "\nb: 2\n".to_string()));
        assert_eq!(docs[2], (4, "{c: 3}\n".to_string()));
    }
}
