//! `lxcri`: the administrator's command line (separate from the shim binary).
//!
//! Exit codes, stable for scripts: 0 success; 1 the input is invalid (problems on stderr, one
//! per line, each with its document and JSON path); 2 usage or I/O error (a message on stderr
//! saying what to do).
//!
//! Arguments are parsed by hand: `--opt VALUE` or `--opt=VALUE`, repeatable where said.

pub mod args;
pub mod check;
pub mod image;
pub mod layers;
#[cfg(feature = "identify")]
pub mod rootfs;

use std::ffi::OsString;
use std::io::Write;

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

const HELP: &str = "\
lxcri: tools for the lxcri containerd shim

Usage: lxcri <command> [args]

Commands:
  image validate PATH [--media-type TYPE]   validate a JSON document, an OCI layout or archive
  image inspect PATH [--json]               describe the images of an OCI layout or archive
  image build --name NAME ... -o OUT        build an OCI layout (dir) or archive (OUT.tar)
  layers ls [--json]                        the ZFS base datasets of images, their clones
  layers gc [--keep N] [--keep-bytes SIZE]  destroy orphan clones, interrupted builds, unused bases
  check [--address SOCKET] [--config FILE] can this node run lxcri containers? (exit 1 if not)

Options:
  -h, --help       this help (also: lxcri image --help, lxcri image build --help)
  -V, --version    print the version

Exit status: 0 ok, 1 invalid input (problems on stderr), 2 usage or I/O error.
";

/// Where a command writes (stdout, stderr): real ones from `main`, buffers in tests.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// Runs `lxcri` with `args` (without the program name); returns the exit code.
pub fn run(args: Vec<OsString>, io: &mut Io<'_>) -> i32 {
    let args: Vec<String> = match args
        .into_iter()
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(a) => a,
        Err(bad) => {
            let _ = writeln!(
                io.err,
                "lxcri: argument {bad:?} is not valid UTF-8; rename the path or quote it differently"
            );
            return EXIT_USAGE;
        }
    };
    match args.first().map(String::as_str) {
        None | Some("-h") | Some("--help") | Some("help") => {
            let _ = io.out.write_all(HELP.as_bytes());
            if args.is_empty() {
                EXIT_USAGE
            } else {
                EXIT_OK
            }
        }
        Some("-V") | Some("--version") | Some("version") => {
            let _ = writeln!(io.out, "lxcri {}", env!("CARGO_PKG_VERSION"));
            EXIT_OK
        }
        Some("image") => image::run(&args[1..], io),
        // Hidden: the shim's helper (lxcri rootfs --help).
        #[cfg(feature = "identify")]
        Some("rootfs") => rootfs::run(&args[1..], io),
        Some("layers") => layers::run(&args[1..], io),
        Some("check") => check::run(&args[1..], io),
        Some(other) => {
            let _ = writeln!(io.err, "lxcri: unknown command {other:?}; see lxcri --help");
            EXIT_USAGE
        }
    }
}

/// What every `lxcri <group> <command>` does first with its `args`: with no command, `help` on
/// stderr (exit 2); with `help` as the command or `-h`/`--help` anywhere, `help` on stdout
/// (exit 0). `None`: go on with the command `args[0]`.
fn help_or_usage(args: &[String], help: &str, io: &mut Io<'_>) -> Option<i32> {
    if args.is_empty() {
        let _ = io.err.write_all(help.as_bytes());
        return Some(EXIT_USAGE);
    }
    if args[0] == "help" || args.iter().any(|a| a == "-h" || a == "--help") {
        let _ = io.out.write_all(help.as_bytes());
        return Some(EXIT_OK);
    }
    None
}

/// `msg` on stderr; exit 2.
fn usage(io: &mut Io<'_>, msg: &str) -> i32 {
    let _ = writeln!(io.err, "{msg}");
    EXIT_USAGE
}

/// `<group>: unknown command "<other>"; see <group> --help` on stderr; exit 2.
fn unknown_command(group: &str, other: &str, io: &mut Io<'_>) -> i32 {
    usage(
        io,
        &format!("{group}: unknown command {other:?}; see {group} --help"),
    )
}

/// Runs a subcommand's `run` with captured output: (exit code, stdout, stderr). For tests.
#[cfg(test)]
pub fn run_captured(
    run: fn(&[String], &mut Io<'_>) -> i32,
    args: &[&str],
) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let code = run(
        &args,
        &mut Io {
            out: &mut out,
            err: &mut err,
        },
    );
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// `main` of the `lxcri` binary.
pub fn main() -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let code = run(
        std::env::args_os().skip(1).collect(),
        &mut Io {
            out: &mut out,
            err: &mut err,
        },
    );
    let _ = out.flush();
    let _ = err.flush();
    code
}
