//! `lxcri`: the administrator's command line (separate from the shim binary, which does not link
//! this module: it is behind the `cli` feature that the static shim build leaves out).
//!
//! Arguments are parsed by clap (derive): `lxcri <command> --help` for every command,
//! `lxcri completion bash|zsh|fish`, `lxcri --version` with the liblxc and containerd-shim
//! versions. Exit codes, stable for scripts ([`EXIT_STATUS`]): 0 success; 1 the input is
//! invalid (problems on stderr, one per line, each with its document and JSON path) or a check
//! failed; 2 usage, configuration or I/O error (a message on stderr saying what to do); 3 only
//! from the hidden `rootfs identify`: containerd cannot say.

pub mod check;
pub mod image;
pub mod layers;
#[cfg(feature = "identify")]
pub mod rootfs;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// The version of the containerd-shim crate the shim serves task.v2 with (pinned exactly in the
/// workspace's Cargo.toml; a unit test checks this against Cargo.lock).
pub const CONTAINERD_SHIM_VERSION: &str = "0.11.0";

/// The exit codes, in every command's help and in the man page.
pub const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  invalid input (image validate: the problems on stderr, one a line) or a failed check
     (lxcri check: the FAIL line says what to do)
  2  usage, configuration or I/O error (a message on stderr says what to do)";

#[derive(Parser, Debug)]
#[command(
    name = "lxcri",
    version,
    about = "Tools for the lxcri containerd shim (containerd-shim-lxcri-v2)",
    long_about = "Tools for the lxcri containerd shim (containerd-shim-lxcri-v2): validate, \
                  inspect and build OCI images, manage the ZFS base datasets of images, and \
                  check that a node can run lxcri containers. Run `lxcri <command> --help` for \
                  the options of a command.",
    after_help = EXIT_STATUS,
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Print lxcri's version, the liblxc version (asked of lxcri-monitor) and the
    /// containerd-shim crate version
    #[arg(short = 'V', long = "version")]
    version: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate, inspect and build OCI images (JSON documents, layouts, archives)
    #[command(subcommand, after_help = EXIT_STATUS)]
    Image(image::ImageCommand),
    /// List and collect the ZFS base datasets of images and their clones
    #[command(subcommand, after_help = layers::EXIT)]
    Layers(layers::LayersCommand),
    /// Check that this node can run lxcri containers (exit 1 if not)
    Check(check::CheckArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout
    #[command(
        long_about = "Print a shell completion script on stdout. Load it in the current shell \
                      (bash: `source <(lxcri completion bash)`) or install it: the Debian \
                      package puts them where bash-completion, zsh and fish look."
    )]
    Completion {
        /// The shell
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// The image identity of a container, asked of containerd (the shim's helper)
    #[cfg(feature = "identify")]
    #[command(subcommand, hide = true)]
    Rootfs(rootfs::RootfsCommand),
    /// Print the man page lxcri(1) (roff) on stdout, or write all pages into a directory
    #[command(hide = true)]
    Man {
        /// Write lxcri.1 and a page for each command (lxcri-image-build.1, ...) into DIR
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Same as --version
    #[command(hide = true)]
    Version,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Where a command writes (stdout, stderr): real ones from `main`, buffers in tests.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// The clap command of `lxcri` (for completions, the man page and tests).
pub fn command() -> clap::Command {
    Cli::command()
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
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err((code, text, to_stdout)) => {
            let w = if to_stdout { &mut io.out } else { &mut io.err };
            let _ = w.write_all(text.as_bytes());
            return code;
        }
    };
    if cli.version {
        return version(io);
    }
    match cli.command {
        // arg_required_else_help: clap answered already.
        None => EXIT_USAGE,
        Some(Command::Image(c)) => image::exec(c, io),
        Some(Command::Layers(c)) => layers::exec(c, io),
        Some(Command::Check(a)) => check::exec(a, io),
        #[cfg(feature = "identify")]
        Some(Command::Rootfs(c)) => rootfs::exec(c, io),
        Some(Command::Completion { shell }) => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut command(), "lxcri", io.out);
            EXIT_OK
        }
        Some(Command::Man { dir: None }) => match clap_mangen::Man::new(command()).render(io.out) {
            Ok(()) => EXIT_OK,
            Err(e) => usage(io, &format!("lxcri man: cannot write the man page: {e}")),
        },
        Some(Command::Man { dir: Some(dir) }) => match clap_mangen::generate_to(command(), &dir) {
            Ok(()) => EXIT_OK,
            Err(e) => usage(
                io,
                &format!(
                    "lxcri man: cannot write the man pages into {}: {e}; give an existing, writable directory",
                    dir.display()
                ),
            ),
        },
        Some(Command::Version) => version(io),
    }
}

/// Parses `lxcri ARGS`. `Err` when parsing ends the run: the exit code, the text, and whether it
/// goes to stdout (help) or stderr (errors; help when a command is missing).
fn parse(args: &[String]) -> Result<Cli, (i32, String, bool)> {
    let argv = std::iter::once("lxcri".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv).map_err(|e| {
        let path = command_path(args);
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                (EXIT_OK, e.render().to_string(), true)
            }
            ErrorKind::InvalidSubcommand => {
                let name = context(&e, ContextKind::InvalidSubcommand).unwrap_or_default();
                let mut msg = format!("{path}: unknown command {name:?}; see {path} --help");
                if let Some(s) = context(&e, ContextKind::SuggestedSubcommand) {
                    msg.push_str(&format!(" (did you mean {s:?}?)"));
                }
                (EXIT_USAGE, msg + "\n", false)
            }
            ErrorKind::UnknownArgument => {
                let arg = context(&e, ContextKind::InvalidArg).unwrap_or_default();
                let what = if arg.starts_with('-') {
                    "unknown option"
                } else {
                    "unexpected argument"
                };
                let mut msg = format!("{path}: {what} {arg:?}; see {path} --help");
                if let Some(s) = context(&e, ContextKind::SuggestedArg) {
                    msg.push_str(&format!(" (did you mean {s:?}?)"));
                }
                (EXIT_USAGE, msg + "\n", false)
            }
            // Help, errors and a missing command all exit 2 (help then goes to stderr).
            _ => (EXIT_USAGE, e.render().to_string(), false),
        }
    })
}

/// The first value of a clap error's context item, as text.
fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

/// `lxcri image validate` for `["image", "validate", "--bogus"]`: the commands named in `args`.
fn command_path(args: &[String]) -> String {
    let mut cmd = command();
    let mut path = vec!["lxcri".to_string()];
    for a in args {
        if a.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                let sub = sub.clone();
                cmd = sub;
            }
            None => break,
        }
    }
    path.join(" ")
}

/// `lxcri --version`: lxcri's own version, liblxc's (asked of `lxcri-monitor version` beside
/// this executable: the monitor is the only binary that links liblxc) and containerd-shim's.
fn version(io: &mut Io<'_>) -> i32 {
    let _ = writeln!(io.out, "lxcri {}", env!("CARGO_PKG_VERSION"));
    let monitor = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(crate::config::MONITOR_BIN)));
    let _ = writeln!(io.out, "{}", liblxc_version(monitor.as_deref()));
    let _ = writeln!(
        io.out,
        "containerd-shim {CONTAINERD_SHIM_VERSION} (task.v2; containerd 1.6, 1.7, 2.x)"
    );
    EXIT_OK
}

/// `liblxc 5.0.2 (lxcri-monitor: /usr/bin/lxcri-monitor)`, or the line that says why not.
fn liblxc_version(monitor: Option<&Path>) -> String {
    let Some(monitor) = monitor else {
        return "liblxc unknown: cannot find this executable's directory (lxcri-monitor is looked for there)".into();
    };
    match std::process::Command::new(monitor).arg("version").output() {
        Ok(o) if o.status.success() => format!(
            "{} (lxcri-monitor: {})",
            String::from_utf8_lossy(&o.stdout).trim(),
            monitor.display()
        ),
        Ok(o) => format!(
            "liblxc unknown: {} version failed ({}): install liblxc1",
            monitor.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!(
            "liblxc unknown: cannot run {}: {e}: install lxcri-monitor beside lxcri",
            monitor.display()
        ),
    }
}

/// `msg` on stderr; exit 2.
fn usage(io: &mut Io<'_>, msg: &str) -> i32 {
    let _ = writeln!(io.err, "{msg}");
    EXIT_USAGE
}

/// Runs `lxcri PREFIX... ARGS...`: a group's `run` (`lxcri layers ...`), for tests and callers
/// that hold the arguments after the group's name.
fn run_group(prefix: &[&str], args: &[String], io: &mut Io<'_>) -> i32 {
    let all: Vec<OsString> = prefix
        .iter()
        .map(OsString::from)
        .chain(args.iter().map(OsString::from))
        .collect();
    run(all, io)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lxcri(args: &[&str]) -> (i32, String, String) {
        run_captured(|a, io| run_group(&[], a, io), args)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_command_and_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str) {
            for a in cmd.get_arguments() {
                if matches!(a.get_id().as_str(), "help" | "version") {
                    continue;
                }
                assert!(
                    a.get_help().is_some(),
                    "{path}: option {} has no help",
                    a.get_id()
                );
            }
            for s in cmd.get_subcommands() {
                if s.get_name() == "help" {
                    continue;
                }
                let p = format!("{path} {}", s.get_name());
                assert!(s.get_about().is_some(), "{p} has no help");
                walk(s, &p);
            }
        }
        walk(&command(), "lxcri");
    }

    #[test]
    fn unknown_commands_and_options_name_what_is_wrong() {
        let (code, _, err) = lxcri(&["frobnicate"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(
            err.contains("lxcri: unknown command \"frobnicate\"; see lxcri --help"),
            "{err}"
        );
        let (code, _, err) = lxcri(&["image", "valdate"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(
            err.contains("lxcri image: unknown command \"valdate\""),
            "{err}"
        );
        assert!(err.contains("did you mean \"validate\""), "{err}");
        let (code, _, err) = lxcri(&["image", "inspect", "--jsn", "x"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(
            err.contains("lxcri image inspect: unknown option \"--jsn\""),
            "{err}"
        );
        let (code, _, err) = lxcri(&["check", "extra"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(
            err.contains("lxcri check: unexpected argument \"extra\""),
            "{err}"
        );
    }

    #[test]
    fn a_group_without_a_command_shows_its_commands_on_stderr() {
        let (code, out, err) = lxcri(&["image"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("validate") && err.contains("build"), "{err}");
        let (code, out, err) = lxcri(&[]);
        assert_eq!(code, EXIT_USAGE);
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("Usage: lxcri"), "{err}");
    }

    #[test]
    fn help_shows_the_exit_codes() {
        let (code, out, _) = lxcri(&["--help"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("Exit status:"), "{out}");
        assert!(out.contains("completion"), "{out}");
        assert!(!out.contains("rootfs"), "rootfs is hidden: {out}");
        let (code, out, _) = lxcri(&["help", "image", "build"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("--busybox"), "{out}");
    }

    #[test]
    fn completions_for_three_shells() {
        for (shell, says) in [
            ("bash", "complete -F"),
            ("zsh", "#compdef lxcri"),
            ("fish", "complete -c lxcri"),
        ] {
            let (code, out, err) = lxcri(&["completion", shell]);
            assert_eq!(code, EXIT_OK, "{shell}: {err}");
            assert!(out.contains(says), "{shell}: {out}");
            assert!(out.contains("validate"), "{shell}: no subcommands");
        }
        let (code, _, err) = lxcri(&["completion", "tcsh"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
    }

    #[test]
    fn the_man_page_names_every_command() {
        let (code, out, _) = lxcri(&["man"]);
        assert_eq!(code, EXIT_OK);
        assert!(
            out.starts_with(".ie") || out.contains(".TH lxcri 1"),
            "{out}"
        );
        assert!(
            out.contains(&format!("lxcri {}", env!("CARGO_PKG_VERSION"))),
            "{out}"
        );
        for c in ["image", "layers", "check", "completion"] {
            assert!(out.contains(c), "{c} missing from the man page");
        }
        let d = tempfile::tempdir().unwrap();
        let (code, _, err) = lxcri(&["man", "--dir", d.path().to_str().unwrap()]);
        assert_eq!(code, EXIT_OK, "{err}");
        for page in [
            "lxcri.1",
            "lxcri-image-build.1",
            "lxcri-layers-gc.1",
            "lxcri-check.1",
        ] {
            let text = std::fs::read_to_string(d.path().join(page))
                .unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.contains(".TH"), "{page}: {text}");
        }
        assert!(
            !d.path().join("lxcri-rootfs.1").exists(),
            "the hidden rootfs has no page"
        );
        let (code, _, err) = lxcri(&["man", "--dir", "/nonexistent/lxcri-man"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("/nonexistent/lxcri-man"), "{err}");
    }

    #[test]
    fn version_names_liblxc_and_containerd_shim() {
        let (code, out, _) = lxcri(&["--version"]);
        assert_eq!(code, EXIT_OK);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("lxcri {}", env!("CARGO_PKG_VERSION")));
        // The test binary has no lxcri-monitor beside it: the line says so and what to do.
        assert!(lines[1].starts_with("liblxc "), "{out}");
        assert_eq!(
            lines[2],
            format!(
                "containerd-shim {CONTAINERD_SHIM_VERSION} (task.v2; containerd 1.6, 1.7, 2.x)"
            )
        );
        assert_eq!(lxcri(&["version"]).1, out);
        let missing = liblxc_version(Some(Path::new("/nonexistent/lxcri-monitor")));
        assert!(
            missing.contains("cannot run /nonexistent/lxcri-monitor")
                && missing.contains("install"),
            "{missing}"
        );
    }

    #[test]
    fn containerd_shim_version_matches_cargo_lock() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("read the workspace's Cargo.lock");
        let pkg = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"containerd-shim\"\n"))
            .expect("containerd-shim in Cargo.lock");
        assert!(
            pkg.contains(&format!("\nversion = \"{CONTAINERD_SHIM_VERSION}\"\n")),
            "CONTAINERD_SHIM_VERSION is {CONTAINERD_SHIM_VERSION}, Cargo.lock says:{pkg}"
        );
    }
}
