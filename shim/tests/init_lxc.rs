//! lxcri-init in a real LXC container: a busybox rootfs, an LXC config written by hand following
//! the shim <-> LXC <-> init contract, `lxc-start -F`, the status and exec FIFOs.
//!
//! Needs root and LXC. Without them the tests print why and pass, unless `CI=true`, where they
//! fail. The static init is built with cargo (into `target/static`) when the tests start.

use lxcri_init::{InitConfig, Status, EXEC_FIFO, INIT_JSON, STATUS_FIFO};
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this machine can run the tests; panics under CI when it cannot.
fn can_run() -> bool {
    let why = if unsafe { libc::geteuid() } != 0 {
        Some("not root")
    } else if Command::new("lxc-start").arg("--version").output().is_err() {
        Some("lxc-start not found (apt-get install lxc)")
    } else if !Path::new("/bin/busybox").exists() {
        Some("/bin/busybox not found (apt-get install busybox-static)")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("init_lxc: cannot run under CI: {why}")
        }
        Some(why) => {
            eprintln!("init_lxc: skipped: {why}");
            false
        }
    }
}

/// Builds the static init (once per test run; cargo makes it a no-op when up to date).
fn static_init() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the shim crate is inside the workspace")
        .to_path_buf();
    let target_dir = workspace.join("target/static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(["build", "--release", "-p", "lxcri-init"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(&target_dir)
        .output()
        .expect("run cargo to build the static lxcri-init");
    assert!(
        out.status.success(),
        "building the static lxcri-init failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = target_dir.join("x86_64-unknown-linux-gnu/release/lxcri-init");
    assert!(path.exists(), "{} missing after the build", path.display());
    *built = Some(path.clone());
    path
}

fn mkfifo(path: &Path, mode: u32) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("path without NUL");
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    // mkfifo's mode is filtered by the umask: set the real one explicitly.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod fifo");
}

/// One container: its tempdirs, and the `lxc-start` child. Dropping it stops whatever is left.
struct Container {
    name: String,
    lxcpath: PathBuf,
    run_dir: PathBuf,
    rootfs: PathBuf,
    /// Bind-mounted rw at `/out`: where the user's process leaves its marker.
    out: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Container {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("lxc-stop")
                .args(["-k", "-n", &self.name, "-P"])
                .arg(&self.lxcpath)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Container {
    /// A busybox rootfs and an LXC config that follows the contract.
    fn new(init: &Path) -> Container {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-init-lxc-")
            .tempdir()
            .expect("tempdir");
        let name = format!(
            "lxcri-init-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let lxcpath = dir.path().join("lxc");
        let run_dir = lxcpath.join(&name).join("lxcri");
        let rootfs = dir.path().join("rootfs");
        let out = dir.path().join("out");
        for d in [&run_dir, &rootfs.join("bin"), &rootfs.join("etc"), &out] {
            fs::create_dir_all(d).expect("create test dirs");
        }
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).expect("chmod out");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        // Another test thread forking while the copy was open for writing can make the first
        // exec fail with ETXTBSY until that child has exec'd: retry briefly.
        let mut ok = false;
        for _ in 0..20 {
            let st = Command::new("chroot")
                .arg(&rootfs)
                .args(["/bin/busybox", "--install", "-s", "/bin"])
                .status()
                .expect("run busybox --install");
            if st.success() {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(ok, "busybox --install -s failed");
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\n",
        )
        .expect("write passwd");
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nten:x:10:u\ntwenty:x:20:u\nu:x:1000:\n",
        )
        .expect("write group");
        let home = rootfs.join("home/u");
        fs::create_dir_all(&home).expect("create home");
        std::os::unix::fs::chown(&home, Some(1000), Some(1000)).expect("chown home");
        // A directory to mask, with something in it.
        fs::create_dir_all(rootfs.join("secret")).expect("create secret");
        fs::write(rootfs.join("secret/data"), "hidden").expect("write secret");
        // World-writable rootfs: a failing `touch /x` can then only mean a read-only rootfs.
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o1777)).expect("chmod rootfs");

        let config = format!(
            "lxc.uts.name = {name}\n\
             lxc.rootfs.path = dir:{root}\n\
             lxc.rootfs.mount = {root}\n\
             lxc.rootfs.managed = 0\n\
             lxc.init.cmd = /.lxcri/init\n\
             lxc.mount.entry = {run} .lxcri/run none bind,create=dir 0 0\n\
             lxc.mount.entry = {init} .lxcri/init none bind,ro,create=file 0 0\n\
             lxc.mount.entry = proc proc proc nosuid,nodev,noexec,create=dir 0 0\n\
             lxc.mount.entry = tmpfs scratch tmpfs mode=1777,create=dir 0 0\n\
             lxc.mount.entry = {out} out none bind,create=dir 0 0\n\
             lxc.autodev = 1\n\
             lxc.net.0.type = empty\n\
             lxc.console.path = none\n\
             lxc.tty.max = 0\n\
             lxc.apparmor.profile = unconfined\n",
            root = rootfs.display(),
            run = run_dir.display(),
            init = init.display(),
            out = out.display(),
        );
        fs::write(lxcpath.join(&name).join("config"), config).expect("write LXC config");
        mkfifo(&run_dir.join(STATUS_FIFO), 0o600);
        // Writable by the process's user: the init opens it after the uid change (as runc).
        mkfifo(&run_dir.join(EXEC_FIFO), 0o622);
        Container {
            name,
            lxcpath,
            run_dir,
            rootfs,
            out,
            child: None,
            _dir: dir,
        }
    }

    /// Writes init.json, starts `lxc-start -F` and returns the status line the init reported.
    fn create(&mut self, cfg: &InitConfig) -> Status {
        self.create_with(cfg, false)
    }

    /// `create`, with `lxc-start` started with SIGINT ignored and SIGUSR1 blocked when
    /// `dirty_signals`.
    fn create_with(&mut self, cfg: &InitConfig, dirty_signals: bool) -> Status {
        fs::write(
            self.run_dir.join(INIT_JSON),
            serde_json::to_vec(cfg).expect("encode init.json"),
        )
        .expect("write init.json");
        // Read-write, as the shim holds it: opening does not block, and reads wait for data
        // instead of seeing end-of-file before the init opens its end.
        let mut status = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.run_dir.join(STATUS_FIFO))
            .expect("open status fifo");
        let mut cmd = Command::new("lxc-start");
        cmd.args(["-F", "-n", &self.name, "-P"])
            .arg(&self.lxcpath)
            .args(["-o", "/dev/stderr", "-l", "WARN"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if dirty_signals {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_IGN);
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGUSR1);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn lxc-start");
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while let Ok(1) = status.read(&mut byte) {
                if byte[0] == b'\n' {
                    break;
                }
                line.push(byte[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        });
        let line = match rx.recv_timeout(TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let (out, err) = self.finish();
                panic!(
                    "no status line from the init within {TIMEOUT:?}\nstdout: {out}\nstderr: {err}"
                );
            }
        };
        Status::parse_line(&line).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start: reads the init's byte from the exec FIFO.
    fn start(&self) {
        let (tx, rx) = mpsc::channel();
        let fifo = self.run_dir.join(EXEC_FIFO);
        std::thread::spawn(move || {
            let got = fs::read(fifo).map_err(|e| e.to_string());
            let _ = tx.send(got);
        });
        let got = rx
            .recv_timeout(TIMEOUT)
            .expect("the init did not write to the exec FIFO in time")
            .expect("read exec fifo");
        assert_eq!(got, b"0", "the init writes one byte '0' to the exec FIFO");
    }

    /// Waits for `lxc-start` to end (killing it after the timeout); returns its stdout, stderr.
    fn finish(&mut self) -> (String, String) {
        let Some(mut child) = self.child.take() else {
            return (String::new(), String::new());
        };
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + TIMEOUT;
        let mut timed_out = false;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                timed_out = true;
                // Stop the container, then the starter.
                let _ = Command::new("lxc-stop")
                    .args(["-k", "-n", &self.name, "-P"])
                    .arg(&self.lxcpath)
                    .status();
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
        let out = t_out.join().unwrap_or_default();
        let err = t_err.join().unwrap_or_default();
        assert!(
            !timed_out,
            "lxc-start did not end in {TIMEOUT:?}\nstdout: {out}\nstderr: {err}"
        );
        (out, err)
    }

    fn marker(&self) -> bool {
        self.out.join("marker").exists()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The user's command: leaves a marker, then prints what the assertions check.
const SCRIPT: &str = r#"touch /out/marker
echo "pid=$$"
echo "id=$(id -u):$(id -g):$(id -G)"
echo "cwd=$(pwd)"
tr '\0' '\n' < /proc/1/environ | sed 's/^/env=/'
echo "nofile=$(ulimit -n):$(ulimit -Hn)"
grep -E '^(Cap|NoNewPrivs)' /proc/self/status | tr -d '\t' | sed 's/:/=/'
echo "oom=$(cat /proc/self/oom_score_adj)"
echo "umask=$(umask)"
echo "kcore=$([ -e /proc/kcore ] && wc -c < /proc/kcore || echo absent)"
echo "cpuinfo=$(wc -c < /proc/cpuinfo)"
echo "secret=$(ls -A /secret | wc -l)"
touch /scratch/f 2>/dev/null && echo scratch=rw || echo scratch=ro
touch /x 2>/dev/null && echo rootfs=rw || echo rootfs=ro
touch /out/ok 2>/dev/null && echo out=rw || echo out=ro
[ -e /.lxcri/run/init.json ] && echo lxcri=visible || echo lxcri=hidden
[ -s /.lxcri/init ] && echo init=visible || echo init=hidden
"#;

fn full_config() -> InitConfig {
    InitConfig {
        args: strings(&["sh", "-c", SCRIPT]),
        env: strings(&["PATH=/usr/bin:/bin", "HOME=/home/u", "LXCRI_TEST=a b=c"]),
        cwd: "/home/u".into(),
        uid: 1000,
        gid: 1000,
        additional_gids: vec![10, 20],
        umask: Some(0o027),
        capabilities: Some(lxcri_init::Capabilities {
            bounding: strings(&[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
            ]),
            permitted: strings(&["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]),
            effective: strings(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            inheritable: strings(&["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]),
            ambient: strings(&["CAP_NET_BIND_SERVICE"]),
        }),
        no_new_privileges: true,
        rlimits: vec![lxcri_init::Rlimit {
            typ: "RLIMIT_NOFILE".into(),
            soft: 123,
            hard: 456,
        }],
        oom_score_adj: Some(321),
        apparmor_profile: None,
        readonly_rootfs: true,
        masked_paths: strings(&["/proc/kcore", "/proc/cpuinfo", "/secret", "/does/not/exist"]),
        readonly_paths: strings(&["/scratch", "/not/here/either"]),
        terminal: false,
        console_size: None,
        seccomp: None,
    }
}

#[test]
fn init_applies_the_process_spec_and_execs_on_start() {
    if !can_run() {
        return;
    }
    let init = static_init();
    let mut c = Container::new(&init);
    let status = c.create(&full_config());
    if !status.ok {
        let (out, err) = c.finish();
        panic!("init reported {status:?}\nstdout: {out}\nstderr: {err}");
    }
    // Created, not started: the user's process must not have run.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!c.marker(), "the user's process ran before Start");
    c.start();
    let (out, err) = c.finish();
    assert!(
        c.marker(),
        "the user's process did not run\nstdout: {out}\nstderr: {err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    let has = |want: &str| {
        assert!(
            lines.contains(&want),
            "missing line {want:?} in the output:\n{out}\nstderr: {err}"
        )
    };
    has("pid=1");
    has("id=1000:1000:1000 10 20");
    has("cwd=/home/u");
    let env: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("env="))
        .collect();
    assert_eq!(
        env,
        vec!["PATH=/usr/bin:/bin", "HOME=/home/u", "LXCRI_TEST=a b=c"],
        "the process's environment is exactly the spec's"
    );
    has("nofile=123:456");
    // uid 1000 without file capabilities: after exec, permitted = effective = ambient.
    has("CapInh=0000000000002400");
    has("CapPrm=0000000000000400");
    has("CapEff=0000000000000400");
    has("CapBnd=0000000000002421");
    has("CapAmb=0000000000000400");
    has("NoNewPrivs=1");
    has("oom=321");
    has("umask=0027");
    // This VM's kernel has no /proc/kcore; where it has one, it reads empty.
    if Path::new("/proc/kcore").exists() {
        has("kcore=0");
    } else {
        has("kcore=absent");
    }
    has("cpuinfo=0");
    has("secret=0");
    has("scratch=ro");
    has("rootfs=ro");
    has("out=rw");
    has("lxcri=hidden");
    has("init=hidden");
    // The rootfs kept only what LXC creates for the contract (no file of the process).
    assert!(!c.rootfs.join("x").exists());
}

#[test]
fn missing_executable_is_reported_at_create_and_nothing_runs() {
    if !can_run() {
        return;
    }
    let init = static_init();
    let mut c = Container::new(&init);
    let cfg = InitConfig {
        args: strings(&["nosuch", "arg"]),
        env: strings(&["PATH=/usr/bin:/bin"]),
        cwd: "/".into(),
        ..InitConfig::default()
    };
    let status = c.create(&cfg);
    let (out, err) = c.finish();
    assert_eq!(
        status,
        Status::failed("exec: \"nosuch\": executable file not found in $PATH"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains("lxcri-init: exec: \"nosuch\": executable file not found in $PATH"),
        "the error also goes to the container's stderr: {err}"
    );
    assert!(!c.marker());
}

#[test]
fn a_failing_step_names_what_failed_on_which_object() {
    if !can_run() {
        return;
    }
    let init = static_init();
    let mut c = Container::new(&init);
    let cfg = InitConfig {
        args: strings(&["sh", "-c", "touch /out/marker"]),
        env: strings(&["PATH=/bin"]),
        cwd: "/no/such/dir".into(),
        ..InitConfig::default()
    };
    let status = c.create(&cfg);
    let (out, err) = c.finish();
    assert_eq!(
        status,
        Status::failed("chdir /no/such/dir: No such file or directory"),
        "stdout: {out}\nstderr: {err}"
    );
    let mut c2 = Container::new(&init);
    let cfg = InitConfig {
        args: strings(&["/bin/sh", "-c", "touch /out/marker"]),
        rlimits: vec![lxcri_init::Rlimit {
            typ: "RLIMIT_BOGUS".into(),
            soft: 1,
            hard: 1,
        }],
        ..InitConfig::default()
    };
    let status = c2.create(&cfg);
    let _ = c2.finish();
    assert!(!status.ok);
    let e = status.error.unwrap_or_default();
    assert!(e.contains("rlimit \"RLIMIT_BOGUS\": unknown type"), "{e}");
    assert!(!c.marker() && !c2.marker(), "nothing ran");
}

#[test]
fn the_process_starts_with_no_signal_ignored_or_blocked() {
    if !can_run() {
        return;
    }
    let init = static_init();
    let mut c = Container::new(&init);
    // grep itself is PID 1 here (a shell would change its own signals).
    let cfg = InitConfig {
        args: strings(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]),
        env: strings(&["PATH=/bin"]),
        cwd: "/".into(),
        ..InitConfig::default()
    };
    let status = c.create_with(&cfg, true);
    assert!(status.ok, "{status:?}");
    c.start();
    let (out, err) = c.finish();
    let got: Vec<String> = out.lines().map(|l| l.replace(['\t', ' '], "")).collect();
    assert_eq!(
        got,
        vec!["SigBlk:0000000000000000", "SigIgn:0000000000000000"],
        "stderr: {err}"
    );
}
