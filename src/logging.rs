//! Log lines on stderr: without timestamps (journald adds them), portico's
//! own events only unless asked (third-party crates' chatter is not the
//! operator's business), and, when stderr is the journal, each line
//! prefixed with its syslog priority (`<4>`), so `journalctl -p warning`
//! shows exactly the warnings and errors.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// syslog's priority for a tracing level.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The default format, with `<N>` in front for the journal.
struct Journald(Format<tracing_subscriber::fmt::format::Full, ()>);

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // journald reads a priority per line: every line of a multi-line
        // message (nginx's own error lines) carries it.
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let p = priority(event.metadata().level());
        for l in line.lines() {
            writeln!(writer, "<{p}>{l}")?;
        }
        Ok(())
    }
}

/// Sets up logging: `level` for portico, then any further directives
/// (`info,portico::timing=warn`); `PORTICO_LOG` overrides the whole filter,
/// e.g. `PORTICO_LOG=debug` for every crate.
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTICO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("error,portico={level}")));
    let journal = crate::host::stderr_is_journal();
    let ansi = !journal && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let format = Format::default().without_time().with_ansi(ansi);
    // Both: span fields are formatted by the layer, events by the format.
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .fmt_fields(DefaultFields::new());
    if journal {
        builder.event_format(Journald(format)).init();
    } else {
        builder.event_format(format).init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
    }
}
