//! Logging for `oxidp serve` and the other commands.

mod escape;

use crate::config::{Config, LogFormat};
use escape::EscapeControls;

/// Log lines are formatted on the request's thread and written to stderr by a thread of their
/// own, so a request never waits for the write. When the queue is full, callers wait (no line
/// is dropped).
pub fn init_logging(config: &Config, serving: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OXIDP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn")));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(16_384)
        .thread_name("oxidp-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match config.log_format {
        LogFormat::Json => builder.with_writer(writer).json().try_init(),
        // No colours: they are escape sequences, and every escape sequence is escaped.
        LogFormat::Text => builder.with_writer(EscapeControls(writer)).with_ansi(false).try_init(),
    };
    guard
}
