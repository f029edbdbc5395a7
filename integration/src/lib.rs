//! Test harness: a private containerd, images built locally, `ctr` sessions.
