use crate::api::Kind;

/// One CRD as YAML, exactly what `crds/<plural>.yaml` holds.
pub fn render(kind: Kind) -> Result<String, String> {
    serde_saphyr::to_string(&kind.crd()).map_err(|e| format!("rendering the {kind} CRD: {e}"))
}

/// All CRDs as one multi-document stream.
pub fn render_all() -> Result<String, String> {
    let mut out = String::new();
    for kind in Kind::ALL {
        out.push_str("---\n");
        out.push_str(&render(kind)?);
    }
    Ok(out)
}
