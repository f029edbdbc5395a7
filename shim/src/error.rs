//! The shim's one error type, mapped to ttrpc status codes in one place ([`Error::into_ttrpc`]).
//! Every message names the object and, where there is one, what the user can do.

use containerd_shim_protos::ttrpc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request names something wrong: a bad id, an unparsable or unsupported spec.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The operation does not fit the container's state (delete of a running container, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unimplemented(String),
    /// Something on the host failed: LXC, a mount, a file.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn into_ttrpc(self) -> ttrpc::Error {
        use ttrpc::Code;
        let code = match &self {
            Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Error::Unimplemented(_) => Code::UNIMPLEMENTED,
            Error::Internal(_) => Code::INTERNAL,
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, self.to_string()))
    }

    /// An I/O error on a named object.
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Error {
        Error::Internal(format!("{what}: {e}"))
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        e.into_ttrpc()
    }
}
