//! Command-line interface: argument parsing and dispatch. Each command group lives in its own
//! file; the numerical work lives in the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod data;
mod eval;
mod fid;
mod ot;
mod train;

/// Neural Sinkhorn Gradient Flow: train, sample and evaluate Sinkhorn-gradient-flow generative models.
#[derive(Parser, Debug)]
#[command(name = "nsgf", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Optimal-transport tools (Sinkhorn potentials, divergence, gradient-flow velocity).
    #[command(subcommand)]
    Ot(ot::OtCommand),
    /// Evaluation metrics (exact W2, ...).
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Image data sets as files (e.g. the FID reference images).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train from a config: NSGF on a 2-D problem (Algorithm 1), NSGF++ (`method = "nsgfpp"`,
    /// Algorithm 3, 2-D or images), flow matching (`method = "cfm"`), JKO-Flow / EPT
    /// (`method = "jko"` / `"ept"`) or S-JKO (`method = "sjko"`).
    Train(train::TrainArgs),
    /// Sample from a trained run (Algorithm 2; NSGF++: Algorithm 4; S-JKO: one generator call).
    Sample(train::SampleArgs),
    /// Train, evaluate (W2 at 10 and 100 steps over 3 seeds) and draw the figures of one 2-D problem.
    Run(train::RunArgs),
    /// Experiment harnesses (the paper's Table 1).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// clap value parser of a count that must be at least 1: `--batch-size 0` and the like are
/// refused while parsing, with the flag named, instead of failing (or doing nothing) later.
fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses the arguments, runs the command, prints any error and returns the exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,nsgf=info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal (logs redirected to a file stay plain text).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let trains = matches!(
        cli.command,
        Command::Train(_) | Command::Run(_) | Command::Bench(_)
    );
    if trains {
        if let Err(e) = nsgf::train::interrupt::install() {
            eprintln!("warning: {e}; Ctrl-C will stop without a checkpoint");
        }
    }
    let result = match cli.command {
        Command::Ot(cmd) => ot::run(cmd),
        Command::Eval(cmd) => eval::run(cmd),
        Command::Data(cmd) => data::run(cmd),
        Command::Train(args) => train::train(args),
        Command::Sample(args) => train::sample(args),
        Command::Run(args) => train::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let interrupted = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<nsgf::NsgfError>(),
                    Some(nsgf::NsgfError::Interrupted { .. } | nsgf::NsgfError::Stopped(_))
                )
            });
            if interrupted {
                eprintln!(
                    "stopped: {e:#}\nrun the same command again (nsgf train: with --resume) to continue where it stopped"
                );
                return ExitCode::from(130);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
