//! GPU checks (only with `--features cuda`; run on a machine with an NVIDIA GPU by
//! `scripts/device-check.sh`): the CUDA backend against the CPU and the golden fixtures.
//!
//! * Sinkhorn (f32) on CUDA against GeomLoss' float64 potentials and loss;
//! * the UNet on CUDA (stock burn kernels behind [`NnKernels`]' defaults, autotuned) against
//!   torchcfm's outputs and input gradient;
//! * the image ops' default (stock) kernels on CUDA against the CPU's custom kernels.
//!
//! Fixtures are read from `$NSGF_FIXTURES`, else `tests/fixtures` below the working directory,
//! else below the crate (so a test binary built on one machine runs from a checkout on another).
#![cfg(feature = "cuda")]

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Tensor, TensorData};
use nsgf::backend::{Cpu, Cuda};
use nsgf::io::{read_safetensors, SafetensorsStore};
use nsgf::models::ops::{attention, conv2d, group_norm, NormSpec};
use nsgf::models::unet::{SyntheticTorchParams, UNet, UNetConfig};
use nsgf::ot::sinkhorn::{OtProblem, SinkhornConfig};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    if let Ok(d) = std::env::var("NSGF_FIXTURES") {
        return d.into();
    }
    let local = PathBuf::from("tests/fixtures");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().into_vec::<f64>().unwrap()
}

fn upload<B: Backend, const D: usize>(v: Vec<f64>, shape: [usize; D]) -> Tensor<B, D> {
    let data = TensorData::new(v, shape).convert_dtype(DType::F32);
    Tensor::from_data(data, (&Default::default(), DType::F32))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

#[test]
fn sinkhorn_f32_on_cuda_matches_geomloss() {
    let t =
        read_safetensors(fixtures().join("sinkhorn/sinkhorn_n256_m256_d2.safetensors")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("sinkhorn/cases.json")).unwrap(),
    )
    .unwrap();
    let (n, d) = (t["x"].shape[0], t["x"].shape[1]);
    let m = t["y"].shape[0];
    let mut checked = 0;
    for case in cases["cases"].as_array().unwrap() {
        if case["n"].as_u64() != Some(n as u64) || case["m"].as_u64() != Some(m as u64) {
            continue;
        }
        if case["d"].as_u64() != Some(d as u64) || case["debias"].as_bool() != Some(true) {
            continue;
        }
        let (blur, scaling) = (
            case["blur"].as_f64().unwrap(),
            case["scaling"].as_f64().unwrap(),
        );
        let p = OtProblem::<Cuda>::uniform(
            upload(t["x"].to_f64(), [n, d]),
            upload(t["y"].to_f64(), [m, d]),
        )
        .unwrap();
        let sol = p.solve(&SinkhornConfig::new(blur, scaling)).unwrap();
        let want = case["loss"].as_f64().unwrap();
        let got = sol.loss().unwrap();
        // The CPU's f32 bound (tests/sinkhorn.rs): 2e-2 at blur 0.05, 1e-4 from blur 0.5.
        let tol = if blur < 0.1 { 2e-2 } else { 1e-3 };
        assert!(
            (got - want).abs() <= tol * want.abs().max(1e-3),
            "blur {blur} scaling {scaling}: loss {got} vs GeomLoss {want}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no n=256 d=2 debiased case in cases.json");
}

fn unet_fixture(name: &str, cfg: UNetConfig) {
    let path = fixtures().join(format!("unet/unet_{name}.safetensors"));
    let dev = Default::default();
    let net: UNet<Cuda> = cfg
        .init::<Cuda>(&dev)
        .unwrap()
        .load_torchcfm(&path, &dev)
        .unwrap();
    let s = SafetensorsStore::open_single(&path).unwrap();
    let x = s.get("input.x").unwrap();
    let shape: [usize; 4] = x.shape.clone().try_into().unwrap();
    let t = s.get("input.t").unwrap();
    let out = host(net.forward(upload(x.to_f64(), shape), upload(t.to_f64(), [shape[0]])));
    let want = s.get("output.f64").unwrap().to_f64();
    let err = max_diff(&out, &want);
    // GPU matmuls may use reduced-precision (TF32) accumulation: a looser bound than the CPU's.
    assert!(err < 5e-3, "{name} on CUDA: max |out - torchcfm| = {err}");
}

#[test]
fn unet_on_cuda_matches_torchcfm() {
    unet_fixture("tiny", UNetConfig::tiny());
    unet_fixture("mnist", UNetConfig::mnist());
}

#[test]
fn unet_input_gradient_on_cuda_matches_torchcfm() {
    type B = Autodiff<Cuda>;
    let dir = fixtures().join("unet");
    let dev = Default::default();
    let net: UNet<B> = UNetConfig::tiny()
        .init::<B>(&dev)
        .unwrap()
        .load_torchcfm_params(&SyntheticTorchParams, &dev)
        .unwrap();
    let s = SafetensorsStore::open_single(dir.join("unet_tiny.safetensors")).unwrap();
    let g = &s;
    let shape: [usize; 4] = s.get("input.x").unwrap().shape.clone().try_into().unwrap();
    let x = upload::<B, 4>(s.get("input.x").unwrap().to_f64(), shape).require_grad();
    let t = upload::<B, 1>(s.get("input.t").unwrap().to_f64(), [shape[0]]);
    let r = upload::<B, 4>(g.get("grad.r").unwrap().to_f64(), shape);
    let grads = (net.forward(x.clone(), t) * r).sum().backward();
    let dx = host(x.grad(&grads).unwrap());
    let want = g.get("grad.input.x").unwrap().to_f64();
    let err = max_diff(&dx, &want);
    assert!(
        err < 5e-3 * max_abs(&want),
        "input gradient on CUDA: max error {err}"
    );
}

/// Forward and input/weight gradients of `op` on CUDA (default kernels) and on the CPU (custom
/// kernels), same inputs.
fn op_parity<const D: usize>(
    shape: [usize; D],
    params: &[(usize, bool)],
    cuda: impl Fn(Tensor<Autodiff<Cuda>, D>, &[Tensor<Autodiff<Cuda>, 1>]) -> Tensor<Autodiff<Cuda>, D>,
    cpu: impl Fn(Tensor<Autodiff<Cpu>, D>, &[Tensor<Autodiff<Cpu>, 1>]) -> Tensor<Autodiff<Cpu>, D>,
    what: &str,
) {
    let x = host(Tensor::<Cpu, D>::random(
        shape,
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    ));
    let ps: Vec<Vec<f64>> = params
        .iter()
        .map(|&(n, ones)| {
            let r = host(Tensor::<Cpu, 1>::random(
                [n],
                Distribution::Normal(0.0, 0.3),
                &Default::default(),
            ));
            r.iter().map(|v| if ones { 1.0 + v } else { *v }).collect()
        })
        .collect();
    macro_rules! run {
        ($B:ty, $f:expr) => {{
            let xt = upload::<$B, D>(x.clone(), shape).require_grad();
            let pt: Vec<Tensor<$B, 1>> = ps
                .iter()
                .map(|p| upload::<$B, 1>(p.clone(), [p.len()]).require_grad())
                .collect();
            let y = $f(xt.clone(), &pt);
            let g = (y.clone() * y.clone()).sum().backward();
            let mut out = vec![host(y), host(xt.grad(&g).unwrap())];
            out.extend(pt.iter().map(|p| host(p.grad(&g).unwrap())));
            out
        }};
    }
    let a = run!(Autodiff<Cuda>, cuda);
    let b = run!(Autodiff<Cpu>, cpu);
    for (i, (u, v)) in a.iter().zip(&b).enumerate() {
        let err = max_diff(u, v);
        assert!(
            err <= 5e-3 * max_abs(v).max(1.0),
            "{what}, tensor {i}: max error {err}"
        );
    }
}

#[test]
fn image_ops_on_cuda_match_the_cpu_kernels() {
    use burn::tensor::ops::ConvOptions;
    let opts = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    op_parity(
        [4, 6, 9, 9],
        &[(6 * 8 * 9, false), (8, false)],
        |x, p| {
            conv2d(
                x,
                p[0].clone().reshape([8, 6, 3, 3]),
                Some(p[1].clone()),
                opts.clone(),
            )
        },
        |x, p| {
            conv2d(
                x,
                p[0].clone().reshape([8, 6, 3, 3]),
                Some(p[1].clone()),
                opts.clone(),
            )
        },
        "conv2d stride 2",
    );
    let spec = NormSpec {
        groups: 4,
        eps: 1e-5,
        silu: true,
    };
    op_parity(
        [3, 8, 5, 5],
        &[(8, true), (8, false)],
        |x, p| group_norm(x, None, p[0].clone(), p[1].clone(), spec),
        |x, p| group_norm(x, None, p[0].clone(), p[1].clone(), spec),
        "group_norm + silu",
    );
    op_parity(
        [2, 2 * 3 * 8, 50],
        &[],
        |x, _| attention(x, 2),
        |x, _| attention(x, 2),
        "attention",
    );
}
