//! lxcri: the containerd shim v2 that runs OCI containers as LXC containers.
//!
//! | module | what |
//! | --- | --- |
//! | `shim` | the shim process: `start` and `delete` subcommands, the ttrpc server |
//! | `service` | containerd's Task service over the containers this shim holds |
//! | `container` | one container's Create / Start / Kill / Delete on the host |
//! | `lxcconf` | the OCI runtime spec -> LXC config translation (pure, golden-tested) |
//! | `hooks` | the spec's OCI hooks: when, where and with which state each runs, and running them |
//! | `process` | the OCI process spec -> the init's config |
//! | `config` | lxcri's TOML config file |
//! | `rootfs` | which rootfs provider (pass-through or ZFS clones), per-container options, collection |
//! | `options` | runtime options containerd sends |
//! | `cgroups` | a running container's cgroup: metrics (Stats) and limits (Update) |
//! | `oom` | OOM kills in a container's cgroup, as they happen |
//! | `host` | facts about the host (cgroup layout, filesystems, processes) |
pub mod cgroups;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod console;
pub mod container;
pub mod error;
pub mod exits;
pub mod hooks;
pub mod host;
pub mod lxcconf;
pub mod oom;
pub mod options;
pub mod process;
pub mod rootfs;
pub mod service;
pub mod shim;
