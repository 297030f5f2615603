//! `.npy` / `.npz` files as NumPy writes them: Fortran order, both byte orders, 0-d to 4-d, empty
//! arrays, stored and deflated `.npz` (fixtures from `tools/npy_fixtures.py`, see
//! `tests/fixtures/npy/README.md`), and clear errors for malformed headers.

use nsgf::io::npy::{parse_npy, read_npy, read_npz, NpyArray, NpyData};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy")
}

/// The stems `NAME` of every `NAME_f.npy` / `NAME_c.npy` pair.
fn pairs() -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix("_f.npy").map(str::to_string)
        })
        .collect();
    stems.sort();
    stems
}

/// Element k (C order) of every fixture, as `tools/npy_fixtures.py` defines it.
fn expected(dtype: &str, n: usize) -> Vec<f64> {
    (0..n as i64)
        .map(|k| match dtype {
            "u1" => ((7 * k) % 256) as f64,
            d if d.starts_with('f') => (k - 5) as f64 * 0.25,
            _ => (k - 5) as f64,
        })
        .collect()
}

fn header_says_fortran(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
    head.contains("'fortran_order': True")
}

#[test]
fn fortran_fixtures_equal_their_c_twins() {
    let stems = pairs();
    // 9 dtypes x 7 shapes + the transposed view.
    assert_eq!(stems.len(), 64, "fixtures missing: {stems:?}");
    for stem in &stems {
        let fpath = fixtures().join(format!("{stem}_f.npy"));
        let cpath = fixtures().join(format!("{stem}_c.npy"));
        assert!(
            header_says_fortran(&fpath),
            "{stem}: fixture is not Fortran order"
        );
        assert!(!header_says_fortran(&cpath), "{stem}: twin is not C order");
        let f = read_npy(&fpath).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let c = read_npy(&cpath).unwrap_or_else(|e| panic!("{stem}: {e}"));
        // Same shape, same element type, same elements (exact; NaN-free fixtures).
        assert_eq!(f, c, "{stem}");
        if stem == "transposed" {
            continue; // values checked in `fixture_shapes_and_edge_cases`
        }
        // And the values the generator defines (C order).
        let dtype = stem.split('_').next().unwrap();
        assert_eq!(c.to_f64(), expected(dtype, c.len()), "{stem}");
        let kind_ok = match dtype.trim_end_matches("be") {
            "f4" => matches!(c.data, NpyData::F32(_)),
            "f8" => matches!(c.data, NpyData::F64(_)),
            "u1" => matches!(c.data, NpyData::U8(_)),
            "i4" | "i8" => matches!(c.data, NpyData::I64(_)),
            d => panic!("unknown fixture dtype {d}"),
        };
        assert!(kind_ok, "{stem}: element type {:?}", c.data);
    }
}

#[test]
fn fixture_shapes_and_edge_cases() {
    let read = |name: &str| read_npy(fixtures().join(name)).unwrap();
    let shape = |name: &str| read(name).shape;
    assert_eq!(shape("f8_0d_f.npy"), Vec::<usize>::new());
    assert_eq!(read("f8_0d_f.npy").to_f64(), vec![-1.25]);
    assert_eq!(shape("f4be_1d_f.npy"), vec![5]);
    assert_eq!(shape("u1_row_f.npy"), vec![1, 6]);
    assert_eq!(shape("i8_empty_f.npy"), vec![0, 3]);
    assert!(read("i8_empty_f.npy").is_empty());
    assert_eq!(shape("f8be_3d_f.npy"), vec![2, 3, 4]);
    assert_eq!(shape("i4be_4d_f.npy"), vec![2, 3, 1, 5]);
    // The transposed view: t = arange(12).reshape(4, 3).T, so t[i][j] = v(3 j + i).
    let t = read("transposed_f.npy");
    assert_eq!(t.shape, vec![3, 4]);
    let v = |k: i64| (k - 5) as f64 * 0.25;
    let want: Vec<f64> = (0..3)
        .flat_map(|i| (0..4).map(move |j| v(3 * j + i)))
        .collect();
    assert_eq!(t.to_f64(), want);
    // Big-endian and little-endian files of the same values agree.
    assert_eq!(read("f4be_3d_f.npy"), read("f4_3d_c.npy"));
    assert_eq!(read("f8be_2d_f.npy"), read("f8_2d_c.npy"));
    assert_eq!(read("i4be_3d_f.npy"), read("i8_3d_c.npy"));
}

#[test]
fn npz_with_fortran_members_stored_and_deflated() {
    for name in ["fortran.npz", "fortran_compressed.npz"] {
        let members = read_npz(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let get = |m: &str| -> &NpyArray {
            &members
                .iter()
                .find(|(n, _)| n == m)
                .unwrap_or_else(|| panic!("{name}: no member {m}"))
                .1
        };
        assert_eq!(members.len(), 4, "{name}");
        assert_eq!(get("f").shape, vec![3, 4]);
        assert_eq!(get("f"), get("c"), "{name}");
        assert_eq!(get("g").shape, vec![2, 3, 4]);
        assert_eq!(get("g"), get("d"), "{name}");
        assert_eq!(get("f").to_f64(), expected("f8", 12));
    }
}

/// A version-1.0 `.npy` with `header` (padded like NumPy) and `body`.
fn npy_with(header: &str, body: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    let total = 10 + h.len() + 1;
    h.push_str(&" ".repeat((64 - total % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    out
}

fn parse_err(header: &str, body: &[u8]) -> String {
    parse_npy(&npy_with(header, body), Path::new("bad.npy"))
        .expect_err("malformed .npy must be rejected")
        .to_string()
}

#[test]
fn malformed_headers_are_clear_errors() {
    let body: Vec<u8> = (0..6).flat_map(|k| (k as f32).to_le_bytes()).collect();
    // The helper itself builds valid files.
    let ok = npy_with(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
        &body,
    );
    let a = parse_npy(&ok, Path::new("ok.npy")).unwrap();
    assert_eq!(a.to_f64(), vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);

    for bad in ["1", "'True'", "true", "None", "Maybe"] {
        let e = parse_err(
            &format!("{{'descr': '<f4', 'fortran_order': {bad}, 'shape': (2, 3), }}"),
            &body,
        );
        assert!(
            e.contains("bad.npy") && e.contains("fortran_order") && e.contains("True or False"),
            "{bad}: {e}"
        );
    }
    let e = parse_err("{'descr': '<f4', 'shape': (2, 3), }", &body);
    assert!(e.contains("no 'fortran_order'"), "{e}");

    // Shape and byte count disagree: too few bytes, too many bytes, in either order.
    for order in ["True", "False"] {
        let e = parse_err(
            &format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': (2, 4), }}"),
            &body,
        );
        assert!(e.contains("truncated") && e.contains("32 bytes"), "{e}");
        let e = parse_err(
            &format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': (5,), }}"),
            &body,
        );
        assert!(
            e.contains("does not match") && e.contains("4 trailing"),
            "{e}"
        );
    }
    let e = parse_err(
        "{'descr': '>f2', 'fortran_order': False, 'shape': (2, 3), }",
        &body,
    );
    assert!(e.contains("unsupported dtype >f2"), "{e}");
}
