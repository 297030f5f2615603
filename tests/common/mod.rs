//! Helpers shared by the integration tests (`mod common;` in each test file that uses them).
#![allow(dead_code)]

use nsgf::io::npy::{write_npy, NpyArray};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the `nsgf` binary with `args`.
pub fn nsgf<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(args)
        .output()
        .expect("running the nsgf binary")
}

/// Runs the `nsgf` binary with `args`, asserts that it succeeded and returns its stderr.
pub fn nsgf_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = nsgf(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// 48 grey images 16x16 — a bright square at one of 4 positions on a dark background — written
/// as a uint8 `.npy` to `path`; returns them as `[-1, 1]` rows.
pub fn write_square_images(path: &Path) -> Vec<f32> {
    let mut data = Vec::with_capacity(48 * 256);
    for i in 0..48 {
        let (oy, ox) = [(2, 2), (2, 9), (9, 2), (9, 9)][i % 4];
        for y in 0..16 {
            for x in 0..16 {
                let inside = (oy..oy + 5).contains(&y) && (ox..ox + 5).contains(&x);
                data.push(if inside { 230 } else { 10 + (i as u8 % 7) });
            }
        }
    }
    let rows = data.iter().map(|&v| v as f32 / 127.5 - 1.0).collect();
    write_npy(path, &NpyArray::u8(vec![48, 16, 16], data)).unwrap();
    rows
}

/// Trains one iteration per call, as a Ctrl-C after every iteration would: calls
/// `train(resume)` with the interrupt flag raised `calls` times (the first from scratch), each
/// of which must stop with `Interrupted` after its iteration `i`.
pub fn stop_after_every_iteration<T: std::fmt::Debug>(
    calls: usize,
    mut train: impl FnMut(bool) -> nsgf::Result<T>,
) {
    for i in 1..=calls {
        nsgf::train::interrupt::request();
        let r = train(i > 1);
        nsgf::train::interrupt::clear();
        match r {
            Err(nsgf::NsgfError::Interrupted { step, .. }) => assert_eq!(step, i),
            other => panic!("call {i}: {other:?}"),
        }
    }
}

/// Every file under `dir` (relative path, contents, modification time), sorted.
pub fn files_of(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap(), modified));
            }
        }
    }
    out.sort();
    out
}
