//! The crate's error type. Every failure a user can cause (bad files, bad shapes, bad
//! hyper-parameters, non-finite data) is reported through [`NsgfError`] with a message that
//! names the problem; library code never panics on user input.

use std::path::PathBuf;

/// Errors returned by the nsgf library.
#[derive(Debug, thiserror::Error)]
pub enum NsgfError {
    /// A file could not be opened, read or written. The I/O error is part of the message, not
    /// a `source` as well: a chain printer (`{:#}`) would print it twice.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// A file was read but its content is not what its format requires.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// Array shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A hyper-parameter or argument is outside its valid range.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// The data contain NaN or infinite values.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// Training stopped on request (Ctrl-C / SIGTERM) after writing a checkpoint.
    #[error("interrupted after step {step}; checkpoint written to {dir}")]
    Interrupted { step: usize, dir: String },
    /// Work stopped on request (Ctrl-C / SIGTERM) after its parts wrote their checkpoints.
    #[error("{0}")]
    Stopped(String),
    /// Anything else, with its explanation.
    #[error("{0}")]
    Other(String),
}

impl NsgfError {
    /// I/O error attached to a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            err: source,
        }
    }
    /// Format error attached to a path.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, NsgfError>;

/// Returns an error naming `what` when `values` holds a NaN or an infinity.
pub fn ensure_finite(values: &[f64], what: &str) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(NsgfError::NonFinite(format!(
            "{what} has a non-finite value ({}) at flat index {i}",
            values[i]
        )));
    }
    Ok(())
}
