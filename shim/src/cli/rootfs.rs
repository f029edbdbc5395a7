//! `lxcri rootfs identify`: the image identity of a container, asked of containerd (hidden: the
//! shim runs it as a helper process when ZFS is on; see docs/architecture.md, "Image identity").

use super::{Io, EXIT_INVALID, EXIT_OK};
use clap::{Args, Subcommand};
use ctrd_identity::{IdentifyError, Identity, Request};
use image_core::platform::Platform;
use serde::Serialize;
use std::time::Duration;

/// Exit status when containerd cannot say (the caller falls back to the lower-directory hash).
pub const EXIT_FALLBACK: i32 = 3;

#[derive(Subcommand, Debug)]
pub enum RootfsCommand {
    /// Ask containerd which image a container was created from, and check it
    #[command(
        long_about = "Asks containerd (its gRPC socket SOCKET) which image container ID of \
                      namespace NS was created from, reads that image's index, manifest and \
                      config from containerd's content store, checks them and recomputes the \
                      image's top chain ID from the config's rootfs.diff_ids. It must equal the \
                      parent of the container's snapshot (containerd names it by chain ID).

Prints one JSON object on stdout:
  {\"result\": \"identified\", \"chain_id\": \"sha256:…\", \"image_name\": …, \"manifest_digest\": …, …}
  {\"result\": \"unavailable\", \"error\": \"…\"}   containerd cannot say (exit 3: fall back)
  {\"result\": \"invalid\" | \"mismatch\", \"error\": \"…\"}   the image is broken (exit 1)",
        after_help = "\
Exit status:
  0  identified
  1  invalid image or mismatch
  2  usage error
  3  containerd cannot say"
    )]
    Identify(IdentifyArgs),
}

#[derive(Args, Debug)]
pub struct IdentifyArgs {
    /// containerd's gRPC socket
    #[arg(short = 'a', long, value_name = "SOCKET")]
    address: Option<String>,
    /// The container's containerd namespace
    #[arg(short = 'n', long, value_name = "NS")]
    namespace: Option<String>,
    /// Bounds the whole call, in milliseconds [default: 5000]
    #[arg(long, value_name = "MS")]
    timeout: Option<String>,
    /// The platform picked from an index first (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// The container's ID
    #[arg(value_name = "ID")]
    id: Option<String>,
}

/// `lxcri rootfs ARGS...` (the arguments after `rootfs`).
pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    super::run_group(&["rootfs"], args, io)
}

pub(super) fn exec(cmd: RootfsCommand, io: &mut Io<'_>) -> i32 {
    match cmd {
        RootfsCommand::Identify(a) => match request(a) {
            Ok(req) => identify(&req, io),
            Err(msg) => super::usage(io, &msg),
        },
    }
}

/// The request of `lxcri rootfs identify`'s arguments; `Err` is the message for stderr.
fn request(a: IdentifyArgs) -> Result<Request, String> {
    let c = "lxcri rootfs identify";
    let address = a
        .address
        .ok_or_else(|| format!("{c}: --address SOCKET is required (containerd's socket)"))?;
    let namespace = a
        .namespace
        .ok_or_else(|| format!("{c}: --namespace NS is required"))?;
    let Some(id) = a.id else {
        return Err(format!(
            "{c}: give exactly one container ID (got 0); see {c} --help"
        ));
    };
    let mut req = Request::new(address, namespace, id);
    if let Some(ms) = a.timeout {
        let ms: u64 = ms
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{c}: --timeout {ms:?} is not a positive number of ms"))?;
        req.timeout = Duration::from_millis(ms);
    }
    if let Some(pl) = a.platform {
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

    /// The request of `lxcri rootfs identify ARGS`, or the usage error's message.
    fn parse(args: &[&str]) -> Result<Request, String> {
        let argv: Vec<String> = ["rootfs", "identify"]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect();
        match crate::cli::parse(&argv) {
            Ok(crate::cli::Cli {
                command: Some(crate::cli::Command::Rootfs(RootfsCommand::Identify(a))),
                ..
            }) => request(a),
            Ok(other) => panic!("{args:?}: parsed as {other:?}"),
            Err((code, msg, _)) => {
                assert_eq!(code, EXIT_USAGE, "{msg}");
                Err(msg)
            }
        }
    }

    fn run_args(v: &[&str]) -> (i32, String, String) {
        crate::cli::run_captured(run, v)
    }

    #[test]
    fn parses_options() {
        let r = parse(&[
            "-a",
            "/run/c.sock",
            "--namespace=k8s.io",
            "--timeout",
            "250",
            "--platform",
            "linux/arm64",
            "abc",
        ])
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
                "cannot be used multiple times",
            ),
            (
                &["-a", "/s", "-n", "x", "--timeout", "0", "id"][..],
                "positive",
            ),
        ] {
            let err = parse(args).unwrap_err();
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
