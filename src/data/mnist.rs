//! MNIST in LeCun's IDX format (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
//! `t10k-…`), plain or gzip-compressed (detected from the magic bytes `1f 8b`, not the name).
//!
//! IDX layout (big-endian): a 4-byte magic `00 00 <type> <ndim>` with type `0x08` (unsigned
//! byte), then `ndim` u32 dimensions, then the samples in row-major order. Images are
//! `0x00000803` (count, rows, cols), labels `0x00000801` (count). Pixels are 0 = background,
//! 255 = ink, and are returned unchanged as a 1-channel [`ImageBatch`] `[N, rows, cols, 1]`
//! (NHWC, i.e. `[N, 28, 28]` for MNIST).
//!
//! Every malformed file is an [`NsgfError::Format`] naming it: a wrong magic, a zero dimension,
//! a payload shorter (truncated) or longer (trailing bytes) than the header claims, corrupt gzip
//! data. A header that claims more samples than the file can hold is refused before anything is
//! allocated (for a gzip file the bound is DEFLATE's maximal compression ratio, 1032:1), and the
//! payload of a gzip file is read incrementally, so a lying header never causes a large
//! allocation.

use super::dataset::{ImageDataset, Split};
use super::images::ImageBatch;
use crate::error::{NsgfError, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
/// Number of MNIST classes (digits 0..9).
pub const MNIST_CLASSES: usize = 10;

/// DEFLATE cannot expand data by more than this factor (a 258-byte match per ~2 bits).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An opened IDX file: its reader and an upper bound of the bytes it can still deliver.
struct IdxReader {
    path: PathBuf,
    reader: Box<dyn Read>,
    gzip: bool,
    /// Exact remaining byte count for a plain file, an upper bound for a gzip file.
    available: u64,
}

impl IdxReader {
    fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| NsgfError::io(path, e))?;
        let len = file.metadata().map_err(|e| NsgfError::io(path, e))?.len();
        let mut head = [0u8; 2];
        let got = read_up_to(&mut file, &mut head).map_err(|e| NsgfError::io(path, e))?;
        let gzip = got == 2 && head == [0x1f, 0x8b];
        let prefix = std::io::Cursor::new(head[..got].to_vec());
        let chained = prefix.chain(file);
        let (reader, available): (Box<dyn Read>, u64) = if gzip {
            let decoder = MultiGzDecoder::new(BufReader::new(chained));
            (
                Box::new(decoder),
                len.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024),
            )
        } else {
            (Box::new(BufReader::new(chained)), len)
        };
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            gzip,
            available,
        })
    }

    /// Maps a read error: corrupt gzip data and early ends are format errors naming the file.
    fn read_error(&self, e: std::io::Error, what: &str) -> NsgfError {
        match e.kind() {
            ErrorKind::UnexpectedEof => NsgfError::format(
                &self.path,
                format!("truncated: the file ends inside {what}"),
            ),
            ErrorKind::InvalidData | ErrorKind::InvalidInput if self.gzip => {
                NsgfError::format(&self.path, format!("corrupt gzip data: {e}"))
            }
            _ => NsgfError::io(&self.path, e),
        }
    }

    /// Reads the magic and the dimensions, checking them against the expected magic.
    fn header(&mut self, magic: u32) -> Result<Vec<usize>> {
        let mut m = [0u8; 4];
        self.reader
            .read_exact(&mut m)
            .map_err(|e| self.read_error(e, "the 4-byte IDX magic"))?;
        let got = u32::from_be_bytes(m);
        let kind = if magic == IDX_IMAGES_MAGIC {
            "image"
        } else {
            "label"
        };
        if m[0] != 0 || m[1] != 0 {
            return Err(NsgfError::format(
                &self.path,
                format!(
                    "not an IDX file: magic {got:#010x}, expected {magic:#010x} (an IDX {kind} file)"
                ),
            ));
        }
        if m[2] != 0x08 {
            return Err(NsgfError::format(
                &self.path,
                format!(
                    "IDX data type {:#04x} is not unsigned byte (0x08); magic {got:#010x}, expected \
                     {magic:#010x}",
                    m[2]
                ),
            ));
        }
        if got != magic {
            return Err(NsgfError::format(
                &self.path,
                format!(
                    "IDX file has {} dimension(s) (magic {got:#010x}) but an IDX {kind} file has {} \
                     (magic {magic:#010x})",
                    m[3],
                    magic & 0xff
                ),
            ));
        }
        let ndim = m[3] as usize;
        let mut dims = Vec::with_capacity(ndim);
        for i in 0..ndim {
            let mut d = [0u8; 4];
            self.reader
                .read_exact(&mut d)
                .map_err(|e| self.read_error(e, "the IDX header"))?;
            let d = u32::from_be_bytes(d) as usize;
            if d == 0 {
                return Err(NsgfError::format(
                    &self.path,
                    format!("IDX dimension {i} is 0: the file holds no data"),
                ));
            }
            dims.push(d);
        }
        self.available = self.available.saturating_sub(4 + 4 * ndim as u64);
        Ok(dims)
    }

    /// Reads exactly `len` payload bytes and checks that nothing follows them.
    fn payload(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        let too_big = || {
            NsgfError::format(
                &self.path,
                format!(
                    "header claims {what} ({len} bytes) but the file {}",
                    if self.gzip {
                        format!(
                            "is a gzip stream that cannot decompress to more than {} bytes",
                            self.available
                        )
                    } else {
                        format!(
                            "holds only {} bytes after the header (truncated)",
                            self.available
                        )
                    }
                ),
            )
        };
        if len > self.available {
            return Err(too_big());
        }
        let Ok(want) = usize::try_from(len) else {
            return Err(too_big());
        };
        if !self.gzip && len < self.available {
            return Err(NsgfError::format(
                &self.path,
                format!(
                    "{} trailing bytes after the {what} ({len} bytes) the header claims",
                    self.available - len
                ),
            ));
        }
        let mut data = Vec::new();
        if !self.gzip {
            // The exact size is known and bounded by the file's length.
            data.reserve_exact(want);
        }
        // One byte more than claimed, to detect trailing data; grows only as data arrives.
        let got = (&mut self.reader)
            .take(len + 1)
            .read_to_end(&mut data)
            .map_err(|e| self.read_error(e, "the payload"))?;
        if got < want {
            return Err(NsgfError::format(
                &self.path,
                format!("truncated: header claims {what} ({len} bytes) but only {got} follow"),
            ));
        }
        if got > want {
            let mut extra = 1u64;
            let mut sink = [0u8; 8192];
            loop {
                match self.reader.read(&mut sink) {
                    Ok(0) => break,
                    Ok(k) => extra += k as u64,
                    // Corrupt data after the claimed payload: the count stays a lower bound.
                    Err(_) => break,
                }
            }
            data.truncate(want);
            return Err(NsgfError::format(
                &self.path,
                format!("{extra} trailing bytes after the {what} ({len} bytes) the header claims"),
            ));
        }
        Ok(data)
    }
}

/// Like `read_exact`, but returns how many bytes were read when the reader ends first.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads an IDX image file (magic `0x00000803`, plain or gzip) as a 1-channel uint8
/// [`ImageBatch`] of shape `[count, rows, cols, 1]` (NHWC), pixels unchanged.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<ImageBatch> {
    let path = path.as_ref();
    let mut r = IdxReader::open(path)?;
    let dims = r.header(IDX_IMAGES_MAGIC)?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    let len = (n as u64)
        .checked_mul(rows as u64)
        .and_then(|v| v.checked_mul(cols as u64))
        .ok_or_else(|| {
            NsgfError::format(
                path,
                format!("header claims {n} images of {rows}x{cols}: too large"),
            )
        })?;
    let data = r.payload(len, &format!("{n} images of {rows}x{cols}"))?;
    ImageBatch::new(n, rows, cols, 1, data)
}

/// Reads an IDX label file (magic `0x00000801`, plain or gzip): one byte per sample.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let mut r = IdxReader::open(path)?;
    let dims = r.header(IDX_LABELS_MAGIC)?;
    r.payload(dims[0] as u64, &format!("{} labels", dims[0]))
}

/// The two files of one MNIST split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MnistFiles {
    /// `{train,t10k}-images-idx3-ubyte[.gz]`.
    pub images: PathBuf,
    /// `{train,t10k}-labels-idx1-ubyte[.gz]`.
    pub labels: PathBuf,
}

/// Finds the files of `split` in `dir` (the layout of `shared/data/mnist/`): prefix `train` or
/// `t10k`, names `<prefix>-images-idx3-ubyte` / `<prefix>-labels-idx1-ubyte` (a `.` instead of
/// the `-` before `idx` is accepted too), each plain or with `.gz`; a plain file is preferred
/// when both exist.
pub fn mnist_files(dir: impl AsRef<Path>, split: Split) -> Result<MnistFiles> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(NsgfError::format(dir, "MNIST directory does not exist"));
    }
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let find = |kind: &str, idx: &str| -> Result<PathBuf> {
        let mut tried = Vec::new();
        for sep in ['-', '.'] {
            for ext in ["", ".gz"] {
                let name = format!("{prefix}-{kind}{sep}{idx}-ubyte{ext}");
                let p = dir.join(&name);
                if p.is_file() {
                    return Ok(p);
                }
                tried.push(name);
            }
        }
        Err(NsgfError::format(
            dir,
            format!(
                "no MNIST {split} {kind} file (looked for {})",
                tried.join(", ")
            ),
        ))
    };
    Ok(MnistFiles {
        images: find("images", "idx3")?,
        labels: find("labels", "idx1")?,
    })
}

/// Reads an MNIST split from `dir` (see [`mnist_files`]): 1-channel uint8 images
/// `[N, 28, 28, 1]` (any IDX size is accepted) with their labels 0..9, classes named `"0"`..`"9"`.
/// The image and label counts must agree and every label must be below 10.
pub fn load_mnist(dir: impl AsRef<Path>, split: Split) -> Result<ImageDataset> {
    let files = mnist_files(dir, split)?;
    let images = read_idx_images(&files.images)?;
    let labels = read_idx_labels(&files.labels)?;
    if labels.len() != images.n {
        return Err(NsgfError::format(
            &files.labels,
            format!(
                "{} labels but {} holds {} images",
                labels.len(),
                files.images.display(),
                images.n
            ),
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l as usize >= MNIST_CLASSES) {
        return Err(NsgfError::format(
            &files.labels,
            format!("label {i} is {}, not a digit 0..9", labels[i]),
        ));
    }
    let classes = (0..MNIST_CLASSES).map(|d| d.to_string()).collect();
    ImageDataset::new(images, Some(labels), classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    pub(crate) fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = IDX_LABELS_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8 * 10).collect();
        let raw = idx_images(2, 3, 4, &pixels);
        std::fs::write(dir.path().join("a"), &raw).unwrap();
        std::fs::write(dir.path().join("a.gz"), gz(&raw)).unwrap();
        // The name does not matter: gzip is detected from the content.
        std::fs::write(dir.path().join("b"), gz(&raw)).unwrap();
        for name in ["a", "a.gz", "b"] {
            let b = read_idx_images(dir.path().join(name)).unwrap();
            assert_eq!((b.n, b.height, b.width, b.channels), (2, 3, 4, 1));
            assert_eq!(b.data, pixels);
        }
        std::fs::write(dir.path().join("l"), gz(&idx_labels(&[3, 1, 4]))).unwrap();
        assert_eq!(
            read_idx_labels(dir.path().join("l")).unwrap(),
            vec![3, 1, 4]
        );
    }

    #[test]
    fn huge_claim_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        // 10^12 images of 28x28 claimed by a 16 + 10 byte file, plain and gzip.
        let raw = idx_images(1_000_000_000, 1000, 28 * 28, &[0; 10]);
        let p = dir.path().join("huge");
        std::fs::write(&p, &raw).unwrap();
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(e.contains("huge") && e.contains("truncated"), "{e}");
        std::fs::write(&p, gz(&raw)).unwrap();
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(e.contains("huge") && e.contains("cannot decompress"), "{e}");
    }
}
