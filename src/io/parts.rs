//! A long computation written in parts, so that an interrupted one resumes: a folder holds
//! `key.txt` (what is being computed: its inputs and settings) and `part-<i>.npz` (the named
//! arrays of part `i`), each file written atomically. Opened for another key, the folder is
//! emptied first, so stale parts are never mixed into a different computation.

use super::npy::{read_npz, write_atomic, write_npz, NpyArray};
use crate::error::{NsgfError, Result};
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "key.txt";

/// See the module doc.
#[derive(Debug)]
pub struct Parts {
    dir: PathBuf,
}

impl Parts {
    /// A parts folder named after a file, beside it: `<file><suffix>` (e.g. `.parts`).
    pub fn beside(file: &Path, suffix: &str) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// Opens `dir` for the computation described by `key` (made if missing; emptied when it
    /// holds another key's parts).
    pub fn open(dir: PathBuf, key: &str) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        if dir.exists() && std::fs::read_to_string(&key_path).ok().as_deref() != Some(key) {
            std::fs::remove_dir_all(&dir).map_err(|e| NsgfError::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| NsgfError::io(&dir, e))?;
        if !key_path.exists() {
            write_atomic(&key_path, key.as_bytes())?;
        }
        Ok(Self { dir })
    }

    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("part-{i:05}.npz"))
    }

    /// Part `i`'s arrays, or `None` when it has not been written (an unreadable part counts as
    /// not written, with a warning: it is computed again).
    pub fn get(&self, i: usize) -> Option<Vec<(String, NpyArray)>> {
        let p = self.path(i);
        if !p.exists() {
            return None;
        }
        match read_npz(&p) {
            Ok(arrays) => Some(arrays),
            Err(e) => {
                tracing::warn!("{e}: computing this part again");
                None
            }
        }
    }

    /// Writes part `i` (atomically).
    pub fn put(&self, i: usize, arrays: &[(&str, NpyArray)]) -> Result<()> {
        write_npz(self.path(i), arrays)
    }

    /// Removes the folder once the whole result is written elsewhere.
    pub fn finish(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|e| NsgfError::io(&self.dir, e))
    }
}

/// A part's arrays, by name.
pub type NamedArrays = Vec<(String, NpyArray)>;

impl Parts {
    /// Computes rows `0..n` in parts of `size` rows: `draw(rows)` gives a part's named arrays,
    /// among them `x` with one row per sample. The parts already written are reused, each new
    /// one is written as soon as it is drawn, so an interrupted computation run again with the
    /// same key resumes. `done(rows)` after each part. Returns each part's row count and
    /// arrays, in order.
    pub fn draw(
        &self,
        n: usize,
        size: usize,
        mut done: impl FnMut(usize),
        mut draw: impl FnMut(std::ops::Range<usize>) -> Result<Vec<(&'static str, NpyArray)>>,
    ) -> Result<Vec<(usize, NamedArrays)>> {
        let size = size.max(1);
        let mut all = Vec::new();
        for (i, start) in (0..n).step_by(size).enumerate() {
            let rows = start..(start + size).min(n);
            let m = rows.len();
            // A part of the wrong length (it cannot be one of this key's) is drawn again.
            let saved = self.get(i).filter(|a| {
                a.iter()
                    .any(|(k, v)| k == "x" && v.shape.first() == Some(&m))
            });
            let arrays = match saved {
                Some(a) => a,
                None => {
                    let a = draw(rows)?;
                    self.put(i, &a)?;
                    a.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                }
            };
            done(start + m);
            all.push((m, arrays));
        }
        Ok(all)
    }
}

/// Array `name` of a part, as f32 (a clear error when missing).
pub fn part_f32(arrays: &[(String, NpyArray)], name: &str, dir: &Path) -> Result<Vec<f32>> {
    arrays
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| a.to_f32())
        .ok_or_else(|| NsgfError::format(dir, format!("a part has no array {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_persist_under_their_key_and_are_dropped_under_another() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("samples.npy");
        let dir = Parts::beside(&out, ".parts");
        assert_eq!(dir, tmp.path().join("samples.npy.parts"));
        let parts = Parts::open(dir.clone(), "draw A").unwrap();
        assert!(parts.get(0).is_none());
        parts
            .put(0, &[("x", NpyArray::f32(vec![2], vec![1.0, 2.0]))])
            .unwrap();
        // Reopened with the same key: the part is there.
        let parts = Parts::open(dir.clone(), "draw A").unwrap();
        let got = parts.get(0).unwrap();
        assert_eq!(part_f32(&got, "x", &dir).unwrap(), [1.0, 2.0]);
        assert!(part_f32(&got, "y", &dir).is_err());
        // A corrupt part is computed again, not trusted.
        std::fs::write(dir.join("part-00001.npz"), b"not a zip").unwrap();
        assert!(parts.get(1).is_none());
        // Another key: the old parts are gone.
        let parts = Parts::open(dir.clone(), "draw B").unwrap();
        assert!(parts.get(0).is_none());
        assert_eq!(
            std::fs::read_to_string(dir.join(KEY_FILE)).unwrap(),
            "draw B"
        );
        parts.finish().unwrap();
        assert!(!dir.exists());
    }

    /// A draw that fails in its third part resumes from the two written: only the missing
    /// parts are drawn again, and the result equals an uninterrupted draw.
    #[test]
    fn an_interrupted_draw_resumes_from_its_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let rows_of = |r: std::ops::Range<usize>| {
            let x: Vec<f32> = r.clone().map(|i| i as f32).collect();
            Ok(vec![("x", NpyArray::f32(vec![r.len(), 1], x))])
        };
        let whole = Parts::open(tmp.path().join("a"), "k")
            .unwrap()
            .draw(7, 3, |_| {}, rows_of)
            .unwrap();
        let parts = Parts::open(tmp.path().join("b"), "k").unwrap();
        let mut drawn = Vec::new();
        let err = parts.draw(
            7,
            3,
            |_| {},
            |r| {
                drawn.push(r.clone());
                if r.start == 6 {
                    return Err(NsgfError::Other("stopped".into()));
                }
                rows_of(r)
            },
        );
        assert!(err.is_err());
        let parts = Parts::open(tmp.path().join("b"), "k").unwrap();
        let mut again = Vec::new();
        let mut done = Vec::new();
        let resumed = parts
            .draw(
                7,
                3,
                |d| done.push(d),
                |r| {
                    again.push(r.clone());
                    rows_of(r)
                },
            )
            .unwrap();
        assert_eq!(drawn, [0..3, 3..6, 6..7]);
        assert_eq!(again, vec![6..7]);
        assert_eq!(done, [3, 6, 7]);
        let flat = |p: &[(usize, NamedArrays)]| -> Vec<f32> {
            p.iter()
                .flat_map(|(_, a)| part_f32(a, "x", Path::new("x")).unwrap())
                .collect()
        };
        assert_eq!(flat(&resumed), flat(&whole));
        assert_eq!(flat(&whole), (0..7).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(
            resumed.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            [3, 3, 1]
        );
    }
}
