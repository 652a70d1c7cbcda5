//! The `portico` command: parses the command line, sets up logging, runs the
//! command and exits with its code.

use clap::Parser;
use portico::host::ExitCode;

fn main() -> ExitCode {
    let cli = portico::cli::Cli::parse();
    // The daemon's normal output is its log; one-shot commands print reports.
    let daemon = matches!(cli.command, portico::cli::Cmd::Daemon(_));
    let level = match cli.verbose {
        // Durations (`portico::timing`) only when asked for with -v: the
        // journal of a daemon renewing daily is not a profiler.
        0 if daemon => "info,portico::timing=warn",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    portico::logging::init(level);
    let code = match portico::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            for line in e.lines() {
                eprintln!("error: {line}");
            }
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}
