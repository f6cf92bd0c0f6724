use std::fmt;

/// Everything wrong with one document (or one file that could not be read or
/// parsed), with enough context to fix it without guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// File path, or `-` for stdin.
    pub source: String,
    /// 1-based document index within the file, when known.
    pub document: Option<usize>,
    /// 1-based line where the document starts.
    pub line: Option<usize>,
    /// `Kind/name` when it could be read.
    pub object: Option<String>,
    pub problems: Vec<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(d) = self.document {
            write!(f, ": document {d}")?;
            if let Some(l) = self.line {
                write!(f, " (line {l})")?;
            }
        }
        if let Some(o) = &self.object {
            write!(f, " {o}")?;
        }
        match self.problems.as_slice() {
            [one] => write!(f, ": {one}"),
            many => {
                write!(f, ":")?;
                for p in many {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ManifestError {}
