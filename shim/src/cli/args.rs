//! A small hand-written option parser: `--opt VALUE`, `--opt=VALUE`, flags, positionals.

/// What a command accepts.
pub struct Spec {
    /// The command, for messages: `lxcri image build`.
    pub command: &'static str,
    /// Options that take a value (long names with dashes, and optional short forms).
    pub valued: &'static [&'static str],
    /// Options without a value.
    pub flags: &'static [&'static str],
}

/// Parsed arguments, in order of appearance.
#[derive(Debug, Default)]
pub struct Parsed {
    pub options: Vec<(String, String)>,
    pub flags: Vec<String>,
    pub positionals: Vec<String>,
}

impl Parsed {
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    /// Every value of a repeatable option, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// The value of an option given at most once.
    pub fn one(&self, command: &str, name: &str) -> Result<Option<String>, String> {
        let all = self.all(name);
        match all.len() {
            0 => Ok(None),
            1 => Ok(all.into_iter().next()),
            _ => Err(format!(
                "{command}: {name} given {} times; give it once",
                all.len()
            )),
        }
    }
}

/// [`parse`] for a command that takes options only: a positional argument is an error too.
pub fn parse_options(spec: &Spec, args: &[String]) -> Result<Parsed, String> {
    let p = parse(spec, args)?;
    match p.positionals.first() {
        Some(extra) => Err(format!("{}: unexpected argument {extra:?}", spec.command)),
        None => Ok(p),
    }
}

/// Parses `args`; an error is a message for stderr (exit 2).
pub fn parse(spec: &Spec, args: &[String]) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    let mut only_positionals = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_positionals || !a.starts_with('-') || a == "-" {
            p.positionals.push(a.clone());
            continue;
        }
        if a == "--" {
            only_positionals = true;
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if spec.valued.contains(&name.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else {
                        return Err(format!(
                            "{}: {name} needs a value; see {} --help",
                            spec.command, spec.command
                        ));
                    };
                    i += 1;
                    v.clone()
                }
            };
            p.options.push((name, value));
        } else if spec.flags.contains(&name.as_str()) {
            if inline.is_some() {
                return Err(format!("{}: {name} takes no value", spec.command));
            }
            p.flags.push(name);
        } else {
            return Err(format!(
                "{}: unknown option {name:?}; see {} --help",
                spec.command, spec.command
            ));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        command: "t",
        valued: &["--name", "-o"],
        flags: &["--json"],
    };

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_flags_positionals() {
        let p = parse(
            &SPEC,
            &s(&[
                "a", "--name=x", "--json", "-o", "out", "--name", "y", "--", "--b",
            ]),
        )
        .unwrap();
        assert_eq!(p.positionals, s(&["a", "--b"]));
        assert_eq!(p.all("--name"), s(&["x", "y"]));
        assert!(p.one("t", "--name").is_err());
        assert_eq!(p.one("t", "-o").unwrap().as_deref(), Some("out"));
        assert!(p.has("--json"));
    }

    #[test]
    fn errors() {
        assert!(parse(&SPEC, &s(&["--nope"]))
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse(&SPEC, &s(&["--name"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&SPEC, &s(&["--json=1"]))
            .unwrap_err()
            .contains("takes no value"));
    }
}
