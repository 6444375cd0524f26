//! The one error type of the stream mailbox, classified so a supervisor knows whether a
//! restart can help: Redis being down, slow or restarting is retryable; a bad URL, a refused
//! command or an envelope that cannot be written is fatal.

use artel_messages::{Classify, EnvelopeError, ErrorClass};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use std::time::Duration;

/// What can go wrong talking to a Redis stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The Redis URL cannot be parsed. Fatal: fix the configuration.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] RedisError),
    /// The mailbox configuration contradicts itself. Fatal: fix the configuration.
    #[error("invalid stream mailbox configuration: {0}")]
    InvalidConfig(String),
    /// Redis cannot be reached, dropped the connection, or is still loading its data after a
    /// restart. Retryable: nothing was written by the failed command's caller.
    #[error("Redis is unavailable: {0}")]
    Unavailable(#[source] RedisError),
    /// Redis did not answer in time. Retryable. A send that timed out may still have been
    /// appended; receivers de-duplicate by the envelope's message id.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The consumer group (or its stream) is gone, e.g. Redis restarted without its data.
    /// Retryable: the consumer's next run creates it again.
    #[error("the consumer group or its stream is missing: {0}")]
    GroupMissing(#[source] RedisError),
    /// Redis refused the command (wrong key type, no permission, bad arguments). Fatal: the
    /// same command will be refused again.
    #[error("Redis refused the command: {0}")]
    Rejected(#[source] RedisError),
    /// Redis answered something this code cannot read (e.g. a malformed entry id). Fatal.
    #[error("unexpected reply from Redis: {0}")]
    UnexpectedReply(String),
    /// The envelope cannot be encoded. Fatal: the same envelope will fail again.
    #[error("cannot put the envelope on the stream: {0}")]
    Envelope(#[from] EnvelopeError),
}

impl StreamError {
    /// Sorts a driver error into unavailable, missing group or refused.
    pub(crate) fn from_redis(err: RedisError) -> Self {
        if err.code() == Some("NOGROUP") {
            return Self::GroupMissing(err);
        }
        let transient_server = matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
        if err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
            || transient_server
        {
            Self::Unavailable(err)
        } else {
            Self::Rejected(err)
        }
    }
}

impl Classify for StreamError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable(_) | Self::Timeout(_) | Self::GroupMissing(_) => {
                ErrorClass::Retryable
            }
            Self::InvalidUrl(_)
            | Self::InvalidConfig(_)
            | Self::Rejected(_)
            | Self::UnexpectedReply(_)
            | Self::Envelope(_) => ErrorClass::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_errors_are_sorted_by_whether_waiting_helps() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            StreamError::from_redis(refused),
            StreamError::Unavailable(_)
        ));
        let loading = RedisError::from((
            ErrorKind::Server(ServerErrorKind::BusyLoading),
            "Redis is loading the dataset in memory",
        ));
        assert_eq!(
            StreamError::from_redis(loading).class(),
            ErrorClass::Retryable
        );
        let wrong_type = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ));
        let err = StreamError::from_redis(wrong_type);
        assert!(matches!(err, StreamError::Rejected(_)), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Fatal);
        assert_eq!(
            StreamError::Timeout(Duration::from_secs(1)).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            StreamError::InvalidConfig("x".into()).class(),
            ErrorClass::Fatal
        );
    }
}
