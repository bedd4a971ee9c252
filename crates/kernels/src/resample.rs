//! Separable resampling of the last two axes of an `f32` tensor with a fixed plan per axis
//! (source indices and weights per output position): rows first (a gather per output column),
//! then columns (whole rows blended, which vectorises), a plane per part of the run's threads.

use crate::error::{ensure, SizeError};
use crate::parallel::planes;
use std::cell::RefCell;

/// One axis' plan: `window` source indices and weights per output position.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub window: usize,
    pub indices: Vec<usize>,
    pub weights: Vec<f32>,
}

impl Plan {
    /// Whether the plan maps `len` inputs to `out` outputs: a window of at least one tap per
    /// output, every index inside the input.
    fn fits(&self, len: usize, out: usize) -> bool {
        (self.window >= 1 || out == 0)
            && self.indices.len() == out * self.window
            && self.weights.len() == self.indices.len()
            && self.indices.iter().all(|&i| i < len)
    }
}

/// Resample every `in_h × in_w` plane of `input` to `out_h × out_w` in `output`.
pub fn run(
    (in_h, in_w): (usize, usize),
    (out_h, out_w): (usize, usize),
    rows: &Plan,
    cols: &Plan,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), SizeError> {
    ensure!(
        rows.fits(in_h, out_h) && cols.fits(in_w, out_w),
        "a resampling plan does not fit its axis"
    );
    thread_local! {
        static ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    planes(
        input,
        in_h * in_w,
        output,
        out_h * out_w,
        rows.window * cols.window,
        |_, i, o| ROWS.with_borrow_mut(|tmp| plane((in_h, in_w), out_w, rows, cols, i, o, tmp)),
    )
}

fn plane(
    (in_h, in_w): (usize, usize),
    ow: usize,
    rows: &Plan,
    cols: &Plan,
    input: &[f32],
    out: &mut [f32],
    tmp: &mut Vec<f32>,
) {
    // every input row resampled to out_w columns
    tmp.clear();
    tmp.resize(in_h * ow, 0.0);
    let (cw, ci, cwt) = (cols.window, &cols.indices, &cols.weights);
    for (src, dst) in input.chunks_exact(in_w).zip(tmp.chunks_exact_mut(ow)) {
        for (x, d) in dst.iter_mut().enumerate() {
            let (ix, wt) = (&ci[x * cw..][..cw], &cwt[x * cw..][..cw]);
            *d = ix.iter().zip(wt).map(|(&i, &w)| src[i] * w).sum();
        }
    }
    // output rows as weighted sums of those rows
    let (rw, ri, rwt) = (rows.window, &rows.indices, &rows.weights);
    for (y, dst) in out.chunks_exact_mut(ow).enumerate() {
        let (iy, wt) = (&ri[y * rw..][..rw], &rwt[y * rw..][..rw]);
        let first = &tmp[iy[0] * ow..][..ow];
        dst.iter_mut().zip(first).for_each(|(d, &s)| *d = s * wt[0]);
        for (&i, &w) in iy[1..].iter().zip(&wt[1..]) {
            let src = &tmp[i * ow..][..ow];
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s * w);
        }
    }
}
