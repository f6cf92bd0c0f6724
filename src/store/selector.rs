//! Kubernetes label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
//! `a notin (x,y)`, joined by commas.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    reqs: Vec<Requirement>,
    text: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid label selector {input:?}: {reason}; examples: env=prod, tier!=test, zone in (a,b), !legacy"
)]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

impl Selector {
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        let fail = |reason: String| SelectorError {
            input: input.to_string(),
            reason,
        };
        let mut reqs = Vec::new();
        for term in split_terms(input).map_err(fail)? {
            let term = term.trim();
            if term.is_empty() {
                return Err(fail("empty requirement".into()));
            }
            reqs.push(parse_term(term).map_err(fail)?);
        }
        Ok(Selector {
            reqs,
            text: input.to_string(),
        })
    }

    /// Selector matching all the given labels (a `nodeSelector`).
    pub fn from_map(labels: &BTreeMap<String, String>) -> Selector {
        let reqs = labels
            .iter()
            .map(|(k, v)| Requirement::Eq(k.clone(), v.clone()))
            .collect();
        let text = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        Selector { reqs, text }
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches_json(&self, labels: &Map<String, Value>) -> bool {
        self.matches(|k| labels.get(k).and_then(Value::as_str))
    }

    pub fn matches_map(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches(|k| labels.get(k).map(String::as_str))
    }

    fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.reqs.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits on commas outside parentheses.
fn split_terms(input: &str) -> Result<Vec<&str>, String> {
    if input.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced ')'".into());
                }
            }
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    out.push(&input[start..]);
    Ok(out)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    let key_ok = |k: &str| -> Result<String, String> {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_string())
        } else {
            Err(format!("invalid key {k:?}"))
        }
    };
    let val_ok = |v: &str| -> Result<String, String> {
        let v = v.trim();
        if valid_value(v) {
            Ok(v.to_string())
        } else {
            Err(format!("invalid value {v:?}"))
        }
    };
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key_ok(k)?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEq(key_ok(k)?, val_ok(v)?));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Eq(key_ok(k)?, val_ok(v)?));
    }
    for (op, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = term.split_once(op) {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("expected a parenthesised list after {:?}", op.trim()))?;
            let vals = inner
                .split(',')
                .map(val_ok)
                .collect::<Result<Vec<_>, _>>()?;
            let k = key_ok(k)?;
            return Ok(if notin {
                Requirement::NotIn(k, vals)
            } else {
                Requirement::In(k, vals)
            });
        }
    }
    Ok(Requirement::Exists(key_ok(term)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table() {
        let l = labels(&[("env", "prod"), ("zone", "a"), ("gitops", "true")]);
        for (sel, want) in [
            ("", true),
            ("env=prod", true),
            ("env==prod", true),
            ("env=dev", false),
            ("env!=dev", true),
            ("env!=prod", false),
            ("zone", true),
            ("!zone", false),
            ("!legacy", true),
            ("zone in (a,b)", true),
            ("zone in (b, c)", false),
            ("zone notin (b,c)", true),
            ("missing notin (b)", true),
            ("env=prod,zone in (a),gitops=true", true),
            ("env=prod, zone=b", false),
        ] {
            assert_eq!(Selector::parse(sel).unwrap().matches_map(&l), want, "{sel}");
        }
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in ["=x", "a in b", "a in (b", "a,,b", "k=v v", "a)"] {
            let e = Selector::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(!e.reason.is_empty());
        }
        // "env=" means value "" in kubectl; we accept it as matching empty values.
    }
}
