//! PIL-compatible resizing: `PIL.Image.resize(size, resample)`, which is what Keras'
//! `load_img(path, target_size=...)` and many PyTorch/Keras data pipelines use.
//!
//! Unlike OpenCV's modes, PIL's filters are convolutions whose support grows when shrinking, so
//! they antialias. This follows Pillow's `Resample.c`: kernel weights computed in `f64`,
//! normalized and rounded to 22-bit fixed point, a horizontal pass rounded to 8 bits, then a
//! vertical pass; `NEAREST` steps through the source in 16.16 fixed point as Pillow's affine
//! transform does. (`fast_image_resize` implements the same filters but its numbers differ
//! from Pillow's by up to 4 levels, and up to a whole pixel shift for nearest.)
//!
//! ```
//! use tensorcv_imgproc::resize::pil::{self, PilFilter};
//! use tensorcv_imgproc::{Image, PixelFormat};
//! let src = Image::from_vec(vec![0, 255, 0, 255], 4, 1, PixelFormat::Gray8).unwrap();
//! let mut dst = Image::new(2, 1, PixelFormat::Gray8).unwrap();
//! pil::resize(&src.view(), &mut dst.view_mut(), PilFilter::Bilinear).unwrap();
//! // averaged over the filter support (as PIL gives), where INTER_LINEAR would blend 2 pixels
//! assert_eq!(dst.as_bytes(), &[109, 146]);
//! ```

use crate::error::{Error, Result};
use crate::image::{check_same_format, ImageView, ImageViewMut};
use crate::names::named_enum;
use crate::simd::multiversion;
use std::fmt;

named_enum! {
    /// PIL's resampling filters (`PIL.Image.Resampling`).
    pub enum PilFilter, "PIL filter" {
        /// `NEAREST` (Keras `load_img`'s default)
        Nearest = "nearest",
        /// `BOX`
        Box = "box",
        /// `BILINEAR` (antialiased triangle filter)
        Bilinear = "bilinear",
        /// `HAMMING`
        Hamming = "hamming",
        /// `BICUBIC` (a = -0.5)
        Bicubic = "bicubic",
        /// `LANCZOS` (3 lobes; PIL's old `ANTIALIAS`)
        Lanczos = "lanczos" | "antialias",
    }
}

impl PilFilter {
    /// Half-width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            PilFilter::Nearest | PilFilter::Box => 0.5,
            PilFilter::Bilinear | PilFilter::Hamming => 1.0,
            PilFilter::Bicubic => 2.0,
            PilFilter::Lanczos => 3.0,
        }
    }

    /// The kernel, as Pillow writes it.
    fn weight(self, x: f64) -> f64 {
        use std::f64::consts::PI;
        let sinc = |x: f64| {
            if x == 0.0 {
                1.0
            } else {
                (x * PI).sin() / (x * PI)
            }
        };
        match self {
            PilFilter::Nearest | PilFilter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            PilFilter::Bilinear => (1.0 - x.abs()).max(0.0),
            PilFilter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * PI;
                    x.sin() / x * (0.54 + 0.46 * x.cos())
                }
            }
            PilFilter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            PilFilter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Pillow's `PRECISION_BITS` for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per-output taps along one axis: first source index, count, and `ksize` fixed-point weights.
pub(crate) struct Taps {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
fn taps(in_size: usize, out_size: usize, filter: PilFilter) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(count) {
            let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(count) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let f = v * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (f - 0.5) as i32
            } else {
                (f + 0.5) as i32
            };
        }
        bounds.push((xmin, count));
    }
    Taps {
        bounds,
        ksize,
        weights,
    }
}

#[inline(always)]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

multiversion! {
    /// One output row of Pillow's horizontal pass.
    fn hpass<const CN: usize>(src: &[u8], t: &Taps, out: &mut [u8]) {
        for (xx, (o, &(xmin, count))) in out.chunks_exact_mut(CN).zip(&t.bounds).enumerate() {
            let k = &t.weights[xx * t.ksize..xx * t.ksize + count];
            let px = &src[xmin * CN..(xmin + count) * CN];
            // Pillow sums in a C `int`
            let mut ss = [1i32 << (PRECISION_BITS - 1); CN];
            for (p, &w) in px.chunks_exact(CN).zip(k) {
                for c in 0..CN {
                    ss[c] = ss[c].wrapping_add(p[c] as i32 * w);
                }
            }
            for c in 0..CN {
                o[c] = clip8(ss[c]);
            }
        }
    }
}

multiversion! {
    /// Add one row times its weight to the vertical accumulators (integer sums are exact, so
    /// accumulating row by row gives Pillow's per-pixel sums).
    fn vaccumulate(acc: &mut [i32], row: &[u8], w: i32) {
        for (a, &p) in acc.iter_mut().zip(row) {
            *a = a.wrapping_add(p as i32 * w);
        }
    }
}

/// A reusable PIL-style resizer (keeps its tables and intermediate rows between calls).
#[derive(Default)]
pub struct PilResizer {
    key: Option<(usize, usize, usize, usize, PilFilter)>,
    x: Option<Taps>,
    y: Option<Taps>,
    /// the horizontally resampled rows that the vertical pass reads
    temp: Vec<u8>,
    /// the vertical pass's sums for one output row
    acc: Vec<i32>,
    /// nearest: the source column of each output column (`None`: outside, black)
    columns: Vec<Option<usize>>,
}

impl fmt::Debug for PilResizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PilResizer")
            .field("plan", &self.key)
            .finish()
    }
}

impl PilResizer {
    /// An empty resizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resize `src` into `dst` (same format). Four-channel images are filtered channel by
    /// channel (alpha is not premultiplied, unlike PIL's RGBA mode).
    pub fn resize(
        &mut self,
        src: &ImageView<'_>,
        dst: &mut ImageViewMut<'_>,
        filter: PilFilter,
    ) -> Result<()> {
        check_same_format("PIL resize", src.format(), dst.format())?;
        let (sw, sh, dw, dh) = (src.width(), src.height(), dst.width(), dst.height());
        if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
            return Err(Error::Invalid(format!(
                "PIL resize needs non-empty images, got {sw}x{sh} -> {dw}x{dh}"
            )));
        }
        let key = (sw, sh, dw, dh, filter);
        if self.key != Some(key) {
            if filter == PilFilter::Nearest {
                self.columns = nearest_columns(sw, dw);
            } else {
                self.x = (dw != sw).then(|| taps(sw, dw, filter));
                self.y = (dh != sh).then(|| taps(sh, dh, filter));
            }
            self.key = Some(key);
        }
        if filter == PilFilter::Nearest {
            nearest(src, dst, &self.columns);
            return Ok(());
        }
        let cn = src.channels();
        // rows of the source the vertical pass needs
        let (first, last) = match &self.y {
            Some(t) => {
                let first = t.bounds[0].0;
                let (lmin, lcount) = t.bounds[dh - 1];
                (first, (lmin + lcount).max(first + 1))
            }
            None => (0, sh),
        };
        let row = dw * cn;
        if let Some(tx) = &self.x {
            self.temp.resize(row * (last - first), 0);
            for (i, y) in (first..last).enumerate() {
                let out = &mut self.temp[i * row..(i + 1) * row];
                match cn {
                    1 => hpass::<1>(src.row(y), tx, out),
                    2 => hpass::<2>(src.row(y), tx, out),
                    3 => hpass::<3>(src.row(y), tx, out),
                    _ => hpass::<4>(src.row(y), tx, out),
                }
            }
        }
        let temp_row = |i: usize| -> &[u8] {
            if self.x.is_some() {
                &self.temp[(i - first) * row..(i - first + 1) * row]
            } else {
                src.row(i)
            }
        };
        match &self.y {
            None => {
                for y in 0..dh {
                    dst.row_mut(y).copy_from_slice(temp_row(y));
                }
            }
            Some(ty) => {
                let mut acc = std::mem::take(&mut self.acc);
                acc.resize(row, 0);
                for (yy, &(ymin, count)) in ty.bounds.iter().enumerate() {
                    acc.fill(1 << (PRECISION_BITS - 1));
                    let k = &ty.weights[yy * ty.ksize..yy * ty.ksize + count];
                    for (y, &w) in (ymin..ymin + count).zip(k) {
                        vaccumulate(&mut acc, temp_row(y), w);
                    }
                    for (o, &a) in dst.row_mut(yy).iter_mut().zip(&acc) {
                        *o = clip8(a);
                    }
                }
                self.acc = acc;
            }
        }
        Ok(())
    }
}

/// Pillow's nearest resize (`ImagingScaleAffine`): source positions start at the first
/// pixel center and advance by the scale, accumulated in `f64`; positions that fall outside the
/// source are left black, as Pillow fills them.
fn nearest_columns(sw: usize, dw: usize) -> Vec<Option<usize>> {
    let sx = sw as f64 / dw as f64;
    let mut xo = sx * 0.5;
    (0..dw)
        .map(|_| {
            let v = (xo >= 0.0).then_some(xo as usize).filter(|&x| x < sw);
            xo += sx;
            v
        })
        .collect()
}

fn nearest(src: &ImageView<'_>, dst: &mut ImageViewMut<'_>, xin: &[Option<usize>]) {
    let coord = |v: f64| -> Option<usize> { (v >= 0.0).then_some(v as usize) };
    let sy = src.height() as f64 / dst.height() as f64;
    let cn = src.channels();
    let mut yo = sy * 0.5;
    for y in 0..dst.height() {
        let yi = coord(yo).filter(|&v| v < src.height());
        yo += sy;
        let out = dst.row_mut(y);
        match yi {
            Some(yi) => {
                let s = src.row(yi);
                for (o, x) in out.chunks_exact_mut(cn).zip(xin) {
                    match x {
                        Some(x) => o.copy_from_slice(&s[x * cn..x * cn + cn]),
                        None => o.fill(0),
                    }
                }
            }
            None => out.fill(0),
        }
    }
}

/// Resize with a one-off [`PilResizer`].
pub fn resize(src: &ImageView<'_>, dst: &mut ImageViewMut<'_>, filter: PilFilter) -> Result<()> {
    PilResizer::new().resize(src, dst, filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, PixelFormat, Rect};

    fn sample(w: usize, h: usize, f: PixelFormat) -> Image {
        let data = (0..w * h * f.channels())
            .map(|i| (i * 29 % 253) as u8)
            .collect();
        Image::from_vec(data, w, h, f).unwrap()
    }

    #[test]
    fn reuse_and_strided_views_give_the_same_result() {
        let src = sample(40, 30, PixelFormat::Rgb8);
        let sub = src.view().sub_view(Rect::new(3, 2, 31, 23)).unwrap();
        let copy = sub.to_image();
        let mut r = PilResizer::new();
        for filter in PilFilter::ALL {
            for (w, h) in [(13, 9), (50, 7), (31, 23), (62, 46)] {
                let mut a = Image::new(w, h, PixelFormat::Rgb8).unwrap();
                let mut b = Image::new(w, h, PixelFormat::Rgb8).unwrap();
                r.resize(&sub, &mut a.view_mut(), filter).unwrap();
                resize(&copy.view(), &mut b.view_mut(), filter).unwrap();
                assert_eq!(a, b, "{filter} {w}x{h}");
            }
        }
    }

    #[test]
    fn same_size_is_identity_and_shrinking_averages() {
        let src = sample(17, 11, PixelFormat::Gray8);
        for filter in PilFilter::ALL {
            let mut out = Image::new(17, 11, PixelFormat::Gray8).unwrap();
            resize(&src.view(), &mut out.view_mut(), filter).unwrap();
            assert_eq!(out, src, "{filter}");
        }
        let flat = Image::from_vec(vec![200; 64], 8, 8, PixelFormat::Gray8).unwrap();
        let mut out = Image::new(3, 3, PixelFormat::Gray8).unwrap();
        resize(&flat.view(), &mut out.view_mut(), PilFilter::Lanczos).unwrap();
        assert!(
            out.as_bytes().iter().all(|&v| v == 200),
            "{:?}",
            out.as_bytes()
        );
        assert_eq!(
            "ANTIALIAS".parse::<PilFilter>().unwrap(),
            PilFilter::Lanczos
        );
        assert!("cubic".parse::<PilFilter>().is_err());
    }
}
