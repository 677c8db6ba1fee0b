//! The daemon's log: `tracing` events to stderr, one line each, in the form whoever reads
//! stderr keeps best, and a filter that can change while the daemon runs (SIGHUP).
//!
//! - On a terminal: timestamps and colours, for a person watching `vswitch run`.
//! - Under systemd (`JOURNAL_STREAM` names our stderr): no timestamps (journald stamps
//!   each line itself), no colours, and each line starts with its syslog priority
//!   (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), which journald strips and
//!   keeps as the entry's priority, so `journalctl -p warning -u vswitch` works.
//! - Anything else (a pipe, a file): no timestamps and no colours either; whatever
//!   collects the stream adds its own times.
//!
//! Nothing on the packet path logs per packet; the level only decides which of the
//! control plane's lines appear. The filter is `[log] level` from the config file when
//! set, else `RUST_LOG`, else `info`.

use std::fmt;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The filter when neither the config file nor `RUST_LOG` gives one.
const DEFAULT_FILTER: &str = "info";

/// Changes the daemon's log filter at run time.
#[derive(Debug)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The filter in force, as written.
    current: Mutex<String>,
}

impl LogControl {
    /// The filter in force, as written (`info`, `warn,vswitch::control=debug`, ...).
    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies `[log] level` (or, when the file has none, `RUST_LOG` or `info`). Returns
    /// the filter now in force; an unparsable filter changes nothing.
    pub fn apply(&self, level: Option<&str>) -> Result<String, String> {
        let text = match level {
            Some(l) => l.to_string(),
            None => env_filter_text(),
        };
        let filter = EnvFilter::builder()
            .parse(&text)
            .map_err(|e| format!("log level \"{text}\": {e}"))?;
        self.handle
            .reload(filter)
            .map_err(|e| format!("cannot change the log level: {e}"))?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = text.clone();
        Ok(text)
    }
}

/// `RUST_LOG` when it parses, else the default.
fn env_filter_text() -> String {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|s| EnvFilter::builder().parse(s).is_ok())
        .unwrap_or_else(|| DEFAULT_FILTER.to_string())
}

/// Where stderr goes, as far as the log's shape is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Terminal,
    Journal,
    Other,
}

fn sink() -> Sink {
    if under_journald() {
        Sink::Journal
    } else if std::io::stderr().is_terminal() {
        Sink::Terminal
    } else {
        Sink::Other
    }
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for a service whose stderr is the journal;
/// it only counts when it names our stderr (a child whose stderr was redirected inherits
/// the variable but not the stream).
fn under_journald() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// Installs the global subscriber. Returns `None` when one is already installed (the
/// daemon then runs with that one and cannot change its level).
pub fn init() -> Option<LogControl> {
    let text = env_filter_text();
    let filter = EnvFilter::builder()
        .parse(&text)
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (filter, handle) = reload::Layer::new(filter);
    let sink = sink();
    let journal = (sink == Sink::Journal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(JournalLine)
    });
    let plain = (sink == Sink::Other).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .without_time()
    });
    let terminal = (sink == Sink::Terminal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(true)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(plain)
        .with(terminal)
        .try_init()
        .ok()?;
    Some(LogControl {
        handle,
        current: Mutex::new(text),
    })
}

/// The syslog priority journald reads from a `<N>` line prefix (sd-daemon(3)).
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// `<6>INFO vswitch::daemon: message key=value`: one line, no time, no colour.
#[derive(Debug, Clone, Copy)]
struct JournalLine;

impl<S, N> FormatEvent<S, N> for JournalLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            w,
            "<{}>{} {}: ",
            priority(meta.level()),
            meta.level(),
            meta.target()
        )?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
