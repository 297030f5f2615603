//! The custom ops against burn's stock ops (forward and every gradient, f32, through burn's own
//! autodiff of the stock composition) and against central finite differences (f64).

use super::*;
use burn::backend::Flex;
use burn::tensor::{DType, TensorData};
use proptest::prelude::*;

type Ad = Autodiff<Flex>;

/// Deterministic values in [-1, 1).
fn vals(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(7);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn input<const D: usize>(v: &[f64], shape: [usize; D], dtype: DType) -> Tensor<Ad, D> {
    let data = TensorData::new(v.to_vec(), shape).convert_dtype(dtype);
    Tensor::<Ad, D>::from_data(data, (&Default::default(), dtype)).require_grad()
}

fn host<const D: usize, B: Backend>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().into_vec::<f64>().unwrap()
}

/// An op under test: inputs (flat values + shape) → `(Σ y·r, [y, d(Σ y·r)/d input_i ...])`.
type OpRun<'a> = dyn Fn(&[Vec<f64>], DType) -> (f64, Vec<Vec<f64>>) + 'a;

fn assert_close(a: &[f64], b: &[f64], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    // Relative to the tensor's largest entry, plus an absolute floor for f32 rounding noise
    // in gradients that are exactly zero in real arithmetic (e.g. a shift cancelled by a
    // one-channel group).
    let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * scale + 1e-6,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

/// Custom op vs stock op in f32 (outputs and all gradients), and the custom op's gradients
/// against central differences in f64 at a few coordinates of every input.
fn check(ours: &OpRun<'_>, stock: &OpRun<'_>, inputs: &[Vec<f64>], what: &str) {
    let (_, a) = ours(inputs, DType::F32);
    let (_, b) = stock(inputs, DType::F32);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_close(x, y, 2e-4, &format!("{what} f32 vs stock, tensor {i}"));
    }
    let (_, g) = ours(inputs, DType::F64);
    let h = 1e-6;
    for (k, inp) in inputs.iter().enumerate() {
        let n = inp.len();
        for &j in &[0, n / 3, n / 2, n - 1] {
            let mut plus = inputs.to_vec();
            plus[k][j] += h;
            let mut minus = inputs.to_vec();
            minus[k][j] -= h;
            let fd = (ours(&plus, DType::F64).0 - ours(&minus, DType::F64).0) / (2.0 * h);
            let an = g[k + 1][j];
            assert!(
                (fd - an).abs() <= 1e-6 * (1.0 + an.abs()),
                "{what}: input {k}[{j}] finite difference {fd} vs gradient {an}"
            );
        }
    }
}

fn conv_case(x: [usize; 4], w: [usize; 4], stride: usize, pad: usize) {
    let opts = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
    let run = |stock: bool| {
        let opts = opts.clone();
        move |inp: &[Vec<f64>], dt: DType| {
            let xt = input(&inp[0], x, dt);
            let wt = input(&inp[1], w, dt);
            let bt = input(&inp[2], [w[0]], dt);
            let y = if stock {
                burn::tensor::module::conv2d(xt.clone(), wt.clone(), Some(bt.clone()), opts.clone())
            } else {
                conv2d(xt.clone(), wt.clone(), Some(bt.clone()), opts.clone())
            };
            let r = input(&vals(y.shape().num_elements(), 99), y.dims(), dt);
            let loss = (y.clone() * r).sum();
            let lv = host(loss.clone())[0];
            let g = loss.backward();
            let grads = vec![
                host(y),
                host(xt.grad(&g).unwrap()),
                host(wt.grad(&g).unwrap()),
                host(bt.grad(&g).unwrap()),
            ];
            (lv, grads)
        }
    };
    let inputs = vec![
        vals(x.iter().product(), 1),
        vals(w.iter().product(), 2),
        vals(w[0], 3),
    ];
    check(
        &run(false),
        &run(true),
        &inputs,
        &format!("conv {x:?} {w:?} s{stride} p{pad}"),
    );
}

#[test]
fn conv2d_matches_stock_and_finite_differences() {
    conv_case([2, 3, 7, 6], [4, 3, 3, 3], 1, 1);
    conv_case([1, 4, 9, 9], [5, 4, 3, 3], 2, 1);
    conv_case([3, 4, 5, 5], [6, 4, 1, 1], 1, 0);
    conv_case([1, 2, 6, 7], [3, 2, 3, 3], 2, 0);
    // fewer images than threads, and more
    conv_case([5, 2, 4, 4], [2, 2, 3, 3], 1, 1);
}

fn norm_case(n: usize, c: usize, hw: [usize; 2], groups: usize, silu: bool, shift: bool) {
    let spec = NormSpec {
        groups,
        eps: 1e-5,
        silu,
    };
    let shape = [n, c, hw[0], hw[1]];
    let run = |stock: bool| {
        move |inp: &[Vec<f64>], dt: DType| {
            let xt = input(&inp[0], shape, dt);
            let gt = input(&inp[1], [c], dt);
            let bt = input(&inp[2], [c], dt);
            let st = shift.then(|| input(&inp[3], [n, c], dt));
            let y = if stock {
                let (y, _) = reference::group_norm_forward::<Ad>(
                    prim(xt.clone()),
                    st.clone().map(prim),
                    prim(gt.clone()),
                    prim(bt.clone()),
                    spec,
                );
                tensor::<Ad, 4>(y)
            } else {
                group_norm(xt.clone(), st.clone(), gt.clone(), bt.clone(), spec)
            };
            let r = input(&vals(y.shape().num_elements(), 98), shape, dt);
            let loss = (y.clone() * r).sum();
            let lv = host(loss.clone())[0];
            let g = loss.backward();
            let mut out = vec![
                host(y),
                host(xt.grad(&g).unwrap()),
                host(gt.grad(&g).unwrap()),
                host(bt.grad(&g).unwrap()),
            ];
            if let Some(st) = st {
                out.push(host(st.grad(&g).unwrap()));
            }
            (lv, out)
        }
    };
    let mut inputs = vec![
        vals(n * c * hw[0] * hw[1], 4)
            .iter()
            .map(|v| 2.0 * v + 0.5)
            .collect(),
        vals(c, 5).iter().map(|v| 1.0 + 0.5 * v).collect(),
        vals(c, 6),
    ];
    if shift {
        inputs.push(vals(n * c, 7));
    }
    let what = format!("group_norm n{n} c{c} {hw:?} g{groups} silu {silu} shift {shift}");
    check(&run(false), &run(true), &inputs, &what);
}

#[test]
fn group_norm_matches_stock_and_finite_differences() {
    norm_case(2, 6, [3, 4], 3, true, false);
    norm_case(3, 4, [5, 5], 2, false, false);
    norm_case(1, 8, [2, 3], 4, true, true);
    norm_case(2, 4, [1, 1], 1, true, true);
    norm_case(2, 3, [4, 4], 3, false, true);
}

fn attn_case(b: usize, heads: usize, ch: usize, t: usize) {
    let shape = [b, heads * 3 * ch, t];
    let run = |stock: bool| {
        move |inp: &[Vec<f64>], dt: DType| {
            let q = input(&inp[0], shape, dt);
            let y = if stock {
                tensor::<Ad, 3>(reference::attention_forward::<Ad>(prim(q.clone()), heads).0)
            } else {
                attention(q.clone(), heads)
            };
            let r = input(&vals(y.shape().num_elements(), 97), y.dims(), dt);
            let loss = (y.clone() * r).sum();
            let lv = host(loss.clone())[0];
            let g = loss.backward();
            (lv, vec![host(y), host(q.grad(&g).unwrap())])
        }
    };
    let inputs = vec![vals(shape.iter().product(), 8)
        .iter()
        .map(|v| 2.0 * v)
        .collect()];
    let what = format!("attention b{b} heads{heads} ch{ch} t{t}");
    check(&run(false), &run(true), &inputs, &what);
}

#[test]
fn attention_matches_stock_and_finite_differences() {
    attn_case(2, 1, 4, 9);
    attn_case(1, 2, 3, 7);
    attn_case(3, 2, 2, 5);
    // more query rows than one chunk of the kernel
    attn_case(1, 1, 3, host::ATTN_ROWS + 37);
}

fn selu_case(n: usize, d: usize) {
    let run = |stock: bool| {
        move |inp: &[Vec<f64>], dt: DType| {
            let x = input(&inp[0], [n, d], dt);
            let y = if stock {
                burn::tensor::activation::selu(x.clone())
            } else {
                selu(x.clone())
            };
            let r = input(&vals(n * d, 96), [n, d], dt);
            let loss = (y.clone() * r).sum();
            let lv = host(loss.clone())[0];
            let g = loss.backward();
            (lv, vec![host(y), host(x.grad(&g).unwrap())])
        }
    };
    // Values away from the kink at 0, where the one-sided derivatives differ.
    let inputs = vec![vals(n * d, 9)
        .iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { 3.0 * v })
        .collect()];
    check(&run(false), &run(true), &inputs, &format!("selu {n}x{d}"));
}

#[test]
fn selu_matches_stock_and_finite_differences() {
    selu_case(3, 5);
    selu_case(1, 1);
    // Above the parallel chunk size.
    selu_case(300, 256);
}

/// Channel concatenation against `Tensor::cat`, with `a` used a second time (as the UNet's
/// encoder outputs are): its gradient is the sum of two, the slice of the concatenation's.
fn cat_case(n: usize, ca: usize, cb: usize, [h, w]: [usize; 2]) {
    let c = ca + cb;
    let run = |stock: bool| {
        move |inp: &[Vec<f64>], dt: DType| {
            let a = input(&inp[0], [n, ca, h, w], dt);
            let b = input(&inp[1], [n, cb, h, w], dt);
            let y = if stock {
                Tensor::cat(vec![a.clone(), b.clone()], 1)
            } else {
                cat_channels(a.clone(), b.clone())
            };
            let r = input(&vals(n * c * h * w, 41), [n, c, h, w], dt);
            let r2 = input(&vals(n * ca * h * w, 42), [n, ca, h, w], dt);
            let loss = (y.clone() * r).sum() + (a.clone() * r2).sum();
            let lv = host(loss.clone())[0];
            let g = loss.backward();
            let (da, db) = (a.grad(&g).unwrap(), b.grad(&g).unwrap());
            (lv, vec![host(y), host(da), host(db)])
        }
    };
    let inputs = vec![vals(n * ca * h * w, 1), vals(n * cb * h * w, 2)];
    let what = format!("cat {n}x({ca}+{cb})x{h}x{w}");
    check(&run(false), &run(true), &inputs, &what);
    // The forward is a copy: bit for bit, on the plain backend too.
    let plain = |v: &[f64], shape: [usize; 4]| {
        Tensor::<Flex, 4>::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    };
    let (a, b) = (
        plain(&inputs[0], [n, ca, h, w]),
        plain(&inputs[1], [n, cb, h, w]),
    );
    let ours = host(cat_channels(a.clone(), b.clone()));
    assert_eq!(
        ours,
        host(Tensor::cat(vec![a, b], 1)),
        "{what}: plain forward"
    );
}

#[test]
fn cat_channels_matches_stock_and_finite_differences() {
    cat_case(2, 3, 5, [4, 3]);
    cat_case(1, 1, 1, [1, 1]);
    // The MNIST decoder's shapes (parallel over images).
    cat_case(8, 64, 64, [7, 7]);
}

/// Nearest ×2 upsampling against the stock composition (reshape, expand, reshape).
fn upsample_case(n: usize, c: usize, [h, w]: [usize; 2]) {
    let run = |stock: bool| {
        move |inp: &[Vec<f64>], dt: DType| {
            let x = input(&inp[0], [n, c, h, w], dt);
            let y = if stock {
                x.clone()
                    .reshape([n, c, h, 1, w, 1])
                    .expand([n, c, h, 2, w, 2])
                    .reshape([n, c, 2 * h, 2 * w])
            } else {
                upsample2(x.clone())
            };
            let r = input(&vals(4 * n * c * h * w, 43), [n, c, 2 * h, 2 * w], dt);
            let loss = (y.clone() * r).sum();
            let lv = host(loss.clone())[0];
            let g = loss.backward();
            (lv, vec![host(y), host(x.grad(&g).unwrap())])
        }
    };
    let inputs = vec![vals(n * c * h * w, 3)];
    check(
        &run(false),
        &run(true),
        &inputs,
        &format!("upsample {n}x{c}x{h}x{w}"),
    );
    let x = Tensor::<Flex, 4>::from_data(
        TensorData::new(inputs[0].clone(), [n, c, h, w]),
        &Default::default(),
    );
    let stock = x
        .clone()
        .reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w]);
    assert_eq!(host(upsample2(x)), host(stock), "plain forward");
}

#[test]
fn upsample2_matches_stock_and_finite_differences() {
    upsample_case(2, 3, [4, 5]);
    upsample_case(1, 1, [1, 1]);
    upsample_case(16, 32, [7, 7]);
}

/// The pool kernel against burn's stock op on the plain backend, bit for bit for the max
/// (f32 and f64) and to rounding for the mean; then the autodiff dispatch (`pool2d` on
/// `Autodiff<Flex>` is the stock op with its gradient, and its forward equals the kernel's).
fn pool_case(x: [usize; 4], spec: PoolSpec) {
    let len = x.iter().product();
    let mut v = vals(len, (len * 31 + spec.kernel[0] * 7 + spec.stride[1]) as u64);
    // A run of equal values and (for the max) an infinity: ties and -inf must not break it.
    if len > 4 {
        v[1] = v[0];
        v[2] = v[0];
        if spec.kind == PoolKind::Max {
            v[len / 2] = f64::NEG_INFINITY;
        }
    }
    let dev = Default::default();
    for dtype in [DType::F32, DType::F64] {
        let t = Tensor::<Flex, 4>::from_data(
            TensorData::new(v.clone(), x).convert_dtype(dtype),
            (&dev, dtype),
        );
        let ours = host(pool2d(t.clone(), spec));
        let stock = host(tensor::<Flex, 4>(reference::pool2d::<Flex>(prim(t), spec)));
        match spec.kind {
            PoolKind::Max => assert_eq!(ours, stock, "{x:?} {spec:?} {dtype:?}"),
            PoolKind::Avg { .. } => assert_close(&ours, &stock, 1e-6, &format!("{x:?} {spec:?}")),
        }
    }
    let finite: Vec<f64> = v
        .iter()
        .map(|&a| if a.is_finite() { a } else { 0.5 })
        .collect();
    let a = input(&finite, x, DType::F64);
    let b = input(&finite, x, DType::F64);
    let ya = pool2d(a.clone(), spec);
    let yb = tensor::<Ad, 4>(reference::pool2d::<Ad>(prim(b.clone()), spec));
    assert_eq!(host(ya.clone()), host(yb.clone()));
    let plain = Tensor::<Flex, 4>::from_data(TensorData::new(finite.clone(), x), &dev);
    let kernel = host(pool2d(plain, spec));
    assert_close(
        &host(ya.clone()),
        &kernel,
        1e-12,
        &format!("{x:?} {spec:?} autodiff"),
    );
    let (ga, gb) = (ya.sum().backward(), yb.sum().backward());
    assert_eq!(host(a.grad(&ga).unwrap()), host(b.grad(&gb).unwrap()));
}

#[test]
fn pool2d_kernel_domain() {
    use super::host::PoolGeom;
    let g = PoolGeom::new([2, 3, 147, 147], [3, 3], [2, 2], [0, 0]).unwrap();
    assert_eq!((g.planes, g.ho, g.wo), (6, 73, 73));
    let g = PoolGeom::new([1, 1, 1, 1], [2, 2], [1, 1], [1, 1]).unwrap();
    assert_eq!((g.ho, g.wo), (2, 2));
    // Outside the kernel's domain (the stock op decides): an empty axis, a zero window or
    // stride, padding over half the window, a window past the padded input, overflow.
    for (x, k, s, p) in [
        ([1, 1, 0, 4], 2, 1, 1),
        ([1, 1, 4, 4], 0, 1, 0),
        ([1, 1, 4, 4], 2, 0, 0),
        ([1, 1, 4, 4], 3, 1, 2),
        ([1, 1, 2, 2], 5, 1, 1),
        ([1, 1, 4, 4], 3, 1, usize::MAX / 2 + 1),
    ] {
        assert_eq!(
            PoolGeom::new(x, [k, k], [s, s], [p, p]),
            None,
            "{x:?} {k} {s} {p}"
        );
    }
}

#[test]
fn pool2d_matches_the_stock_ops_in_the_inception_settings() {
    let max = PoolKind::Max;
    let avg = |count_include_pad| PoolKind::Avg { count_include_pad };
    for (x, kind, k, s, p) in [
        ([2, 3, 15, 15], max, 3, 2, 0),      // the stem and reductions: 3x3/s2
        ([2, 3, 8, 8], max, 3, 1, 1),        // mixed_10: 3x3/s1/p1
        ([1, 4, 9, 7], avg(false), 3, 1, 1), // the mixed blocks' pool branch
        ([1, 4, 9, 7], avg(true), 3, 1, 1),
        ([2, 2, 8, 8], avg(true), 8, 8, 0), // the final 8x8 mean
        ([2, 2, 8, 8], avg(false), 8, 1, 0),
        ([1, 2, 6, 10], max, 2, 2, 1),
        ([1, 1, 5, 5], avg(false), 4, 3, 2),
    ] {
        let spec = PoolSpec {
            kind,
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
        };
        pool_case(x, spec);
    }
    // A NaN in a window gives NaN there, as PyTorch (burn-flex's max keeps a NaN only when it
    // is the window's first element).
    let mut v = vals(16, 3);
    v[5] = f64::NAN;
    let t = Tensor::<Flex, 4>::from_data(TensorData::new(v, [1, 1, 4, 4]), &Default::default());
    let spec = PoolSpec {
        kind: max,
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
    };
    let y = host(pool2d(t, spec));
    assert!(
        y[0].is_nan() && y[1..].iter().all(|a| a.is_finite()),
        "{y:?}"
    );
}

proptest! {
    // A fixed seed keeps CI deterministic (the shapes are still drawn at random, once).
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pool2d_random_shapes(
        n in 1usize..3, c in 1usize..4, h in 1usize..10, w in 1usize..10,
        kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4,
        ph in 0usize..3, pw in 0usize..3, kind in 0usize..3,
    ) {
        prop_assume!(2 * ph <= kh && 2 * pw <= kw && h + 2 * ph >= kh && w + 2 * pw >= kw);
        let kind = match kind {
            0 => PoolKind::Max,
            k => PoolKind::Avg { count_include_pad: k == 2 },
        };
        pool_case([n, c, h, w], PoolSpec { kind, kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw] });
    }

    #[test]
    fn conv2d_random_shapes(
        n in 1usize..4, ci in 1usize..5, co in 1usize..5, h in 3usize..9, w in 3usize..9,
        k in prop::sample::select(vec![1usize, 3]), stride in 1usize..3, pad in 0usize..2,
    ) {
        prop_assume!(h + 2 * pad >= k && w + 2 * pad >= k);
        conv_case([n, ci, h, w], [co, ci, k, k], stride, pad);
    }

    #[test]
    fn group_norm_random_shapes(
        n in 1usize..4, groups in 1usize..4, per in 1usize..4, h in 1usize..6, w in 1usize..6,
        silu: bool, shift: bool,
    ) {
        // Groups of one or two elements have (near) zero variance: x̂ is then rounding noise
        // amplified by 1/√(σ² + ε), the same in no two f32 implementations.
        prop_assume!(per * h * w >= 4);
        norm_case(n, groups * per, [h, w], groups, silu, shift);
    }

    #[test]
    fn attention_random_shapes(b in 1usize..3, heads in 1usize..3, ch in 1usize..5, t in 1usize..20) {
        attn_case(b, heads, ch, t);
    }
}
