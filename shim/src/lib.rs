//! lxcri: the containerd shim v2 that runs OCI containers as LXC containers.
//!
//! - `lxcconf`: the OCI runtime spec -> LXC config translation (pure, golden-tested).
pub mod cli;
pub mod lxcconf;
