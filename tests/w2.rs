//! Exact W2 against POT golden values (`tests/fixtures/w2/`, POT 0.9.7 `ot.emd2`).

use nsgf::io::npy::Points;
use nsgf::ot::emd::{linear_sum_assignment, w2, w2_squared};
use safetensors::{Dtype, SafeTensors};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/w2/w2_golden.safetensors"
);
const CASES: [&str; 5] = ["n4_d2", "n64_d2", "n1024_d2", "n256_d784", "n100_m150_d2"];

fn read_fixture() -> Vec<u8> {
    std::fs::read(FIXTURE).unwrap_or_else(|e| panic!("{FIXTURE}: {e}"))
}

fn f64s(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f64>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::F64, "{name}");
    let data = t
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), data)
}

fn i64s(st: &SafeTensors, name: &str) -> Vec<i64> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::I64, "{name}");
    t.data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// `x`/`y` as f64, or `x_u8`/`y_u8` converted with `u8 as f64 / 255.0`.
fn cloud(st: &SafeTensors, case: &str, which: &str) -> Points {
    let name = format!("{case}.{which}");
    if let Ok(t) = st.tensor(&format!("{name}_u8")) {
        assert_eq!(t.dtype(), Dtype::U8);
        let s = t.shape();
        let data = t.data().iter().map(|&b| b as f64 / 255.0).collect();
        return Points {
            n: s[0],
            d: s[1],
            data,
        };
    }
    let (s, data) = f64s(st, &name);
    Points {
        n: s[0],
        d: s[1],
        data,
    }
}

fn scalar(st: &SafeTensors, name: &str) -> f64 {
    let (s, v) = f64s(st, name);
    assert_eq!(s, [1], "{name}");
    v[0]
}

fn sq_cost(x: &Points, y: &Points) -> Vec<f64> {
    let mut c = Vec::with_capacity(x.n * y.n);
    for xi in x.data.chunks_exact(x.d) {
        for yj in y.data.chunks_exact(y.d) {
            c.push(xi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum());
        }
    }
    c
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs())
}

#[test]
fn w2_matches_pot_golden_values() {
    let bytes = read_fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for case in CASES {
        let x = cloud(&st, case, "x");
        let y = cloud(&st, case, "y");
        let want = scalar(&st, &format!("{case}.W2"));
        let want_sq = scalar(&st, &format!("{case}.W2_squared"));
        let got = w2(&x, &y).unwrap();
        let got_sq = w2_squared(&x, &y).unwrap();
        eprintln!(
            "{case}: W2 = {got:.17} (POT {want:.17}, rel {:.2e})",
            rel(got, want)
        );
        assert!(rel(got, want) <= 1e-10, "{case}: W2 {got} vs POT {want}");
        assert!(
            rel(got_sq, want_sq) <= 1e-10,
            "{case}: W2² {got_sq} vs POT {want_sq}"
        );
    }
}

#[test]
fn assignment_cost_equals_fixture_permutation_cost() {
    let bytes = read_fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for case in CASES {
        let x = cloud(&st, case, "x");
        let y = cloud(&st, case, "y");
        if x.n != y.n {
            continue;
        }
        let n = x.n;
        let cost = sq_cost(&x, &y);
        let perm_ref = i64s(&st, &format!("{case}.perm"));
        assert_eq!(perm_ref.len(), n);
        let ref_cost: f64 = (0..n).map(|i| cost[i * n + perm_ref[i] as usize]).sum();
        let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
        let mut seen = vec![false; n];
        for &j in &perm {
            assert!(!seen[j], "{case}: not a permutation");
            seen[j] = true;
        }
        let same = perm
            .iter()
            .zip(&perm_ref)
            .filter(|(a, b)| **a as i64 == **b)
            .count();
        eprintln!(
            "{case}: assignment cost {total:.17}, fixture permutation {ref_cost:.17}, \
             same column for {same}/{n} rows"
        );
        assert!(
            rel(total, ref_cost) <= 1e-12,
            "{case}: {total} vs fixture permutation cost {ref_cost}"
        );
    }
}

#[test]
fn unequal_case_fixture_plan_cost_equals_w2_squared() {
    let bytes = read_fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let case = "n100_m150_d2";
    let x = cloud(&st, case, "x");
    let y = cloud(&st, case, "y");
    let (shape, plan) = f64s(&st, &format!("{case}.plan"));
    assert_eq!(shape, [x.n, y.n]);
    let cost = sq_cost(&x, &y);
    let plan_cost: f64 = plan.iter().zip(&cost).map(|(p, c)| p * c).sum();
    let got = w2_squared(&x, &y).unwrap();
    assert!(
        rel(got, plan_cost) <= 1e-10,
        "{got} vs plan cost {plan_cost}"
    );
}
