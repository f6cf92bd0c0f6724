//! Reading manifests: files, directories or stdin holding multi-document YAML
//! (or JSON), validated per document against the resource schemas.

mod error;
mod parse;

pub use error::ManifestError;
pub use parse::{Manifest, collect_files, parse_manifests, read_source};
