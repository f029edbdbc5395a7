//! What the end-to-end test files share: one test per containerd version for each scenario, the
//! standard scenario set-up, and small assertions.

use crate::{require_root_or_skip, wait_no_leaks, Containerd, ContainerdVersion};
use std::process::Output;
use std::time::Duration;

/// `per_containerd_version!(a, b)` makes `v1_6::a`, `v1_7::a`, `v2_1::a`, ... tests, each calling
/// `run(ContainerdVersion::V1_6, a)` with the `run` in scope of the test file (usually
/// [`run_with_busybox`]).
#[macro_export]
macro_rules! per_containerd_version {
    ($($name:ident),* $(,)?) => {
        mod v1_6 { $( #[test] fn $name() { super::run($crate::ContainerdVersion::V1_6, super::$name) } )* }
        mod v1_7 { $( #[test] fn $name() { super::run($crate::ContainerdVersion::V1_7, super::$name) } )* }
        mod v2_1 { $( #[test] fn $name() { super::run($crate::ContainerdVersion::V2_1, super::$name) } )* }
    };
}

/// The usual scenario set-up: (as root) a private containerd `v` with the busybox image imported.
pub fn run_with_busybox(v: ContainerdVersion, scenario: fn(&Containerd)) {
    if !require_root_or_skip() {
        return;
    }
    let cd = Containerd::start(v);
    cd.import_busybox();
    scenario(&cd);
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics, listing them, if container `id` left anything behind after 5 s.
pub fn assert_clean(id: &str) {
    let left = wait_no_leaks(id, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "container {id} left things behind:\n{}",
        left.join("\n")
    );
}
