//! The 2-D toy problems of the NSGF paper (Sec. 5.1, Table 1): `8gaussians`, `moons`,
//! `8gaussians->moons`, `scurve` and `checkerboard`.
//!
//! A [`Problem`] names a source and a target [`Distribution`]; the source is the standard normal
//! N(0, I₂) except for `8gaussians->moons`, whose source is the 8gaussians distribution. Every
//! distribution is reproduced from the code the NSGF experiments (built on torchcfm) use, as a
//! *distribution-equivalent* i.i.d. sampler (the RNG stream of PyTorch/NumPy is not reproduced):
//!
//! | distribution | source definition |
//! |---|---|
//! | [`Distribution::EightGaussians`] | torchcfm `torchcfm/utils.py::sample_8gaussians` |
//! | [`Distribution::Moons`] | torchcfm `torchcfm/utils.py::sample_moons` (torchdyn `generate_moons`) |
//! | [`Distribution::Scurve`] | torchcfm runner `distribution_datamodule.py::SKLearnDataModule` "scurve" (sklearn `make_s_curve`) |
//! | [`Distribution::Checkerboard`] | FFJORD (Grathwohl et al. 2018) `lib/toy_data.py` "checkerboard" |
//!
//! The exact formulas are given on each variant. Samples are returned row-major, shape `(n, 2)`,
//! as `f32` (the reference implementations return float32); the arithmetic is done in `f64`.

use crate::error::NsgfError;
use crate::io::npy::Points;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::fmt;
use std::str::FromStr;

/// A 2-D toy problem: a pair (source, target) of distributions to transport between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// N(0, I₂) → [`Distribution::EightGaussians`]. Name `8gaussians`.
    EightGaussians,
    /// [`Distribution::EightGaussians`] → [`Distribution::Moons`], both sides drawn
    /// independently. Name `8gaussians-moons` (aliases `8gaussians->moons`, `8gaussians_moons`).
    EightGaussiansToMoons,
    /// N(0, I₂) → [`Distribution::Moons`]. Name `moons`.
    Moons,
    /// N(0, I₂) → [`Distribution::Scurve`]. Name `scurve`.
    Scurve,
    /// N(0, I₂) → [`Distribution::Checkerboard`]. Name `checkerboard`.
    Checkerboard,
    /// N(0, I₂) → [`Distribution::TwentyFiveGaussians`] (an S-JKO toy problem). Name
    /// `25gaussians`.
    TwentyFiveGaussians,
    /// N(0, I₂) → [`Distribution::TwoCircles`] (an S-JKO toy problem). Name `twocircles`.
    TwoCircles,
}

impl Problem {
    /// The five problems of Table 1, in the paper's order (then checkerboard).
    pub const TABLE1: [Problem; 5] = [
        Problem::EightGaussians,
        Problem::EightGaussiansToMoons,
        Problem::Moons,
        Problem::Scurve,
        Problem::Checkerboard,
    ];

    /// Every problem: [`Problem::TABLE1`], then the S-JKO code's 25gaussians and twocircles.
    pub const ALL: [Problem; 7] = [
        Problem::EightGaussians,
        Problem::EightGaussiansToMoons,
        Problem::Moons,
        Problem::Scurve,
        Problem::Checkerboard,
        Problem::TwentyFiveGaussians,
        Problem::TwoCircles,
    ];

    /// The canonical name (what [`fmt::Display`] prints and serde writes).
    pub fn name(self) -> &'static str {
        match self {
            Problem::EightGaussians => "8gaussians",
            Problem::EightGaussiansToMoons => "8gaussians-moons",
            Problem::Moons => "moons",
            Problem::Scurve => "scurve",
            Problem::Checkerboard => "checkerboard",
            Problem::TwentyFiveGaussians => "25gaussians",
            Problem::TwoCircles => "twocircles",
        }
    }

    /// The source distribution: [`Distribution::Gaussian`] (N(0, I₂)), except for
    /// `8gaussians-moons` whose source is [`Distribution::EightGaussians`].
    pub fn source(self) -> Distribution {
        match self {
            Problem::EightGaussiansToMoons => Distribution::EightGaussians,
            _ => Distribution::Gaussian,
        }
    }

    /// The target distribution (moons for `8gaussians-moons`).
    pub fn target(self) -> Distribution {
        match self {
            Problem::EightGaussians => Distribution::EightGaussians,
            Problem::EightGaussiansToMoons | Problem::Moons => Distribution::Moons,
            Problem::Scurve => Distribution::Scurve,
            Problem::Checkerboard => Distribution::Checkerboard,
            Problem::TwentyFiveGaussians => Distribution::TwentyFiveGaussians,
            Problem::TwoCircles => Distribution::TwoCircles,
        }
    }

    /// The list of valid names, for error messages.
    fn valid_names() -> String {
        let names: Vec<&str> = Problem::ALL.iter().map(|p| p.name()).collect();
        format!(
            "{} (aliases: 8gaussians->moons, 8gaussians_moons)",
            names.join(", ")
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Problem {
    type Err = NsgfError;

    /// Parses a canonical name or an alias (exact, case-sensitive after trimming spaces).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "8gaussians" => Ok(Problem::EightGaussians),
            "8gaussians-moons" | "8gaussians->moons" | "8gaussians_moons" => {
                Ok(Problem::EightGaussiansToMoons)
            }
            "moons" => Ok(Problem::Moons),
            "scurve" => Ok(Problem::Scurve),
            "checkerboard" => Ok(Problem::Checkerboard),
            "25gaussians" => Ok(Problem::TwentyFiveGaussians),
            "twocircles" => Ok(Problem::TwoCircles),
            other => Err(NsgfError::Param(format!(
                "unknown 2-D problem {other:?}; valid names: {}",
                Problem::valid_names()
            ))),
        }
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Problem {
    /// Accepts the canonical names and the aliases of [`FromStr`].
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A 2-D distribution with an i.i.d. sampler and its analytic population moments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// The standard normal N(0, I₂) (the NSGF / torchcfm source `torch.randn(n, 2)`).
    Gaussian,
    /// torchcfm `sample_8gaussians(n)` = `eight_normal_sample(n, 2, scale=5, var=0.1)`:
    /// k ~ Uniform{0..7}, centres c_k = 5·{(1,0), (−1,0), (0,1), (0,−1), (s,s), (s,−s), (−s,s),
    /// (−s,−s)} with s = 1/√2, x = c_k + e, e ~ N(0, √0.1·I₂).
    ///
    /// NB: torchcfm passes `math.sqrt(var) * eye` as the *covariance* of `MultivariateNormal`, so
    /// the covariance of each component is √0.1·I ≈ 0.3162·I (std 0.1^{1/4} ≈ 0.5623 per axis),
    /// not 0.1·I. Population: mean 0, covariance (25/2 + √0.1)·I.
    EightGaussians,
    /// torchcfm `sample_moons(n)` = torchdyn `generate_moons(n, noise=0.2)`·3 − 1. torchdyn places
    /// n//2 points on the outer arc (cos t, sin t) and the rest on the inner arc
    /// (1 − cos t, 0.5 − sin t), t on an ordered `linspace(0, π)`, then adds **one** uniform
    /// u ~ U[0,1) per point, times 0.2, to **both** coordinates (`X += rand(n, 1) * 0.2`), and
    /// torchcfm maps x ↦ 3x − 1.
    ///
    /// Distribution-equivalent i.i.d. sampler used here: t ~ U[0, π], branch ~ Bernoulli(1/2),
    /// u ~ U[0,1), the same formulas. Population: mean (0.8, 0.05), covariance
    /// 9·[[3/4 + 1/300, 1/8 − 1/π + 1/300], [·, 9/16 − 1/π + 1/300]].
    Moons,
    /// The torchcfm runner's "scurve" (`SKLearnDataModule`): sklearn `make_s_curve(n, noise=0.05)`
    /// with t = 3π(U − 1/2), X0 = sin t, X2 = sign(t)(cos t − 1), each plus independent
    /// N(0, 0.05²) noise; keep (X0, X2) and multiply by 1.5 (X1 = 2U′ is dropped). (torchcfm's
    /// other runner variant, `two_dim.py` "scurve" with noise 0.1, standardised, ×7, is *not* this
    /// one.) Population: mean 0, covariance 2.25·[[1/2 + 0.0025, −1/(3π)], [·, 3/2 + 4/(3π) +
    /// 0.0025]].
    Scurve,
    /// FFJORD `toy_data.py` "checkerboard": x1 = 4U1 − 2, x2 = U2 − 2B + (⌊x1⌋ mod 2) (Python
    /// `%`, non-negative), U1, U2 ~ U[0,1), B ~ Bernoulli(1/2); output 2·(x1, x2). The support is
    /// 8 squares of side 2 — the cells (i, j) of the 4×4 board on [−4, 4]² with i + j even, where
    /// i = ⌊x/2⌋, j = ⌊y/2⌋ ∈ {−2, …, 1}. Population: mean 0, covariance [[16/3, 1], [1, 16/3]].
    Checkerboard,
    /// The S-JKO code's `25gaussian` (`SquareGaussian`): centres {−6, −3, 0, 3, 6}², each
    /// component N(c, 0.005·I₂) (0.005 is the covariance: std ≈ 0.0707). The official sampler
    /// draws equal counts per component; this one draws the component uniformly (i.i.d.).
    /// Population: mean 0, covariance (18 + 0.005)·I.
    TwentyFiveGaussians,
    /// The S-JKO code's `twocircles`: radius 4 or 8 (probability 1/2 each; the official sampler
    /// alternates) around 0, angle uniform, plus N(0, 0.2²·I₂) noise. Population: mean 0,
    /// covariance (r̄²/2 + 0.04)·I = 20.04·I with r̄² = (16 + 64)/2.
    TwoCircles,
}

impl Distribution {
    /// Every distribution.
    pub const ALL: [Distribution; 7] = [
        Distribution::Gaussian,
        Distribution::EightGaussians,
        Distribution::Moons,
        Distribution::Scurve,
        Distribution::Checkerboard,
        Distribution::TwentyFiveGaussians,
        Distribution::TwoCircles,
    ];

    /// Short name: `gaussian`, `8gaussians`, `moons`, `scurve`, `checkerboard`, `25gaussians`,
    /// `twocircles`.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Gaussian => "gaussian",
            Distribution::EightGaussians => "8gaussians",
            Distribution::Moons => "moons",
            Distribution::Scurve => "scurve",
            Distribution::Checkerboard => "checkerboard",
            Distribution::TwentyFiveGaussians => "25gaussians",
            Distribution::TwoCircles => "twocircles",
        }
    }

    /// Draws `n` i.i.d. points, row-major `(n, 2)` (`2n` values: x₀, y₀, x₁, y₁, …).
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<f32> {
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let [x, y] = self.sample_one(rng);
            out.push(x as f32);
            out.push(y as f32);
        }
        out
    }

    /// One point, in `f64`.
    fn sample_one<R: Rng + ?Sized>(&self, rng: &mut R) -> [f64; 2] {
        match self {
            Distribution::Gaussian => [normal(rng), normal(rng)],
            Distribution::EightGaussians => {
                const CENTRES: [[f64; 2]; 8] = [
                    [1.0, 0.0],
                    [-1.0, 0.0],
                    [0.0, 1.0],
                    [0.0, -1.0],
                    [FRAC_1_SQRT_2, FRAC_1_SQRT_2],
                    [FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
                    [-FRAC_1_SQRT_2, FRAC_1_SQRT_2],
                    [-FRAC_1_SQRT_2, -FRAC_1_SQRT_2],
                ];
                let c = CENTRES[rng.random_range(0..8usize)];
                // Component covariance √0.1·I, i.e. std 0.1^{1/4}.
                let std = 0.1f64.sqrt().sqrt();
                [
                    5.0 * c[0] + std * normal(rng),
                    5.0 * c[1] + std * normal(rng),
                ]
            }
            Distribution::Moons => {
                let t = PI * rng.random::<f64>();
                let outer = rng.random_bool(0.5);
                let u = 0.2 * rng.random::<f64>();
                let (x, y) = if outer {
                    (t.cos(), t.sin())
                } else {
                    (1.0 - t.cos(), 0.5 - t.sin())
                };
                [3.0 * (x + u) - 1.0, 3.0 * (y + u) - 1.0]
            }
            Distribution::Scurve => {
                let t = 3.0 * PI * (rng.random::<f64>() - 0.5);
                let sign = if t > 0.0 {
                    1.0
                } else if t < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                let x0 = t.sin() + 0.05 * normal(rng);
                let x2 = sign * (t.cos() - 1.0) + 0.05 * normal(rng);
                [1.5 * x0, 1.5 * x2]
            }
            Distribution::Checkerboard => {
                let x1 = 4.0 * rng.random::<f64>() - 2.0;
                let b = if rng.random_bool(0.5) { 1.0 } else { 0.0 };
                let x2 = rng.random::<f64>() - 2.0 * b + x1.floor().rem_euclid(2.0);
                [2.0 * x1, 2.0 * x2]
            }
            Distribution::TwentyFiveGaussians => {
                const GRID: [f64; 5] = [-6.0, -3.0, 0.0, 3.0, 6.0];
                let k = rng.random_range(0..25usize);
                let std = 0.005f64.sqrt();
                [
                    GRID[k / 5] + std * normal(rng),
                    GRID[k % 5] + std * normal(rng),
                ]
            }
            Distribution::TwoCircles => {
                let r = if rng.random_bool(0.5) { 4.0 } else { 8.0 };
                let t = 2.0 * PI * rng.random::<f64>();
                [
                    r * t.cos() + 0.2 * normal(rng),
                    r * t.sin() + 0.2 * normal(rng),
                ]
            }
        }
    }

    /// The analytic population mean.
    pub fn mean(self) -> [f64; 2] {
        match self {
            Distribution::Moons => [0.8, 0.05],
            _ => [0.0, 0.0],
        }
    }

    /// The analytic population covariance (see each variant's documentation).
    pub fn covariance(self) -> [[f64; 2]; 2] {
        match self {
            Distribution::Gaussian => [[1.0, 0.0], [0.0, 1.0]],
            Distribution::EightGaussians => {
                let v = 12.5 + 0.1f64.sqrt();
                [[v, 0.0], [0.0, v]]
            }
            Distribution::Moons => {
                let xx = 9.0 * (0.75 + 1.0 / 300.0);
                let xy = 9.0 * (0.125 - 1.0 / PI + 1.0 / 300.0);
                let yy = 9.0 * (9.0 / 16.0 - 1.0 / PI + 1.0 / 300.0);
                [[xx, xy], [xy, yy]]
            }
            Distribution::Scurve => {
                let xx = 2.25 * (0.5 + 0.0025);
                let xy = -2.25 / (3.0 * PI);
                let yy = 2.25 * (1.5 + 4.0 / (3.0 * PI) + 0.0025);
                [[xx, xy], [xy, yy]]
            }
            Distribution::Checkerboard => [[16.0 / 3.0, 1.0], [1.0, 16.0 / 3.0]],
            Distribution::TwentyFiveGaussians => [[18.005, 0.0], [0.0, 18.005]],
            Distribution::TwoCircles => [[20.04, 0.0], [0.0, 20.04]],
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A standard normal draw.
fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.sample(StandardNormal)
}

/// [`Distribution::sample`] as [`Points`] (`d = 2`, values widened to `f64` from the `f32`
/// samples, so they equal what [`Distribution::sample`] returns for the same RNG state).
pub fn sample_points<R: Rng + ?Sized>(dist: Distribution, n: usize, rng: &mut R) -> Points {
    let data = dist.sample(n, rng).into_iter().map(f64::from).collect();
    Points { n, d: 2, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn names_round_trip_and_aliases() {
        for p in Problem::ALL {
            assert_eq!(p.to_string().parse::<Problem>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        for alias in [
            "8gaussians-moons",
            "8gaussians->moons",
            "8gaussians_moons",
            " 8gaussians->moons ",
        ] {
            assert_eq!(
                alias.parse::<Problem>().unwrap(),
                Problem::EightGaussiansToMoons
            );
        }
    }

    #[test]
    fn unknown_name_lists_valid_names() {
        let err = "swissroll".parse::<Problem>().unwrap_err();
        assert!(matches!(err, NsgfError::Param(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("swissroll"), "{msg}");
        for p in Problem::ALL {
            assert!(msg.contains(p.name()), "{msg} lacks {}", p.name());
        }
        assert!("".parse::<Problem>().is_err());
        assert!("Moons".parse::<Problem>().is_err());
    }

    #[test]
    fn serde_uses_canonical_names() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Cfg {
            problem: Problem,
        }
        for p in Problem::ALL {
            let s = toml::to_string(&Cfg { problem: p }).unwrap();
            assert_eq!(s.trim(), format!("problem = \"{}\"", p.name()));
            assert_eq!(toml::from_str::<Cfg>(&s).unwrap(), Cfg { problem: p });
            let j = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Problem>(&j).unwrap(), p);
        }
        let alias: Cfg = toml::from_str("problem = \"8gaussians->moons\"").unwrap();
        assert_eq!(alias.problem, Problem::EightGaussiansToMoons);
        let err = toml::from_str::<Cfg>("problem = \"spiral\"").unwrap_err();
        assert!(err.to_string().contains("checkerboard"), "{err}");
    }

    #[test]
    fn source_and_target() {
        use Distribution as D;
        let expected = [
            (Problem::EightGaussians, D::Gaussian, D::EightGaussians),
            (Problem::EightGaussiansToMoons, D::EightGaussians, D::Moons),
            (Problem::Moons, D::Gaussian, D::Moons),
            (Problem::Scurve, D::Gaussian, D::Scurve),
            (Problem::Checkerboard, D::Gaussian, D::Checkerboard),
            (
                Problem::TwentyFiveGaussians,
                D::Gaussian,
                D::TwentyFiveGaussians,
            ),
            (Problem::TwoCircles, D::Gaussian, D::TwoCircles),
        ];
        for (p, s, t) in expected {
            assert_eq!((p.source(), p.target()), (s, t), "{p}");
        }
    }

    #[test]
    fn sample_shape_determinism_and_finiteness() {
        for d in Distribution::ALL {
            assert!(d.sample(0, &mut StdRng::seed_from_u64(1)).is_empty());
            let a = d.sample(257, &mut StdRng::seed_from_u64(7));
            let b = d.sample(257, &mut StdRng::seed_from_u64(7));
            let c = d.sample(257, &mut StdRng::seed_from_u64(8));
            assert_eq!(a.len(), 514, "{d}");
            assert_eq!(a, b, "{d}: same seed, same samples");
            assert_ne!(a, c, "{d}: different seeds");
            assert!(a.iter().all(|v| v.is_finite()), "{d}");
            let p = sample_points(d, 257, &mut StdRng::seed_from_u64(7));
            assert_eq!((p.n, p.d), (257, 2));
            assert!(p.data.iter().zip(&a).all(|(x, y)| *x == f64::from(*y)));
        }
        // A trait object works too.
        let mut rng = StdRng::seed_from_u64(3);
        let dyn_rng: &mut dyn Rng = &mut rng;
        assert_eq!(Distribution::Moons.sample(3, dyn_rng).len(), 6);
    }

    #[test]
    fn population_moments_match_readme_values() {
        // The table of tests/fixtures/toy2d/README.md (4 decimals).
        let close = |a: f64, b: f64| (a - b).abs() < 6e-5;
        let c = Distribution::EightGaussians.covariance();
        assert!(close(c[0][0], 12.8162) && c[0][1] == 0.0 && close(c[1][1], 12.8162));
        let c = Distribution::Moons.covariance();
        assert!(close(c[0][0], 6.7800) && close(c[0][1], -1.7098) && close(c[1][1], 2.2277));
        let c = Distribution::Scurve.covariance();
        assert!(close(c[0][0], 1.1306) && close(c[0][1], -0.2387) && close(c[1][1], 4.3356));
        for d in Distribution::ALL {
            let c = d.covariance();
            assert_eq!(c[0][1], c[1][0], "{d}: symmetric");
        }
    }
}
