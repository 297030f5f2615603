//! The TOML configuration of a 2-D NSGF run (one file per problem under `configs/`).
//! Unknown fields are rejected with the field's name.

use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::nsgf::NsgfConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Trajectory-pool settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Minibatch flows stored in the pool (each contributes `T · batch` samples).
    pub batches: usize,
    /// Every this many training steps, replace `refresh_batches` flows with new ones (0: never).
    pub refresh_every: usize,
    /// Flows replaced at each refresh.
    pub refresh_batches: usize,
    /// Train on points of the teacher's whole Euler segments, not only its `T` grid times
    /// (see `TrajectoryPool::sample_along_segments`). Off by default (the paper's Algorithm 1
    /// stores and fits the grid samples only): on the 2-D suite it makes 100-step sampling
    /// better and 10-step sampling worse (results/toy2d/README.md).
    pub segments: bool,
    /// Store the pool's positions and velocities in f16 (half the memory; for images).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub f16: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            batches: 100,
            refresh_every: 0,
            refresh_batches: 10,
            segments: false,
            f16: false,
        }
    }
}

/// How the learning rate changes over the gradient steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` at every step (torchcfm's 2-D examples).
    #[default]
    Constant,
    /// Cosine decay from `lr` at step 0 to 0 at the last step: `lr·½(1 + cos(π·s/S))`.
    Cosine,
}

impl std::str::FromStr for LrSchedule {
    type Err = NsgfError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(Self::Constant),
            "cosine" => Ok(Self::Cosine),
            _ => Err(NsgfError::Param(format!(
                "unknown learning-rate schedule {s:?}; valid: constant, cosine"
            ))),
        }
    }
}

/// The most training threads a config may ask for (a thread pool far beyond the cores only
/// exhausts memory).
pub const MAX_THREADS: usize = 1024;

/// Velocity-matching optimisation settings (Adam, β = (0.9, 0.999), no weight decay).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Gradient steps.
    pub steps: usize,
    /// Minibatch size drawn from the pool.
    pub batch: usize,
    /// Learning rate (the peak rate under a decaying schedule).
    pub lr: f64,
    /// Learning-rate schedule over the `steps` (`"constant"` or `"cosine"`).
    pub lr_schedule: LrSchedule,
    /// Checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: usize,
    /// CPU threads of the training steps (0: all). Small networks (the 2-D MLPs) train faster
    /// on one thread: their matrix products are too small to repay a hand-off between threads
    /// (BENCHMARKS.md).
    pub threads: usize,
    /// Linear learning-rate warm-up over this many first steps (0: none), multiplying the
    /// schedule: `lr_s · min(1, (s + 1)/warmup)` (torchcfm's image examples: 5,000).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup: usize,
    /// Clip the gradients to this global norm before each step (PyTorch's `clip_grad_norm_`;
    /// torchcfm's image examples: 1.0). Unset: no clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.9999) and
    /// sample with it (see `train::optim::Ema`). 0: none.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub ema: f64,
    /// Write the mean loss to `metrics.jsonl` (and the log) every this many steps.
    #[serde(
        default = "default_log_every",
        skip_serializing_if = "is_default_log_every"
    )]
    pub log_every: usize,
}

fn default_log_every() -> usize {
    100
}

fn is_default_log_every(v: &usize) -> bool {
    *v == default_log_every()
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl OptimConfig {
    /// The learning rate of gradient step `step` (0-based) of `self.steps`. A resumed run
    /// continues the schedule where it stopped.
    pub fn lr_at(&self, step: usize) -> f64 {
        let lr = match self.lr_schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine => {
                let frac = step as f64 / self.steps.max(1) as f64;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * frac.min(1.0)).cos())
            }
        };
        if self.warmup > 0 {
            lr * ((step + 1) as f64 / self.warmup as f64).min(1.0)
        } else {
            lr
        }
    }

    /// Range checks (`name` prefixes the messages, e.g. `nsf.train`).
    pub fn validate(&self, name: &str) -> Result<()> {
        if self.steps == 0 || self.batch == 0 {
            return Err(NsgfError::Param(format!(
                "{name}.steps and {name}.batch must be at least 1"
            )));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(NsgfError::Param(format!(
                "{name}.lr must be > 0, got {}",
                self.lr
            )));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(NsgfError::Param(format!(
                    "{name}.grad_clip must be > 0, got {c}"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.ema) {
            return Err(NsgfError::Param(format!(
                "{name}.ema must be in [0, 1), got {}",
                self.ema
            )));
        }
        if self.threads > MAX_THREADS {
            return Err(NsgfError::Param(format!(
                "{name}.threads must be at most {MAX_THREADS} (0: all cores), got {}",
                self.threads
            )));
        }
        Ok(())
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            steps: 20_000,
            batch: 256,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            checkpoint_every: 2_000,
            threads: 0,
            warmup: 0,
            grad_clip: None,
            ema: 0.0,
            log_every: default_log_every(),
        }
    }
}

/// A velocity network: an MLP of `layers` hidden layers of width `hidden` (2-D), or, for image
/// data, the named ADM UNet (`unet = "mnist" | "cifar10" | "tiny"`, adapted to the data's
/// channels and image side; `models::unet::UNetConfig::named`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub hidden: usize,
    pub layers: usize,
    /// The UNet of an image run (`None`: the MLP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unet: Option<String>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hidden: 256,
            layers: 3,
            unet: None,
        }
    }
}

/// A whole 2-D NSGF run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyConfig {
    /// The 2-D problem (8gaussians, 8gaussians-moons, moons, scurve, checkerboard).
    pub problem: Problem,
    /// Seed of every random draw (pool, minibatches, initialisation).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub nsgf: NsgfConfig,
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default)]
    pub train: OptimConfig,
    #[serde(default)]
    pub model: ModelConfig,
}

/// Range check of a count setting: `Err` naming `name` when `v` is 0.
pub fn at_least_one(v: usize, name: &str) -> Result<()> {
    if v == 0 {
        Err(NsgfError::Param(format!("{name} must be at least 1")))
    } else {
        Ok(())
    }
}

/// Range check of a real setting: `Err` naming `name` unless `v` is finite and > 0.
pub fn positive(v: f64, name: &str) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(NsgfError::Param(format!("{name} must be > 0, got {v}")))
    }
}

/// Parses a TOML config (the type rejects unknown fields) and validates it; `origin` names the
/// source in error messages.
pub fn parse_config<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &Path,
    validate: impl Fn(&T) -> Result<()>,
) -> Result<T> {
    let cfg: T = toml::from_str(text)
        .map_err(|e| NsgfError::format(origin, format!("invalid config: {e}")))?;
    validate(&cfg)?;
    Ok(cfg)
}

/// Reads, parses and validates a TOML config file.
pub fn read_config<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl Fn(&T) -> Result<()>,
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| NsgfError::io(path, e))?;
    parse_config(&text, path, validate)
}

impl ToyConfig {
    /// Parses TOML text; `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        parse_config(text, origin, Self::validate)
    }
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        read_config(path, Self::validate)
    }
    /// TOML text of this config.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))
    }
    /// Range checks of every field.
    pub fn validate(&self) -> Result<()> {
        self.nsgf.validate()?;
        let positive = |v: usize, name: &str| {
            if v == 0 {
                Err(NsgfError::Param(format!("{name} must be at least 1")))
            } else {
                Ok(())
            }
        };
        positive(self.pool.batches, "pool.batches")?;
        positive(self.model.hidden, "model.hidden")?;
        positive(self.model.layers, "model.layers")?;
        if let Some(u) = &self.model.unet {
            return Err(NsgfError::Param(format!(
                "model.unet = {u:?} is for image runs only: a 2-D NSGF run trains the MLP of \
                 model.hidden and model.layers (images train with NSGF++ or flow matching, \
                 e.g. configs/mnist/)"
            )));
        }
        if self.pool.refresh_every > 0 {
            positive(self.pool.refresh_batches, "pool.refresh_batches")?;
        }
        self.train.validate("train")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ToyConfig> {
        ToyConfig::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn defaults_and_round_trip() {
        let cfg = parse("problem = \"moons\"").unwrap();
        assert_eq!(cfg.nsgf.steps, 10);
        assert_eq!(cfg.train.batch, 256);
        assert_eq!(parse(&cfg.to_toml().unwrap()).unwrap(), cfg);
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        let e = parse("problem = \"spirals\"").unwrap_err().to_string();
        assert!(e.contains("spirals") && e.contains("checkerboard"), "{e}");
        let e = parse("problem = \"moons\"\nlerning_rate = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lerning_rate"), "{e}");
        let e = parse("problem = \"moons\"\n[nsgf]\neta = 0.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("eta"), "{e}");
        let e = parse("problem = \"moons\"\n[nsgf]\nsteps = 0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps"), "{e}");
        let e = parse("problem = \"moons\"\n[nsgf]\nbatch = 0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch"), "{e}");
        let e = parse("problem = \"moons\"\n[train]\nbatch = 0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.batch"), "{e}");
        let e = parse("problem = \"moons\"\n[nsgf.sinkhorn]\nblur = -1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("blur"), "{e}");
        let e = parse("problem = \"moons\"\n[train]\nlr_schedule = \"linear\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("linear") && e.contains("cosine"), "{e}");
        // The optimiser's own checks hold for 2-D configs too (a negative clip flipped the
        // gradients; a thread count far past the cores hung the thread pool).
        for (field, needle) in [
            ("grad_clip = -1.0", "train.grad_clip"),
            ("grad_clip = 0.0", "train.grad_clip"),
            ("ema = 1.5", "train.ema"),
            ("ema = -0.5", "train.ema"),
            ("threads = 100000", "train.threads"),
        ] {
            let e = parse(&format!("problem = \"moons\"\n[train]\n{field}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{field}: {e}");
        }
        // A UNet named in a 2-D NSGF config was ignored (the MLP trained instead).
        let e = parse("problem = \"moons\"\n[model]\nunet = \"mnist\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.unet") && e.contains("image runs only"),
            "{e}"
        );
    }

    #[test]
    fn learning_rate_schedules() {
        let mut opt = parse(
            "problem = \"moons\"\n[train]\nsteps = 100\nlr = 0.002\nlr_schedule = \"cosine\"",
        )
        .unwrap()
        .train;
        assert_eq!(opt.lr_schedule, LrSchedule::Cosine);
        assert!((opt.lr_at(0) - 0.002).abs() < 1e-15);
        assert!((opt.lr_at(50) - 0.001).abs() < 1e-15);
        assert!((opt.lr_at(25) - 0.001 * (1.0 + 0.5f64.sqrt())).abs() < 1e-15);
        assert!(opt.lr_at(99) > 0.0 && opt.lr_at(99) < 1e-6);
        // Monotone decay.
        assert!((1..100).all(|s| opt.lr_at(s) < opt.lr_at(s - 1)));
        opt.lr_schedule = LrSchedule::Constant;
        assert!((0..100).all(|s| opt.lr_at(s) == 0.002));
    }
}
