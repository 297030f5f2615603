//! uint8 image sets: folders of PNG files, `.npy` image arrays (evaluation, training through
//! [`super::dataset::ImageDataset`]) and class-folder trees ([`ClassFolders`]).
//!
//! Images are kept as uint8, NHWC, with 1 (grey) or 3 (RGB) channels. A folder is scanned once
//! (file names sorted, only the PNG headers read) so that inconsistent sizes are reported
//! before any work, then decoded batch by batch ([`ImageSource::batch`]), so large folders never
//! sit in memory whole.
//!
//! Folder rules (pytorch-fid reads the files of one folder, not its subfolders):
//! * every regular file whose name does not start with `.` must be a `.png` image (other files,
//!   including other image formats, are an error naming the file); subfolders are ignored;
//! * all images must have the same width and height;
//! * colour handling follows PIL's `convert('RGB')`: alpha is dropped, palettes are expanded,
//!   16-bit samples are reduced to 8 bits; if every image is grey the set is kept as 1 channel
//!   (the network repeats it to 3), otherwise grey images are repeated to RGB.

use crate::error::{NsgfError, Result};
use crate::io::npy::{read_npy, NpyData};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// A batch of uint8 images, NHWC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageBatch {
    /// Number of images.
    pub n: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// `n * height * width * channels` samples, NHWC.
    pub data: Vec<u8>,
}

impl ImageBatch {
    /// Checks the sizes and wraps the data.
    pub fn new(
        n: usize,
        height: usize,
        width: usize,
        channels: usize,
        data: Vec<u8>,
    ) -> Result<Self> {
        if data.len() != n * height * width * channels {
            return Err(NsgfError::Shape(format!(
                "{} bytes do not form {n} images of {height}x{width}x{channels}",
                data.len()
            )));
        }
        Ok(Self {
            n,
            height,
            width,
            channels,
            data,
        })
    }

    /// Images `start..end` (clamped to `n`).
    pub fn slice(&self, start: usize, end: usize) -> ImageBatch {
        let end = end.min(self.n);
        let start = start.min(end);
        let per = self.height * self.width * self.channels;
        ImageBatch {
            n: end - start,
            height: self.height,
            width: self.width,
            channels: self.channels,
            data: self.data[start * per..end * per].to_vec(),
        }
    }
}

impl ImageBatch {
    /// `k` of the images, evenly spaced: image `⌊i·n/k⌋` for `i = 0..k` (all of them when
    /// `k ≥ n`). A subset that keeps the class mix of a set stored class by class (the CIFAR-10
    /// PNG folders) up to one image per class.
    pub fn evenly_spaced(&self, k: usize) -> ImageBatch {
        if k >= self.n {
            return self.clone();
        }
        let per = self.height * self.width * self.channels;
        let mut data = Vec::with_capacity(k * per);
        for i in 0..k {
            let j = i * self.n / k;
            data.extend_from_slice(&self.data[j * per..(j + 1) * per]);
        }
        ImageBatch {
            n: k,
            data,
            ..*self
        }
    }
}

/// Writes images as a `.npy` uint8 array (N, H, W) (grey) or (N, H, W, 3) (RGB), atomically:
/// the format [`read_image_npy`] and `numpy.load` read.
pub fn write_image_npy(path: impl AsRef<Path>, images: &ImageBatch) -> Result<()> {
    let mut shape = vec![images.n, images.height, images.width];
    if images.channels != 1 {
        shape.push(images.channels);
    }
    crate::io::npy::write_npy(
        path.as_ref(),
        &crate::io::npy::NpyArray::u8(shape, images.data.clone()),
    )
}

/// Writes each image as `dir/000000.png`, `dir/000001.png`, … (creating `dir`).
pub fn write_png_folder(dir: impl AsRef<Path>, images: &ImageBatch) -> Result<()> {
    let dir = dir.as_ref();
    crate::io::create_dir_all(dir)?;
    let (w, h) = (images.width as u32, images.height as u32);
    let per = images.height * images.width * images.channels;
    for (i, px) in images.data.chunks_exact(per.max(1)).enumerate() {
        let path = dir.join(format!("{i:06}.png"));
        let saved = if images.channels == 1 {
            image::GrayImage::from_raw(w, h, px.to_vec()).map(|im| im.save(&path))
        } else {
            image::RgbImage::from_raw(w, h, px.to_vec()).map(|im| im.save(&path))
        };
        match saved {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(NsgfError::Other(format!("writing {}: {e}", path.display())))
            }
            None => return Err(NsgfError::Shape(format!("image {i} has the wrong size"))),
        }
    }
    Ok(())
}

/// A grid of images in one picture: `rows` blocks of images laid out `cols` per line, a
/// `pad`-pixel white border between images and a 3·`pad` gap between blocks (Figs. 5 / 10 / 11 of
/// the paper: one block after the NSGF phase, one of final samples). Grey images are drawn
/// grey.
pub fn image_grid(blocks: &[ImageBatch], cols: usize, pad: usize) -> Result<image::RgbImage> {
    let first = blocks
        .first()
        .ok_or_else(|| NsgfError::Param("an image grid needs at least one block".into()))?;
    let (h, w, c) = (first.height, first.width, first.channels);
    if blocks
        .iter()
        .any(|b| (b.height, b.width, b.channels) != (h, w, c))
        || cols == 0
    {
        return Err(NsgfError::Shape(
            "every block of an image grid needs the same image size (and cols ≥ 1)".into(),
        ));
    }
    let lines: Vec<usize> = blocks.iter().map(|b| b.n.div_ceil(cols).max(1)).collect();
    let width = cols * (w + pad) + pad;
    let height =
        lines.iter().map(|l| l * (h + pad)).sum::<usize>() + pad + 3 * pad * (blocks.len() - 1);
    let mut img =
        image::RgbImage::from_pixel(width as u32, height as u32, image::Rgb([255, 255, 255]));
    let mut y0 = pad;
    for (block, lines) in blocks.iter().zip(&lines) {
        for i in 0..block.n {
            let (gx, gy) = (pad + (i % cols) * (w + pad), y0 + (i / cols) * (h + pad));
            for y in 0..h {
                for x in 0..w {
                    let at = ((i * h + y) * w + x) * c;
                    let px = if c == 1 {
                        let v = block.data[at];
                        [v, v, v]
                    } else {
                        [block.data[at], block.data[at + 1], block.data[at + 2]]
                    };
                    img.put_pixel((gx + x) as u32, (gy + y) as u32, image::Rgb(px));
                }
            }
        }
        y0 += lines * (h + pad) + 3 * pad;
    }
    Ok(img)
}

/// Reads a `.npy` uint8 image array of shape (N, H, W) (grey), (N, H, W, 1) or (N, H, W, 3).
pub fn read_image_npy(path: impl AsRef<Path>) -> Result<ImageBatch> {
    let path = path.as_ref();
    let arr = read_npy(path)?;
    let NpyData::U8(data) = arr.data else {
        return Err(NsgfError::format(
            path,
            "image arrays must be uint8 (values 0..255); convert with \
             `np.clip(x, 0, 255).astype(np.uint8)`",
        ));
    };
    let (n, h, w, c) = match arr.shape[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => {
            return Err(NsgfError::format(
                path,
                format!(
                    "image array has shape {:?}; expected (N, H, W), (N, H, W, 1) or (N, H, W, 3)",
                    arr.shape
                ),
            ))
        }
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(NsgfError::format(
            path,
            format!("image array is empty (shape {:?})", arr.shape),
        ));
    }
    ImageBatch::new(n, h, w, c, data)
}

/// A folder of same-sized PNG images (see the module docs).
#[derive(Clone, Debug)]
pub struct ImageFolder {
    /// The folder.
    pub dir: PathBuf,
    /// The image files, sorted by name.
    pub files: Vec<PathBuf>,
    /// Common height.
    pub height: usize,
    /// Common width.
    pub width: usize,
    /// 1 when every image is grey, else 3.
    pub channels: usize,
}

const OTHER_IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "bmp", "gif", "pgm", "ppm", "tif", "tiff", "webp",
];

impl ImageFolder {
    /// Lists and checks the images of a folder (headers only).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| NsgfError::io(dir, e))? {
            let entry = entry.map_err(|e| NsgfError::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || path.is_dir() {
                continue;
            }
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if ext == "png" {
                files.push(path);
            } else if OTHER_IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                return Err(NsgfError::format(
                    &path,
                    "only PNG images are supported (convert the folder to .png)",
                ));
            } else {
                return Err(NsgfError::format(
                    &path,
                    "not an image: an image folder may only hold .png files (move other files \
                     out of it)",
                ));
            }
        }
        if files.is_empty() {
            return Err(NsgfError::format(dir, "folder holds no .png image"));
        }
        files.sort();
        let headers: Vec<(usize, usize, bool)> = files
            .par_iter()
            .map(|p| read_header(p))
            .collect::<Result<_>>()?;
        let (h0, w0, _) = headers[0];
        if let Some(i) = headers.iter().position(|&(h, w, _)| (h, w) != (h0, w0)) {
            return Err(NsgfError::format(
                &files[i],
                format!(
                    "image is {}x{} (HxW) but {} is {h0}x{w0}; all images of a folder must have \
                     the same size",
                    headers[i].0,
                    headers[i].1,
                    files[0].display()
                ),
            ));
        }
        let channels = if headers.iter().any(|&(_, _, colour)| colour) {
            3
        } else {
            1
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            height: h0,
            width: w0,
            channels,
        })
    }

    /// Decodes images `start..end` (clamped) into one batch.
    pub fn read(&self, start: usize, end: usize) -> Result<ImageBatch> {
        let end = end.min(self.files.len());
        let start = start.min(end);
        let per = self.height * self.width * self.channels;
        let decoded: Vec<Vec<u8>> = self.files[start..end]
            .par_iter()
            .map(|p| {
                let img = image::ImageReader::open(p)
                    .map_err(|e| NsgfError::io(p, e))?
                    .with_guessed_format()
                    .map_err(|e| NsgfError::io(p, e))?
                    .decode()
                    .map_err(|e| NsgfError::format(p, format!("cannot decode image: {e}")))?;
                let bytes = if self.channels == 1 {
                    img.to_luma8().into_raw()
                } else {
                    img.to_rgb8().into_raw()
                };
                if bytes.len() != per {
                    return Err(NsgfError::format(
                        p,
                        format!(
                            "decoded image is not {}x{} (file changed since the folder was opened?)",
                            self.height, self.width
                        ),
                    ));
                }
                Ok(bytes)
            })
            .collect::<Result<_>>()?;
        ImageBatch::new(
            end - start,
            self.height,
            self.width,
            self.channels,
            decoded.concat(),
        )
    }
}

/// (height, width, has colour) from a PNG header.
fn read_header(path: &Path) -> Result<(usize, usize, bool)> {
    use image::ImageDecoder;
    let decoder = image::ImageReader::open(path)
        .map_err(|e| NsgfError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| NsgfError::io(path, e))?
        .into_decoder()
        .map_err(|e| NsgfError::format(path, format!("not a readable PNG image: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(NsgfError::format(path, "image has zero size"));
    }
    Ok((h as usize, w as usize, decoder.color_type().has_color()))
}

/// A labelled image set stored as one subfolder of PNG images per class (`dir/<class>/*.png`,
/// torchvision's `ImageFolder` layout; e.g. `shared/data/cifar10/train/`).
///
/// Classes are the subfolders whose names do not start with `.`, sorted bytewise; the label of an
/// image is the index of its class in that order (at most 256 classes). Each class folder follows
/// the [`ImageFolder`] rules; all images of all classes must have the same size, and the set is
/// grey (1 channel) only when every image is grey. Regular files directly in `dir` are ignored,
/// except `.png` files, which are an error (a flat folder is not a class tree).
#[derive(Clone, Debug)]
pub struct ClassFolders {
    /// The root folder.
    pub dir: PathBuf,
    /// Class names (the subfolder names), sorted; label `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// One folder per class, in label order (all with the common `channels`).
    pub folders: Vec<ImageFolder>,
    /// Common height.
    pub height: usize,
    /// Common width.
    pub width: usize,
    /// 1 when every image is grey, else 3.
    pub channels: usize,
}

impl ClassFolders {
    /// Lists the classes and checks their images (PNG headers only).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| NsgfError::io(dir, e))? {
            let entry = entry.map_err(|e| NsgfError::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                subdirs.push((name, path));
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png"))
            {
                return Err(NsgfError::format(
                    &path,
                    "a PNG directly in a class-folder root: expected one subfolder of images per \
                     class (for an unlabelled flat folder use it as an image folder)",
                ));
            }
        }
        if subdirs.is_empty() {
            return Err(NsgfError::format(
                dir,
                "no class subfolders: expected <dir>/<class>/*.png",
            ));
        }
        if subdirs.len() > 256 {
            return Err(NsgfError::format(
                dir,
                format!(
                    "{} class subfolders; at most 256 classes are supported (labels are uint8)",
                    subdirs.len()
                ),
            ));
        }
        subdirs.sort();
        let mut folders = Vec::with_capacity(subdirs.len());
        let mut classes = Vec::with_capacity(subdirs.len());
        for (name, path) in &subdirs {
            let f = ImageFolder::open(path)?;
            if let Some(first) = folders.first() {
                let first: &ImageFolder = first;
                if (f.height, f.width) != (first.height, first.width) {
                    return Err(NsgfError::format(
                        &f.files[0],
                        format!(
                            "image is {}x{} (HxW) but {} is {}x{}; all images of all classes must \
                             have the same size",
                            f.height,
                            f.width,
                            first.files[0].display(),
                            first.height,
                            first.width
                        ),
                    ));
                }
            }
            classes.push(name.to_string_lossy().into_owned());
            folders.push(f);
        }
        let channels = folders.iter().map(|f| f.channels).max().unwrap_or(1);
        for f in &mut folders {
            f.channels = channels;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            classes,
            height: folders[0].height,
            width: folders[0].width,
            channels,
            folders,
        })
    }

    /// Total number of images.
    pub fn len(&self) -> usize {
        self.folders.iter().map(|f| f.files.len()).sum()
    }

    /// True when there is no image (never after a successful [`Self::open`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of images per class, in label order.
    pub fn counts(&self) -> Vec<usize> {
        self.folders.iter().map(|f| f.files.len()).collect()
    }

    /// Decodes every image: NHWC uint8, class by class in label order, files sorted by name
    /// within a class, with the label of each image.
    pub fn read_all(&self) -> Result<(ImageBatch, Vec<u8>)> {
        let per = self.height * self.width * self.channels;
        let n = self.len();
        let mut data = Vec::with_capacity(n * per);
        let mut labels = Vec::with_capacity(n);
        for (label, f) in self.folders.iter().enumerate() {
            let b = f.read(0, f.files.len())?;
            data.extend_from_slice(&b.data);
            labels.extend(std::iter::repeat_n(label as u8, b.n));
        }
        Ok((
            ImageBatch::new(n, self.height, self.width, self.channels, data)?,
            labels,
        ))
    }
}

/// Where evaluation images come from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// A folder of PNG files, decoded batch by batch.
    Folder(ImageFolder),
    /// Images in memory (e.g. read from a `.npy` array).
    Array(ImageBatch),
}

impl ImageSource {
    /// Opens a folder of PNG images or a `.npy` uint8 array.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            Ok(Self::Folder(ImageFolder::open(path)?))
        } else {
            Ok(Self::Array(read_image_npy(path)?))
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            Self::Folder(f) => f.files.len(),
            Self::Array(a) => a.n,
        }
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (height, width, channels).
    pub fn dims(&self) -> (usize, usize, usize) {
        match self {
            Self::Folder(f) => (f.height, f.width, f.channels),
            Self::Array(a) => (a.height, a.width, a.channels),
        }
    }

    /// Images `start..end` (clamped).
    pub fn batch(&self, start: usize, end: usize) -> Result<ImageBatch> {
        match self {
            Self::Folder(f) => f.read(start, end),
            Self::Array(a) => Ok(a.slice(start, end)),
        }
    }
}

impl From<ImageBatch> for ImageSource {
    fn from(b: ImageBatch) -> Self {
        Self::Array(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::npy::{write_npy, NpyArray};

    fn png_grey(path: &Path, w: u32, h: u32, v: u8) {
        image::GrayImage::from_pixel(w, h, image::Luma([v]))
            .save(path)
            .unwrap();
    }

    fn png_rgba(path: &Path, w: u32, h: u32) {
        image::RgbaImage::from_pixel(w, h, image::Rgba([10, 20, 30, 40]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn evenly_spaced_keeps_every_class_of_a_sorted_set() {
        // 10 classes of 6 one-pixel RGB images, stored class by class (pixel = class).
        let data: Vec<u8> = (0..60u8).flat_map(|i| [i / 6; 3]).collect();
        let all = ImageBatch::new(60, 1, 1, 3, data).unwrap();
        let sub = all.evenly_spaced(20);
        assert_eq!((sub.n, sub.data.len()), (20, 60));
        let classes: Vec<u8> = sub.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(
            classes,
            (0..20).map(|i| (i * 3 / 6) as u8).collect::<Vec<_>>()
        );
        assert_eq!(all.evenly_spaced(60), all);
        assert_eq!(all.evenly_spaced(100), all);
    }

    #[test]
    fn folder_reads_sorted_and_mixes_grey_into_rgb() {
        let dir = tempfile::tempdir().unwrap();
        png_grey(&dir.path().join("b.png"), 3, 2, 7);
        png_rgba(&dir.path().join("a.png"), 3, 2);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let src = ImageSource::open(dir.path()).unwrap();
        assert_eq!(src.len(), 2);
        assert_eq!(src.dims(), (2, 3, 3));
        let b = src.batch(0, 10).unwrap();
        assert_eq!(b.n, 2);
        assert_eq!(&b.data[..3], &[10, 20, 30]);
        assert_eq!(&b.data[18..21], &[7, 7, 7]);
    }

    #[test]
    fn grey_folder_stays_single_channel() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            png_grey(&dir.path().join(format!("{i}.png")), 4, 4, i as u8);
        }
        let f = ImageFolder::open(dir.path()).unwrap();
        assert_eq!(f.channels, 1);
        let b = f.read(1, 3).unwrap();
        assert_eq!((b.n, b.data[0], b.data[16]), (2, 1, 2));
    }

    #[test]
    fn folder_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let e = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no .png"), "{e}");

        png_grey(&dir.path().join("a.png"), 4, 4, 0);
        png_grey(&dir.path().join("b.png"), 5, 4, 0);
        let e = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.png") && e.contains("same size"), "{e}");

        std::fs::remove_file(dir.path().join("b.png")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let e = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("notes.txt") && e.contains("not an image"), "{e}");

        std::fs::remove_file(dir.path().join("notes.txt")).unwrap();
        std::fs::write(dir.path().join("fake.png"), b"hello").unwrap();
        let e = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("fake.png"), "{e}");
    }

    #[test]
    fn class_folders_label_by_sorted_name() {
        let dir = tempfile::tempdir().unwrap();
        for (class, v) in [("b_cls", 20u8), ("a_cls", 10), (".hidden", 0)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            png_grey(&dir.path().join(class).join("x.png"), 2, 2, v);
        }
        png_rgba(&dir.path().join("b_cls").join("y.png"), 2, 2);
        std::fs::write(dir.path().join("README"), b"notes").unwrap();
        let c = ClassFolders::open(dir.path()).unwrap();
        assert_eq!(c.classes, vec!["a_cls", "b_cls"]);
        assert_eq!((c.counts(), c.channels), (vec![1, 2], 3));
        let (b, labels) = c.read_all().unwrap();
        assert_eq!((b.n, b.height, b.width, b.channels), (3, 2, 2, 3));
        assert_eq!(labels, vec![0, 1, 1]);
        assert_eq!((b.data[0], b.data[12], b.data[24]), (10, 20, 10));

        png_grey(&dir.path().join("flat.png"), 2, 2, 0);
        let e = ClassFolders::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("flat.png"), "{e}");
        std::fs::remove_file(dir.path().join("flat.png")).unwrap();
        std::fs::create_dir(dir.path().join("c_cls")).unwrap();
        png_grey(&dir.path().join("c_cls").join("z.png"), 3, 2, 0);
        let e = ClassFolders::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("z.png") && e.contains("same size"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(ClassFolders::open(empty.path()).is_err());
    }

    #[test]
    fn npy_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        write_npy(&p, &NpyArray::u8(vec![2, 3, 4], (0..24).collect())).unwrap();
        let b = read_image_npy(&p).unwrap();
        assert_eq!((b.n, b.height, b.width, b.channels), (2, 3, 4, 1));
        write_npy(&p, &NpyArray::u8(vec![2, 3, 4, 3], vec![0; 72])).unwrap();
        assert_eq!(read_image_npy(&p).unwrap().channels, 3);
        write_npy(&p, &NpyArray::u8(vec![2, 3, 4, 2], vec![0; 48])).unwrap();
        assert!(read_image_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("shape"));
        write_npy(&p, &NpyArray::f32(vec![2, 3, 4], vec![0.0; 24])).unwrap();
        assert!(read_image_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("uint8"));
    }
}
