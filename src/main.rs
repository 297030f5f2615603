//! The `nsgf` command-line tool.

fn main() -> std::process::ExitCode {
    nsgf_cli::run()
}

#[path = "cli/mod.rs"]
mod nsgf_cli;
