//! A mobile network's inverted residual block as one op: a 1×1 expansion (optional), a
//! depthwise convolution, and a 1×1 projection with the block's residual, computed in bands of
//! output rows.
//!
//! Run op by op, the expanded tensor (MobileNetV2's first blocks: 96 × 112 × 112 floats, 4.8 MB)
//! is written to memory by the expansion and read back by the depthwise convolution, and the
//! depthwise output again by the projection: at these sizes the block is bound by memory, not
//! arithmetic. Here each band of output rows expands only the input rows it needs (the rows
//! its windows share with the next band are computed again), into a buffer that stays in the
//! cache, then runs the depthwise convolution and the projection on it. The three stages use
//! the same kernels as the separate ops ([`super::gemm`], the depthwise convolution's padded
//! planes), so the numbers are the same.

use super::depthwise::{DepthwiseConv, Geometry, Planes};
use super::gemm::{self, Mat};
use super::pointwise::PointwiseConv;
use super::{for_parts, threads, SendPtr};
use std::cell::RefCell;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Floats the expanded band may take (in the L2 cache with the rest of the band's data).
const BAND_FLOATS: usize = 96 * 1024;

/// expand → depthwise → project (+ residual), channels first; inputs: the block's input, then
/// the residual if the projection has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    expand: Option<PointwiseConv>,
    dw: DepthwiseConv,
    project: PointwiseConv,
    in_shape: TVec<usize>,
    /// most output rows of the depthwise convolution per band
    band: usize,
}

impl Block {
    /// The block made of these ops (which must chain: channels first, the expansion's output
    /// the depthwise input, its output the projection's input).
    pub fn new(
        expand: Option<PointwiseConv>,
        dw: DepthwiseConv,
        project: PointwiseConv,
    ) -> TractResult<Block> {
        let g = &dw.geo;
        ensure!(
            dw.setup.direct && !dw.channels_last(),
            "a channels-first depthwise op"
        );
        let (pixels, out_pixels) = (g.in_h * g.in_w, g.out_h * g.out_w);
        if let Some(e) = &expand {
            let s = &e.shape;
            ensure!(!s.in_last && !s.out_last && e.residual.is_none());
            ensure!(s.m == g.channels && s.n == pixels && s.batch == g.batch);
        }
        let p = &project.shape;
        ensure!(!p.in_last && !p.out_last);
        ensure!(p.k == g.channels && p.n == out_pixels && p.batch == g.batch);
        let in_shape = match &expand {
            Some(e) => e.in_shape.clone(),
            None => dw.input_shape(),
        };
        // rows of the expanded band: (band - 1) * stride + kh
        let rows = (BAND_FLOATS / (g.channels * g.in_w).max(1)).max(g.kh);
        let band = ((rows - g.kh) / g.stride_h + 1).clamp(1, g.out_h);
        Ok(Block {
            expand,
            dw,
            project,
            in_shape,
            band,
        })
    }

    /// Output rows per band and parts for `threads`: at most [`Block::band`] rows, in a number
    /// of bands that the parts share evenly (5 bands on 2 threads would leave one thread 3 of
    /// them; 6 smaller ones split 3 and 3).
    fn bands(&self, threads: usize) -> (usize, usize) {
        let oh = self.dw.geo.out_h;
        let parts = threads.clamp(1, oh.div_ceil(self.band));
        let bands = oh.div_ceil(self.band).div_ceil(parts) * parts;
        (oh.div_ceil(bands), parts)
    }

    /// Whether the projection adds a residual.
    pub fn has_residual(&self) -> bool {
        self.project.residual.is_some()
    }

    /// Compute the output from the input (and residual), channels first.
    pub fn compute(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
    ) -> TractResult<()> {
        let g = &self.dw.geo;
        let (m1, h, w) = (g.channels, g.in_h, g.in_w);
        let (oh, ow) = (g.out_h, g.out_w);
        let k0 = match &self.expand {
            Some(e) => e.shape.k,
            None => m1,
        };
        let m2 = self.project.shape.m;
        let res_channels = self.project.residual.as_ref().map(|r| r.0).unwrap_or(0);
        ensure!(input.len() == g.batch * k0 * h * w && output.len() == g.batch * m2 * oh * ow);
        ensure!(
            residual.map(|r| r.len())
                == self
                    .project
                    .residual
                    .as_ref()
                    .map(|_| g.batch * res_channels * oh * ow)
        );
        let (band, parts) = self.bands(threads());
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
        let level = self.dw.setup.level;
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
                        let (src, in_stride): (&[f32], usize) = match &self.expand {
                            Some(e) => {
                                unsafe {
                                    gemm::run(
                                        &e.weights,
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
                                        &e.epilogue(None),
                                        0..e.weights.m_tiles(),
                                        0..rows * w,
                                    );
                                }
                                (&expanded[..m1 * rows * w], rows * w)
                            }
                            None => {
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
                            &self.dw.weights.0[..m1 * taps],
                            &self.dw.bias.0[..m1],
                            self.dw.clamp(),
                        );
                        let p = &self.project;
                        let residual = res.map(|r| Mat {
                            ptr: r.get().wrapping_add((b * res_channels * oh + oy0) * ow)
                                as *const f32,
                            rs: oh * ow,
                            cs: 1,
                        });
                        unsafe {
                            gemm::run(
                                &p.weights,
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
                                &p.epilogue(residual),
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
}

impl Op for Block {
    fn name(&self) -> StaticName {
        "InvertedResidual(tensorcv)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = vec![];
        if let Some(e) = &self.expand {
            info.extend(e.info()?.into_iter().map(|i| format!("expand {i}")));
        }
        info.extend(
            self.dw
                .info()?
                .into_iter()
                .map(|i| format!("depthwise {i}")),
        );
        info.extend(
            self.project
                .info()?
                .into_iter()
                .map(|i| format!("project {i}")),
        );
        info.push(format!("bands of at most {} rows", self.band));
        Ok(vec![info.join("; ")])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Block {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        super::eval_residual_op(
            inputs,
            self.has_residual(),
            &self.project.out_shape,
            |x, r, y| self.compute(x, r, y),
        )
    }
}

impl TypedOp for Block {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        super::residual_op_facts(
            "block",
            inputs,
            &self.in_shape,
            &self.project.residual,
            &self.project.out_shape,
        )
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let mut fma = 0usize;
        for c in [
            self.expand
                .as_ref()
                .map(|e| e.cost(&inputs[..1]))
                .transpose()?,
            Some(self.dw.cost(&inputs[..1])?),
            Some(self.project.cost(&inputs[..1])?),
        ]
        .into_iter()
        .flatten()
        {
            for (_, d) in c {
                fma += d.to_usize().unwrap_or(0);
            }
        }
        Ok(tvec!((Cost::FMA(f32::datum_type()), fma.to_dim())))
    }

    as_op!();
}

/// Whether a block of this expansion / depthwise geometry gains from running in bands: when the
/// expanded tensor (or, without one, the depthwise input) does not fit the L2 cache.
pub(super) fn worth_it(dw: &DepthwiseConv) -> bool {
    let g = &dw.geo;
    g.channels * g.in_h * g.in_w * 4 > 512 * 1024
}
