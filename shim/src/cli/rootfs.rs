//! `lxcri rootfs identify`: the image identity of a container, asked of containerd (hidden: the
//! shim runs it as a helper process when ZFS is on; see docs/architecture.md, "Image identity").

use super::args::{self, Spec};
use super::{Io, EXIT_INVALID, EXIT_OK};
use ctrd_identity::{IdentifyError, Identity, Request};
use image_core::platform::Platform;
use serde::Serialize;
use std::time::Duration;

/// Exit status when containerd cannot say (the caller falls back to the lower-directory hash).
pub const EXIT_FALLBACK: i32 = 3;

const HELP: &str = "\
Usage: lxcri rootfs identify --address SOCKET --namespace NS [--timeout MS] [--platform P] ID

Asks containerd (its gRPC socket SOCKET) which image container ID of namespace NS was created
from, reads that image's index, manifest and config from containerd's content store, checks them
and recomputes the image's top chain ID from the config's rootfs.diff_ids. It must equal the
parent of the container's snapshot (containerd names it by chain ID).

Prints one JSON object on stdout:
  {\"result\": \"identified\", \"chain_id\": \"sha256:…\", \"image_name\": …, \"manifest_digest\": …, …}
  {\"result\": \"unavailable\", \"error\": \"…\"}   containerd cannot say (exit 3: fall back)
  {\"result\": \"invalid\" | \"mismatch\", \"error\": \"…\"}   the image is broken (exit 1)

Options: --timeout MS (default 5000) bounds the whole call; --platform OS/ARCH[/VARIANT] is
the platform picked from an index first (default: this machine's).

Exit status: 0 identified, 1 invalid image or mismatch, 2 usage error, 3 containerd cannot say.
";

const SPEC: Spec = Spec {
    command: "lxcri rootfs identify",
    valued: &[
        "--address",
        "-a",
        "--namespace",
        "-n",
        "--timeout",
        "--platform",
    ],
    flags: &[],
};

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    if let Some(code) = super::help_or_usage(args, HELP, io) {
        return code;
    }
    match args[0].as_str() {
        "identify" => match parse(&args[1..]) {
            Ok(req) => identify(&req, io),
            Err(msg) => super::usage(io, &msg),
        },
        other => super::unknown_command("lxcri rootfs", other, io),
    }
}

fn parse(args: &[String]) -> Result<Request, String> {
    let p = args::parse(&SPEC, args)?;
    let c = SPEC.command;
    let one = |long: &str, short: Option<&str>| -> Result<Option<String>, String> {
        let mut v = p.one(c, long)?;
        if let Some(s) = short {
            match (v.is_some(), p.one(c, s)?) {
                (true, Some(_)) => return Err(format!("{c}: give {long} or {s}, not both")),
                (false, Some(x)) => v = Some(x),
                _ => {}
            }
        }
        Ok(v)
    };
    let address = one("--address", Some("-a"))?
        .ok_or_else(|| format!("{c}: --address SOCKET is required (containerd's socket)"))?;
    let namespace = one("--namespace", Some("-n"))?
        .ok_or_else(|| format!("{c}: --namespace NS is required"))?;
    let [id] = p.positionals.as_slice() else {
        return Err(format!(
            "{c}: give exactly one container ID (got {}); see {c} --help",
            p.positionals.len()
        ));
    };
    let mut req = Request::new(address, namespace, id.clone());
    if let Some(ms) = one("--timeout", None)? {
        let ms: u64 = ms
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{c}: --timeout {ms:?} is not a positive number of ms"))?;
        req.timeout = Duration::from_millis(ms);
    }
    if let Some(pl) = one("--platform", None)? {
        req.platform = pl
            .parse::<Platform>()
            .map_err(|e| format!("{c}: --platform {pl:?}: {e}"))?;
    }
    Ok(req)
}

#[derive(Serialize)]
struct Identified<'a> {
    result: &'static str,
    #[serde(flatten)]
    identity: &'a Identity,
}

#[derive(Serialize)]
struct Failed<'a> {
    result: &'static str,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    computed: Option<&'a [ctrd_identity::Computed]>,
}

fn identify(req: &Request, io: &mut Io<'_>) -> i32 {
    match ctrd_identity::identify_blocking(req) {
        Ok(identity) => {
            let json = serde_json::to_string(&Identified {
                result: "identified",
                identity: &identity,
            })
            .unwrap_or_default();
            let _ = writeln!(io.out, "{json}");
            EXIT_OK
        }
        Err(e) => {
            let (parent, computed) = match &e {
                IdentifyError::Mismatch {
                    parent, computed, ..
                } => (Some(parent.as_str()), Some(computed.as_slice())),
                _ => (None, None),
            };
            let json = serde_json::to_string(&Failed {
                result: e.kind(),
                error: e.to_string(),
                parent,
                computed,
            })
            .unwrap_or_default();
            let _ = writeln!(io.out, "{json}");
            let _ = writeln!(io.err, "lxcri rootfs identify: {e}");
            if e.is_fallback() {
                EXIT_FALLBACK
            } else {
                EXIT_INVALID
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::EXIT_USAGE;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn run_args(v: &[&str]) -> (i32, String, String) {
        crate::cli::run_captured(run, v)
    }

    #[test]
    fn parses_options() {
        let r = parse(&s(&[
            "-a",
            "/run/c.sock",
            "--namespace=k8s.io",
            "--timeout",
            "250",
            "--platform",
            "linux/arm64",
            "abc",
        ]))
        .unwrap();
        assert_eq!(r.address.to_str(), Some("/run/c.sock"));
        assert_eq!(r.namespace, "k8s.io");
        assert_eq!(r.container_id, "abc");
        assert_eq!(r.timeout, Duration::from_millis(250));
        assert_eq!(r.platform.to_string(), "linux/arm64/v8");
    }

    #[test]
    fn usage_errors_say_what_is_missing() {
        for (args, says) in [
            (&["-n", "x", "id"][..], "--address SOCKET is required"),
            (&["-a", "/s", "id"][..], "--namespace NS is required"),
            (&["-a", "/s", "-n", "x"][..], "exactly one container ID"),
            (
                &["-a", "/s", "--address", "/t", "-n", "x", "id"][..],
                "not both",
            ),
            (
                &["-a", "/s", "-n", "x", "--timeout", "0", "id"][..],
                "positive",
            ),
        ] {
            let err = parse(&s(args)).unwrap_err();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        let (code, _, err) = run_args(&["nope"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("unknown command"), "{err}");
    }

    #[test]
    fn no_socket_is_a_fallback_with_json() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let (code, out, err) = run_args(&[
            "identify",
            "--address",
            sock.to_str().unwrap(),
            "-n",
            "default",
            "c1",
        ]);
        assert_eq!(code, EXIT_FALLBACK, "{out} {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["result"], "unavailable");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("there is no socket at"),
            "{v}"
        );
        assert!(err.contains("no socket"), "{err}");
    }
}
