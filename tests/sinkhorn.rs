//! Sinkhorn parity with GeomLoss 0.2.6 (tests/fixtures/sinkhorn, float64 goldens) and the
//! identities of entropic OT: marginals at convergence, S(μ,μ) = 0, S ≥ 0, symmetry,
//! translation equivariance of the velocity, v = −n ∇_x S by finite differences.

use burn::tensor::{DType, Tensor, TensorData};
use nsgf::backend::Cpu;
use nsgf::convert::to_f64_vec;
use nsgf::io::{read_safetensors, NpyArray};
use nsgf::ot::sinkhorn::{OtProblem, SinkhornConfig};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sinkhorn")
}

fn tensor(v: &[f64], shape: [usize; 2], dtype: DType) -> Tensor<Cpu, 2> {
    Tensor::from_data(
        TensorData::new(v.to_vec(), shape),
        (&Default::default(), dtype),
    )
}

struct Geometry {
    t: BTreeMap<String, NpyArray>,
    n: usize,
    m: usize,
    d: usize,
}

impl Geometry {
    fn load(file: &str) -> Self {
        let t = read_safetensors(fixture_dir().join(file)).unwrap();
        let (xk, yk) = if t.contains_key("x") {
            ("x", "y")
        } else {
            ("x_u8", "y_u8")
        };
        let (n, d) = (t[xk].shape[0], t[xk].shape[1]);
        let m = t[yk].shape[0];
        Self { t, n, m, d }
    }
    fn x(&self) -> Vec<f64> {
        self.t
            .get("x")
            .map(|a| a.to_f64())
            .unwrap_or_else(|| self.t["x_u8"].to_f64().iter().map(|v| v / 255.0).collect())
    }
    fn y(&self) -> Vec<f64> {
        self.t
            .get("y")
            .map(|a| a.to_f64())
            .unwrap_or_else(|| self.t["y_u8"].to_f64().iter().map(|v| v / 255.0).collect())
    }
    fn get(&self, key: &str) -> Option<Vec<f64>> {
        self.t.get(key).map(|a| a.to_f64())
    }
    fn problem(&self, dtype: DType) -> OtProblem<Cpu> {
        OtProblem::uniform(
            tensor(&self.x(), [self.n, self.d], dtype),
            tensor(&self.y(), [self.m, self.d], dtype),
        )
        .unwrap()
    }
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// max |a − b| / max(|b|_∞, floor)
fn rel_err(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / max_abs(b).max(floor)
}

fn centred(v: &[f64]) -> Vec<f64> {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| x - mean).collect()
}

fn cases() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture_dir().join("cases.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["cases"].as_array().unwrap().clone()
}

fn file_for(case: &serde_json::Value) -> String {
    let f = case["file"].as_str().unwrap().to_string();
    if f.contains("d784") {
        f.replace(".safetensors", "_subset.safetensors")
    } else {
        f
    }
}

/// Compares one GeomLoss case; returns the worst relative errors (schedule, F/G, loss, v).
fn check_case(g: &Geometry, case: &serde_json::Value, dtype: DType) -> Option<[f64; 4]> {
    let prefix = case["prefix"].as_str().unwrap();
    let want_f = g.get(&format!("{prefix}.F"))?;
    let cfg = SinkhornConfig {
        blur: case["blur"].as_f64().unwrap(),
        scaling: case["scaling"].as_f64().unwrap(),
        debias: case["debias"].as_bool().unwrap(),
        ..SinkhornConfig::default()
    };
    let sol = g.problem(dtype).solve(&cfg).unwrap();
    let want_eps = g.get(&format!("{prefix}.eps_list")).unwrap();
    assert_eq!(
        sol.eps_list.len(),
        want_eps.len(),
        "{prefix}: schedule length"
    );
    let e_sched = rel_err(&sol.eps_list, &want_eps, 1e-300);
    let (f, gg) = sol.potentials();
    let want_g = g.get(&format!("{prefix}.G")).unwrap();
    let e_pot = rel_err(&to_f64_vec(f).unwrap(), &want_f, 1.0).max(rel_err(
        &to_f64_vec(gg).unwrap(),
        &want_g,
        1.0,
    ));
    let want_loss = case["loss"].as_f64().unwrap();
    let e_loss = (sol.loss().unwrap() - want_loss).abs() / want_loss.abs().max(1e-3);
    let want_v = g.get(&format!("{prefix}.v")).unwrap_or_else(|| {
        g.get(&format!("{prefix}.grad_x"))
            .unwrap()
            .iter()
            .map(|gx| -(g.n as f64) * gx)
            .collect()
    });
    let e_v = rel_err(&to_f64_vec(sol.velocity()).unwrap(), &want_v, 1.0);
    Some([e_sched, e_pot, e_loss, e_v])
}

#[test]
fn geomloss_parity_float64_all_cases() {
    let mut geoms: BTreeMap<String, Geometry> = BTreeMap::new();
    let mut checked = 0;
    for case in cases() {
        let file = file_for(&case);
        let g = geoms
            .entry(file.clone())
            .or_insert_with(|| Geometry::load(&file));
        let Some(errs) = check_case(g, &case, DType::F64) else {
            continue; // 784-d cases not kept in the subset file
        };
        let id = case["id"].as_str().unwrap();
        assert!(errs[0] < 1e-13, "{id}: schedule rel err {}", errs[0]);
        assert!(errs[1] < 1e-9, "{id}: potentials rel err {}", errs[1]);
        assert!(errs[2] < 1e-9, "{id}: loss rel err {}", errs[2]);
        assert!(errs[3] < 1e-9, "{id}: velocity rel err {}", errs[3]);
        checked += 1;
    }
    assert!(checked >= 51, "only {checked} GeomLoss cases checked");
}

#[test]
fn geomloss_parity_float32() {
    let mut geoms: BTreeMap<String, Geometry> = BTreeMap::new();
    let mut checked = 0;
    for case in cases() {
        let file = file_for(&case);
        let g = geoms
            .entry(file.clone())
            .or_insert_with(|| Geometry::load(&file));
        let Some(errs) = check_case(g, &case, DType::F32) else {
            continue;
        };
        let id = case["id"].as_str().unwrap();
        let blur = case["blur"].as_f64().unwrap();
        // Suggested float32 tolerances (fixture README): ~1e-4 for blur >= 0.5; at blur 0.05
        // (C/eps up to ~3e4) log-domain f32 loses 3-4 digits.
        let tol = if blur >= 0.5 { 1e-4 } else { 2e-2 };
        assert!(errs[1] < tol, "{id}: potentials rel err {}", errs[1]);
        assert!(errs[2] < tol, "{id}: loss rel err {}", errs[2]);
        assert!(errs[3] < tol, "{id}: velocity rel err {}", errs[3]);
        checked += 1;
    }
    assert!(checked >= 51);
}

#[test]
fn converged_mode_matches_converged_references() {
    let text = std::fs::read_to_string(fixture_dir().join("cases.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for r in json["references"].as_array().unwrap() {
        let blur = r["blur"].as_f64().unwrap();
        if blur < 0.5 {
            continue; // plain Sinkhorn sweeps converge too slowly at eps = 0.0025 (fixture README)
        }
        let mut file = r["file"].as_str().unwrap().to_string();
        if file.contains("d784") {
            if blur != 0.5 {
                continue;
            }
            file = file.replace(".safetensors", "_subset.safetensors");
        }
        let g = Geometry::load(&file);
        let prefix = r["prefix"].as_str().unwrap();
        let cfg = SinkhornConfig {
            blur,
            scaling: 0.5,
            tol: Some(1e-13),
            max_iter: 20_000,
            ..SinkhornConfig::default()
        };
        let sol = g.problem(DType::F64).solve(&cfg).unwrap();
        // 784-d: the plan is nearly a permutation and the averaged iteration contracts slowly
        // (~1e-7 after 20k updates); checked with a looser tolerance.
        let tol = if file.contains("d784") { 1e-5 } else { 1e-9 };
        let v = to_f64_vec(sol.velocity()).unwrap();
        let want_v = g.get(&format!("{prefix}.v")).unwrap();
        assert!(rel_err(&v, &want_v, 1.0) < tol, "{file} {prefix}: v");
        if file.contains("d784") {
            checked += 1;
            continue;
        }
        assert!(
            sol.last_change < 1e-12,
            "{file} {prefix}: not converged ({} after {})",
            sol.last_change,
            sol.iterations
        );
        let f = centred(&to_f64_vec(sol.duals.f_xy.clone()).unwrap());
        let want_f = centred(&g.get(&format!("{prefix}.f")).unwrap());
        assert!(
            rel_err(&f, &want_f, 1.0) < 1e-8,
            "{file} {prefix}: f mod const"
        );
        let fxx = to_f64_vec(sol.duals.f_xx.clone().unwrap()).unwrap();
        assert!(rel_err(&fxx, &g.get(&format!("{prefix}.f_xx")).unwrap(), 1.0) < 1e-8);
        let s_ref = r["S_eps"].as_f64().unwrap();
        assert!((sol.loss().unwrap() - s_ref).abs() < 1e-9 * s_ref.abs().max(1.0));
        // Raw velocity too, where stored.
        if let Some(want) = g.get(&format!("{prefix}.v_nodebias")) {
            let raw = SinkhornConfig {
                debias: false,
                ..cfg.clone()
            };
            let v = to_f64_vec(g.problem(DType::F64).solve(&raw).unwrap().velocity()).unwrap();
            assert!(rel_err(&v, &want, 1.0) < 1e-9, "{file} {prefix}: raw v");
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked}");
}

fn random_cloud(
    rng: &mut rand::rngs::StdRng,
    n: usize,
    d: usize,
    scale: f64,
    shift: f64,
) -> Vec<f64> {
    (0..n * d)
        .map(|_| shift + scale * (rng.random::<f64>() * 2.0 - 1.0))
        .collect()
}

fn seeds() -> Vec<u64> {
    // Fixed regression seeds plus a fresh one (printed on failure).
    vec![7, 1234, rand::rng().random::<u32>() as u64]
}

#[test]
fn marginals_hold_at_convergence() {
    for seed in seeds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (n, m, d) = (20, 15, 3);
        let x = random_cloud(&mut rng, n, d, 1.0, 0.0);
        let y = random_cloud(&mut rng, m, d, 0.7, 0.5);
        let p = OtProblem::uniform(
            tensor(&x, [n, d], DType::F64),
            tensor(&y, [m, d], DType::F64),
        )
        .unwrap();
        let cfg = SinkhornConfig {
            blur: 0.3,
            tol: Some(1e-12),
            ..SinkhornConfig::default()
        };
        let sol = p.solve(&cfg).unwrap();
        let f = to_f64_vec(sol.duals.f_xy.clone()).unwrap();
        let g = to_f64_vec(sol.duals.g_xy.clone()).unwrap();
        let c = to_f64_vec(sol.c_xy()).unwrap();
        let eps = sol.eps;
        let plan = |i: usize, j: usize| ((f[i] + g[j] - c[i * m + j]) / eps).exp() / (n * m) as f64;
        for i in 0..n {
            let row: f64 = (0..m).map(|j| plan(i, j)).sum();
            assert!(
                (row - 1.0 / n as f64).abs() < 1e-9,
                "seed {seed}: row {i} sums to {row}"
            );
        }
        for j in 0..m {
            let col: f64 = (0..n).map(|i| plan(i, j)).sum();
            assert!(
                (col - 1.0 / m as f64).abs() < 1e-9,
                "seed {seed}: col {j} sums to {col}"
            );
        }
    }
}

#[test]
fn divergence_identities() {
    for seed in seeds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (n, m, d) = (30, 25, 2);
        let x = random_cloud(&mut rng, n, d, 1.0, 0.0);
        let y = random_cloud(&mut rng, m, d, 0.5, 0.8);
        let cfg = SinkhornConfig {
            blur: 0.2,
            tol: Some(1e-12),
            ..SinkhornConfig::default()
        };
        let s = |a: &[f64], na: usize, b: &[f64], nb: usize| {
            OtProblem::uniform(
                tensor(a, [na, d], DType::F64),
                tensor(b, [nb, d], DType::F64),
            )
            .unwrap()
            .solve(&cfg)
            .unwrap()
            .loss()
            .unwrap()
        };
        let s_xx = s(&x, n, &x, n);
        assert!(s_xx.abs() < 1e-10, "seed {seed}: S(x,x) = {s_xx}");
        let s_xy = s(&x, n, &y, m);
        let s_yx = s(&y, m, &x, n);
        assert!(s_xy > 0.0, "seed {seed}: S(x,y) = {s_xy}");
        assert!(
            (s_xy - s_yx).abs() < 1e-10 * s_xy.max(1.0),
            "seed {seed}: {s_xy} vs {s_yx}"
        );
    }
}

/// Every point in one place (diameter 0): GeomLoss's schedule would start at ε = 0 (NaN
/// potentials); the problem is solved at the final ε alone, S = 0 and v = 0 against itself.
#[test]
fn clouds_of_one_repeated_point() {
    let cfg = SinkhornConfig::default();
    assert_eq!(cfg.eps_schedule(0.0), vec![cfg.blur * cfg.blur]);
    for (n, p) in [(1, [0.3, -0.2]), (5, [1.0, 2.0])] {
        let x: Vec<f64> = (0..n).flat_map(|_| p).collect();
        let sol = OtProblem::uniform(
            tensor(&x, [n, 2], DType::F64),
            tensor(&x, [n, 2], DType::F64),
        )
        .unwrap()
        .solve(&cfg)
        .unwrap();
        assert!(sol.loss().unwrap().abs() < 1e-12, "n = {n}");
        assert!(
            max_abs(&to_f64_vec(sol.velocity()).unwrap()) < 1e-12,
            "n = {n}"
        );
    }
}

/// A blur far above the clouds' diameter: up to [`MAX_EPS_ROUNDING`] the divergence reaches its
/// `ε → ∞` limit `½|mean x − mean y|²`; past it (where the f32 loss came out as 65536 at blur
/// 1e10, f64 as 0) the solve is refused with a message naming the blur and the rounding.
#[test]
fn huge_blur_reaches_the_mean_limit_or_is_refused() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (n, m, d) = (40, 30, 2);
    let x = random_cloud(&mut rng, n, d, 1.0, 0.0);
    let y = random_cloud(&mut rng, m, d, 0.5, 0.8);
    let mean = |v: &[f64], k: usize| {
        (0..d)
            .map(|j| v.iter().skip(j).step_by(d).sum::<f64>() / k as f64)
            .collect::<Vec<_>>()
    };
    let (mx, my) = (mean(&x, n), mean(&y, m));
    let limit = 0.5
        * mx.iter()
            .zip(&my)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>();
    let solve = |blur: f64, dtype: DType| {
        let cfg = SinkhornConfig {
            blur,
            ..SinkhornConfig::default()
        };
        OtProblem::uniform(tensor(&x, [n, d], dtype), tensor(&y, [m, d], dtype))
            .unwrap()
            .solve(&cfg)
    };
    let loss = solve(1e3, DType::F64).unwrap().loss().unwrap();
    assert!((loss - limit).abs() < 1e-4 * limit, "{loss} vs {limit}");
    let loss = solve(10.0, DType::F32).unwrap().loss().unwrap();
    assert!((loss - limit).abs() < 2e-2 * limit, "{loss} vs {limit}");
    for (blur, dtype) in [(1e10, DType::F64), (1e10, DType::F32), (1e3, DType::F32)] {
        let e = solve(blur, dtype).unwrap_err().to_string();
        assert!(
            e.contains(&format!("blur {blur}")) && e.contains("rounding"),
            "{blur} {dtype:?}: {e}"
        );
    }
}

#[test]
fn velocity_is_translation_equivariant_and_minus_n_grad_s() {
    for seed in seeds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (n, m, d) = (12, 10, 2);
        let x = random_cloud(&mut rng, n, d, 1.0, 0.0);
        let y = random_cloud(&mut rng, m, d, 0.6, 0.7);
        let cfg = SinkhornConfig {
            blur: 0.5,
            tol: Some(1e-14),
            max_iter: 50_000,
            ..SinkhornConfig::default()
        };
        let solve = |x: &[f64], y: &[f64]| {
            OtProblem::uniform(tensor(x, [n, d], DType::F64), tensor(y, [m, d], DType::F64))
                .unwrap()
                .solve(&cfg)
                .unwrap()
        };
        let sol = solve(&x, &y);
        let v = to_f64_vec(sol.velocity()).unwrap();
        // Translating both clouds leaves v unchanged.
        let shift = [3.0, -1.5];
        let xs: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(k, v)| v + shift[k % d])
            .collect();
        let ys: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(k, v)| v + shift[k % d])
            .collect();
        let vs = to_f64_vec(solve(&xs, &ys).velocity()).unwrap();
        assert!(rel_err(&vs, &v, 1.0) < 1e-8, "seed {seed}: translation");
        // Central finite differences of S along every coordinate: v = −n ∂S/∂x.
        let h = 1e-5;
        for k in 0..n * d {
            let mut xp = x.clone();
            xp[k] += h;
            let mut xm = x.clone();
            xm[k] -= h;
            let grad =
                (solve(&xp, &y).loss().unwrap() - solve(&xm, &y).loss().unwrap()) / (2.0 * h);
            let fd_v = -(n as f64) * grad;
            assert!(
                (fd_v - v[k]).abs() < 1e-6,
                "seed {seed}: coord {k}: fd {fd_v} vs v {}",
                v[k]
            );
        }
    }
}

#[test]
fn float32_stays_finite_at_small_blur_on_wide_data() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let (n, d) = (200, 2);
    // Diameter ~10.
    let x = random_cloud(&mut rng, n, d, 3.5, 0.0);
    let y = random_cloud(&mut rng, n, d, 3.5, 0.5);
    let p = OtProblem::uniform(
        tensor(&x, [n, d], DType::F32),
        tensor(&y, [n, d], DType::F32),
    )
    .unwrap();
    assert!(p.diameter().unwrap() > 9.0);
    let sol = p.solve(&SinkhornConfig::new(0.01, 0.9)).unwrap();
    let v = to_f64_vec(sol.velocity()).unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    assert!(sol.loss().unwrap().is_finite() && sol.loss().unwrap() > 0.0);
    // At this blur the flow's velocity is close to the displacement towards the OT match: bounded by the diameter.
    assert!(max_abs(&v) < 12.0);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let ok = tensor(&[0.0, 1.0, 2.0, 3.0], [2, 2], DType::F64);
    let nan = tensor(&[0.0, f64::NAN, 2.0, 3.0], [2, 2], DType::F64);
    let inf = tensor(&[0.0, f64::INFINITY, 2.0, 3.0], [2, 2], DType::F64);
    let d3 = tensor(&[0.0; 6], [2, 3], DType::F64);
    let empty = Tensor::<Cpu, 2>::zeros([0, 2], (&Default::default(), DType::F64));
    let msg = |r: nsgf::Result<OtProblem<Cpu>>| r.unwrap_err().to_string();
    assert!(msg(OtProblem::uniform(nan, ok.clone())).contains("NaN"));
    assert!(msg(OtProblem::uniform(ok.clone(), inf)).contains("infinite"));
    assert!(msg(OtProblem::uniform(ok.clone(), d3)).contains("dimension"));
    assert!(msg(OtProblem::uniform(empty, ok.clone())).contains("empty"));
    let p = OtProblem::uniform(ok.clone(), ok.clone()).unwrap();
    for (cfg, what) in [
        (SinkhornConfig::new(0.0, 0.5), "blur"),
        (SinkhornConfig::new(-1.0, 0.5), "blur"),
        (SinkhornConfig::new(f64::NAN, 0.5), "blur"),
        (SinkhornConfig::new(0.1, 1.0), "scaling"),
        (SinkhornConfig::new(0.1, 0.0), "scaling"),
        (
            SinkhornConfig {
                tol: Some(-1.0),
                ..SinkhornConfig::default()
            },
            "tol",
        ),
    ] {
        let e = p.solve(&cfg).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
    let w_bad = Tensor::<Cpu, 1>::from_data(
        TensorData::new(vec![1.0, -1.0], [2]),
        (&Default::default(), DType::F64),
    );
    let w_ok = Tensor::<Cpu, 1>::from_data(
        TensorData::new(vec![1.0, 3.0], [2]),
        (&Default::default(), DType::F64),
    );
    let e = OtProblem::weighted(ok.clone(), ok.clone(), w_bad, w_ok.clone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("weights a"), "{e}");
    // Non-uniform weights work and still give S(μ, μ) = 0.
    let p = OtProblem::weighted(ok.clone(), ok.clone(), w_ok.clone(), w_ok).unwrap();
    let s = p
        .solve(&SinkhornConfig {
            tol: Some(1e-12),
            ..SinkhornConfig::new(0.3, 0.5)
        })
        .unwrap();
    assert!(s.loss().unwrap().abs() < 1e-10);
}

/// The CPU solve runs the fused host kernel (on-the-fly costs for d ≤ 16, explicit matrices
/// above); the tensorized kernel (the one device backends run) must give the same loop, in f64
/// to rounding and in f32 to f32 accuracy, raw and debiased, with and without the convergence
/// phase, on unequal sizes and non-uniform weights.
#[test]
fn fused_cpu_kernel_matches_the_tensorized_loop() {
    use nsgf::ot::cost::half_sq_cost;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    for &(n, m, d) in &[(37, 29, 2), (40, 53, 3), (31, 26, 40)] {
        let x = random_cloud(&mut rng, n, d, 1.5, 0.0);
        let y = random_cloud(&mut rng, m, d, 1.0, 0.7);
        let a: Vec<f64> = (0..n).map(|_| 0.5 + rng.random::<f64>()).collect();
        let b: Vec<f64> = (0..m).map(|_| 0.5 + rng.random::<f64>()).collect();
        for dtype in [DType::F64, DType::F32] {
            let w = |v: &[f64]| {
                Tensor::<Cpu, 1>::from_data(
                    TensorData::new(v.to_vec(), [v.len()]),
                    (&Default::default(), dtype),
                )
            };
            let p = OtProblem::weighted(
                tensor(&x, [n, d], dtype),
                tensor(&y, [m, d], dtype),
                w(&a),
                w(&b),
            )
            .unwrap();
            for cfg in [
                SinkhornConfig::new(0.1, 0.8),
                SinkhornConfig {
                    debias: false,
                    ..SinkhornConfig::new(0.5, 0.5)
                },
                SinkhornConfig {
                    tol: Some(1e-9),
                    max_iter: 300,
                    ..SinkhornConfig::new(0.3, 0.7)
                },
            ] {
                let eps_list = cfg.eps_schedule(p.diameter().unwrap());
                let c_xy = half_sq_cost(&p.x, &p.y);
                let c_xx = cfg.debias.then(|| half_sq_cost(&p.x, &p.x));
                let tz = p
                    .tensorized_loop(&c_xy, c_xx.as_ref(), &eps_list, &cfg)
                    .unwrap();
                let outs = if dtype == DType::F64 {
                    p.fused_loop::<f64>(Some(&c_xy), c_xx.as_ref(), &eps_list, &cfg)
                } else {
                    p.fused_loop::<f32>(Some(&c_xy), c_xx.as_ref(), &eps_list, &cfg)
                }
                .unwrap();
                assert_eq!(
                    tz.iterations, outs.iterations,
                    "{n}x{m}x{d} {dtype:?} {cfg:?}"
                );
                let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
                let pairs = [
                    (tz.duals.f_xy.clone(), outs.duals.f_xy.clone()),
                    (tz.duals.g_xy.clone(), outs.duals.g_xy.clone()),
                    (tz.loop_duals.f_xy.clone(), outs.loop_duals.f_xy.clone()),
                ];
                for (k, (want, got)) in pairs.into_iter().enumerate() {
                    let (want, got) = (to_f64_vec(want).unwrap(), to_f64_vec(got).unwrap());
                    let e = rel_err(&got, &want, 1.0);
                    assert!(e < tol, "{n}x{m}x{d} {dtype:?} {cfg:?} pair {k}: {e}");
                }
                if cfg.debias {
                    for (want, got) in [
                        (tz.duals.f_xx.clone(), outs.duals.f_xx.clone()),
                        (tz.duals.g_yy.clone(), outs.duals.g_yy.clone()),
                    ] {
                        let want = to_f64_vec(want.unwrap()).unwrap();
                        let got = to_f64_vec(got.unwrap()).unwrap();
                        assert!(rel_err(&got, &want, 1.0) < tol, "{n}x{m}x{d} {dtype:?}");
                    }
                } else {
                    assert!(outs.duals.f_xx.is_none() && outs.duals.g_yy.is_none());
                }
            }
        }
    }
}
