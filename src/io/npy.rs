//! NumPy `.npy` (format versions 1.0, 2.0, 3.0) and `.npz` (a zip of `.npy` members, stored or
//! deflated) reading and writing.
//!
//! Reading accepts what `np.save` / `np.savez` / `np.savez_compressed` write: dtypes `f4`, `f8`,
//! `u1`, `i4`, `i8` in either byte order (`<f8`, `>f8`, ...), C or Fortran order
//! (`fortran_order: True`, e.g. a transposed array; transposed on load, so [`NpyArray::data`] is
//! always C order). Writing produces little-endian C-order `f4`, `f8`, `u1`, `i8`.
//! Every malformed input (bad magic, truncated data, unsupported dtype, a `fortran_order` that is
//! neither `True` nor `False`, a shape that does not match the byte count) is reported as
//! [`NsgfError::Format`] naming the file.

use crate::error::{NsgfError, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Element storage of an array read from or written to a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    U8(Vec<u8>),
    I64(Vec<i64>),
}

/// An n-dimensional array in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Elements in C (row-major) order.
    pub data: NpyData,
}

impl NpyArray {
    /// A float32 array.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::F32(data),
        }
    }
    /// A float64 array.
    pub fn f64(shape: Vec<usize>, data: Vec<f64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::F64(data),
        }
    }
    /// A uint8 array.
    pub fn u8(shape: Vec<usize>, data: Vec<u8>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::U8(data),
        }
    }
    /// An int64 array.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::I64(data),
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements converted to f64.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
    /// The elements converted to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    fn descr(&self) -> &'static str {
        match self.data {
            NpyData::F32(_) => "<f4",
            NpyData::F64(_) => "<f8",
            NpyData::U8(_) => "|u1",
            NpyData::I64(_) => "<i8",
        }
    }
    fn data_bytes(&self) -> Vec<u8> {
        match &self.data {
            NpyData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::U8(v) => v.clone(),
            NpyData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses `.npy` bytes; `path` is only used in error messages.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let err = |m: String| NsgfError::format(path, m);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("not a NumPy .npy file (bad magic string)".into()));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("truncated .npy header".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(err(format!("unsupported .npy format version {v}"))),
    };
    if bytes.len() < start + header_len {
        return Err(err("truncated .npy header".into()));
    }
    let header = std::str::from_utf8(&bytes[start..start + header_len])
        .map_err(|_| err("the .npy header is not valid text".into()))?;
    let descr = dict_value(header, "descr").ok_or_else(|| err("header has no 'descr'".into()))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran_s = dict_value(header, "fortran_order")
        .ok_or_else(|| err("header has no 'fortran_order'".into()))?
        .trim();
    let fortran = match fortran_s {
        "True" => true,
        "False" => false,
        v => {
            return Err(err(format!(
                "malformed header: 'fortran_order' is {v:?}, expected True or False"
            )))
        }
    };
    let shape_s = dict_value(header, "shape").ok_or_else(|| err("header has no 'shape'".into()))?;
    let shape_s = shape_s.trim();
    let inner = shape_s
        .strip_prefix('(')
        .and_then(|s| s.find(')').map(|e| &s[..e]))
        .ok_or_else(|| err(format!("malformed shape {shape_s}")))?;
    let mut shape = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        shape.push(
            part.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| err(format!("malformed shape {shape_s}")))?,
        );
    }
    let count = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| err("shape overflows".into()))?;
    let body = &bytes[start + header_len..];
    // Byte order: '<' little, '>' big, '=' native, '|' not applicable (one-byte types); no prefix
    // means native.
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        Some(b'=') => (cfg!(target_endian = "big"), &descr[1..]),
        _ => (cfg!(target_endian = "big"), descr),
    };
    let (kind, size) = match code {
        "f4" => ("f4", 4),
        "f8" => ("f8", 8),
        "u1" => ("u1", 1),
        "i8" => ("i8", 8),
        "i4" => ("i4", 4),
        _ => {
            return Err(err(format!(
                "unsupported dtype {descr} (supported: float32, float64, uint8, int32, int64, \
                 either byte order)"
            )))
        }
    };
    let need = count
        .checked_mul(size)
        .ok_or_else(|| err("shape overflows".into()))?;
    if body.len() < need {
        return Err(err(format!(
            "truncated data: shape {shape:?} of {descr} needs {need} bytes, file has {}",
            body.len()
        )));
    }
    if body.len() > need {
        return Err(err(format!(
            "data does not match the header: shape {shape:?} of {descr} needs {need} bytes, \
             file has {} ({} trailing)",
            body.len(),
            body.len() - need
        )));
    }
    fn decode<const N: usize, T>(
        body: &[u8],
        big: bool,
        le: fn([u8; N]) -> T,
        be: fn([u8; N]) -> T,
    ) -> Vec<T> {
        let f = if big { be } else { le };
        body.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect()
    }
    let b = big_endian;
    let mut data = match kind {
        "f4" => NpyData::F32(decode(body, b, f32::from_le_bytes, f32::from_be_bytes)),
        "f8" => NpyData::F64(decode(body, b, f64::from_le_bytes, f64::from_be_bytes)),
        "u1" => NpyData::U8(body.to_vec()),
        "i8" => NpyData::I64(decode(body, b, i64::from_le_bytes, i64::from_be_bytes)),
        _ => NpyData::I64(
            decode(body, b, i32::from_le_bytes, i32::from_be_bytes)
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
    };
    if fortran && shape.len() > 1 {
        data = match data {
            NpyData::F32(v) => NpyData::F32(fortran_to_c(&v, &shape)),
            NpyData::F64(v) => NpyData::F64(fortran_to_c(&v, &shape)),
            NpyData::U8(v) => NpyData::U8(fortran_to_c(&v, &shape)),
            NpyData::I64(v) => NpyData::I64(fortran_to_c(&v, &shape)),
        };
    }
    Ok(NpyArray { shape, data })
}

/// Reorders the elements of an array of `shape` from Fortran (column-major) order to C
/// (row-major) order. For 0-d and 1-d arrays the two orders coincide.
fn fortran_to_c<T: Copy>(src: &[T], shape: &[usize]) -> Vec<T> {
    let nd = shape.len();
    if nd < 2 || src.is_empty() {
        return src.to_vec();
    }
    debug_assert_eq!(shape.iter().product::<usize>(), src.len());
    // Fortran strides (in elements): the first axis varies fastest.
    let mut stride = vec![1usize; nd];
    for j in 1..nd {
        stride[j] = stride[j - 1] * shape[j - 1];
    }
    // Walk the C-order multi-index (last axis fastest) in rows of the last axis, keeping the
    // Fortran offset of the row start.
    let (last, last_stride) = (shape[nd - 1], stride[nd - 1]);
    let mut idx = vec![0usize; nd - 1];
    let mut off = 0usize;
    let mut out = Vec::with_capacity(src.len());
    for _ in 0..src.len() / last {
        out.extend((0..last).map(|k| src[off + k * last_stride]));
        // Advance the outer index (axes 0..nd-1, the one before last fastest).
        let mut j = nd - 1;
        while j > 0 {
            j -= 1;
            idx[j] += 1;
            off += stride[j];
            if idx[j] < shape[j] {
                break;
            }
            off -= stride[j] * shape[j];
            idx[j] = 0;
        }
    }
    out
}

/// Finds the raw text of `key`'s value in a Python dict literal (good enough for .npy headers).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[pos + key.len() + 2..];
    let colon = rest.find(':')?;
    let rest = &rest[colon + 1..];
    // The value ends at the first top-level comma or closing brace.
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// Serialises an array as `.npy` (version 1.0) bytes.
pub fn npy_bytes(arr: &NpyArray) -> Vec<u8> {
    let shape = match arr.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", arr.shape[0]),
        _ => format!(
            "({})",
            arr.shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        arr.descr(),
        shape
    );
    // Pad so that the data start is 64-byte aligned; the header ends with '\n'.
    let total = MAGIC.len() + 2 + 2 + header.len() + 1;
    let pad = (64 - total % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + arr.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&arr.data_bytes());
    out
}

/// Reads a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| NsgfError::io(path, e))?;
    parse_npy(&bytes, path)
}

/// Writes a `.npy` file atomically (temporary file + rename).
pub fn write_npy(path: impl AsRef<Path>, arr: &NpyArray) -> Result<()> {
    write_atomic(path.as_ref(), &npy_bytes(arr))
}

/// Reads every member of an `.npz` archive, in archive order, names without the `.npy` suffix.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NpyArray)>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| NsgfError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| NsgfError::format(path, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| NsgfError::format(path, format!("corrupt .npz member {i}: {e}")))?;
        let name = member.name().trim_end_matches(".npy").to_string();
        let mut bytes = Vec::new();
        member
            .read_to_end(&mut bytes)
            .map_err(|e| NsgfError::format(path, format!("corrupt .npz member {name}: {e}")))?;
        let arr = parse_npy(&bytes, &path.join(&name))?;
        out.push((name, arr));
    }
    Ok(out)
}

/// Writes an uncompressed `.npz` archive (as `numpy.savez` does), atomically.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, NpyArray)]) -> Result<()> {
    let path = path.as_ref();
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, arr) in arrays {
            let z = |e: zip::result::ZipError| NsgfError::format(path, e.to_string());
            zip.start_file(format!("{name}.npy"), opts).map_err(z)?;
            zip.write_all(&npy_bytes(arr))
                .map_err(|e| NsgfError::io(path, e))?;
        }
        zip.finish()
            .map_err(|e| NsgfError::format(path, e.to_string()))?;
    }
    write_atomic(path, &buf.into_inner())
}

/// Writes `bytes` to `path` through a temporary file in the same folder (flushed to disk) and a
/// rename, so that neither a crash nor a failed write (disk full, read-only folder) leaves a
/// half-written file under the final name: on failure the previous file is untouched and the
/// temporary one removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stage_file(path, bytes)?.commit()
}

/// A file written and flushed under a temporary name beside `path`; [`StagedFile::commit`]
/// renames it into place, dropping it uncommitted removes it. Several staged files committed
/// together replace a set of files only once every one of them has been written.
#[derive(Debug)]
pub struct StagedFile {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

/// Writes `bytes` to a temporary file beside `path` (see [`StagedFile`]).
pub fn stage_file(path: &Path, bytes: &[u8]) -> Result<StagedFile> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            crate::io::create_dir_all(dir)?;
        }
    }
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let staged = StagedFile {
        tmp: tmp.clone(),
        path: path.to_path_buf(),
        committed: false,
    };
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        if fault::take() {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (injected fault)",
            ));
        }
        f.write_all(bytes)?;
        f.sync_all()
    };
    // On failure `staged` is dropped here, which removes the partial temporary file.
    write().map_err(|e| NsgfError::io(&tmp, e))?;
    Ok(staged)
}

impl StagedFile {
    /// Renames the temporary file onto the final path.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| NsgfError::io(&self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Fault injection for tests of failing writes: [`fail_write_after`](fault::fail_write_after)`(k)`
/// makes the write of the `(k + 1)`-th file staged from then on (by this process, any thread)
/// fail half-way with "no space left on device", as a full disk would.
#[doc(hidden)]
pub mod fault {
    use std::sync::atomic::{AtomicI64, Ordering};

    static COUNTDOWN: AtomicI64 = AtomicI64::new(-1);

    /// Lets `k` more staged writes succeed, then fails one.
    pub fn fail_write_after(k: usize) {
        COUNTDOWN.store(k as i64, Ordering::SeqCst);
    }

    /// Disarms the fault.
    pub fn clear() {
        COUNTDOWN.store(-1, Ordering::SeqCst);
    }

    /// True when this write is the one to fail (then disarms).
    pub(crate) fn take() -> bool {
        let mut cur = COUNTDOWN.load(Ordering::SeqCst);
        while cur >= 0 {
            match COUNTDOWN.compare_exchange(cur, cur - 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return cur == 0,
                Err(now) => cur = now,
            }
        }
        false
    }
}

/// A point cloud: `n` points in `d` dimensions, row-major f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    pub n: usize,
    pub d: usize,
    pub data: Vec<f64>,
}

/// Reads an `(n, d)` float array from `.npy` and checks it: two dimensions, at least one point,
/// finite values.
pub fn read_points(path: impl AsRef<Path>) -> Result<Points> {
    let path = path.as_ref();
    let arr = read_npy(path)?;
    if arr.shape.len() != 2 {
        return Err(NsgfError::format(
            path,
            format!("expected a 2-D array (n, d), found shape {:?}", arr.shape),
        ));
    }
    if !matches!(arr.data, NpyData::F32(_) | NpyData::F64(_)) {
        return Err(NsgfError::format(
            path,
            "expected a float32 or float64 array",
        ));
    }
    let (n, d) = (arr.shape[0], arr.shape[1]);
    if n == 0 || d == 0 {
        return Err(NsgfError::format(
            path,
            format!("empty point cloud (shape {:?})", arr.shape),
        ));
    }
    let data = arr.to_f64();
    crate::error::ensure_finite(&data, &path.display().to_string())?;
    Ok(Points { n, d, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_all_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        for arr in [
            NpyArray::f32(vec![2, 3], vec![1.0, -2.5, 3.0, 4.0, 5.5, 6.0]),
            NpyArray::f64(vec![3], vec![1e-300, -0.0, 7.25]),
            NpyArray::u8(vec![2, 2, 1], vec![0, 255, 7, 9]),
            NpyArray::f32(vec![], vec![42.0]),
        ] {
            let p = dir.path().join("a.npy");
            write_npy(&p, &arr).unwrap();
            assert_eq!(read_npy(&p).unwrap(), arr);
            let header = std::fs::read(&p).unwrap().len() - arr.data_bytes().len();
            assert_eq!(header % 64, 0, "data must start 64-byte aligned");
        }
    }

    #[test]
    fn fortran_to_c_matches_the_index_formula() {
        for shape in [
            vec![],
            vec![4],
            vec![2, 3],
            vec![3, 1, 2],
            vec![2, 3, 4, 2],
            vec![1, 5],
            vec![0, 3],
        ] {
            let n: usize = shape.iter().product();
            let f: Vec<usize> = (0..n).collect();
            let c = fortran_to_c(&f, &shape);
            // C index k -> multi-index -> Fortran offset.
            let want: Vec<usize> = (0..n)
                .map(|k| {
                    let (mut rem, mut off, mut stride) = (k, 0, 1);
                    let mut idx = vec![0; shape.len()];
                    for j in (0..shape.len()).rev() {
                        idx[j] = rem % shape[j];
                        rem /= shape[j];
                    }
                    for j in 0..shape.len() {
                        off += idx[j] * stride;
                        stride *= shape[j];
                    }
                    off
                })
                .collect();
            assert_eq!(c, want, "{shape:?}");
        }
    }

    #[test]
    fn npz_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npz");
        let a = NpyArray::f32(vec![2], vec![1.0, 2.0]);
        let b = NpyArray::f64(vec![], vec![3.5]);
        write_npz(&p, &[("a", a.clone()), ("loss", b.clone())]).unwrap();
        let back = read_npz(&p).unwrap();
        assert_eq!(back, vec![("a".to_string(), a), ("loss".to_string(), b)]);
    }

    #[test]
    fn rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        std::fs::write(&p, b"hello world, not numpy").unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("bad magic"));
        // Truncated data.
        let mut bytes = npy_bytes(&NpyArray::f64(vec![4, 2], vec![0.0; 8]));
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&p, &bytes).unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("truncated"));
        // Wrong rank for points.
        write_npy(&p, &NpyArray::f64(vec![4], vec![0.0; 4])).unwrap();
        assert!(read_points(&p).unwrap_err().to_string().contains("2-D"));
        // NaN.
        write_npy(&p, &NpyArray::f64(vec![2, 1], vec![0.0, f64::NAN])).unwrap();
        assert!(read_points(&p)
            .unwrap_err()
            .to_string()
            .contains("non-finite"));
        // Empty.
        write_npy(&p, &NpyArray::f64(vec![0, 2], vec![])).unwrap();
        assert!(read_points(&p).unwrap_err().to_string().contains("empty"));
        // Missing file.
        assert!(read_npy(dir.path().join("nope.npy")).is_err());
    }
}
