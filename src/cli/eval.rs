//! `nsgf eval ...`: evaluation metrics.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Exact 2-Wasserstein distance between two point clouds (uniform weights, squared
    /// Euclidean cost), as POT's `sqrt(ot.emd2(...))`.
    W2(W2Args),
    /// Evaluate a trained 2-D run: W2 to fresh test samples at several step counts, over seeds,
    /// beside the two-sample floor and the raw Sinkhorn flow.
    Toy(super::train::EvalToyArgs),
    /// Fréchet Inception Distance (pytorch-fid conventions) between two image sets or
    /// statistics files; `--save-stats` writes the statistics of one image set.
    Fid(super::fid::FidArgs),
    /// Inception Score; needs Inception weights with a classifier head (the standard FID
    /// weights have none, and the command then says so).
    Is(super::fid::IsArgs),
}

#[derive(Args, Debug)]
pub struct W2Args {
    /// First point cloud, `.npy` of shape (n, d), float32 or float64.
    a: PathBuf,
    /// Second point cloud, `.npy` of shape (m, d).
    b: PathBuf,
    /// Print `{"w2": value}` instead of the bare number.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::W2(args) => w2(args),
        EvalCommand::Toy(args) => super::train::eval_toy(args),
        EvalCommand::Fid(args) => super::fid::run_fid(args),
        EvalCommand::Is(args) => super::fid::run_is(args),
    }
}

fn w2(args: W2Args) -> Result<()> {
    let a = nsgf::io::npy::read_points(&args.a)?;
    let b = nsgf::io::npy::read_points(&args.b)?;
    let w2 = nsgf::ot::emd::w2(&a, &b)?;
    if args.json {
        println!("{}", serde_json::json!({ "w2": w2 }));
    } else {
        println!("{w2}");
    }
    Ok(())
}
