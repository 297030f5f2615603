//! Debiased log-domain Sinkhorn with ε-scaling (GeomLoss-compatible), the entropic potentials
//! and the Sinkhorn divergence (paper Sec. 3.2, eq. 1–4; Feydy et al. 2019).
//!
//! For weighted point clouds `α = Σ a_i δ_{x_i}`, `β = Σ b_j δ_{y_j}` and the cost
//! `C(x, y) = |x − y|²/2`, the entropic OT problem `OT_ε(α, β)` has dual potentials `(f, g)`
//! solving the fixed-point equations (written with the softmin of [`super::softmin`])
//!
//! ```text
//! f = softmin(ε, C_xy, log b + g/ε),     g = softmin(ε, C_yx, log a + f/ε),
//! OT_ε(α, β) = ⟨a, f⟩ + ⟨b, g⟩,
//! S_ε(α, β)  = OT_ε(α, β) − ½ OT_ε(α, α) − ½ OT_ε(β, β)                 (Sinkhorn divergence)
//!            = ⟨a, f_xy − f_xx⟩ + ⟨b, g_xy − g_yy⟩,
//! ```
//!
//! where `f_xx` (`g_yy`) is the symmetric potential of `OT_ε(α, α)` (`OT_ε(β, β)`).
//!
//! The solver follows GeomLoss' `sinkhorn_loop` (tensorized backend) exactly, so that its
//! outputs match GeomLoss to rounding:
//!
//! * ε-schedule: `D` = diagonal of the joint bounding box of both clouds,
//!   `[D^p] ++ [exp(e) for e in arange(p ln D, p ln blur, p ln scaling)] ++ [blur^p]`, p = 2;
//! * initialisation with the softmin of zero duals at the first ε;
//! * one *symmetric, averaged* update of the four potentials per ε (`f ← (f + T(g))/2`, ...);
//! * a last *extrapolation* step at `ε = blur²` (simultaneous, non-averaged updates).
//!
//! Optionally ([`SinkhornConfig::tol`]) the averaged iteration continues at the final ε until
//! the largest change of a potential falls below `tol` (or `max_iter` is reached): a converged
//! fixed-ε solve. With [`SinkhornConfig::anneal`] off, the schedule is the single value `blur²`.

use super::cost::half_sq_cost;
use super::softmin::{Softmin, Tensorized};
use super::softmin_cpu::{host_vec, Fused, HostCost, HostFloat, ONLINE_MAX_DIM};
use crate::convert::{ensure_finite_tensor, to_f64_vec};
use crate::error::{NsgfError, Result};
use burn::tensor::{backend::Backend, DType, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of the Sinkhorn solver (names as in GeomLoss' `SamplesLoss`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkhornConfig {
    /// Target blur `σ`: the final temperature is `ε = σ²` (units of the data).
    pub blur: f64,
    /// ε-scaling ratio in (0, 1): ε decreases by `scaling²` per iteration.
    pub scaling: f64,
    /// Debiased (Sinkhorn divergence, self-transport terms) or raw entropic OT.
    pub debias: bool,
    /// Anneal ε from the data diameter (GeomLoss) or start directly at `blur²`.
    pub anneal: bool,
    /// If set, keep iterating at the final ε until the largest potential change is below `tol`.
    pub tol: Option<f64>,
    /// Cap on the total number of averaged updates (schedule plus convergence phase).
    pub max_iter: usize,
}

impl Default for SinkhornConfig {
    fn default() -> Self {
        Self {
            blur: 0.05,
            scaling: 0.5,
            debias: true,
            anneal: true,
            tol: None,
            max_iter: 10_000,
        }
    }
}

impl SinkhornConfig {
    /// GeomLoss defaults with the given blur and scaling.
    pub fn new(blur: f64, scaling: f64) -> Self {
        Self {
            blur,
            scaling,
            ..Self::default()
        }
    }

    /// Checks the ranges: `blur > 0`, `0 < scaling < 1`, `tol > 0`, `max_iter ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        if !(self.blur.is_finite() && self.blur > 0.0) {
            return Err(NsgfError::Param(format!(
                "blur must be > 0, got {}",
                self.blur
            )));
        }
        if !(self.scaling > 0.0 && self.scaling < 1.0) {
            return Err(NsgfError::Param(format!(
                "scaling must lie in (0, 1), got {}",
                self.scaling
            )));
        }
        if let Some(tol) = self.tol {
            if !(tol.is_finite() && tol > 0.0) {
                return Err(NsgfError::Param(format!("tol must be > 0, got {tol}")));
            }
        }
        if self.max_iter == 0 {
            return Err(NsgfError::Param("max_iter must be at least 1".into()));
        }
        Ok(())
    }

    /// The ε-schedule for a problem of the given diameter (GeomLoss `epsilon_schedule`, p = 2).
    pub fn eps_schedule(&self, diameter: f64) -> Vec<f64> {
        let p = 2.0;
        let last = self.blur.powf(p);
        // Every point in one place (diameter 0): GeomLoss's schedule would start at ε = 0 (its
        // log is −∞, its potentials NaN); such a problem is solved at the final ε alone.
        if !self.anneal || diameter <= 0.0 || diameter.is_nan() {
            return vec![last];
        }
        let mut list = vec![diameter.powf(p)];
        // numpy.arange(start, stop, step): ceil((stop - start) / step) values start + k·step.
        let (start, stop, step) = (p * diameter.ln(), p * self.blur.ln(), p * self.scaling.ln());
        let count = ((stop - start) / step).ceil();
        if count.is_finite() && count > 0.0 {
            list.extend((0..count as usize).map(|k| (start + k as f64 * step).exp()));
        }
        list.push(last);
        list
    }
}

/// Largest `ε·u / (D²/2)` accepted by [`OtProblem::solve`] (see [`check_eps_scale`]).
pub const MAX_EPS_ROUNDING: f64 = 1e-4;

/// Refuses a blur so large against the clouds that the solution would be rounding noise. The
/// potentials are `−ε·log Σ_j exp(log b_j + (g_j − C_ij)/ε)`: once `ε` dwarfs the costs (at most
/// `D²/2`, `D` the diameter) the log-sum-exp is `O(C/ε)` and what it holds of the costs is lost
/// to the unit roundoff `u` of the data's dtype, an error of about `ε·u` in every potential and
/// in the divergence. Accepted while `ε·u ≤` [`MAX_EPS_ROUNDING`]`·D²/2` (f32: `blur ≲ 40·D`,
/// f64: `blur ≲ 2·10⁶·D`). In that regime the Sinkhorn divergence is already its `ε → ∞`
/// limit `½|mean x − mean y|²` (the energy-distance MMD of the cost).
pub fn check_eps_scale(blur: f64, diameter: f64, dtype: DType) -> Result<()> {
    let u = crate::convert::unit_roundoff(dtype);
    let (eps, cost) = (blur * blur, diameter * diameter / 2.0);
    if cost > 0.0 && eps * u > MAX_EPS_ROUNDING * cost {
        return Err(NsgfError::Param(format!(
            "blur {blur}: ε = blur² = {eps:.3e} dwarfs the largest cost between the clouds \
             (D²/2 = {cost:.3e}, diameter D = {diameter:.3e}); in {dtype:?} every potential and \
             the divergence would carry rounding errors of about ε·{u:.1e} = {:.1e}. Lower the \
             blur (at this scale the Sinkhorn divergence is already its limit \
             ½|mean x − mean y|²) or compute in f64",
            eps * u
        )));
    }
    Ok(())
}

/// The four dual potentials of a debiased problem (self terms absent when not debiased).
#[derive(Clone, Debug)]
pub struct Duals<B: Backend> {
    /// `f_xy: (n,)`, potential on `x` of `OT_ε(α, β)`.
    pub f_xy: Tensor<B, 1>,
    /// `g_xy: (m,)`, potential on `y` of `OT_ε(α, β)`.
    pub g_xy: Tensor<B, 1>,
    /// `f_xx: (n,)`, symmetric potential of `OT_ε(α, α)`.
    pub f_xx: Option<Tensor<B, 1>>,
    /// `g_yy: (m,)`, symmetric potential of `OT_ε(β, β)`.
    pub g_yy: Option<Tensor<B, 1>>,
}

/// A discrete OT problem between weighted point clouds, with its cost matrices computed once.
#[derive(Clone, Debug)]
pub struct OtProblem<B: Backend> {
    /// Source points `x: (n, d)` (the moving particles).
    pub x: Tensor<B, 2>,
    /// Target points `y: (m, d)`.
    pub y: Tensor<B, 2>,
    /// `log a: (n,)`.
    pub a_log: Tensor<B, 1>,
    /// `log b: (m,)`.
    pub b_log: Tensor<B, 1>,
}

impl<B: Backend> OtProblem<B> {
    /// Uniform weights `a_i = 1/n`, `b_j = 1/m`. Errors on empty clouds, mismatched dimensions
    /// and non-finite coordinates.
    pub fn uniform(x: Tensor<B, 2>, y: Tensor<B, 2>) -> Result<Self> {
        let ([n, d], [m, dy]) = (x.dims(), y.dims());
        if n == 0 || m == 0 {
            return Err(NsgfError::Shape(format!(
                "empty point cloud (x has {n} points, y has {m})"
            )));
        }
        if d != dy {
            return Err(NsgfError::Shape(format!(
                "x has dimension {d} but y has dimension {dy}"
            )));
        }
        ensure_finite_tensor(&x, "x")?;
        ensure_finite_tensor(&y, "y")?;
        let dev = x.device();
        let dtype = x.dtype();
        let a_log = Tensor::full([n], -(n as f64).ln(), (&dev, dtype));
        let b_log = Tensor::full([m], -(m as f64).ln(), (&dev, dtype));
        Ok(Self { x, y, a_log, b_log })
    }

    /// Arbitrary positive weights (normalised to sum 1). Errors on non-positive or
    /// non-finite weights and wrong lengths.
    pub fn weighted(
        x: Tensor<B, 2>,
        y: Tensor<B, 2>,
        a: Tensor<B, 1>,
        b: Tensor<B, 1>,
    ) -> Result<Self> {
        let mut p = Self::uniform(x, y)?;
        let log_normalised = |w: Tensor<B, 1>, len: usize, name: &str| -> Result<Tensor<B, 1>> {
            if w.dims()[0] != len {
                return Err(NsgfError::Shape(format!(
                    "weights {name} have length {} but the cloud has {len} points",
                    w.dims()[0]
                )));
            }
            let v = to_f64_vec(w.clone())?;
            if v.iter().any(|&wi| !(wi.is_finite() && wi > 0.0)) {
                return Err(NsgfError::Param(format!(
                    "weights {name} must be finite and > 0"
                )));
            }
            let total: f64 = v.iter().sum();
            Ok(w.div_scalar(total).log())
        };
        p.a_log = log_normalised(a, p.x.dims()[0], "a")?;
        p.b_log = log_normalised(b, p.y.dims()[0], "b")?;
        Ok(p)
    }

    /// `D = |max(x, y) − min(x, y)|₂`, coordinate-wise extrema over both clouds.
    pub fn diameter(&self) -> Result<f64> {
        let both = Tensor::cat(vec![self.x.clone(), self.y.clone()], 0);
        let hi = to_f64_vec(both.clone().max_dim(0))?;
        let lo = to_f64_vec(both.min_dim(0))?;
        Ok(hi
            .iter()
            .zip(&lo)
            .map(|(h, l)| (h - l).powi(2))
            .sum::<f64>()
            .sqrt())
    }

    /// Solves the problem (see the module docs). On the CPU backend with f32 or f64 data the
    /// loop runs the fused host kernel [`Fused`] (costs computed on the fly from the points for
    /// `d ≤` [`ONLINE_MAX_DIM`], explicit matrices above); on other backends and dtypes the
    /// tensorized softmin. Both compute the same updates of the same loop.
    pub fn solve(&self, cfg: &SinkhornConfig) -> Result<SinkhornSolution<B>> {
        cfg.validate()?;
        let diameter = self.diameter()?;
        let eps_list = cfg.eps_schedule(diameter);
        let dtype = self.x.dtype();
        check_eps_scale(cfg.blur, diameter, dtype)?;
        let host = runs_ops_on_caller::<B>() && matches!(dtype, DType::F32 | DType::F64);
        let (costs, out) = if host && self.x.dims()[1] <= ONLINE_MAX_DIM {
            // Costs on the fly: no (n, m) matrix at all (the velocity is fused too).
            let out = match dtype {
                DType::F32 => self.fused_loop::<f32>(None, None, &eps_list, cfg)?,
                _ => self.fused_loop::<f64>(None, None, &eps_list, cfg)?,
            };
            (None, out)
        } else {
            let c_xy = half_sq_cost(&self.x, &self.y);
            let c_xx = cfg.debias.then(|| half_sq_cost(&self.x, &self.x));
            let out = match dtype {
                DType::F32 if host => {
                    self.fused_loop::<f32>(Some(&c_xy), c_xx.as_ref(), &eps_list, cfg)?
                }
                DType::F64 if host => {
                    self.fused_loop::<f64>(Some(&c_xy), c_xx.as_ref(), &eps_list, cfg)?
                }
                _ => self.tensorized_loop(&c_xy, c_xx.as_ref(), &eps_list, cfg)?,
            };
            (Some((c_xy, c_xx)), out)
        };
        Ok(SinkhornSolution {
            problem: self.clone(),
            costs,
            eps: *eps_list.last().unwrap_or(&(cfg.blur * cfg.blur)),
            eps_list,
            iterations: out.iterations,
            last_change: out.last_change,
            duals: out.duals,
            loop_duals: out.loop_duals,
        })
    }

    /// `C(x, y) = |x_i − y_j|²/2` as a tensor, computed as the solver's kernel computes it: by
    /// direct differences on the host for the fused kernel's on-the-fly costs (CPU backend,
    /// f32 / f64, `d ≤` [`ONLINE_MAX_DIM`]), else by [`half_sq_cost`] (one matrix product).
    pub fn cost_matrix(x: &Tensor<B, 2>, y: &Tensor<B, 2>) -> Tensor<B, 2> {
        let direct = runs_ops_on_caller::<B>() && x.dims()[1] <= ONLINE_MAX_DIM;
        match x.dtype() {
            DType::F32 if direct => direct_cost::<B, f32>(x, y),
            DType::F64 if direct => direct_cost::<B, f64>(x, y),
            _ => half_sq_cost(x, y),
        }
    }

    /// The loop with the [`Tensorized`] kernel (any backend).
    pub fn tensorized_loop(
        &self,
        c_xy: &Tensor<B, 2>,
        c_xx: Option<&Tensor<B, 2>>,
        eps_list: &[f64],
        cfg: &SinkhornConfig,
    ) -> Result<LoopOutput<B>> {
        // C(y, x) = C(x, y)ᵀ, materialised once in row-major order (a reshape of the transposed
        // view copies): the softmin then reduces along contiguous rows. Passing the transposed
        // view made every softmin on it walk the matrix with strides (~1.5× slower on the CPU).
        let [n, m] = c_xy.dims();
        let costs = Costs {
            xy: c_xy.clone(),
            yx: Some(c_xy.clone().transpose().reshape([n * m]).reshape([m, n])),
            xx: c_xx.cloned(),
            yy: cfg.debias.then(|| half_sq_cost(&self.y, &self.y)),
        };
        sinkhorn_loop(&Tensorized, self, &costs, eps_list, cfg)
    }

    /// The loop with the fused host kernel [`Fused`] in precision `T` (meant for the CPU
    /// backend; on a device backend every softmin would round-trip through the host).
    /// For `d ≤` [`ONLINE_MAX_DIM`] the costs are computed on the fly and `c_xy`, `c_xx` are
    /// not read; above, the explicit matrices are used (computed here when `None`).
    pub fn fused_loop<T: HostFloat>(
        &self,
        c_xy: Option<&Tensor<B, 2>>,
        c_xx: Option<&Tensor<B, 2>>,
        eps_list: &[f64],
        cfg: &SinkhornConfig,
    ) -> Result<LoopOutput<B>> {
        let ([n, d], [m, _]) = (self.x.dims(), self.y.dims());
        let host = |t: Tensor<B, 2>| -> Vec<T> {
            let len: usize = t.dims().iter().product();
            host_vec::<B, T>(t.reshape([len]))
        };
        let costs = if d <= ONLINE_MAX_DIM {
            let (x, y) = (host(self.x.clone()), host(self.y.clone()));
            Costs {
                xy: HostCost::points(&x, &y, d),
                yx: Some(HostCost::points(&y, &x, d)),
                xx: cfg.debias.then(|| HostCost::points(&x, &x, d)),
                yy: cfg.debias.then(|| HostCost::points(&y, &y, d)),
            }
        } else {
            let matrix = |t: Tensor<B, 2>| {
                let [r, c] = t.dims();
                HostCost::matrix(host(t), r, c)
            };
            let c_xy = match c_xy {
                Some(c) => c.clone(),
                None => half_sq_cost(&self.x, &self.y),
            };
            Costs {
                xy: matrix(c_xy.clone()),
                yx: Some(HostCost::matrix(
                    host(c_xy.clone().transpose().reshape([n * m]).reshape([m, n])),
                    m,
                    n,
                )),
                xx: if cfg.debias {
                    Some(matrix(match c_xx {
                        Some(c) => c.clone(),
                        None => half_sq_cost(&self.x, &self.x),
                    }))
                } else {
                    None
                },
                yy: cfg.debias.then(|| matrix(half_sq_cost(&self.y, &self.y))),
            }
        };
        sinkhorn_loop(&Fused::<T>::new(), self, &costs, eps_list, cfg)
    }
}

/// Cost representations handed to a softmin kernel.
pub struct Costs<C> {
    /// `C(x, y)`.
    pub xy: C,
    /// `C(y, x)` (the transpose; computed by the caller when its kernel needs it).
    pub yx: Option<C>,
    /// `C(x, x)` (debiased only).
    pub xx: Option<C>,
    /// `C(y, y)` (debiased only).
    pub yy: Option<C>,
}

/// What the loop returns.
pub struct LoopOutput<B: Backend> {
    /// Potentials after the final extrapolation step.
    pub duals: Duals<B>,
    /// Potentials before it (the values the velocity and gradients are taken at).
    pub loop_duals: Duals<B>,
    /// Number of averaged updates.
    pub iterations: usize,
    /// Largest change of a potential in the last averaged update.
    pub last_change: f64,
}

/// The Sinkhorn loop, written once for any softmin kernel (GeomLoss `sinkhorn_loop`).
///
/// `eps_list` is the ε-schedule; see the module docs for the updates.
pub fn sinkhorn_loop<B: Backend, K>(
    kernel: &K,
    problem: &OtProblem<B>,
    costs: &Costs<K::Cost>,
    eps_list: &[f64],
    cfg: &SinkhornConfig,
) -> Result<LoopOutput<B>>
where
    K: Softmin<B> + Sync,
    K::Cost: Sync,
{
    let (a_log, b_log) = (&problem.a_log, &problem.b_log);
    let par = runs_ops_on_caller::<B>();
    let c_yx = costs
        .yx
        .as_ref()
        .ok_or_else(|| NsgfError::Other("sinkhorn_loop needs C(y, x)".into()))?;
    let self_costs = match (&costs.xx, &costs.yy) {
        (Some(xx), Some(yy)) if cfg.debias => Some((xx, yy)),
        _ if cfg.debias => {
            return Err(NsgfError::Other(
                "a debiased solve needs C(x, x) and C(y, y)".into(),
            ))
        }
        _ => None,
    };
    let t = |eps: f64, c: &K::Cost, logw: &Tensor<B, 1>, dual: &Tensor<B, 1>| {
        kernel.c_transform(eps, c, logw, dual)
    };

    let eps0 = eps_list[0];
    let ((mut g_ab, mut f_ba), mut selfs) = join(
        par,
        || {
            join(
                par,
                || kernel.softmin(eps0, c_yx, a_log.clone()),
                || kernel.softmin(eps0, &costs.xy, b_log.clone()),
            )
        },
        || {
            self_costs.map(|(xx, yy)| {
                join(
                    par,
                    || kernel.softmin(eps0, xx, a_log.clone()),
                    || kernel.softmin(eps0, yy, b_log.clone()),
                )
            })
        },
    );

    let mut iterations = 0usize;
    let mut last_change = f64::INFINITY;
    let converge_steps = if cfg.tol.is_some() {
        cfg.max_iter.saturating_sub(eps_list.len())
    } else {
        0
    };
    let final_eps = *eps_list.last().unwrap_or(&eps0);
    let schedule = eps_list
        .iter()
        .copied()
        .take(cfg.max_iter)
        .chain(std::iter::repeat_n(final_eps, converge_steps));
    for (k, eps) in schedule.enumerate() {
        // The four soft c-transforms of an update are independent: run them side by side.
        let ((ft_ba, gt_ab), self_t) = join(
            par,
            || {
                join(
                    par,
                    || t(eps, &costs.xy, b_log, &g_ab),
                    || t(eps, c_yx, a_log, &f_ba),
                )
            },
            || {
                self_costs
                    .zip(selfs.as_ref())
                    .map(|((xx, yy), (f_aa, g_bb))| {
                        join(par, || t(eps, xx, a_log, f_aa), || t(eps, yy, b_log, g_bb))
                    })
            },
        );
        let new_f = (f_ba.clone() + ft_ba).mul_scalar(0.5);
        let new_g = (g_ab.clone() + gt_ab).mul_scalar(0.5);
        let in_convergence_phase = k + 1 >= eps_list.len() && cfg.tol.is_some();
        let mut change = None;
        if in_convergence_phase {
            change = Some(max_abs_diff(&new_f, &f_ba)?.max(max_abs_diff(&new_g, &g_ab)?));
        }
        f_ba = new_f;
        g_ab = new_g;
        if let (Some((ft_aa, gt_bb)), Some((f_aa, g_bb))) = (self_t, selfs.as_mut()) {
            let new_faa = (f_aa.clone() + ft_aa).mul_scalar(0.5);
            let new_gbb = (g_bb.clone() + gt_bb).mul_scalar(0.5);
            if let Some(c) = change.as_mut() {
                *c = c
                    .max(max_abs_diff(&new_faa, f_aa)?)
                    .max(max_abs_diff(&new_gbb, g_bb)?);
            }
            *f_aa = new_faa;
            *g_bb = new_gbb;
        }
        iterations += 1;
        if let Some(c) = change {
            last_change = c;
            if !c.is_finite() {
                return Err(NsgfError::NonFinite(format!(
                    "Sinkhorn potentials became non-finite at iteration {iterations} (eps = {eps})"
                )));
            }
            if cfg.tol.is_some_and(|tol| c < tol) {
                break;
            }
        }
    }

    // Final extrapolation at the last ε (simultaneous updates from the loop values).
    let eps = final_eps;
    let loop_duals = Duals {
        f_xy: f_ba.clone(),
        g_xy: g_ab.clone(),
        f_xx: selfs.as_ref().map(|s| s.0.clone()),
        g_yy: selfs.as_ref().map(|s| s.1.clone()),
    };
    let ((f_xy, g_xy), self_t) = join(
        par,
        || {
            join(
                par,
                || t(eps, &costs.xy, b_log, &g_ab),
                || t(eps, c_yx, a_log, &f_ba),
            )
        },
        || {
            self_costs
                .zip(selfs.as_ref())
                .map(|((xx, yy), (f_aa, g_bb))| {
                    join(par, || t(eps, xx, a_log, f_aa), || t(eps, yy, b_log, g_bb))
                })
        },
    );
    let (f_xx, g_yy) = self_t.unzip();
    let duals = Duals {
        f_xy,
        g_xy,
        f_xx,
        g_yy,
    };
    ensure_finite_tensor(&duals.f_xy, "Sinkhorn potential f")?;
    ensure_finite_tensor(&duals.g_xy, "Sinkhorn potential g")?;
    Ok(LoopOutput {
        duals,
        loop_duals,
        iterations,
        last_change,
    })
}

/// Whether `B` runs tensor ops synchronously on the calling thread (the CPU backend), so that
/// independent softmins gain from running on different threads. Device backends queue their
/// kernels on a stream; they keep the sequential order.
pub(crate) fn runs_ops_on_caller<B: Backend>() -> bool {
    use std::any::TypeId;
    TypeId::of::<B>() == TypeId::of::<crate::backend::Cpu>()
}

/// `|x_i − y_j|²/2` by direct differences on the host, in `T`, uploaded.
fn direct_cost<B: Backend, T: HostFloat>(x: &Tensor<B, 2>, y: &Tensor<B, 2>) -> Tensor<B, 2> {
    let ([n, d], [m, _]) = (x.dims(), y.dims());
    let xs: Vec<T> = host_vec(x.clone().reshape([n * d]));
    let ys: Vec<T> = host_vec(y.clone().reshape([m * d]));
    let c = HostCost::points(&xs, &ys, d).to_matrix();
    Tensor::from_data(TensorData::new(c, [n, m]), (&x.device(), T::dtype()))
}

/// `(a(), b())`, on two rayon tasks when `par`.
fn join<RA: Send, RB: Send>(
    par: bool,
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    if par {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

fn max_abs_diff<B: Backend>(a: &Tensor<B, 1>, b: &Tensor<B, 1>) -> Result<f64> {
    Ok(to_f64_vec((a.clone() - b.clone()).abs().max())?[0])
}

/// A solved problem: potentials, the schedule used, and what the velocity needs.
#[derive(Clone, Debug)]
pub struct SinkhornSolution<B: Backend> {
    /// The problem that was solved.
    pub problem: OtProblem<B>,
    /// `C(x, y)` and (debiased) `C(x, x)` when the solve built them as tensors (explicit-matrix
    /// kernels); see [`Self::c_xy`].
    costs: Option<(Tensor<B, 2>, Option<Tensor<B, 2>>)>,
    /// Final temperature `ε = blur²`.
    pub eps: f64,
    /// The ε-schedule that was run.
    pub eps_list: Vec<f64>,
    /// Number of averaged updates performed.
    pub iterations: usize,
    /// Largest potential change in the last update of the convergence phase (∞ without `tol`).
    pub last_change: f64,
    /// Potentials after the final extrapolation (GeomLoss' returned potentials).
    pub duals: Duals<B>,
    /// Potentials before the extrapolation.
    pub loop_duals: Duals<B>,
}

impl<B: Backend> SinkhornSolution<B> {
    /// `C(x, y): (n, m)`: the matrix the solve used, or, when it computed costs on the fly,
    /// built now ([`OtProblem::cost_matrix`]).
    pub fn c_xy(&self) -> Tensor<B, 2> {
        match &self.costs {
            Some((c, _)) => c.clone(),
            None => OtProblem::cost_matrix(&self.problem.x, &self.problem.y),
        }
    }

    /// `C(x, x): (n, n)` when debiased (as [`Self::c_xy`]).
    pub fn c_xx(&self) -> Option<Tensor<B, 2>> {
        self.duals.f_xx.as_ref()?;
        match &self.costs {
            Some((_, c)) => c.clone(),
            None => Some(OtProblem::cost_matrix(&self.problem.x, &self.problem.x)),
        }
    }

    /// The loss: `S_ε = ⟨a, f_xy − f_xx⟩ + ⟨b, g_xy − g_yy⟩` when debiased,
    /// `OT_ε = ⟨a, f_xy⟩ + ⟨b, g_xy⟩` otherwise.
    pub fn loss(&self) -> Result<f64> {
        let (f, g) = self.potentials();
        let a = self.problem.a_log.clone().exp();
        let b = self.problem.b_log.clone().exp();
        Ok(to_f64_vec((a * f).sum() + (b * g).sum())?[0])
    }

    /// GeomLoss' returned potentials: `(F, G) = (f_xy − f_xx, g_xy − g_yy)` when debiased,
    /// `(f_xy, g_xy)` otherwise.
    pub fn potentials(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let d = &self.duals;
        match (&d.f_xx, &d.g_yy) {
            (Some(fxx), Some(gyy)) => (d.f_xy.clone() - fxx.clone(), d.g_xy.clone() - gyy.clone()),
            _ => (d.f_xy.clone(), d.g_xy.clone()),
        }
    }
}
