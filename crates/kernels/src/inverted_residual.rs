//! A mobile network's inverted residual block in one pass: a 1×1 expansion (optional), a
//! depthwise convolution, and a 1×1 projection with the block's residual, computed in bands of
//! output rows.
//!
//! Run stage by stage, the expanded tensor (MobileNetV2's first blocks: 96 × 112 × 112 floats,
//! 4.8 MB) is written to memory by the expansion and read back by the depthwise convolution,
//! and the depthwise output again by the projection: at these sizes the block is bound by
//! memory, not arithmetic. Here each band of output rows expands only the input rows it needs
//! (the rows its windows share with the next band are computed again), into a buffer that
//! stays in the cache, then runs the depthwise convolution and the projection on it. The three
//! stages use the same kernels as the separate ops ([`crate::gemm`], the depthwise
//! convolution's padded planes), so the numbers are the same.

use crate::depthwise::{rows_apply, Geometry, Planes};
use crate::error::{ensure, SizeError};
use crate::gemm::{self, Epilogue, Mat, Packed};
use crate::isa::Level;
use crate::parallel::{for_parts, threads, SendPtr};
use std::cell::RefCell;

/// Floats the expanded band may take (in the L2 cache with the rest of the band's data).
const BAND_FLOATS: usize = 96 * 1024;

/// A 1×1 stage: packed weights and the clamps around the (projection's) residual add.
pub struct Product<'a> {
    pub weights: &'a Packed,
    pub pre: Option<(f32, f32)>,
    pub post: Option<(f32, f32)>,
}

impl Product<'_> {
    /// The epilogue with `residual` (channels first, `plane` apart, `channels` of them) added.
    fn epilogue(&self, residual: Option<*const f32>, plane: usize, channels: usize) -> Epilogue {
        Epilogue::new(self.pre, residual, (plane, 1), channels, self.post)
    }
}

/// The depthwise stage: its geometry (channels first, strides 1 or 2), level, weights
/// (`[C][kh * kw]`), bias and clamp.
pub struct Depthwise<'a> {
    pub geo: &'a Geometry,
    pub level: Level,
    pub weights: &'a [f32],
    pub bias: &'a [f32],
    pub clamp: Option<(f32, f32)>,
}

/// Most output rows of the depthwise convolution per band for `geo`: the expanded rows they
/// read fit [`BAND_FLOATS`].
pub fn band_rows(geo: &Geometry) -> usize {
    // rows of the expanded band: (band - 1) * stride + kh
    let rows = (BAND_FLOATS / (geo.channels * geo.in_w).max(1)).max(geo.kh);
    ((rows - geo.kh) / geo.stride_h.max(1) + 1).clamp(1, geo.out_h.max(1))
}

/// Output rows per band and parts for `threads`: at most `band` rows, in a number
/// of bands that the parts share evenly (5 bands on 2 threads would leave one thread 3 of
/// them; 6 smaller ones split 3 and 3).
fn bands(oh: usize, band: usize, threads: usize) -> (usize, usize) {
    let parts = threads.clamp(1, oh.div_ceil(band));
    let bands = oh.div_ceil(band).div_ceil(parts) * parts;
    (oh.div_ceil(bands), parts)
}

/// The block's output from its input (and residual), channels first: `expand` (if any) takes
/// the input's channels to the depthwise convolution's, `project` those to the output's,
/// adding the residual (with its channel count) in its epilogue; `band` is [`band_rows`].
pub fn run(
    expand: Option<Product>,
    dw: &Depthwise,
    project: Product,
    band: usize,
    input: &[f32],
    residual: Option<(&[f32], usize)>,
    output: &mut [f32],
) -> Result<(), SizeError> {
    let g = dw.geo;
    let (m1, h, w) = (g.channels, g.in_h, g.in_w);
    let (oh, ow) = (g.out_h, g.out_w);
    let k0 = match &expand {
        Some(e) => e.weights.k(),
        None => m1,
    };
    let m2 = project.weights.m();
    let res_channels = residual.map(|r| r.1).unwrap_or(0);
    ensure!(input.len() == g.batch * k0 * h * w && output.len() == g.batch * m2 * oh * ow);
    ensure!(
        expand.as_ref().is_none_or(|e| e.weights.m() == m1)
            && project.weights.k() == m1
            && res_channels <= m2
            && residual.is_none_or(|(r, c)| r.len() == g.batch * c * oh * ow)
            && dw.weights.len() >= m1 * g.kh * g.kw
            && dw.bias.len() >= m1
            && band >= 1
            && rows_apply(g)
    );
    let residual = residual.map(|r| r.0);
    let (band, parts) = bands(oh, band, threads());
    let bands = oh.div_ceil(band);
    let per = bands.div_ceil(parts);
    thread_local! {
        static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    }
    let (x, out) = (
        SendPtr(input.as_ptr() as *mut f32),
        SendPtr(output.as_mut_ptr()),
    );
    let res = residual.map(|r| SendPtr(r.as_ptr() as *mut f32));
    let level = dw.level;
    let taps = g.kh * g.kw;
    let max_rows = (band - 1) * g.stride_h + g.kh;
    for b in 0..g.batch {
        for_parts(parts, |part| {
            BUFFERS.with_borrow_mut(|(expanded, depthwise)| {
                expanded.resize(m1 * max_rows * w, 0.0);
                depthwise.resize(m1 * band * ow, 0.0);
                for band_index in (part * per).min(bands)..((part + 1) * per).min(bands) {
                    let oy0 = band_index * band;
                    let oy1 = (oy0 + band).min(oh);
                    // the input rows the band's windows read
                    let lo = (oy0 * g.stride_h) as isize - g.pad_top as isize;
                    let hi = ((oy1 - 1) * g.stride_h + g.kh) as isize - g.pad_top as isize;
                    let (r0, r1) = (lo.max(0) as usize, (hi.min(h as isize)) as usize);
                    let rows = r1 - r0;
                    let x_img = x.get().wrapping_add(b * k0 * h * w) as *const f32;
                    // SAFETY (both products): the input, buffers and output hold every
                    // (row, column) their strides address: rows r0..r1 of the input, the
                    // buffers sized above, rows oy0..oy1 of the output; parts write
                    // disjoint bands
                    let (src, in_stride): (&[f32], usize) = match &expand {
                        Some(e) => {
                            // SAFETY: see above
                            unsafe {
                                gemm::run(
                                    e.weights,
                                    Mat {
                                        ptr: x_img.add(r0 * w),
                                        rs: h * w,
                                        cs: 1,
                                    },
                                    &[0],
                                    Mat {
                                        ptr: expanded.as_mut_ptr(),
                                        rs: rows * w,
                                        cs: 1,
                                    },
                                    &e.epilogue(None, 0, 0),
                                    0..e.weights.m_tiles(),
                                    0..rows * w,
                                );
                            }
                            (&expanded[..m1 * rows * w], rows * w)
                        }
                        None => {
                            // SAFETY: image `b` of the input, whose length was checked
                            let all = unsafe { std::slice::from_raw_parts(x_img, k0 * h * w) };
                            (&all[r0 * w..], h * w)
                        }
                    };
                    let band_geo = Geometry {
                        batch: 1,
                        in_h: rows,
                        out_h: oy1 - oy0,
                        pad_top: (r0 as isize - lo) as usize,
                        ..g.clone()
                    };
                    let planes = Planes {
                        input: src,
                        in_stride,
                        out_stride: (oy1 - oy0) * ow,
                        count: m1,
                    };
                    let dw_out = &mut depthwise[..m1 * (oy1 - oy0) * ow];
                    band_geo.run_direct(
                        level,
                        planes,
                        dw_out,
                        false,
                        &dw.weights[..m1 * taps],
                        &dw.bias[..m1],
                        dw.clamp,
                    );
                    let p = &project;
                    let residual = res.map(|r| {
                        r.get().wrapping_add((b * res_channels * oh + oy0) * ow) as *const f32
                    });
                    // SAFETY: see above
                    unsafe {
                        gemm::run(
                            p.weights,
                            Mat {
                                ptr: dw_out.as_ptr(),
                                rs: (oy1 - oy0) * ow,
                                cs: 1,
                            },
                            &[0],
                            Mat {
                                ptr: out.get().add((b * m2 * oh + oy0) * ow),
                                rs: oh * ow,
                                cs: 1,
                            },
                            &p.epilogue(residual, oh * ow, res_channels),
                            0..p.weights.m_tiles(),
                            0..(oy1 - oy0) * ow,
                        );
                    }
                }
            })
        });
    }
    Ok(())
}
