//! Constructors for [`PluginError`].

use crate::{ErrorKind, PluginError};

impl PluginError {
    fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError { kind, message: message.into() }
    }

    /// The configuration is not acceptable.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::InvalidConfig, message)
    }

    /// The input data is malformed.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::InvalidInput, message)
    }

    /// Reading the input failed.
    pub fn io(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Io, message)
    }

    /// Not implemented by this plugin.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Unsupported, message)
    }

    /// A bug or unexpected state inside the plugin.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Internal, message)
    }
}
