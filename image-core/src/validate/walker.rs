//! A small visitor over `serde_json::Value` that tracks the JSON path and collects problems.

use crate::problem::{Problem, Problems};
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Walks one document: knows its name, the current JSON path, and the problems found so far.
pub(crate) struct Walker {
    doc: String,
    path: String,
    problems: Vec<Problem>,
}

/// A short description of a JSON value for messages: `the number 123`, `an array`, ...
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", quote_short(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// `s` quoted (Rust debug quoting, which is JSON's for printable text), cut to about 160
/// characters so a huge value does not flood a message.
pub(crate) fn quote_short(s: &str) -> String {
    const MAX: usize = 160;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &s[..end])
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Walker {
    pub(crate) fn new(doc: &str) -> Walker {
        Walker {
            doc: doc.to_owned(),
            path: String::new(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn into_problems(self) -> Problems {
        Problems(self.problems)
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Reports a problem at the current path.
    pub(crate) fn report(&mut self, reason: impl Into<String>) {
        self.problems
            .push(Problem::new(self.doc.clone(), self.path.clone(), reason));
    }

    /// Runs `f` with `key` appended to the path (`.key`, or `["key"]` for keys that are not
    /// plain identifiers such as annotation names).
    pub(crate) fn at<R>(&mut self, key: &str, f: impl FnOnce(&mut Walker) -> R) -> R {
        let len = self.path.len();
        if is_plain_key(key) {
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(key);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(self.path, "[{key:?}]");
        }
        let r = f(self);
        self.path.truncate(len);
        r
    }

    /// Runs `f` with `[i]` appended to the path.
    pub(crate) fn at_index<R>(&mut self, i: usize, f: impl FnOnce(&mut Walker) -> R) -> R {
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        let r = f(self);
        self.path.truncate(len);
        r
    }

    /// The value as an object, or a problem.
    pub(crate) fn object<'v>(&mut self, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.report(format!("must be an object, found {}", describe(other)));
                None
            }
        }
    }

    /// The value as a string, or a problem.
    pub(crate) fn string<'v>(&mut self, v: &'v Value) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.report(format!("must be a string, found {}", describe(other)));
                None
            }
        }
    }

    /// The value as an array, or a problem.
    pub(crate) fn array<'v>(&mut self, v: &'v Value) -> Option<&'v [Value]> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.report(format!("must be an array, found {}", describe(other)));
                None
            }
        }
    }

    /// The value as a boolean, or a problem.
    pub(crate) fn boolean(&mut self, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.report(format!("must be a boolean, found {}", describe(other)));
                None
            }
        }
    }

    /// The value as a non-negative integer that fits in 64 bits, or a problem.
    pub(crate) fn size(&mut self, v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => match n.as_u64() {
                Some(u) => Some(u),
                None => {
                    self.report(format!("{n} is not a non-negative integer"));
                    None
                }
            },
            other => {
                self.report(format!(
                    "must be a non-negative integer, found {}",
                    describe(other)
                ));
                None
            }
        }
    }

    /// Checks an optional field with `f`, with the path set to it.
    pub(crate) fn optional(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        f: impl FnOnce(&mut Walker, &Value),
    ) {
        if let Some(v) = m.get(key) {
            self.at(key, |w| f(w, v));
        }
    }

    /// Like [`Walker::optional`], but `null` counts as absent.
    pub(crate) fn nullable(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        f: impl FnOnce(&mut Walker, &Value),
    ) {
        match m.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => self.at(key, |w| f(w, v)),
        }
    }

    /// Checks a required field with `f`, with the path set to it; reports it when missing.
    pub(crate) fn required<'v, R>(
        &mut self,
        m: &'v Map<String, Value>,
        key: &str,
        f: impl FnOnce(&mut Walker, &'v Value) -> Option<R>,
    ) -> Option<R> {
        match m.get(key) {
            Some(v) => self.at(key, |w| f(w, v)),
            None => {
                self.at(key, |w| w.report("is required but missing"));
                None
            }
        }
    }

    /// Checks an array of strings.
    pub(crate) fn string_array<'v>(&mut self, v: &'v Value) -> Vec<&'v str> {
        let mut out = Vec::new();
        if let Some(items) = self.array(v) {
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = self.at_index(i, |w| w.string(item)) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Checks an object whose values are strings (annotations, labels): keys must not be
    /// empty.
    pub(crate) fn string_map(&mut self, v: &Value) {
        if let Some(m) = self.object(v) {
            for (k, v) in m {
                if k.is_empty() {
                    self.report("has an empty key: keys must be non-empty strings");
                }
                self.at(k, |w| {
                    w.string(v);
                });
            }
        }
    }

    /// Checks an object used as a set (`"ExposedPorts": {"80/tcp": {}}`): values are objects.
    pub(crate) fn string_set(&mut self, v: &Value) {
        if let Some(m) = self.object(v) {
            for (k, v) in m {
                if k.is_empty() {
                    self.report("has an empty key: keys must be non-empty strings");
                }
                self.at(k, |w| {
                    w.object(v);
                });
            }
        }
    }
}
