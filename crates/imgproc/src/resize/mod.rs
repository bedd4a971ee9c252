//! Resizing with `cv2.resize` semantics.
//!
//! Every [`Interpolation`] reproduces OpenCV's 8-bit algorithm: its pixel-center mapping, its
//! border rule (replicate), its 11-bit fixed-point weights and its rounding. Two behaviours
//! surprise people coming from PIL or `tf.image.resize(antialias=True)`, and are kept on
//! purpose because trained models saw them:
//! - [`Interpolation::Linear`] does **not** antialias when shrinking: each output pixel blends
//!   the 2×2 nearest source pixels, whatever the scale. Use [`Interpolation::Area`] to average.
//! - An exact 2× shrink with `Linear` is computed as `Area` (OpenCV does the same).
//!
//! A [`Resizer`] keeps its tables and row buffers between calls, so resizing frame after frame
//! of the same size allocates nothing.
//!
//! ```
//! use tensorcv_imgproc::{resize::{self, Interpolation}, Image, PixelFormat};
//! let src = Image::from_vec((0..16).collect(), 4, 4, PixelFormat::Gray8).unwrap();
//! let half = resize::resize_to(&src.view(), 2, 2, Interpolation::Area).unwrap();
//! assert_eq!(half.as_bytes(), &[3, 5, 11, 13]);
//! ```

#[cfg(target_arch = "x86_64")]
mod avx2;
pub(crate) mod kernels;
pub mod pil;

use crate::error::{Error, Result};
use crate::image::{check_same_format, Image, ImageView, ImageViewMut};
use crate::names::named_enum;
use crate::parallel;
use kernels::{AreaSpans, AreaTap};
use std::fmt;

named_enum! {
    /// Interpolation methods, named and behaving as OpenCV's `INTER_*` flags (which are
    /// accepted too, as are `bilinear`, `bicubic` and `lanczos`).
    #[derive(Default)]
    pub enum Interpolation, "interpolation" {
        /// `INTER_NEAREST`: the source pixel at `floor(x * scale)` (biased to the top left)
        Nearest = "nearest" | "inter_nearest",
        /// `INTER_NEAREST_EXACT`: nearest pixel center, as PIL and scikit-image do
        NearestExact = "nearest-exact" | "nearest_exact" | "inter_nearest_exact",
        /// `INTER_LINEAR`: bilinear on the 2×2 neighbourhood, no antialiasing
        #[default]
        Linear = "linear" | "bilinear" | "inter_linear",
        /// `INTER_AREA`: pixel-area averaging when shrinking, bilinear-like when enlarging
        Area = "area" | "inter_area",
        /// `INTER_CUBIC`: bicubic on 4×4 (a = -0.75)
        Cubic = "cubic" | "bicubic" | "inter_cubic",
        /// `INTER_LANCZOS4`: Lanczos on 8×8
        Lanczos4 = "lanczos4" | "lanczos" | "inter_lanczos4",
    }
}

/// What a plan computes, with its tables.
enum Kind {
    Nearest {
        xofs: Vec<u32>,
        yofs: Vec<u32>,
    },
    AreaFast {
        fx: usize,
        fy: usize,
    },
    Area {
        xspans: AreaSpans,
        ytab: Vec<AreaTap>,
        buf: Vec<f32>,
        sum: Vec<f32>,
    },
    Separable {
        taps: usize,
        /// byte offset of each horizontal tap, clamped to the row (replicated border)
        xidx: Vec<u32>,
        /// leading output pixels whose taps may read 4-byte words (`kernels::wide_pixels`)
        wide: usize,
        /// first source row of each output row (may be outside; clamped per tap)
        ystart: Vec<i64>,
        weights: Weights,
        /// source row held by each slot of the weights' row ring
        tags: Vec<i64>,
    },
}

/// Weights of a separable plan, with the ring of horizontally resampled rows they fill.
enum Weights {
    /// OpenCV's 11-bit fixed point: linear (and area when enlarging) and Lanczos-4
    Fixed {
        x: Vec<i16>,
        y: Vec<i16>,
        ring: Vec<Vec<i32>>,
    },
    /// `f32`: cubic, which OpenCV hands to Intel IPP for 8-bit images
    Float {
        x: Vec<f32>,
        y: Vec<f32>,
        ring: Vec<Vec<f32>>,
    },
}

/// Make sure the ring holds the horizontally resampled source rows `need`, computing missing
/// ones with `fill(row, slot)` into slots no needed row occupies; `slots[k]` tells where
/// `need[k]` is.
fn fetch_rows<T>(
    ring: &mut [Vec<T>],
    tags: &mut [i64],
    need: &[i64],
    slots: &mut [usize; 8],
    mut fill: impl FnMut(usize, &mut [T]),
) {
    for (k, &r) in need.iter().enumerate() {
        slots[k] = match tags.iter().position(|&t| t == r) {
            Some(slot) => slot,
            None => {
                let free = tags
                    .iter()
                    .position(|t| !need.contains(t))
                    .expect("the ring has one slot per tap");
                fill(r as usize, &mut ring[free]);
                tags[free] = r;
                free
            }
        };
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    sw: usize,
    sh: usize,
    dw: usize,
    dh: usize,
    cn: usize,
    interp: Interpolation,
}

struct Plan {
    key: Key,
    kind: Kind,
    row: Vec<u8>,
}

/// A reusable resizer: tables and buffers survive between calls with the same geometry.
pub struct Resizer {
    plan: Option<Plan>,
    /// the plans of the other bands of rows, when given threads
    bands: Vec<Plan>,
    threads: usize,
}

impl Default for Resizer {
    fn default() -> Self {
        Resizer {
            plan: None,
            bands: Vec::new(),
            threads: 1,
        }
    }
}

impl fmt::Debug for Resizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resizer")
            .field("plan", &self.plan.as_ref().map(|p| p.key))
            .finish()
    }
}

impl Resizer {
    /// An empty resizer; tables are made on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Split [`Resizer::resize`]'s output rows over up to `threads` threads (1, the default, to
    /// [`parallel::MAX_THREADS`]; see [`crate::parallel`]). Each
    /// band has its own tables and buffers; the output is the same bytes as with one thread.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.threads = parallel::check_threads(threads)?;
        Ok(())
    }

    /// Resize `src` into `dst` (same pixel format; any sizes ≥ 1).
    pub fn resize(
        &mut self,
        src: &ImageView<'_>,
        dst: &mut ImageViewMut<'_>,
        interp: Interpolation,
    ) -> Result<()> {
        check_same_format("resize", src.format(), dst.format())?;
        let (dw, dh) = (dst.width(), dst.height());
        let n = parallel::bands(dw, dh, self.threads);
        if n == 1 {
            return self.resize_rows(src, dw, dh, interp, |y, row| {
                dst.row_mut(y).copy_from_slice(row)
            });
        }
        let key = self.key(src, dw, dh, interp)?;
        if self.plan.as_ref().map(|p| p.key) != Some(key) {
            self.plan = Some(Plan::new(key));
        }
        self.bands.truncate(n - 1);
        for band in &mut self.bands {
            if band.key != key {
                *band = Plan::new(key);
            }
        }
        while self.bands.len() < n - 1 {
            self.bands.push(Plan::new(key));
        }
        let plans = self.plan.iter_mut().chain(self.bands.iter_mut());
        let whole = dst.sub_view_mut(crate::Rect::new(0, 0, dw, dh))?;
        let work = |(plan, (y0, mut band)): (&mut Plan, (usize, ImageViewMut<'_>))| {
            let rows = y0..y0 + band.height();
            plan.run(src, rows, &mut |y, row| {
                band.row_mut(y - y0).copy_from_slice(row)
            });
        };
        parallel::each(plans.zip(parallel::row_bands(whole, n)), &work);
        Ok(())
    }

    /// The geometry of a call, checked.
    fn key(&self, src: &ImageView<'_>, dw: usize, dh: usize, interp: Interpolation) -> Result<Key> {
        if src.is_empty() {
            return Err(Error::Empty {
                what: "resize source",
                width: src.width(),
                height: src.height(),
            });
        }
        if dw == 0 || dh == 0 {
            return Err(Error::Empty {
                what: "resize destination",
                width: dw,
                height: dh,
            });
        }
        if dw > u32::MAX as usize / 8 || dh > u32::MAX as usize / 8 {
            return Err(Error::TooLarge {
                width: dw,
                height: dh,
            });
        }
        Ok(Key {
            sw: src.width(),
            sh: src.height(),
            dw,
            dh,
            cn: src.channels(),
            interp,
        })
    }

    /// The core: compute each output row in turn and hand it to `sink(y, row)`.
    /// Output rows come in order, top to bottom, `dw * channels` bytes each.
    pub(crate) fn resize_rows(
        &mut self,
        src: &ImageView<'_>,
        dw: usize,
        dh: usize,
        interp: Interpolation,
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<()> {
        let key = self.key(src, dw, dh, interp)?;
        if self.plan.as_ref().map(|p| p.key) != Some(key) {
            self.plan = Some(Plan::new(key));
        }
        let plan = self.plan.as_mut().expect("plan was just set");
        plan.run(src, 0..dh, &mut sink);
        Ok(())
    }
}

/// Resize `src` into `dst` with a one-off [`Resizer`].
pub fn resize(
    src: &ImageView<'_>,
    dst: &mut ImageViewMut<'_>,
    interp: Interpolation,
) -> Result<()> {
    Resizer::new().resize(src, dst, interp)
}

/// Resize into a new `width`×`height` image of the same format.
pub fn resize_to(
    src: &ImageView<'_>,
    width: usize,
    height: usize,
    interp: Interpolation,
) -> Result<Image> {
    let mut out = Image::new(width, height, src.format())?;
    resize(src, &mut out.view_mut(), interp)?;
    Ok(out)
}

fn cubic_coeffs(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// The same kernel evaluated in `f64`, for the `f32` cubic path.
fn cubic_coeffs_f64(x: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// First tap and `f32` weights of one output coordinate of the cubic path.
fn cubic_float_coeffs(d: usize, scale: f64, out: &mut [f32]) -> i64 {
    let f = (d as f64 + 0.5) * scale - 0.5;
    let s = f.floor();
    for (o, c) in out.iter_mut().zip(cubic_coeffs_f64(f - s)) {
        *o = c as f32;
    }
    s as i64 - 1
}

fn lanczos4_coeffs(x: f32) -> [f32; 8] {
    use std::f64::consts::PI;
    const S45: f64 = std::f64::consts::FRAC_1_SQRT_2;
    const CS: [[f64; 2]; 8] = [
        [1.0, 0.0],
        [-S45, -S45],
        [0.0, 1.0],
        [S45, -S45],
        [-1.0, 0.0],
        [S45, S45],
        [0.0, -1.0],
        [-S45, S45],
    ];
    let y0 = -((x + 3.0) as f64) * PI * 0.25;
    let (s0, c0) = (y0.sin(), y0.cos());
    let mut c = [0f32; 8];
    let mut sum = 0f32;
    for i in 0..8 {
        let d = x + 3.0 - i as f32;
        c[i] = if d.abs() >= 1e-6 {
            let y = -(d as f64) * PI * 0.25;
            ((CS[i][0] * s0 + CS[i][1] * c0) / (y * y)) as f32
        } else {
            1e30
        };
        sum += c[i];
    }
    let inv = 1.0 / sum;
    c.map(|v| v * inv)
}

/// `saturate_cast<uchar>(float)`: round half to even, clamp.
fn round_row(sum: &[f32], row: &mut [u8]) {
    for (o, s) in row.iter_mut().zip(sum) {
        *o = kernels::to_u8(s.round_ties_even().clamp(0.0, 255.0));
    }
}

/// OpenCV's `computeResizeAreaTab` for one axis.
fn area_tab(ssize: usize, dsize: usize, scale: f64) -> Vec<AreaTap> {
    let mut tab = Vec::with_capacity(ssize * 2);
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell = scale.min(ssize as f64 - fsx1);
        let mut sx1 = fsx1.ceil() as i64;
        let sx2 = (fsx2.floor() as i64).min(ssize as i64 - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            tab.push(AreaTap {
                d: dx as u32,
                s: (sx1 - 1) as u32,
                w: ((sx1 as f64 - fsx1) / cell) as f32,
            });
        }
        for sx in sx1..sx2 {
            tab.push(AreaTap {
                d: dx as u32,
                s: sx as u32,
                w: (1.0 / cell) as f32,
            });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            tab.push(AreaTap {
                d: dx as u32,
                s: sx2 as u32,
                w: ((fsx2 - sx2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    tab
}

/// Source start index and fixed-point weights of one output coordinate for the separable
/// methods (OpenCV's `resize` coefficient loop). `clamp_linear` applies the 2-tap border rule
/// that OpenCV uses horizontally.
/// One axis of a resize: source size, and the scale both ways as OpenCV computes them.
#[derive(Clone, Copy)]
struct Axis {
    size: usize,
    scale: f64,
    inv_scale: f64,
}

fn separable_coeffs(
    d: usize,
    axis: Axis,
    interp: Interpolation,
    area_mode: bool,
    clamp_linear: bool,
    out: &mut [i16],
) -> i64 {
    let Axis {
        size: ssize,
        scale,
        inv_scale,
    } = axis;
    let (mut s, mut f) = if area_mode {
        let s = (d as f64 * scale).floor() as i64;
        let f = ((d + 1) as f64 - (s + 1) as f64 * inv_scale) as f32;
        (s, if f <= 0.0 { 0.0 } else { f - f.floor() })
    } else {
        let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let s = f.floor();
        (s as i64, f - s)
    };
    let mut cbuf = [0f32; 8];
    match interp {
        Interpolation::Cubic => cbuf[..4].copy_from_slice(&cubic_coeffs(f)),
        Interpolation::Lanczos4 => cbuf.copy_from_slice(&lanczos4_coeffs(f)),
        _ => {
            if clamp_linear {
                if s < 0 {
                    s = 0;
                    f = 0.0;
                }
                if s >= ssize as i64 - 1 {
                    s = ssize as i64 - 1;
                    f = 0.0;
                }
            }
            cbuf[0] = 1.0 - f;
            cbuf[1] = f;
        }
    }
    for (o, c) in out.iter_mut().zip(cbuf) {
        *o = kernels::fixed(c);
    }
    s
}

impl Plan {
    fn new(key: Key) -> Plan {
        let Key {
            sw,
            sh,
            dw,
            dh,
            cn,
            interp,
        } = key;
        let inv_sx = dw as f64 / sw as f64;
        let inv_sy = dh as f64 / sh as f64;
        let (scale_x, scale_y) = (1.0 / inv_sx, 1.0 / inv_sy);
        let kind = match interp {
            Interpolation::Nearest => Kind::Nearest {
                xofs: (0..dw)
                    .map(|x| (((x as f64 * scale_x).floor() as usize).min(sw - 1) * cn) as u32)
                    .collect(),
                yofs: (0..dh)
                    .map(|y| ((y as f64 * scale_y).floor() as usize).min(sh - 1) as u32)
                    .collect(),
            },
            Interpolation::NearestExact => {
                // 16-bit fixed point on pixel centers (OpenCV's resizeNN_bitexact)
                let axis = |s: usize, d: usize| -> Vec<u32> {
                    let step = ((s as u64) << 16).wrapping_add(d as u64 / 2) / d as u64;
                    let start = (step / 2) as i64 - (s % 2) as i64;
                    (0..d)
                        .map(|i| {
                            let v = (step as i64 * i as i64 + start) >> 16;
                            v.clamp(0, s as i64 - 1) as u32
                        })
                        .collect()
                };
                Kind::Nearest {
                    xofs: axis(sw, dw).into_iter().map(|x| x * cn as u32).collect(),
                    yofs: axis(sh, dh),
                }
            }
            _ => {
                let (ix, iy) = (scale_x.round_ties_even(), scale_y.round_ties_even());
                let area_fast =
                    (scale_x - ix).abs() < f64::EPSILON && (scale_y - iy).abs() < f64::EPSILON;
                let mut interp = interp;
                if interp == Interpolation::Linear && area_fast && ix == 2.0 && iy == 2.0 {
                    interp = Interpolation::Area;
                }
                if interp == Interpolation::Area && scale_x >= 1.0 && scale_y >= 1.0 {
                    if area_fast {
                        Kind::AreaFast {
                            fx: ix as usize,
                            fy: iy as usize,
                        }
                    } else {
                        Kind::Area {
                            xspans: AreaSpans::new(&area_tab(sw, dw, scale_x), dw),
                            ytab: area_tab(sh, dh, scale_y),
                            buf: vec![0.0; dw * cn],
                            sum: vec![0.0; dw * cn],
                        }
                    }
                } else {
                    Self::separable(key, interp, scale_x, scale_y, inv_sx, inv_sy)
                }
            }
        };
        Plan {
            key,
            kind,
            row: vec![0; dw * cn],
        }
    }

    fn separable(
        key: Key,
        interp: Interpolation,
        scale_x: f64,
        scale_y: f64,
        inv_sx: f64,
        inv_sy: f64,
    ) -> Kind {
        let Key {
            sw, sh, dw, dh, cn, ..
        } = key;
        let area_mode = interp == Interpolation::Area;
        let ax = Axis {
            size: sw,
            scale: scale_x,
            inv_scale: inv_sx,
        };
        let ay = Axis {
            size: sh,
            scale: scale_y,
            inv_scale: inv_sy,
        };
        let taps = match interp {
            Interpolation::Cubic => 4,
            Interpolation::Lanczos4 => 8,
            _ => 2,
        };
        let half = (taps / 2) as i64;
        let mut xidx = vec![0u32; dw * taps];
        let mut xfirst = vec![0i64; dw];
        let mut ystart = vec![0i64; dh];
        let weights = if interp == Interpolation::Cubic {
            let mut x = vec![0f32; dw * taps];
            let mut y = vec![0f32; dh * taps];
            for (dx, first) in xfirst.iter_mut().enumerate() {
                *first = cubic_float_coeffs(dx, scale_x, &mut x[dx * taps..(dx + 1) * taps]);
            }
            for (dy, start) in ystart.iter_mut().enumerate() {
                *start = cubic_float_coeffs(dy, scale_y, &mut y[dy * taps..(dy + 1) * taps]);
            }
            Weights::Float {
                x,
                y,
                ring: vec![vec![0.0; dw * cn]; taps],
            }
        } else {
            let mut x = vec![0i16; dw * taps];
            let mut y = vec![0i16; dh * taps];
            for (dx, first) in xfirst.iter_mut().enumerate() {
                let a = &mut x[dx * taps..(dx + 1) * taps];
                *first = separable_coeffs(dx, ax, interp, area_mode, true, a) - half + 1;
            }
            for (dy, start) in ystart.iter_mut().enumerate() {
                let b = &mut y[dy * taps..(dy + 1) * taps];
                *start = separable_coeffs(dy, ay, interp, area_mode, false, b) - half + 1;
            }
            Weights::Fixed {
                x,
                y,
                ring: vec![vec![0; dw * cn]; taps],
            }
        };
        for (dx, &first) in xfirst.iter().enumerate() {
            for k in 0..taps {
                let s = (first + k as i64).clamp(0, sw as i64 - 1);
                xidx[dx * taps + k] = (s as usize * cn) as u32;
            }
        }
        Kind::Separable {
            taps,
            wide: kernels::wide_pixels(&xidx, taps, cn, sw * cn, dw * cn),
            xidx,
            ystart,
            weights,
            tags: vec![i64::MIN; taps],
        }
    }

    /// Compute output rows `rows` (of `0..dh`) in order, each handed to `sink(y, row)`.
    fn run(
        &mut self,
        src: &ImageView<'_>,
        rows: std::ops::Range<usize>,
        sink: &mut impl FnMut(usize, &[u8]),
    ) {
        let Key { sh, cn, .. } = self.key;
        let row = &mut self.row;
        match &mut self.kind {
            Kind::Nearest { xofs, yofs } => {
                for dy in rows {
                    kernels::gather(src.row(yofs[dy] as usize), cn, xofs, row);
                    sink(dy, row);
                }
            }
            Kind::AreaFast { fx, fy } => {
                for dy in rows {
                    kernels::area_fast_row(src, dy * *fy, *fy, cn, *fx, row);
                    sink(dy, row);
                }
            }
            Kind::Area {
                xspans,
                ytab,
                buf,
                sum,
            } => {
                // OpenCV's ResizeArea_Invoker: accumulate weighted source rows into `sum`,
                // emit when the destination row changes (the table is in destination order).
                let mut prev: Option<u32> = None;
                let mut first = true;
                for t in ytab.iter().filter(|t| rows.contains(&(t.d as usize))) {
                    kernels::area_hpass(src.row(t.s as usize), cn, xspans, buf);
                    if prev != Some(t.d) {
                        if let Some(p) = prev {
                            round_row(sum, row);
                            sink(p as usize, row);
                        }
                        prev = Some(t.d);
                        first = true;
                    }
                    kernels::area_accumulate(sum, buf, t.w, first);
                    first = false;
                }
                if let Some(p) = prev {
                    round_row(sum, row);
                    sink(p as usize, row);
                }
            }
            Kind::Separable {
                taps,
                xidx,
                wide,
                ystart,
                weights,
                tags,
            } => {
                let (taps, wide) = (*taps, *wide);
                // the ring holds rows of the previous call's source: forget them
                tags.fill(i64::MIN);
                let mut slots = [0usize; 8];
                let mut need = [0i64; 8];
                for dy in rows {
                    for (k, n) in need.iter_mut().enumerate().take(taps) {
                        *n = (ystart[dy] + k as i64).clamp(0, sh as i64 - 1);
                    }
                    let need = &need[..taps];
                    match weights {
                        Weights::Fixed { x, y, ring }
                            if taps == 2
                                && need[0] != need[1]
                                && !tags.contains(&need[0])
                                && !tags.contains(&need[1]) =>
                        {
                            // two new rows (the rule when shrinking): one pass over the taps
                            let (r0, r1) = ring.split_at_mut(1);
                            let rows = [src.row(need[0] as usize), src.row(need[1] as usize)];
                            kernels::hpass2::<2>(rows, cn, xidx, x, wide, [&mut r0[0], &mut r1[0]]);
                            tags.copy_from_slice(&need[..2]);
                            let b = &y[dy * 2..dy * 2 + 2];
                            kernels::vlinear(&ring[0], &ring[1], b, row);
                        }
                        Weights::Fixed { x, y, ring } => {
                            fetch_rows(ring, tags, need, &mut slots, |r, out| match taps {
                                2 => kernels::hpass::<2>(src.row(r), cn, xidx, x, wide, out),
                                _ => kernels::hpass::<8>(src.row(r), cn, xidx, x, wide, out),
                            });
                            let b = &y[dy * taps..(dy + 1) * taps];
                            if taps == 2 {
                                kernels::vlinear(&ring[slots[0]], &ring[slots[1]], b, row);
                            } else {
                                let rows = std::array::from_fn(|k| ring[slots[k]].as_slice());
                                kernels::vlanczos(rows, b, row);
                            }
                        }
                        Weights::Float { x, y, ring } => {
                            fetch_rows(ring, tags, need, &mut slots, |r, out| {
                                kernels::hpass_f32::<4>(src.row(r), cn, xidx, x, wide, out)
                            });
                            let rows: [&[f32]; 4] =
                                std::array::from_fn(|k| ring[slots[k]].as_slice());
                            kernels::vpass_f32(rows, &y[dy * taps..(dy + 1) * taps], row);
                        }
                    }
                    sink(dy, row);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelFormat;

    #[test]
    fn names_round_trip() {
        for i in Interpolation::ALL {
            assert_eq!(i.name().parse::<Interpolation>().unwrap(), i);
        }
        assert_eq!(
            "INTER_NEAREST_EXACT".parse::<Interpolation>().unwrap(),
            Interpolation::NearestExact
        );
        let err = "spline".parse::<Interpolation>().unwrap_err().to_string();
        assert!(err.contains("lanczos4"), "{err}");
    }

    #[test]
    fn linear_does_not_antialias_when_shrinking() {
        // a 1-pixel checkerboard shrunk 4x by linear picks pixels, by area averages them
        let data: Vec<u8> = (0..64)
            .map(|i| if (i / 8 + i % 8) % 2 == 0 { 255 } else { 0 })
            .collect();
        let src = Image::from_vec(data, 8, 8, PixelFormat::Gray8).unwrap();
        let lin = resize_to(&src.view(), 2, 2, Interpolation::Linear).unwrap();
        let area = resize_to(&src.view(), 2, 2, Interpolation::Area).unwrap();
        assert!(
            lin.as_bytes()
                .iter()
                .all(|&v| v == 0 || v == 255 || v == 128),
            "{lin:?}"
        );
        assert!(
            area.as_bytes().iter().all(|&v| v == 128),
            "{:?}",
            area.as_bytes()
        );
    }

    #[test]
    fn reuse_gives_the_same_result() {
        let data: Vec<u8> = (0..(17 * 13 * 3)).map(|i| (i * 7 % 251) as u8).collect();
        let src = Image::from_vec(data, 17, 13, PixelFormat::Rgb8).unwrap();
        let mut r = Resizer::new();
        for interp in Interpolation::ALL {
            let mut a = Image::new(9, 21, PixelFormat::Rgb8).unwrap();
            let mut b = Image::new(9, 21, PixelFormat::Rgb8).unwrap();
            r.resize(&src.view(), &mut a.view_mut(), interp).unwrap();
            r.resize(&src.view(), &mut b.view_mut(), interp).unwrap();
            assert_eq!(a, b, "{interp}");
            assert_eq!(
                a,
                resize_to(&src.view(), 9, 21, interp).unwrap(),
                "{interp}"
            );
        }
    }

    #[test]
    fn a_reused_resizer_forgets_the_previous_source() {
        // Sources one and two rows high: every output row reads the same source rows, which
        // the ring would still hold from the previous frame.
        let mut r = Resizer::new();
        for (w, h) in [(5, 1), (4, 2), (3, 3)] {
            for interp in Interpolation::ALL {
                let frame = |seed: usize| {
                    let data = (0..w * h * 3).map(|i| ((i * 37 + seed * 101) % 256) as u8);
                    Image::from_vec(data.collect(), w, h, PixelFormat::Bgr8).unwrap()
                };
                for seed in 0..3 {
                    let src = frame(seed);
                    let mut got = Image::new(11, 4, PixelFormat::Bgr8).unwrap();
                    r.resize(&src.view(), &mut got.view_mut(), interp).unwrap();
                    let want = resize_to(&src.view(), 11, 4, interp).unwrap();
                    assert_eq!(got, want, "{w}x{h} {interp}, frame {seed}");
                }
            }
        }
    }

    #[test]
    fn threads_give_the_same_bytes() {
        // large enough for several bands; odd sizes so the bands are uneven
        let (w, h) = (411, 333);
        let data: Vec<u8> = (0..w * h * 3)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 997) as u8)
            .collect();
        let src = Image::from_vec(data, w, h, PixelFormat::Bgr8).unwrap();
        for interp in Interpolation::ALL {
            for (dw, dh) in [(300, 211), (823, 667), (137, 300)] {
                let want = resize_to(&src.view(), dw, dh, interp).unwrap();
                for threads in [2, 3, 8] {
                    let mut r = Resizer::new();
                    r.set_threads(threads).unwrap();
                    let mut got = Image::new(dw, dh, PixelFormat::Bgr8).unwrap();
                    for _ in 0..2 {
                        r.resize(&src.view(), &mut got.view_mut(), interp).unwrap();
                        assert_eq!(got, want, "{interp} {dw}x{dh}, {threads} threads");
                    }
                }
            }
        }
        assert!(Resizer::new().set_threads(0).is_err());
        assert!(Resizer::new().set_threads(65).is_err());
    }

    #[test]
    fn empty_sizes_are_errors() {
        let src = Image::new(4, 4, PixelFormat::Gray8).unwrap();
        assert!(matches!(
            resize_to(&src.view(), 0, 3, Interpolation::Linear),
            Err(Error::Empty { .. })
        ));
        let empty = Image::new(0, 4, PixelFormat::Gray8).unwrap();
        assert!(resize_to(&empty.view(), 2, 2, Interpolation::Linear).is_err());
    }
}
