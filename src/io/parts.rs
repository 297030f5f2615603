//! A long computation written in parts, so that an interrupted one resumes: a folder holds
//! `key.txt` (what is being computed: its inputs and settings) and `part-<i>.npz` (the named
//! arrays of part `i`), each file written atomically. Opened for another key, the folder's
//! parts are deleted first, so stale parts are never mixed into a different computation. One
//! process per folder: an open `Parts` holds an advisory lock on its folder (`flock` on Unix),
//! and a second open (another process, or another `Parts` in this one) gets a clear error.

use super::npy::{read_npz, write_atomic, write_npz, NpyArray};
use crate::error::{NsgfError, Result};
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "key.txt";

/// A file's size in bytes and modification time in nanoseconds since the Unix epoch (0 where
/// the platform gives none): how a key recognises large files (weights) without reading them.
pub fn file_stamp(path: &Path) -> Result<(u64, u128)> {
    let meta = std::fs::metadata(path).map_err(|e| NsgfError::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), mtime))
}

/// See the module doc.
#[derive(Debug)]
pub struct Parts {
    dir: PathBuf,
    /// The folder, opened and exclusively locked while this value lives (`None` where the
    /// platform cannot open or lock a folder).
    _lock: Option<std::fs::File>,
}

/// A part's arrays, by name.
pub type NamedArrays = Vec<(String, NpyArray)>;

impl Parts {
    /// A parts folder named after a file or folder, beside it: `<file><suffix>` (e.g.
    /// `.parts`; a trailing `/` of `file` is ignored).
    pub fn beside(file: &Path, suffix: &str) -> PathBuf {
        let mut name = file.components().as_path().as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// Opens `dir` for the computation described by `key` (made if missing) and locks it for
    /// this process (another process holding it: an error). A folder of another key's parts has
    /// them deleted; a non-empty folder that is not a parts folder (no `key.txt`) is an error,
    /// never emptied.
    pub fn open(dir: PathBuf, key: &str) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        let existed = dir.exists();
        if existed && !dir.is_dir() {
            return Err(NsgfError::format(
                &dir,
                "is in the way of a parts folder (not a folder): move it away",
            ));
        }
        crate::io::create_dir_all(&dir)?;
        let lock = Self::lock(&dir)?;
        if existed {
            match std::fs::read_to_string(&key_path) {
                Ok(k) if k == key => return Ok(Self { dir, _lock: lock }),
                Ok(_) => Self::clear(&dir)?,
                Err(_) => {
                    let empty = std::fs::read_dir(&dir)
                        .map_err(|e| NsgfError::io(&dir, e))?
                        .next()
                        .is_none();
                    if !empty {
                        return Err(NsgfError::format(
                            &dir,
                            "is in the way of a parts folder (it has no key.txt): move it away",
                        ));
                    }
                }
            }
        }
        write_atomic(&key_path, key.as_bytes())?;
        Ok(Self { dir, _lock: lock })
    }

    /// An exclusive advisory lock on the folder, held by the returned handle. Taken by another
    /// open: an error. The folder replaced between opening and locking (another run finished
    /// and removed it): an error, so that two runs never share a folder. Where folders cannot
    /// be opened or locked (not Unix, or a file system without `flock`): no lock (logged).
    fn lock(dir: &Path) -> Result<Option<std::fs::File>> {
        let file = match std::fs::File::open(dir) {
            Ok(f) => f,
            Err(e) if cfg!(unix) => return Err(NsgfError::io(dir, e)),
            Err(e) => {
                tracing::debug!("{}: not locked ({e})", dir.display());
                return Ok(None);
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(NsgfError::format(
                    dir,
                    "is in use by another process computing into it (the same output twice?): \
                     wait for it to finish or stop it",
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                tracing::debug!("{}: not locked ({e})", dir.display());
                return Ok(None);
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let held = file.metadata().map_err(|e| NsgfError::io(dir, e))?;
            let now = std::fs::metadata(dir).map_err(|e| NsgfError::io(dir, e))?;
            if (held.dev(), held.ino()) != (now.dev(), now.ino()) {
                return Err(NsgfError::format(
                    dir,
                    "was removed or replaced while being opened (another run finishing?): \
                     run again",
                ));
            }
        }
        Ok(Some(file))
    }

    /// Deletes the files of a parts folder: its key, its parts and their temporary files.
    fn clear(dir: &Path) -> Result<()> {
        for e in std::fs::read_dir(dir).map_err(|e| NsgfError::io(dir, e))? {
            let e = e.map_err(|e| NsgfError::io(dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name == KEY_FILE
                || (name.starts_with("part-") && name.ends_with(".npz"))
                || (name.starts_with('.') && name.ends_with(".tmp"));
            if ours {
                std::fs::remove_file(e.path()).map_err(|err| NsgfError::io(e.path(), err))?;
            }
        }
        Ok(())
    }

    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("part-{i:05}.npz"))
    }

    /// Part `i`'s arrays, or `None` when it has not been written (an unreadable part counts as
    /// not written, with a warning: it is computed again).
    pub fn get(&self, i: usize) -> Option<NamedArrays> {
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

    /// Computes rows `0..n` (`n ≥ 1`) in parts of `size` rows. `draw(rows)` gives a part's
    /// named arrays: `x` with one row per sample, and every name in `required`. The parts
    /// already written are reused (one without `x` of the part's length or without a
    /// `required` array is drawn again), each new one is written as soon as it is drawn, so
    /// that an interrupted computation run again with the same key resumes. `each(rows, arrays)`
    /// receives the parts in order, one at a time.
    pub fn draw(
        &self,
        n: usize,
        size: usize,
        required: &[&str],
        mut draw: impl FnMut(std::ops::Range<usize>) -> Result<Vec<(&'static str, NpyArray)>>,
        mut each: impl FnMut(std::ops::Range<usize>, NamedArrays) -> Result<()>,
    ) -> Result<()> {
        if n == 0 {
            return Err(NsgfError::Param("nothing to compute: 0 rows".into()));
        }
        let size = size.max(1);
        for (i, start) in (0..n).step_by(size).enumerate() {
            let rows = start..(start + size).min(n);
            let m = rows.len();
            let whole = |a: &NamedArrays| {
                a.iter()
                    .any(|(k, v)| k == "x" && v.shape.first() == Some(&m))
                    && required.iter().all(|r| a.iter().any(|(k, _)| k == r))
            };
            let arrays = match self.get(i).filter(whole) {
                Some(a) => a,
                None => {
                    let a = draw(rows.clone())?;
                    self.put(i, &a)?;
                    a.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                }
            };
            each(rows, arrays)?;
        }
        Ok(())
    }

    /// Removes the folder once the whole result is written elsewhere (already gone: fine).
    pub fn finish(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NsgfError::io(&self.dir, e)),
            _ => Ok(()),
        }
    }
}

/// Array `name` of a part as f64, of `len` values (a clear error otherwise).
pub fn part_f64(
    arrays: &[(String, NpyArray)],
    name: &str,
    len: usize,
    dir: &Path,
) -> Result<Vec<f64>> {
    let v = arrays
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| a.to_f64())
        .ok_or_else(|| NsgfError::format(dir, format!("a part has no array {name}")))?;
    if v.len() != len {
        return Err(NsgfError::format(
            dir,
            format!("a part's {name} has {} values, expected {len}", v.len()),
        ));
    }
    Ok(v)
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
        let slash = tmp.path().join("pngs/");
        assert_eq!(
            Parts::beside(&slash, ".parts"),
            tmp.path().join("pngs.parts")
        );
        let parts = Parts::open(dir.clone(), "draw A").unwrap();
        assert!(parts.get(0).is_none());
        parts
            .put(0, &[("x", NpyArray::f32(vec![2], vec![1.0, 2.0]))])
            .unwrap();
        // Reopened with the same key: the part is there.
        drop(parts);
        let parts = Parts::open(dir.clone(), "draw A").unwrap();
        let got = parts.get(0).unwrap();
        assert_eq!(part_f32(&got, "x", &dir).unwrap(), [1.0, 2.0]);
        assert!(part_f32(&got, "y", &dir).is_err());
        // A corrupt part is computed again, not trusted.
        std::fs::write(dir.join("part-00001.npz"), b"not a zip").unwrap();
        assert!(parts.get(1).is_none());
        // Another key: the old parts are gone, a file that is not ours stays.
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        drop(parts);
        let parts = Parts::open(dir.clone(), "draw B").unwrap();
        assert!(parts.get(0).is_none() && parts.get(1).is_none());
        assert_eq!(
            std::fs::read_to_string(dir.join(KEY_FILE)).unwrap(),
            "draw B"
        );
        assert!(dir.join("notes.txt").exists());
        parts.finish().unwrap();
        assert!(!dir.exists());
        // Finishing a folder that is already gone is fine.
        Parts {
            dir: dir.clone(),
            _lock: None,
        }
        .finish()
        .unwrap();
        // A folder in the way that is not a parts folder is an error, left as it is.
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("precious.png"), b"x").unwrap();
        let e = Parts::open(dir.clone(), "draw C").unwrap_err().to_string();
        assert!(e.contains("no key.txt"), "{e}");
        assert!(dir.join("precious.png").exists());
    }

    /// While one `Parts` holds a folder, opening it again (as a second process would: a new
    /// open file description) is a clear error that touches nothing; once dropped, it opens.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_folder_in_use_is_not_opened_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out.npy.parts");
        let parts = Parts::open(dir.clone(), "draw A").unwrap();
        parts
            .put(0, &[("x", NpyArray::f32(vec![1], vec![7.0]))])
            .unwrap();
        for key in ["draw A", "draw B"] {
            let e = Parts::open(dir.clone(), key).unwrap_err().to_string();
            assert!(e.contains("in use by another process"), "{e}");
        }
        assert!(
            parts.get(0).is_some(),
            "the other key's open cleared nothing"
        );
        drop(parts);
        let parts = Parts::open(dir.clone(), "draw A").unwrap();
        assert!(parts.get(0).is_some());
        // A file where the folder should be: a clear error.
        let file = tmp.path().join("file.parts");
        std::fs::write(&file, b"x").unwrap();
        let e = Parts::open(file, "k").unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
    }

    /// A draw that fails in its third part resumes from the two written: only the missing
    /// parts are drawn again, and the result equals an uninterrupted draw.
    #[test]
    fn an_interrupted_draw_resumes_from_its_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let rows_of = |r: std::ops::Range<usize>| {
            let x: Vec<f32> = r.clone().map(|i| i as f32).collect();
            Ok(vec![
                ("x", NpyArray::f32(vec![r.len(), 1], x)),
                ("nfe", NpyArray::f64(vec![1], vec![r.len() as f64])),
            ])
        };
        let collect = |parts: &Parts,
                       draw: &mut dyn FnMut(
            std::ops::Range<usize>,
        ) -> Result<Vec<(&'static str, NpyArray)>>| {
            let mut got = Vec::new();
            parts
                .draw(7, 3, &["nfe"], draw, |r, a| {
                    got.push((r, part_f32(&a, "x", Path::new("x"))?));
                    Ok(())
                })
                .map(|()| got)
        };
        let whole = collect(&Parts::open(tmp.path().join("a"), "k").unwrap(), &mut |r| {
            rows_of(r)
        })
        .unwrap();
        let parts = Parts::open(tmp.path().join("b"), "k").unwrap();
        let mut drawn = Vec::new();
        let err = collect(&parts, &mut |r| {
            drawn.push(r.clone());
            if r.start == 6 {
                return Err(NsgfError::Other("stopped".into()));
            }
            rows_of(r)
        });
        assert!(err.is_err());
        assert_eq!(drawn, [0..3, 3..6, 6..7]);
        drop(parts);
        // Part 1 lost its `nfe` array: it is drawn again too.
        let p1 = tmp.path().join("b/part-00001.npz");
        write_npz(
            &p1,
            &[("x", NpyArray::f32(vec![3, 1], vec![3.0, 4.0, 5.0]))],
        )
        .unwrap();
        let parts = Parts::open(tmp.path().join("b"), "k").unwrap();
        let mut again = Vec::new();
        let resumed = collect(&parts, &mut |r| {
            again.push(r.clone());
            rows_of(r)
        })
        .unwrap();
        assert_eq!(again, [3..6, 6..7]);
        assert_eq!(resumed, whole);
        let flat: Vec<f32> = whole.iter().flat_map(|(_, x)| x.clone()).collect();
        assert_eq!(flat, (0..7).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(
            whole.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
            [0..3, 3..6, 6..7]
        );
        assert!(parts.draw(0, 3, &[], rows_of, |_, _| Ok(())).is_err());
    }
}
