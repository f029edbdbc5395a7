//! OCI runtime spec -> LXC configuration keys.
