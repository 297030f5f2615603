//! `nsgf ot ...`: optimal-transport tools.

use anyhow::{Context, Result};
use burn::tensor::{backend::Backend, DType};
use clap::{Args, Subcommand, ValueEnum};
use nsgf::backend::DeviceKind;
use nsgf::convert::{points_to_tensor, to_f32_vec};
use nsgf::io::{read_points, write_npz, NpyArray, Points};
use nsgf::ot::sinkhorn::{OtProblem, SinkhornConfig};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum OtCommand {
    /// Debiased Sinkhorn between two point clouds: potentials, divergence and the NSGF velocity.
    ///
    /// Writes an .npz with `f_xy`, `g_xy`, `f_xx`, `g_yy` (after GeomLoss' final extrapolation),
    /// `velocity` (n, d) and the scalar `loss` (S_eps, or OT_eps with --no-debias), all float32.
    Sinkhorn(SinkhornArgs),
}

/// Floating-point precision of the computation.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Precision {
    F32,
    F64,
}

#[derive(Args, Debug)]
pub struct SinkhornArgs {
    /// Source points (moving particles), `.npy` (n, d), float32 or float64.
    #[arg(long)]
    x: PathBuf,
    /// Target points, `.npy` (m, d).
    #[arg(long)]
    y: PathBuf,
    /// Blur sigma; the final temperature is eps = blur^2.
    #[arg(long, default_value_t = 0.05)]
    blur: f64,
    /// eps-scaling ratio in (0, 1).
    #[arg(long, default_value_t = 0.5)]
    scaling: f64,
    /// Raw entropic OT instead of the debiased Sinkhorn divergence.
    #[arg(long)]
    no_debias: bool,
    /// Keep iterating at the final eps until the potentials change by less than this.
    #[arg(long)]
    tol: Option<f64>,
    /// Maximum number of Sinkhorn updates (with --tol).
    #[arg(long, default_value_t = 10_000)]
    max_iter: usize,
    /// Computation precision.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Device to run on.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
    /// Output `.npz` file.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: OtCommand) -> Result<()> {
    match cmd {
        OtCommand::Sinkhorn(args) => sinkhorn(args),
    }
}

fn sinkhorn(args: SinkhornArgs) -> Result<()> {
    let x = read_points(&args.x)?;
    let y = read_points(&args.y)?;
    let cfg = SinkhornConfig {
        blur: args.blur,
        scaling: args.scaling,
        debias: !args.no_debias,
        tol: args.tol,
        max_iter: args.max_iter,
        ..SinkhornConfig::default()
    };
    cfg.validate()?;
    let dtype = match args.precision {
        Precision::F32 => DType::F32,
        Precision::F64 => DType::F64,
    };
    let arrays = nsgf::with_backend!(args.device, |B, dev| solve::<B>(&x, &y, &cfg, &dev, dtype))?;
    let named: Vec<(&str, NpyArray)> = arrays.iter().map(|(k, v)| (*k, v.clone())).collect();
    write_npz(&args.out, &named).with_context(|| format!("writing {}", args.out.display()))?;
    if let Some((_, loss)) = arrays.iter().find(|(k, _)| *k == "loss") {
        eprintln!("loss = {}", loss.to_f64()[0]);
    }
    Ok(())
}

fn solve<B: Backend>(
    x: &Points,
    y: &Points,
    cfg: &SinkhornConfig,
    dev: &B::Device,
    dtype: DType,
) -> nsgf::Result<Vec<(&'static str, NpyArray)>> {
    let problem = OtProblem::<B>::uniform(
        points_to_tensor(x, dev, dtype),
        points_to_tensor(y, dev, dtype),
    )?;
    let sol = problem.solve(cfg)?;
    let vec1 = |t: burn::tensor::Tensor<B, 1>| -> nsgf::Result<NpyArray> {
        let v = to_f32_vec(t)?;
        Ok(NpyArray::f32(vec![v.len()], v))
    };
    let mut out = vec![
        ("f_xy", vec1(sol.duals.f_xy.clone())?),
        ("g_xy", vec1(sol.duals.g_xy.clone())?),
    ];
    if let (Some(fxx), Some(gyy)) = (&sol.duals.f_xx, &sol.duals.g_yy) {
        out.push(("f_xx", vec1(fxx.clone())?));
        out.push(("g_yy", vec1(gyy.clone())?));
    }
    let v = to_f32_vec(sol.velocity())?;
    out.push(("velocity", NpyArray::f32(vec![x.n, x.d], v)));
    out.push(("loss", NpyArray::f32(vec![], vec![sol.loss()? as f32])));
    // The solver ran in the chosen precision; the .npz holds f32, where large costs overflow.
    for (name, a) in &out {
        nsgf::error::ensure_finite(&a.to_f64(), name).map_err(|e| {
            nsgf::NsgfError::Other(format!(
                "{e}: it does not fit f32 (the output's precision); the costs are too large, \
                 rescale the points"
            ))
        })?;
    }
    Ok(out)
}
