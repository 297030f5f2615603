//! pytorch-fid preprocessing: uint8 images -> [0, 1] -> bilinear resize to 299x299
//! (`align_corners = false`, no antialias) -> [-1, 1]; grey images repeated to 3 channels.
//!
//! The resize is separable. Along one axis of length `in` resized to `out`, output index `d`
//! reads the source coordinate (PyTorch CPU evaluates it in f32, `scale = in / out` as f32)
//!
//! ```text
//! s  = max(0, scale * (d + 0.5) - 0.5)
//! i0 = min(floor(s), in - 1),   i1 = i0 + (i0 < in - 1),
//! w1 = clamp(s - i0, 0, 1),     w0 = 1 - w1,
//! out[d] = w0 * x[i0] + w1 * x[i1]
//! ```
//!
//! As tensor ops, with the interpolation matrices `R_h` (299, H) and `R_w` (299, W) holding
//! those two weights per row, one image channel `X` (H, W) becomes `R_h X R_w^T` (two matmuls,
//! width first as PyTorch does), which runs on any backend. Grey images are resized once and
//! the result repeated to 3 channels (identical to repeating first: the channels are
//! independent).

use crate::data::images::ImageBatch;
use crate::error::{NsgfError, Result};
use crate::models::inception::INPUT_SIZE;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// 1-D bilinear taps `(i0, i1, w0, w1)` for each output index, see the module docs.
pub fn bilinear_taps(in_len: usize, out_len: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|d| {
            let s = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(in_len - 1);
            let i1 = if i0 < in_len - 1 { i0 + 1 } else { i0 };
            let w1 = (s - i0 as f32).clamp(0.0, 1.0);
            (i0, i1, 1.0 - w1, w1)
        })
        .collect()
}

/// Interpolation matrix `R` (out_len, in_len), row-major, with `out = R x`.
pub fn resize_matrix(in_len: usize, out_len: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; out_len * in_len];
    for (d, (i0, i1, w0, w1)) in bilinear_taps(in_len, out_len).into_iter().enumerate() {
        m[d * in_len + i0] += w0;
        m[d * in_len + i1] += w1;
    }
    m
}

/// Bilinear resize of `x` `(M, H, W)` to `(M, out_h, out_w)` (align_corners = false).
pub fn resize_bilinear<B: Backend>(x: Tensor<B, 3>, out_h: usize, out_w: usize) -> Tensor<B, 3> {
    let [m, h, w] = x.dims();
    let device = x.device();
    let rw_t = Tensor::<B, 2>::from_data(
        TensorData::new(resize_matrix(w, out_w), [out_w, w]),
        &device,
    )
    .transpose();
    let rh = Tensor::<B, 2>::from_data(
        TensorData::new(resize_matrix(h, out_h), [out_h, h]),
        &device,
    );
    // Width: (M*H, W) @ (W, out_w).
    let y = x.reshape([m * h, w]).matmul(rw_t).reshape([m, h, out_w]);
    // Height: (out_h, H) @ (H, out_w), batched over M.
    rh.unsqueeze_dim::<3>(0).expand([m, out_h, h]).matmul(y)
}

/// The network input `(N, 3, 299, 299)` in [-1, 1] for a batch of uint8 images (NHWC, 1 or 3
/// channels), exactly as pytorch-fid prepares it.
pub fn preprocess<B: Backend>(images: &ImageBatch, device: &B::Device) -> Result<Tensor<B, 4>> {
    let ImageBatch {
        n,
        height: h,
        width: w,
        channels: c,
        ..
    } = *images;
    if n == 0 || h == 0 || w == 0 {
        return Err(NsgfError::Shape(format!(
            "cannot preprocess an empty image batch ({n} images of {h}x{w})"
        )));
    }
    if c != 1 && c != 3 {
        return Err(NsgfError::Shape(format!(
            "images must have 1 (grey) or 3 (RGB) channels, got {c}"
        )));
    }
    // NHWC u8 -> NCHW f32 in [0, 1].
    let mut planar = vec![0.0f32; n * c * h * w];
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let v = images.data[((i * h + y) * w + x) * c + ch];
                    planar[((i * c + ch) * h + y) * w + x] = v as f32 / 255.0;
                }
            }
        }
    }
    let x = Tensor::<B, 3>::from_data(TensorData::new(planar, [n * c, h, w]), device);
    let x = resize_bilinear(x, INPUT_SIZE, INPUT_SIZE).reshape([n, c, INPUT_SIZE, INPUT_SIZE]);
    let x = if c == 1 { x.repeat_dim(1, 3) } else { x };
    Ok(x * 2.0 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    #[test]
    fn taps_match_pytorch_rule() {
        // 2 -> 4, align_corners=false: s = 0.5 (d + 0.5) - 0.5 = [-0.25->0, 0.25, 0.75, 1.25].
        let t = bilinear_taps(2, 4);
        assert_eq!((t[0].0, t[0].1, t[0].2, t[0].3), (0, 1, 1.0, 0.0));
        assert_eq!((t[1].0, t[1].1), (0, 1));
        assert!((t[1].3 - 0.25).abs() < 1e-7);
        assert!((t[2].3 - 0.75).abs() < 1e-7);
        // Last: i0 = 1 = in - 1, so i1 = i0 and the weights sum to one on a single tap.
        assert_eq!((t[3].0, t[3].1), (1, 1));
        for (_, _, w0, w1) in bilinear_taps(28, 299) {
            assert!((w0 + w1 - 1.0).abs() < 1e-6 && w0 >= 0.0 && w1 >= 0.0);
        }
    }

    #[test]
    fn identity_size_is_identity_and_constants_are_kept() {
        let m = resize_matrix(5, 5);
        for i in 0..5 {
            for j in 0..5 {
                assert_eq!(m[i * 5 + j], if i == j { 1.0 } else { 0.0 });
            }
        }
        let dev = Default::default();
        let batch = ImageBatch::new(2, 3, 4, 1, vec![255; 24]).unwrap();
        let x = preprocess::<Cpu>(&batch, &dev).unwrap();
        assert_eq!(x.dims(), [2, 3, 299, 299]);
        let v = x.into_data().into_vec::<f32>().unwrap();
        assert!(v.iter().all(|&p| (p - 1.0).abs() < 1e-6));
    }

    #[test]
    fn rejects_bad_channel_counts() {
        let dev = Default::default();
        let batch = ImageBatch::new(1, 2, 2, 2, vec![0; 8]).unwrap();
        assert!(preprocess::<Cpu>(&batch, &dev).is_err());
    }
}
