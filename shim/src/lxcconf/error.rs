//! The one error type of the translation.

/// Why a spec cannot be translated into an LXC configuration.
///
/// Every variant names the spec field as a JSON path (`mounts[3].type`,
/// `linux.namespaces[2].path`), says what is wrong and what the user can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The field holds a value that is wrong or inconsistent with another field.
    #[error("OCI spec field `{field}`: {problem}; {hint}")]
    Invalid {
        /// JSON path of the field, e.g. `mounts[3].destination`.
        field: String,
        /// What is wrong with it.
        problem: String,
        /// What the user can do about it.
        hint: String,
    },
    /// The field asks for something lxcri (or LXC) cannot do (yet).
    #[error("OCI spec field `{field}`: {feature} is not supported by lxcri; {hint}")]
    Unsupported {
        /// JSON path of the field.
        field: String,
        /// The feature that was asked for.
        feature: String,
        /// What the user can do about it.
        hint: String,
    },
    /// The mount type is neither `bind` nor a file system the host kernel knows.
    #[error(
        "OCI spec field `{field}`: mount type {fs_type:?} is unknown to this host's kernel \
         (not in /proc/filesystems) and is not \"bind\"; fix the type, or load the kernel \
         module providing it"
    )]
    UnknownMountType {
        /// JSON path, `mounts[i].type`.
        field: String,
        /// The type found in the spec.
        fs_type: String,
    },
    /// A mount target inside the rootfs goes through a symbolic link (see
    /// [`check_mount_targets`](super::check_mount_targets)).
    #[error(
        "mount target {target:?} of `lxc.mount.entry` {entry:?}: {symlink:?} in the container's \
         rootfs is a symbolic link; LXC refuses to mount through symbolic links (and its \
         create=dir/file would follow it out of the rootfs); mount on the link's target \
         instead, or remove the link from the image"
    )]
    SymlinkInMountTarget {
        /// The `lxc.mount.entry` value.
        entry: String,
        /// The target, relative to the rootfs.
        target: String,
        /// The host path of the symbolic link.
        symlink: String,
    },
}

impl TranslateError {
    /// The JSON path of the spec field the error is about (empty for errors that are about
    /// the rootfs rather than a spec field).
    pub fn field(&self) -> &str {
        match self {
            TranslateError::Invalid { field, .. }
            | TranslateError::Unsupported { field, .. }
            | TranslateError::UnknownMountType { field, .. } => field,
            TranslateError::SymlinkInMountTarget { .. } => "",
        }
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        TranslateError::Invalid {
            field: field.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn unsupported(
        field: impl Into<String>,
        feature: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        TranslateError::Unsupported {
            field: field.into(),
            feature: feature.into(),
            hint: hint.into(),
        }
    }
}
