//! Smoothing with `cv2.GaussianBlur` semantics, bit-exact for 8-bit images.
//!
//! OpenCV blurs 8-bit images in fixed point: each 1-D kernel is rounded to 1/256 steps with
//! error diffusion (so it sums to exactly 256), the horizontal pass keeps `u16` sums with 8
//! fraction bits, the vertical pass `u32` sums with 16, and the result is rounded half up. This
//! module does the same arithmetic, so a blurred frame (a background-blur effect, a denoised
//! input) equals the one the Python pipeline made.
//!
//! A [`GaussianBlur`] keeps its kernels and row buffers between calls: blurring frame after
//! frame of the same size allocates nothing.
//!
//! ```
//! use tensorcv_imgproc::{filter::{self, GaussianBlur}, Image, PixelFormat};
//! let mut src = Image::new(5, 1, PixelFormat::Gray8).unwrap();
//! src.as_bytes_mut()[2] = 200;
//! // cv2.GaussianBlur(src, (3, 3), 0): the 1-2-1 kernel, a 1-row image keeps its row
//! let out = filter::gaussian_blur(&src.view(), (3, 3), (0.0, 0.0)).unwrap();
//! assert_eq!(out.as_bytes(), &[0, 50, 100, 50, 0]);
//! assert_eq!(GaussianBlur::new((3, 3), (0.0, 0.0)).unwrap().kernel_x(), &[64, 128, 64]);
//! ```

mod kernels;

use crate::error::{Error, Result};
use crate::image::{check_same_format, Image, ImageView, ImageViewMut};
use crate::names::named_enum;

named_enum! {
    /// How pixels outside the image are made up, as OpenCV's `BORDER_*` flags.
    #[derive(Default)]
    pub enum Border, "border" {
        /// `BORDER_REFLECT_101` (OpenCV's default): `gfedcb|abcdefgh|gfedcba`
        #[default]
        Reflect101 = "reflect101" | "reflect_101" | "border_reflect_101" | "default",
        /// `BORDER_REPLICATE`: `aaaaaa|abcdefgh|hhhhhhh`
        Replicate = "replicate" | "border_replicate",
        /// `BORDER_REFLECT`: `fedcba|abcdefgh|hgfedcb`
        Reflect = "reflect" | "border_reflect",
        /// `BORDER_CONSTANT` with 0: `000000|abcdefgh|0000000`
        Constant = "constant" | "border_constant",
    }
}

/// The source index OpenCV's `borderInterpolate` reads for position `p` of a line of `len`
/// pixels; `None` for a constant border outside the line.
pub fn border_index(p: isize, len: usize, border: Border) -> Option<usize> {
    let n = len as isize;
    if (0..n).contains(&p) {
        return Some(p as usize);
    }
    match border {
        Border::Constant => None,
        Border::Replicate => Some(p.clamp(0, n - 1) as usize),
        Border::Reflect | Border::Reflect101 => {
            if n == 1 {
                return Some(0);
            }
            let delta = isize::from(border == Border::Reflect101);
            let mut p = p;
            while !(0..n).contains(&p) {
                p = if p < 0 {
                    -p - 1 + delta
                } else {
                    n - 1 - (p - n) - delta
                };
            }
            Some(p as usize)
        }
    }
}

/// `cv::getGaussianKernel(n, sigma, CV_64F)`: `n` weights that sum to 1. `sigma <= 0` means
/// `0.3 * ((n - 1) * 0.5 - 1) + 0.8`, and sizes 1 to 9 then take OpenCV's fixed binomial-like
/// tables.
pub fn gaussian_kernel(n: usize, sigma: f64) -> Result<Vec<f64>> {
    if n == 0 || n.is_multiple_of(2) {
        return Err(Error::Invalid(format!(
            "Gaussian kernel size {n}: must be odd and positive"
        )));
    }
    if sigma <= 0.0 {
        let table: Option<&[f64]> = match n {
            1 => Some(&[1.0]),
            3 => Some(&[0.25, 0.5, 0.25]),
            5 => Some(&[0.0625, 0.25, 0.375, 0.25, 0.0625]),
            7 => Some(&[
                0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125,
            ]),
            9 => Some(&[
                4.0 / 256.0,
                13.0 / 256.0,
                30.0 / 256.0,
                51.0 / 256.0,
                60.0 / 256.0,
                51.0 / 256.0,
                30.0 / 256.0,
                13.0 / 256.0,
                4.0 / 256.0,
            ]),
            _ => None,
        };
        if let Some(t) = table {
            return Ok(t.to_vec());
        }
    }
    // the order of operations of OpenCV's softdouble code: x runs over 1-n, 3-n, ... (twice
    // the distance to the center), so the scale is -0.125 / sigma^2
    let sigma = if sigma > 0.0 {
        sigma
    } else {
        (n as f64).mul_add(0.15, 0.35)
    };
    let scale = -0.125 / (sigma * sigma);
    let half = (n - 1) / 2;
    let mut side = Vec::with_capacity(half);
    let mut sum = 0.0;
    for i in 0..half {
        let x = 2 * i as i64 + 1 - n as i64;
        let t = ((x * x) as f64 * scale).exp();
        side.push(t);
        sum += t;
    }
    let sum = sum * 2.0 + 1.0;
    let mul = 1.0 / sum;
    let mut out = vec![0.0; n];
    for (i, t) in side.iter().enumerate() {
        out[i] = t * mul;
        out[n - 1 - i] = t * mul;
    }
    out[half] = mul;
    Ok(out)
}

/// The kernel in OpenCV's 8-bit steps (1/256, `ufixedpoint16`): rounded with error diffusion
/// from the outside in, the center taking what makes the sum exactly 256.
fn fixed_kernel(kernel: &[f64]) -> Vec<u16> {
    let n = kernel.len();
    let mut out = vec![0u16; n];
    let mut err = 0.0f64;
    let mut sum = 0i64;
    for i in 0..n / 2 {
        let adjusted = kernel[i] * 256.0 + err;
        let v = adjusted.round_ties_even() as i64;
        err = adjusted - v as f64;
        out[i] = v as u16;
        out[n - 1 - i] = v as u16;
        sum += v;
    }
    out[n / 2] = (256 - 2 * sum) as u16;
    out
}

/// OpenCV's kernel size for a sigma when the size is 0: `round(sigma * 6 + 1) | 1` (8-bit).
fn size_for(sigma: f64) -> usize {
    ((sigma * 6.0 + 1.0).round_ties_even() as usize) | 1
}

/// A reusable `cv2.GaussianBlur` for 8-bit images of any [`crate::PixelFormat`].
#[derive(Clone, Debug)]
pub struct GaussianBlur {
    kx: Vec<u16>,
    ky: Vec<u16>,
    border: Border,
    /// one source row with `radius` border pixels on each side
    padded: Vec<u8>,
    /// every row after the horizontal pass
    rows: Vec<u16>,
    /// one output row before rounding
    acc: Vec<u32>,
}

impl GaussianBlur {
    /// `cv2.GaussianBlur(src, ksize, sigmaX, sigmaY)`: `ksize = (width, height)`, odd, or 0 to
    /// derive it from the sigma; `sigma = (x, y)`, a `y` of 0 meaning the same as `x`, and a
    /// sigma of 0 meaning the one OpenCV derives from the size.
    pub fn new(ksize: (usize, usize), sigma: (f64, f64)) -> Result<Self> {
        let (sx, sy) = (sigma.0, if sigma.1 <= 0.0 { sigma.0 } else { sigma.1 });
        if !(sx.is_finite() && sy.is_finite()) {
            return Err(Error::Invalid(format!(
                "Gaussian sigma ({}, {}) is not finite",
                sigma.0, sigma.1
            )));
        }
        let size = |k: usize, s: f64, axis: &str| -> Result<usize> {
            match (k, s > 0.0) {
                (0, true) => Ok(size_for(s)),
                (0, false) => Err(Error::Invalid(format!(
                    "Gaussian blur: give a kernel {axis} or a positive sigma"
                ))),
                (k, _) if k % 2 == 0 => Err(Error::Invalid(format!(
                    "Gaussian kernel {axis} {k}: must be odd"
                ))),
                (k, _) if k > 4097 => Err(Error::Invalid(format!(
                    "Gaussian kernel {axis} {k}: larger than 4097"
                ))),
                (k, _) => Ok(k),
            }
        };
        let (kw, kh) = (size(ksize.0, sx, "width")?, size(ksize.1, sy, "height")?);
        if kw > 4097 || kh > 4097 {
            return Err(Error::Invalid(format!(
                "Gaussian kernel {kw}x{kh} (from sigma {sx}, {sy}): larger than 4097"
            )));
        }
        let kx = fixed_kernel(&gaussian_kernel(kw, sx.max(0.0))?);
        let ky = fixed_kernel(&gaussian_kernel(kh, sy.max(0.0))?);
        Ok(GaussianBlur {
            kx,
            ky,
            border: Border::default(),
            padded: Vec::new(),
            rows: Vec::new(),
            acc: Vec::new(),
        })
    }

    /// Use another border (default [`Border::Reflect101`], OpenCV's default).
    pub fn with_border(mut self, border: Border) -> Self {
        self.border = border;
        self
    }

    /// The horizontal kernel in 1/256 steps (sums to 256).
    pub fn kernel_x(&self) -> &[u16] {
        &self.kx
    }

    /// The vertical kernel in 1/256 steps (sums to 256).
    pub fn kernel_y(&self) -> &[u16] {
        &self.ky
    }

    /// Blur `src` into `dst` (same size and format).
    pub fn apply(&mut self, src: &ImageView<'_>, dst: &mut ImageViewMut<'_>) -> Result<()> {
        check_same_format("gaussian_blur", src.format(), dst.format())?;
        let (w, h) = (src.width(), src.height());
        if (dst.width(), dst.height()) != (w, h) {
            return Err(Error::SizeMismatch {
                what: "gaussian_blur",
                expected_w: w,
                expected_h: h,
                found_w: dst.width(),
                found_h: dst.height(),
            });
        }
        if w == 0 || h == 0 {
            return Ok(());
        }
        let cn = src.channels();
        let line = w * cn;
        // a 1-pixel dimension is not blurred along that axis (OpenCV sets the size to 1,
        // except for a constant border)
        let unit = [256u16];
        let flat = self.border != Border::Constant;
        let kx: &[u16] = if w == 1 && flat { &unit } else { &self.kx };
        let ky: &[u16] = if h == 1 && flat { &unit } else { &self.ky };
        let (rx, ry) = (kx.len() / 2, ky.len() / 2);
        self.padded.resize((w + 2 * rx) * cn, 0);
        self.rows.resize(line * h, 0);
        self.acc.resize(line, 0);
        // horizontal: each row padded by its border, then the taps accumulated
        for y in 0..h {
            let row = src.row(y);
            self.padded[rx * cn..(rx + w) * cn].copy_from_slice(&row[..line]);
            for i in 0..rx {
                for (side, p) in [
                    (i, -(rx as isize) + i as isize),
                    (rx + w + i, (w + i) as isize),
                ] {
                    let out = &mut self.padded[side * cn..(side + 1) * cn];
                    match border_index(p, w, self.border) {
                        Some(s) => out.copy_from_slice(&row[s * cn..(s + 1) * cn]),
                        None => out.fill(0),
                    }
                }
            }
            kernels::hpass(
                &self.padded,
                cn,
                kx,
                &mut self.rows[y * line..(y + 1) * line],
            );
        }
        // vertical: the taps' rows (border rows looked up) accumulated, then rounded
        for y in 0..h {
            self.acc.fill(0);
            for (i, &k) in ky.iter().enumerate() {
                let p = y as isize + i as isize - ry as isize;
                if k == 0 {
                    continue;
                }
                if let Some(s) = border_index(p, h, self.border) {
                    kernels::vtap(&mut self.acc, &self.rows[s * line..(s + 1) * line], k);
                }
            }
            kernels::round_row(&self.acc, &mut dst.row_mut(y)[..line]);
        }
        Ok(())
    }
}

/// `cv2.GaussianBlur(src, ksize, sigmaX, sigmaY)` into a new image (see [`GaussianBlur::new`]).
pub fn gaussian_blur(
    src: &ImageView<'_>,
    ksize: (usize, usize),
    sigma: (f64, f64),
) -> Result<Image> {
    let mut out = Image::new(src.width(), src.height(), src.format())?;
    GaussianBlur::new(ksize, sigma)?.apply(src, &mut out.view_mut())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelFormat;

    #[test]
    fn borders_read_like_opencv() {
        let idx = |p, b| border_index(p, 5, b);
        assert_eq!(idx(-1, Border::Reflect101), Some(1));
        assert_eq!(idx(-2, Border::Reflect101), Some(2));
        assert_eq!(idx(5, Border::Reflect101), Some(3));
        assert_eq!(idx(-1, Border::Reflect), Some(0));
        assert_eq!(idx(6, Border::Reflect), Some(3));
        assert_eq!(idx(-3, Border::Replicate), Some(0));
        assert_eq!(idx(9, Border::Replicate), Some(4));
        assert_eq!(idx(-1, Border::Constant), None);
        // several reflections on a short line: gfedcb|abc... with len 3: -5 -> 1
        assert_eq!(border_index(-5, 3, Border::Reflect101), Some(1));
        assert_eq!(border_index(-7, 1, Border::Reflect101), Some(0));
    }

    #[test]
    fn fixed_kernels_sum_to_256_and_match_opencvs_tables() {
        // OpenCV's test_smooth_bitexact.cpp lists the 8-bit kernels for sigma 0
        let k = |n| fixed_kernel(&gaussian_kernel(n, 0.0).unwrap());
        assert_eq!(k(5), [16, 64, 96, 64, 16]);
        assert_eq!(k(7), [8, 28, 56, 72, 56, 28, 8]);
        assert_eq!(k(9), [4, 13, 30, 51, 60, 51, 30, 13, 4]);
        for n in (11..200).step_by(6) {
            for sigma in [0.0, 0.7, 3.3, 40.0] {
                let sum: u32 = k(n).iter().map(|&v| v as u32).sum::<u32>();
                let kk = fixed_kernel(&gaussian_kernel(n, sigma).unwrap());
                assert_eq!(
                    kk.iter().map(|&v| v as u32).sum::<u32>(),
                    256,
                    "{n} {sigma}"
                );
                assert_eq!(sum, 256);
            }
        }
    }

    #[test]
    fn sizes_from_sigma_and_bad_arguments() {
        assert_eq!(
            GaussianBlur::new((0, 0), (2.0, 0.0))
                .unwrap()
                .kernel_x()
                .len(),
            13
        );
        assert_eq!(
            GaussianBlur::new((0, 0), (1.0, 0.0))
                .unwrap()
                .kernel_y()
                .len(),
            7
        );
        assert!(GaussianBlur::new((4, 3), (0.0, 0.0)).is_err());
        assert!(GaussianBlur::new((0, 0), (0.0, 0.0)).is_err());
        assert!(GaussianBlur::new((3, 3), (f64::NAN, 0.0)).is_err());
        assert!(GaussianBlur::new((0, 0), (1e9, 0.0)).is_err());
    }

    #[test]
    fn flat_image_stays_flat_and_sizes_are_checked() {
        let src = Image::from_vec(vec![77; 7 * 5 * 3], 7, 5, PixelFormat::Rgb8).unwrap();
        for border in Border::ALL {
            let mut b = GaussianBlur::new((5, 3), (0.0, 0.0))
                .unwrap()
                .with_border(border);
            let mut out = Image::new(7, 5, PixelFormat::Rgb8).unwrap();
            b.apply(&src.view(), &mut out.view_mut()).unwrap();
            if border != Border::Constant {
                assert!(out.as_bytes().iter().all(|&v| v == 77), "{border}");
            } else {
                assert!(out.as_bytes()[0] < 77);
            }
        }
        let mut small = Image::new(6, 5, PixelFormat::Rgb8).unwrap();
        let mut b = GaussianBlur::new((3, 3), (0.0, 0.0)).unwrap();
        assert!(b.apply(&src.view(), &mut small.view_mut()).is_err());
        let mut gray = Image::new(7, 5, PixelFormat::Gray8).unwrap();
        assert!(b.apply(&src.view(), &mut gray.view_mut()).is_err());
    }
}
