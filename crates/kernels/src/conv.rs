//! Dense 2-D convolutions (`group == 1`, any kernel size and stride): the input is copied into
//! a zero-bordered buffer (in its own layout), and an output row's patches are then, per kernel
//! row (channels last) or per channel and kernel row (channels first), contiguous runs of the
//! buffer at a fixed stride from one output pixel to the next: the [`gemm`](crate::gemm) tiles
//! read them through those strides as `K` segments, so no patch matrix (im2col) is written.

use crate::depthwise::Geometry;
use crate::error::{ensure, SizeError};
use crate::gemm::{self, Clamp, Epilogue, Kind, Mat, Packed};
use crate::parallel::{for_parts, parts_for, SendPtr};
use std::cell::RefCell;

/// A dense convolution: the spatial geometry (its `channels` are the input's), output
/// channels, layouts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub geo: Geometry,
    /// output channels
    pub m: usize,
    /// input and output channels last (`[H, W, C]`) rather than first
    pub in_last: bool,
    pub out_last: bool,
}

impl ConvShape {
    /// Rows and columns of the padded input copy: every window of every output.
    pub fn padded(&self) -> (usize, usize) {
        let g = &self.geo;
        (
            ((g.out_h - 1) * g.stride_h + g.kh).max(g.pad_top + g.in_h),
            ((g.out_w - 1) * g.stride_w + g.kw).max(g.pad_left + g.in_w),
        )
    }

    /// Columns of a phase plane's row ([`Kind::Rows`]): every `stride_w`-th padded column.
    pub fn phase_width(&self) -> usize {
        self.padded().1.div_ceil(self.geo.stride_w)
    }

    /// Floats in the padded copy.
    pub fn buffer_len(&self) -> usize {
        let (hp, wp) = self.padded();
        if self.kind() == Kind::Rows {
            self.geo.channels * self.geo.stride_w * hp * self.phase_width()
        } else {
            self.geo.channels * hp * wp
        }
    }

    /// Where output row `oy`'s windows start in the padded copy (its pixel 0's corner).
    pub fn corner(&self, oy: usize) -> usize {
        let g = &self.geo;
        let (_, wp) = self.padded();
        match (self.kind(), self.in_last) {
            (Kind::Rows, _) => oy * g.stride_h * self.phase_width(),
            (_, true) => oy * g.stride_h * wp * g.channels,
            (_, false) => oy * g.stride_h * wp,
        }
    }

    /// Where run `j` of a patch starts in the padded copy relative to its window's corner, and
    /// the stride from one output pixel to the next. [`Kind::Rows`]: the copy is split into
    /// planes per channel and column phase (phase `p` holds padded columns `p, p + s, ..`), so
    /// every tap `(ky, kx, ch)` of a row of outputs is a run of consecutive floats; one run per
    /// tap, in the weights' patch order.
    pub fn segments(&self) -> Segments {
        let (at, step) = self.runs();
        Segments {
            at,
            step,
            shape: self.clone(),
        }
    }

    /// The runs of [`ConvShape::segments`] and the stride between output pixels.
    fn runs(&self) -> (Vec<usize>, usize) {
        let g = &self.geo;
        let (hp, wp) = self.padded();
        let c = g.channels;
        if self.kind() == Kind::Rows {
            let (s, wq) = (g.stride_w, self.phase_width());
            let at =
                move |ch: usize, ky: usize, kx: usize| ((ch * s + kx % s) * hp + ky) * wq + kx / s;
            let taps: Vec<usize> = if self.in_last {
                (0..g.kh)
                    .flat_map(|ky| {
                        (0..g.kw).flat_map(move |kx| (0..c).map(move |ch| at(ch, ky, kx)))
                    })
                    .collect()
            } else {
                (0..c)
                    .flat_map(|ch| {
                        (0..g.kh).flat_map(move |ky| (0..g.kw).map(move |kx| at(ch, ky, kx)))
                    })
                    .collect()
            };
            return (taps, 1);
        }
        if self.in_last {
            ((0..g.kh).map(|ky| ky * wp * c).collect(), g.stride_w * c)
        } else {
            let runs = (0..c).flat_map(|ch| (0..g.kh).map(move |ky| ch * hp * wp + ky * wp));
            (runs.collect(), g.stride_w)
        }
    }

    /// Floats per patch.
    pub fn k(&self) -> usize {
        self.geo.channels * self.geo.kh * self.geo.kw
    }

    /// Channels-first outputs: rows of pixels in vectors where output rows are 16 pixels or
    /// more (from a copy of the input split into phase planes, see [`ConvShape::segments`]),
    /// else channel vectors transposed in registers for short patches (a transpose through
    /// memory would cost as much as the products). Channels last: channel vectors.
    pub fn kind(&self) -> Kind {
        if !self.out_last && self.geo.out_w >= 16 {
            Kind::Rows
        } else if !self.out_last && self.k() <= 512 {
            Kind::ColsT
        } else {
            Kind::Cols
        }
    }
}

/// Where the runs of a patch start, for one [`ConvShape`] ([`ConvShape::segments`]), made once
/// when an op is built: [`run`] reads the padded buffer only through them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Segments {
    at: Vec<usize>,
    step: usize,
    shape: ConvShape,
}

/// `output` = the convolution of `input` by the packed weights `w` with the epilogue (`pre`
/// clamp, `residual` add to its first channels, `post` clamp), in `s`'s layouts; `segments` is
/// [`ConvShape::segments`] (of `s`). Output rows are split between the run's threads.
pub fn run(
    s: &ConvShape,
    w: &Packed,
    segments: &Segments,
    (pre, post): (Clamp, Clamp),
    input: &[f32],
    residual: Option<(&[f32], usize)>,
    output: &mut [f32],
) -> Result<(), SizeError> {
    let g = &s.geo;
    let (c, m) = (g.channels, s.m);
    let (image, pixels) = (c * g.in_h * g.in_w, g.out_h * g.out_w);
    ensure!(input.len() == g.batch * image && output.len() == g.batch * m * pixels);
    let res_channels = residual.map(|r| r.1).unwrap_or(0);
    ensure!(
        w.m() == m
            && w.k() == s.k()
            && w.kind() == s.kind()
            && segments.shape == *s
            && res_channels <= m
            && residual.is_none_or(|(r, c)| r.len() == g.batch * c * pixels)
    );
    let residual = residual.map(|r| r.0);
    let (segments, step) = (&segments.at[..], segments.step);
    thread_local! {
        static PADDED: RefCell<(Vec<f32>, Option<ConvShape>)> = const { RefCell::new((Vec::new(), None)) };
    }
    // (rows, columns) strides of the output (and residual) with `ch` channels
    let strides = |ch: usize| {
        if s.out_last {
            (1, ch)
        } else {
            (pixels, 1)
        }
    };
    let ((or, oc), (rr, rc)) = (strides(m), strides(res_channels));
    let parts = parts_for(m * s.k() * pixels, g.out_h);
    let rows_per = g.out_h.div_ceil(parts);
    PADDED.with_borrow_mut(|(buf, last)| {
        if last.as_ref() != Some(s) {
            // a new geometry: zero borders once
            buf.clear();
            buf.resize(s.buffer_len(), 0.0);
            *last = Some(s.clone());
        }
        for b in 0..g.batch {
            fill(s, &input[b * image..(b + 1) * image], buf);
            let (src, out) = (SendPtr(buf.as_mut_ptr()), SendPtr(output.as_mut_ptr()));
            let res = residual.map(|r| SendPtr(r.as_ptr() as *mut f32));
            for_parts(parts, |p| {
                // image `b` of the residual, whose length was checked
                let res =
                    res.map(|r| r.get().wrapping_add(b * res_channels * pixels) as *const f32);
                let ep = Epilogue::new(pre, res, (rr, rc), res_channels, post);
                for oy in (p * rows_per).min(g.out_h)..((p + 1) * rows_per).min(g.out_h) {
                    let cols = oy * g.out_w..(oy + 1) * g.out_w;
                    // pixel n of this row reads from corner(oy) + (n - oy * out_w) * step
                    let ptr =
                        src.get()
                            .wrapping_add(s.corner(oy))
                            .wrapping_sub(cols.start * step) as *const f32;
                    // SAFETY: the padded buffer holds every window of every output pixel;
                    // threads write disjoint rows of the output
                    unsafe {
                        gemm::run(
                            w,
                            Mat {
                                ptr,
                                rs: 1,
                                cs: step,
                            },
                            segments,
                            Mat {
                                ptr: out.get().add(b * m * pixels),
                                rs: or,
                                cs: oc,
                            },
                            &ep,
                            0..w.m_tiles(),
                            cols,
                        )
                    }
                }
            });
        }
    });
    Ok(())
}

/// `buf[at(q) + i] = src[i * f + q]` for `q < f`, `i < groups`: a run of groups of `f` floats
/// dealt out to `f` rows, with the group size a constant for the common ones (RGB at stride 1
/// and 2, planes at stride 2) so the compiler turns the loads into shuffles.
fn deal(src: &[f32], buf: &mut [f32], f: usize, at: impl Fn(usize) -> usize, groups: usize) {
    fn fixed<const F: usize>(
        src: &[f32],
        buf: &mut [f32],
        at: impl Fn(usize) -> usize,
        groups: usize,
    ) {
        let rows: [usize; F] = std::array::from_fn(at);
        assert!(src.len() >= groups * F && rows.iter().all(|&r| r + groups <= buf.len()));
        let (src, dst) = (src.as_ptr(), buf.as_mut_ptr());
        for i in 0..groups {
            for (q, &r) in rows.iter().enumerate() {
                // SAFETY: bounds asserted above
                unsafe { *dst.add(r + i) = *src.add(i * F + q) };
            }
        }
    }
    match f {
        2 => fixed::<2>(src, buf, at, groups),
        3 => fixed::<3>(src, buf, at, groups),
        6 => fixed::<6>(src, buf, at, groups),
        f => {
            for (i, group) in src.chunks_exact(f).take(groups).enumerate() {
                for (q, &v) in group.iter().enumerate() {
                    buf[at(q) + i] = v;
                }
            }
        }
    }
}

/// Copy one image into the padded buffer (zero borders already there).
fn fill(s: &ConvShape, image: &[f32], buf: &mut [f32]) {
    let g = &s.geo;
    let c = g.channels;
    let (hp, wp) = s.padded();
    if s.kind() == Kind::Rows {
        // phase planes: padded column `col` of channel `ch` at plane `ch * s + col % s`,
        // column `col / s`. Per input row, from the first pixel of a phase-0 column on,
        // groups of `s` pixels (`s * C` floats channels last) deal out one float per plane.
        let (st, wq) = (g.stride_w, s.phase_width());
        let line = if s.in_last { g.in_w * c } else { g.in_w };
        let x_start = ((st - g.pad_left % st) % st).min(g.in_w);
        let j_start = (g.pad_left + x_start) / st;
        let groups = (g.in_w - x_start) / st;
        let plane = |ch: usize, p: usize, row: usize| ((ch * st + p) * hp + row) * wq;
        for y in 0..g.in_h {
            let row = g.pad_top + y;
            // the pixels before the first group and after the last
            let lone = (0..x_start).chain(x_start + groups * st..g.in_w);
            for x in lone {
                let col = g.pad_left + x;
                for ch in 0..c {
                    let v = if s.in_last {
                        image[y * line + x * c + ch]
                    } else {
                        image[(ch * g.in_h + y) * line + x]
                    };
                    buf[plane(ch, col % st, row) + col / st] = v;
                }
            }
            if groups == 0 {
                continue;
            }
            if s.in_last {
                let src = &image[y * line + x_start * c..y * line + (x_start + groups * st) * c];
                // float q of a group: phase q / C, channel q % C
                let at = |q: usize| plane(q % c, q / c, row) + j_start;
                deal(src, buf, st * c, at, groups);
            } else {
                for ch in 0..c {
                    let from = (ch * g.in_h + y) * line + x_start;
                    let src = &image[from..from + groups * st];
                    deal(src, buf, st, |p| plane(ch, p, row) + j_start, groups);
                }
            }
        }
    } else if s.in_last {
        let row = g.in_w * c;
        for y in 0..g.in_h {
            let at = ((g.pad_top + y) * wp + g.pad_left) * c;
            buf[at..at + row].copy_from_slice(&image[y * row..(y + 1) * row]);
        }
    } else {
        for ch in 0..c {
            for y in 0..g.in_h {
                let at = ch * hp * wp + (g.pad_top + y) * wp + g.pad_left;
                let from = (ch * g.in_h + y) * g.in_w;
                buf[at..at + g.in_w].copy_from_slice(&image[from..from + g.in_w]);
            }
        }
    }
}
