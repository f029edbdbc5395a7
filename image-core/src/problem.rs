//! A validation problem names the document, the JSON path inside it and the reason.

use std::fmt;

/// One thing wrong with a document.
///
/// Displayed as `manifest: layers[2].digest: "sha256:ab" is not 64 lowercase hex characters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What the document is: `manifest`, `index`, `config`, `descriptor`, `oci-layout`, or a
    /// more precise name such as `blobs/sha256/ab12…(manifest)` when the caller knows one.
    pub doc: String,
    /// JSON path inside the document, `layers[2].digest`; empty for the document as a whole.
    pub path: String,
    /// Why it is wrong, with the offending value quoted where it helps.
    pub reason: String,
}

impl Problem {
    pub fn new(doc: impl Into<String>, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            doc: doc.into(),
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.doc, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.doc, self.path, self.reason)
        }
    }
}

/// Every problem found in a document (never only the first). Never empty when returned as an
/// error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn push(&mut self, p: Problem) {
        self.0.push(p)
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
