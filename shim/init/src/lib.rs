//! lxcri-init: the contract between the shim and the container's init.
