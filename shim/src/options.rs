//! Runtime options containerd sends with Create (and on the `start` subcommand's stdin).
//!
//! containerd sends whatever its client or the CRI plugin put there: runc's `Options`, the Linux
//! runtime's `CreateOptions` (sent to runtimes not named runc), CRI's `runtimeoptions.v1.Options`
//! (with `ConfigPath`), or nothing. What applies to lxcri is honoured (`ConfigPath`); the rest is
//! ignored with a debug line, never a failure.

use std::path::PathBuf;

/// What lxcri takes from the runtime options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// CRI's `ConfigPath`: the lxcri config file to use.
    pub config_path: Option<PathBuf>,
    /// What was ignored, for the debug log.
    pub ignored: Vec<String>,
}

const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
const LINUX_CREATE_OPTIONS: &str = "containerd.linux.runc.CreateOptions";
const CRI_RUNTIME_OPTIONS: &str = "runtimeoptions.v1.Options";

/// Decodes an `Any` given as its type URL and value.
pub fn decode(type_url: &str, value: &[u8]) -> RuntimeOptions {
    let name = type_url.rsplit('/').next().unwrap_or(type_url);
    let mut out = RuntimeOptions::default();
    match name {
        "" if value.is_empty() => {}
        CRI_RUNTIME_OPTIONS => {
            // message Options { string type_url = 1; string config_path = 2; bytes config_body = 3; }
            for (field, v) in fields(value) {
                match (field, v) {
                    (2, Value::Bytes(b)) => {
                        let p = String::from_utf8_lossy(b).into_owned();
                        if !p.is_empty() {
                            out.config_path = Some(PathBuf::from(p));
                        }
                    }
                    (1, _) => {}
                    (n, _) => out.ignored.push(format!("{name} field {n}")),
                }
            }
        }
        RUNC_OPTIONS | LINUX_CREATE_OPTIONS => {
            if !value.is_empty() {
                out.ignored
                    .push(format!("{name} (runc-specific: nothing applies to lxcri)"));
            }
        }
        other => out
            .ignored
            .push(format!("unknown runtime options type {other:?}")),
    }
    out
}

/// Decodes a serialized `google.protobuf.Any` (as on the `start` subcommand's stdin).
pub fn decode_any(bytes: &[u8]) -> RuntimeOptions {
    if bytes.is_empty() {
        return RuntimeOptions::default();
    }
    let mut type_url = String::new();
    let mut value: &[u8] = &[];
    for (field, v) in fields(bytes) {
        match (field, v) {
            (1, Value::Bytes(b)) => type_url = String::from_utf8_lossy(b).into_owned(),
            (2, Value::Bytes(b)) => value = b,
            _ => {}
        }
    }
    decode(&type_url, value)
}

enum Value<'a> {
    /// A number (varint or fixed width): no option of ours is one.
    Number,
    Bytes(&'a [u8]),
}

/// Walks the top-level fields of a protobuf message; stops quietly at malformed input.
fn fields(mut buf: &[u8]) -> Vec<(u64, Value<'_>)> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Some(key) = varint(&mut buf) else { break };
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => match varint(&mut buf) {
                Some(_) => Value::Number,
                None => break,
            },
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if buf.len() < n {
                    break;
                }
                buf = &buf[n..];
                Value::Number
            }
            2 => {
                let Some(len) = varint(&mut buf) else { break };
                let Ok(len) = usize::try_from(len) else { break };
                if buf.len() < len {
                    break;
                }
                let (b, rest) = buf.split_at(len);
                buf = rest;
                Value::Bytes(b)
            }
            _ => break,
        };
        out.push((field, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(n: u8, s: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, s.len() as u8];
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn cri_config_path_is_honoured() {
        let mut msg = bytes_field(1, b"io.containerd.lxcri.v1.Options");
        msg.extend(bytes_field(2, b"/etc/lxcri/pod.toml"));
        let o = decode("type.googleapis.com/runtimeoptions.v1.Options", &msg);
        assert_eq!(o.config_path, Some(PathBuf::from("/etc/lxcri/pod.toml")));
        assert!(o.ignored.is_empty());
    }

    #[test]
    fn runc_options_are_ignored_not_failed() {
        // BinaryName = "runc" (field 6) and SystemdCgroup = true (field 9, varint)
        let mut msg = bytes_field(6, b"runc");
        msg.extend([9 << 3, 1]);
        let o = decode("containerd.runc.v1.Options", &msg);
        assert_eq!(o.config_path, None);
        assert_eq!(o.ignored.len(), 1);
        let o = decode("containerd.linux.runc.CreateOptions", &msg);
        assert_eq!(o.ignored.len(), 1);
    }

    #[test]
    fn unknown_and_garbage_never_fail() {
        let o = decode("example.com/other", &[0xff, 0xff, 0xff]);
        assert_eq!(o.config_path, None);
        let o = decode("runtimeoptions.v1.Options", &[0x12, 0x7f, b'a']);
        assert_eq!(o.config_path, None);
        assert_eq!(decode_any(&[]), RuntimeOptions::default());
    }

    #[test]
    fn any_wrapper_is_unwrapped() {
        let inner = bytes_field(2, b"/c.toml");
        let mut any = bytes_field(1, b"runtimeoptions.v1.Options");
        any.extend(bytes_field(2, &inner));
        assert_eq!(decode_any(&any).config_path, Some(PathBuf::from("/c.toml")));
    }
}
