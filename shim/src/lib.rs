//! lxcri: the containerd shim v2 that runs OCI containers as LXC containers.
//!
//! | module | what |
//! | --- | --- |
//! | `shim` | the shim process: `start` and `delete` subcommands, the ttrpc server |
//! | `task` | containerd's Task service: state machines, locks, exits, events (see its table) |
//! | `container` | one container's Create / Start / Kill / Delete on the host (blocking work) |
//! | `lxcconf` | the OCI runtime spec -> LXC config translation (pure, golden-tested) |
//! | `hooks` | the spec's OCI hooks: when, where and with which state each runs, and running them |
//! | `process_spec` | the OCI process spec -> the init's config |
//! | `seccomp` | the seccomp compiler: `linux.seccomp` -> the BPF program the init loads (x86_64) |
//! | `config` | lxcri's TOML config file |
//! | `rootfs` | which rootfs provider (pass-through or ZFS clones), per-container options, collection |
//! | `options` | runtime options containerd sends |
//! | `cgroup_settings` | OCI `linux.resources` -> cgroup files and values (v1/v2), for Create and Update (pure, golden-tested) |
//! | `cgroup_files` | a running container's cgroup files: metrics (Stats), limits (Update) |
//! | `oom` | OOM kills in a container's cgroup, as they happen |
//! | `console` | a process's terminal: the pty master, copied to and from containerd's FIFOs |
//! | `host` | facts about the host (cgroup layout, filesystems, processes) |
pub mod cgroup_files;
pub mod cgroup_settings;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
pub mod host;
pub mod lxcconf;
pub mod oom;
pub mod options;
pub mod process_spec;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod task;
