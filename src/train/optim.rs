//! Training utilities around Adam shared by every trainer: global-norm gradient clipping and an
//! exponential moving average (EMA) of the weights.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

/// Sums the squared gradients of a module's float parameters.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.sum = Some(match self.sum.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

/// Multiplies the gradients of a module's float parameters by a factor.
struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Global-norm clipping (PyTorch's `clip_grad_norm_`): with `‖g‖ = (Σ_params Σ g²)^½` over all
/// the module's gradients, scales every gradient by `max_norm / (‖g‖ + 10⁻⁶)` when
/// `‖g‖ > max_norm`. Returns the clipped gradients and `‖g‖` before clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> crate::Result<(GradientsParams, f64)> {
    let mut v = SquaredNorm::<B> {
        grads: &grads,
        sum: None,
    };
    model.visit(&mut v);
    let norm = match v.sum {
        Some(s) => crate::convert::to_f64_vec(s)?[0].sqrt(),
        None => 0.0,
    };
    if norm > max_norm {
        let mut scale = Scale::<B> {
            grads: &mut grads,
            factor: max_norm / (norm + 1e-6),
            _b: std::marker::PhantomData,
        };
        model.visit(&mut scale);
    }
    Ok((grads, norm))
}

/// Collects a module's float parameters, flattened, in module order.
struct Flatten<B: Backend>(Vec<Tensor<B, 1>>);

impl<B: Backend> ModuleVisitor<B> for Flatten<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// `p ← d·p + (1 − d)·q` for the parameters `q` of another module of the same structure.
struct Blend<B: Backend> {
    others: std::vec::IntoIter<Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, mapper) = param.consume();
        let t = match self.others.next() {
            Some(q) => {
                let shape = t.shape();
                t.mul_scalar(self.decay) + q.reshape(shape).mul_scalar(1.0 - self.decay)
            }
            None => t,
        };
        Param::from_mapped_value(id, t, mapper)
    }
}

/// An exponential moving average of a model's weights (on the inner, non-autodiff backend):
/// after optimizer step `s` (1-based), `ema ← d_s·ema + (1 − d_s)·θ_s` with the warmed-up decay
/// `d_s = min(decay, (1 + s)/(10 + s))` (TensorFlow's `num_updates` rule), so that the average
/// follows the weights early in a short run instead of staying near the initialisation.
#[derive(Clone, Debug)]
pub struct Ema<M> {
    /// The averaged model.
    pub model: M,
    /// The target decay `d` (e.g. 0.999 or 0.9999).
    pub decay: f64,
}

impl<M> Ema<M> {
    /// Starts the average at `model`.
    pub fn new(model: M, decay: f64) -> Self {
        Self { model, decay }
    }

    /// The decay used after step `step` (1-based).
    pub fn decay_at(&self, step: usize) -> f64 {
        self.decay.min((1.0 + step as f64) / (10.0 + step as f64))
    }

    /// Folds the weights of `online` after step `step` into the average.
    pub fn update<B, A>(&mut self, online: &A, step: usize)
    where
        B: AutodiffBackend,
        A: AutodiffModule<B, InnerModule = M>,
        M: Module<B::InnerBackend>,
    {
        let mut flat = Flatten::<B::InnerBackend>(Vec::new());
        online.valid().visit(&mut flat);
        let decay = self.decay_at(step);
        let model = self.model.clone().map(&mut Blend {
            others: flat.0.into_iter(),
            decay,
        });
        self.model = model;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::convert::to_f64_vec;
    use crate::models::mlp::{MlpConfig, VelocityMlp};
    use burn::backend::Autodiff;
    use burn::tensor::TensorData;

    type Ad = Autodiff<Cpu>;

    fn params<B: Backend, M: Module<B>>(m: &M) -> Vec<f64> {
        let mut f = Flatten::<B>(Vec::new());
        m.visit(&mut f);
        f.0.into_iter()
            .flat_map(|t| to_f64_vec(t).unwrap())
            .collect()
    }

    #[test]
    fn clipping_scales_to_the_global_norm() {
        let dev = Default::default();
        let model: VelocityMlp<Ad> = MlpConfig::new(2).with_hidden(8).with_layers(2).init(&dev);
        let x =
            Tensor::<Ad, 2>::from_data(TensorData::new(vec![0.3f32, -1.0, 2.0, 0.5], [2, 2]), &dev);
        let t = Tensor::<Ad, 2>::from_data(TensorData::new(vec![0.1f32, 0.7], [2, 1]), &dev);
        let loss = model.forward(x, t).powi_scalar(2).sum().mul_scalar(100.0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let norm_of = |g: &GradientsParams| {
            let mut v = SquaredNorm::<Ad> {
                grads: g,
                sum: None,
            };
            model.visit(&mut v);
            to_f64_vec(v.sum.unwrap()).unwrap()[0].sqrt()
        };
        let before = norm_of(&grads);
        assert!(before > 1.0, "{before}");
        let (clipped, reported) = clip_grad_norm(&model, grads, 0.5).unwrap();
        assert!((reported - before).abs() < 1e-9 * before);
        assert!(
            (norm_of(&clipped) - 0.5).abs() < 1e-4,
            "{}",
            norm_of(&clipped)
        );
        // Below the bound nothing changes.
        let (same, _) = clip_grad_norm(&model, clipped, 10.0).unwrap();
        assert!((norm_of(&same) - 0.5).abs() < 1e-4);
    }

    #[test]
    fn ema_follows_the_warmed_up_decay() {
        let dev = Default::default();
        let a: VelocityMlp<Ad> = MlpConfig::new(2).with_hidden(4).with_layers(2).init(&dev);
        let b: VelocityMlp<Ad> = MlpConfig::new(2).with_hidden(4).with_layers(2).init(&dev);
        let mut ema = Ema::new(a.valid(), 0.999);
        assert!((ema.decay_at(1) - 2.0 / 11.0).abs() < 1e-15);
        assert_eq!(ema.decay_at(1_000_000), 0.999);
        let (pa, pb) = (params::<Cpu, _>(&a.valid()), params::<Cpu, _>(&b.valid()));
        ema.update(&b, 1);
        let d = 2.0 / 11.0;
        for ((e, x), y) in params::<Cpu, _>(&ema.model).iter().zip(&pa).zip(&pb) {
            assert!((e - (d * x + (1.0 - d) * y)).abs() < 1e-6, "{e} {x} {y}");
        }
    }
}
