//! The one error type of the e2e library.

use std::time::Duration;

/// What can go wrong while running the local cluster or a test against it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("network namespace {netns}: {source}")]
    Netns {
        netns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("probe from {from} to {target}: {failure:?}: {message}")]
    Probe {
        from: String,
        target: std::net::SocketAddr,
        failure: crate::probe::Failure,
        message: String,
    },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
}

impl Error {
    /// An error about a value or a reply that is not what it should be.
    pub fn invalid(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Invalid {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
