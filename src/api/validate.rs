//! Validation of a manifest document against the CRD schema generated from the
//! Rust types, plus the cross-field rules a schema cannot express.
//!
//! Validating against the generated `openAPIV3Schema` (rather than relying on
//! serde alone) keeps one source of truth with what a Kubernetes API server
//! enforces, and lets every error name the field path and the allowed values.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{DeckyShardSpec, Kind, TopologySpec};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON-path-like location, e.g. `spec.deckies[2].services[0]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn err(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Metadata fields a manifest may set. Server-owned fields are accepted and
/// ignored so that `decnet get -o yaml` output can be re-applied.
const META_WRITABLE: &[&str] = &["name", "labels", "annotations", "resourceVersion"];
const META_IGNORED: &[&str] = &[
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "finalizers",
    "ownerReferences",
];

/// Validates a whole document (`apiVersion`, `kind`, `metadata`, `spec`). The
/// caller has already resolved `kind`.
pub fn validate_document(kind: Kind, doc: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(obj) = doc.as_object() else {
        return vec![err(
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec",
        )];
    };
    for key in obj.keys() {
        if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str()) {
            errors.push(err(
                key,
                "unknown field; allowed: apiVersion, kind, metadata, spec",
            ));
        }
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(super::API_VERSION) => {}
        Some(other) => errors.push(err(
            "apiVersion",
            format!("{other:?} is not served; use {:?}", super::API_VERSION),
        )),
        None => errors.push(err(
            "apiVersion",
            format!("required; use {:?}", super::API_VERSION),
        )),
    }
    validate_metadata(kind, obj.get("metadata"), &mut errors);

    let schema = kind.schema();
    match (obj.get("spec"), schema.pointer("/properties/spec")) {
        (Some(spec), Some(spec_schema)) => validate_value(spec, spec_schema, "spec", &mut errors),
        (None, _) => errors.push(err("spec", "required")),
        (Some(_), None) => {}
    }
    if errors.is_empty() {
        errors.extend(semantic_rules(kind, obj.get("spec")));
    }
    errors
}

fn validate_metadata(kind: Kind, meta: Option<&Value>, errors: &mut Vec<FieldError>) {
    let Some(meta) = meta else {
        errors.push(err("metadata.name", "required"));
        return;
    };
    let Some(meta) = meta.as_object() else {
        errors.push(err("metadata", "must be a mapping"));
        return;
    };
    for key in meta.keys() {
        if key == "namespace" {
            if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
            {
                errors.push(err(
                    "metadata.namespace",
                    format!("{kind} is cluster-scoped; remove metadata.namespace"),
                ));
            }
        } else if !META_WRITABLE.contains(&key.as_str()) && !META_IGNORED.contains(&key.as_str()) {
            errors.push(err(
                &format!("metadata.{key}"),
                format!("unknown field; allowed: {}", META_WRITABLE.join(", ")),
            ));
        }
    }
    match meta.get("name") {
        Some(Value::String(name)) => {
            if let Err(why) = check_dns_label(name) {
                errors.push(err("metadata.name", why));
            }
        }
        Some(_) => errors.push(err("metadata.name", "must be a string")),
        None => errors.push(err("metadata.name", "required")),
    }
    for map in ["labels", "annotations"] {
        match meta.get(map) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let path = format!("metadata.{map}.{k}");
                    if !v.is_string() {
                        errors.push(err(
                            &path,
                            "values must be strings (quote numbers and booleans)",
                        ));
                    }
                    if map == "labels" {
                        if let Err(why) = check_label_key(k) {
                            errors.push(err(&path, why));
                        }
                        if let Some(Err(why)) = v.as_str().map(check_label_value) {
                            errors.push(err(&path, why));
                        }
                    }
                }
            }
            Some(_) => errors.push(err(
                &format!("metadata.{map}"),
                "must be a mapping of string to string",
            )),
        }
    }
}

/// RFC 1123 label: what becomes a hostname, container or network name.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a DNS label: use 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        ))
    }
}

fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = check_label_value(name).is_ok() && !name.is_empty();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= 253 && p.split('.').all(|l| check_dns_label(l).is_ok())
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "label key {key:?} is invalid: use [prefix/]name, name of 1-63 characters [A-Za-z0-9_.-] starting and ending alphanumeric"
        ))
    }
}

fn check_label_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && v.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "label value {v:?} is invalid: at most 63 characters [A-Za-z0-9_.-], starting and ending alphanumeric"
        ))
    }
}

/// Validates `value` against the subset of OpenAPI v3 that structural CRD
/// schemas use. Unknown properties are errors (kubectl's strict validation).
pub fn validate_value(value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        errors.push(err(path, "must not be null"));
        return;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let ok = branches.iter().any(|b| {
                let mut e = Vec::new();
                validate_value(value, b, path, &mut e);
                e.is_empty()
            });
            if !ok {
                let allowed = allowed_values(schema);
                if allowed.is_empty() {
                    errors.push(err(path, "matches none of the allowed shapes"));
                } else {
                    errors.push(err(
                        path,
                        format!("{value} is not allowed; allowed: {}", allowed.join(", ")),
                    ));
                }
                return;
            }
        }
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let type_ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        };
        if !type_ok {
            let hint = match (ty, value) {
                ("integer", Value::Number(_)) => " (a whole number)".to_string(),
                ("integer" | "number", Value::String(s)) => {
                    format!(" (remove the quotes around {s:?})")
                }
                ("string", Value::Number(_) | Value::Bool(_)) => " (quote the value)".to_string(),
                _ => String::new(),
            };
            errors.push(err(
                path,
                format!("must be {}{hint}, got {}", article(ty), type_name(value)),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(err(
            path,
            format!(
                "{value} is not allowed; allowed: {}",
                allowed_values(schema).join(", ")
            ),
        ));
    }
    match value {
        Value::Object(map) => validate_object(map, schema, path, errors),
        Value::Array(items) => {
            check_len(
                items.len(),
                schema,
                "minItems",
                "maxItems",
                "items",
                path,
                errors,
            );
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_value(item, item_schema, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::String(s) => {
            check_len(
                s.chars().count(),
                schema,
                "minLength",
                "maxLength",
                "characters",
                path,
                errors,
            );
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !pattern_matches(pattern, s)
            {
                errors.push(err(
                    path,
                    format!("{s:?} does not match the pattern {pattern}"),
                ));
            }
        }
        Value::Number(n) => check_range(n, schema, path, errors),
        _ => {}
    }
}

/// Patterns come from our own schemas (a handful), so compiled ones are kept.
fn pattern_matches(pattern: &str, s: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex_lite::Regex>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let re = cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex_lite::Regex::new(pattern).ok());
    // An uncompilable pattern is our bug, not the user's: don't reject on it.
    re.as_ref().is_none_or(|re| re.is_match(s))
}

fn validate_object(
    map: &serde_json::Map<String, Value>,
    schema: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    let props = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                errors.push(err(&join(r), "required"));
            }
        }
    }
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    for (k, v) in map {
        let sub = join(k);
        if let Some(prop) = props.and_then(|p| p.get(k)) {
            validate_value(v, prop, &sub, errors);
        } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            validate_value(v, extra, &sub, errors);
        } else if props.is_some() && !preserve {
            let allowed: Vec<&str> = props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let hint = closest(k, &allowed)
                .map(|c| format!(" (did you mean {c:?}?)"))
                .unwrap_or_default();
            errors.push(err(
                &sub,
                format!("unknown field{hint}; allowed: {}", allowed.join(", ")),
            ));
        }
    }
}

fn check_len(
    len: usize,
    schema: &Value,
    min_key: &str,
    max_key: &str,
    unit: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let min = schema.get(min_key).and_then(Value::as_u64);
    let max = schema.get(max_key).and_then(Value::as_u64);
    let len = len as u64;
    if min.is_some_and(|m| len < m) || max.is_some_and(|m| len > m) {
        let bounds = match (min, max) {
            (Some(a), Some(b)) => format!("{a} to {b}"),
            (Some(a), None) => format!("at least {a}"),
            (None, Some(b)) => format!("at most {b}"),
            (None, None) => unreachable!("checked above"),
        };
        let unit = if unit == "items" {
            "items"
        } else {
            "characters"
        };
        errors.push(err(
            path,
            format!("has {len} {unit}; allowed: {bounds} {unit}"),
        ));
    }
}

fn check_range(n: &serde_json::Number, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(x) = n.as_f64() else { return };
    let mut min = schema.get("minimum").and_then(Value::as_f64);
    let mut max = schema.get("maximum").and_then(Value::as_f64);
    // schemars records the Rust integer width as `format`; enforce it too so a
    // value never overflows the field it lands in.
    if let Some((lo, hi)) = schema
        .get("format")
        .and_then(Value::as_str)
        .and_then(format_bounds)
    {
        min = Some(min.map_or(lo, |m| m.max(lo)));
        max = Some(max.map_or(hi, |m| m.min(hi)));
    }
    if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
        let show = |v: f64| {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                v.to_string()
            }
        };
        let bounds = match (min, max) {
            (Some(a), Some(b)) => format!("{} to {}", show(a), show(b)),
            (Some(a), None) => format!("at least {}", show(a)),
            (None, Some(b)) => format!("at most {}", show(b)),
            (None, None) => unreachable!("checked above"),
        };
        errors.push(err(path, format!("{n} is out of range; allowed: {bounds}")));
    }
}

fn format_bounds(format: &str) -> Option<(f64, f64)> {
    Some(match format {
        "uint8" => (0.0, u8::MAX as f64),
        "uint16" => (0.0, u16::MAX as f64),
        "uint32" => (0.0, u32::MAX as f64),
        "uint64" | "uint" => (0.0, u64::MAX as f64),
        "int8" => (i8::MIN as f64, i8::MAX as f64),
        "int16" => (i16::MIN as f64, i16::MAX as f64),
        "int32" => (i32::MIN as f64, i32::MAX as f64),
        _ => return None,
    })
}

fn allowed_values(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        out.extend(e.iter().map(Value::to_string));
    }
    if let Some(c) = schema.get("const") {
        out.push(c.to_string());
    }
    for key in ["oneOf", "anyOf"] {
        for b in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(allowed_values(b));
        }
    }
    out
}

fn article(ty: &str) -> &'static str {
    match ty {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "boolean" => "true or false",
        "integer" => "an integer",
        "number" => "a number",
        _ => "valid",
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Suggests the allowed name closest to a misspelt one.
fn closest<'a>(given: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| (edit_distance(&given, &a.to_ascii_lowercase()), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Cross-field rules the schema cannot express.
fn semantic_rules(kind: Kind, spec: Option<&Value>) -> Vec<FieldError> {
    let Some(spec) = spec else { return Vec::new() };
    match kind {
        Kind::DeckyShard => match serde_json::from_value::<DeckyShardSpec>(spec.clone()) {
            Ok(s) => shard_rules(&s),
            Err(e) => vec![err("spec", e.to_string())],
        },
        Kind::Topology => match serde_json::from_value::<TopologySpec>(spec.clone()) {
            Ok(t) => topology_rules(&t),
            Err(e) => vec![err("spec", e.to_string())],
        },
        Kind::Swarm | Kind::Worker => Vec::new(),
    }
}

fn shard_rules(s: &DeckyShardSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut lans = BTreeSet::new();
    for (i, lan) in s.networks.iter().enumerate() {
        if !lans.insert(lan.name.as_str()) {
            errors.push(err(
                &format!("spec.networks[{i}].name"),
                format!("duplicate LAN name {:?}", lan.name),
            ));
        }
        if let Some(subnet) = &lan.subnet
            && parse_cidr(subnet).is_none()
        {
            errors.push(err(
                &format!("spec.networks[{i}].subnet"),
                format!("{subnet:?} is not an IPv4 CIDR like 10.10.0.0/24"),
            ));
        }
    }
    let mut names = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for (i, d) in s.deckies.iter().enumerate() {
        if !names.insert(d.name.as_str()) {
            errors.push(err(
                &format!("spec.deckies[{i}].name"),
                format!("duplicate decky name {:?}", d.name),
            ));
        }
        let mut seen = BTreeSet::new();
        for (j, svc) in d.services.iter().enumerate() {
            if !seen.insert(svc) {
                errors.push(err(
                    &format!("spec.deckies[{i}].services[{j}]"),
                    format!("service {svc} listed twice"),
                ));
            }
        }
        for (lan, ip) in &d.ips {
            let path = format!("spec.deckies[{i}].ips.{lan}");
            let Some(net) = s.networks.iter().find(|n| &n.name == lan) else {
                let declared: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
                errors.push(err(
                    &path,
                    format!(
                        "LAN {lan:?} is not declared in spec.networks; declared: [{}]",
                        declared.join(", ")
                    ),
                ));
                continue;
            };
            if ip.is_empty() {
                continue;
            }
            let Ok(addr) = ip.parse::<std::net::Ipv4Addr>() else {
                errors.push(err(&path, format!("{ip:?} is not an IPv4 address")));
                continue;
            };
            if let Some((base, prefix)) = net.subnet.as_deref().and_then(parse_cidr)
                && !in_subnet(addr, base, prefix)
            {
                errors.push(err(
                    &path,
                    format!(
                        "{ip} is outside the LAN's subnet {}",
                        net.subnet.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if !ips.insert((lan.clone(), addr)) {
                errors.push(err(&path, format!("{ip} is already used on LAN {lan:?}")));
            }
        }
    }
    errors
}

fn topology_rules(t: &TopologySpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if parse_cidr(&t.subnet_base).is_none() {
        errors.push(err(
            "spec.subnetBase",
            format!("{:?} is not an IPv4 CIDR like 10.200.0.0/16", t.subnet_base),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, svc) in t.services.iter().enumerate() {
        if !seen.insert(svc) {
            errors.push(err(
                &format!("spec.services[{i}]"),
                format!("service {svc} listed twice"),
            ));
        }
    }
    errors
}

/// Parses `a.b.c.d/n`; `None` if malformed.
pub fn parse_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some((addr.parse().ok()?, prefix))
}

fn in_subnet(addr: std::net::Ipv4Addr, base: std::net::Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(addr) & mask) == (u32::from(base) & mask)
}
