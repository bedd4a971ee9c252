//! The kernels against plain loops, at every instruction set this machine runs: depthwise
//! convolution (both layouts, the phase-buffer and direct paths), max pooling, channel
//! transposes and scales, separable resampling. No tract here: these are the numbers the
//! kernels promise on their own (the tract ops built on them are tested in `tensorcv-infer`).

use tensorcv_kernels::channels;
use tensorcv_kernels::depthwise::{Geometry, Mode};
use tensorcv_kernels::resample::{self, Plan};
use tensorcv_kernels::Level;

const LEVELS: [Level; 5] = Level::ALL;

fn random(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

fn geometry(c: usize, (h, w): (usize, usize), k: usize, s: usize, pad: usize) -> Geometry {
    Geometry {
        batch: 2,
        channels: c,
        in_h: h,
        in_w: w,
        out_h: (h + 2 * pad - k) / s + 1,
        out_w: (w + 2 * pad - k) / s + 1,
        kh: k,
        kw: k,
        stride_h: s,
        stride_w: s,
        pad_top: pad,
        pad_left: pad,
    }
}

/// Channels first, in f64: the weighted sum (or the maximum) over the taps inside the image.
fn reference(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    max: bool,
    clamp: (f32, f32),
) -> Vec<f32> {
    let mut out = vec![];
    for n in 0..g.batch * g.channels {
        let c = n % g.channels;
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let mut acc = if max { f64::NEG_INFINITY } else { b[c] as f64 };
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.stride_h + ky) as isize - g.pad_top as isize;
                        let ix = (ox * g.stride_w + kx) as isize - g.pad_left as isize;
                        if iy < 0 || ix < 0 || iy >= g.in_h as isize || ix >= g.in_w as isize {
                            continue;
                        }
                        let v = x[(n * g.in_h + iy as usize) * g.in_w + ix as usize] as f64;
                        if max {
                            acc = acc.max(v);
                        } else {
                            acc += v * w[c * g.kh * g.kw + ky * g.kw + kx] as f64;
                        }
                    }
                }
                out.push(if max {
                    acc as f32
                } else {
                    (acc as f32).max(clamp.0).min(clamp.1)
                });
            }
        }
    }
    out
}

/// `[N, C, H, W]` → `[N, H, W, C]`.
fn to_last(x: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for p in 0..hw {
                y[(b * hw + p) * c + ch] = x[(b * c + ch) * hw + p];
            }
        }
    }
    y
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{what}: [{i}] {a} vs {b}"
        );
    }
}

#[test]
fn depthwise_convolution_and_pooling_match_plain_loops() {
    let clamp = (0.0, 6.0);
    for (c, hw, k, s, pad) in [
        (5, (13, 17), 3, 1, 1),
        (3, (12, 12), 3, 2, 1),
        (7, (9, 20), 5, 1, 2),
        (4, (16, 11), 5, 2, 2),
        (2, (8, 8), 7, 3, 3),
        (6, (10, 10), 3, 1, 0),
    ] {
        let g = geometry(c, hw, k, s, pad);
        let x = random(g.batch * c * g.in_h * g.in_w, 7);
        let w = random(c * k * k, 11);
        let b = random(c, 13);
        let want = reference(&g, &x, &w, &b, false, clamp);
        let pooled = reference(&g, &x, &w, &b, true, clamp);
        for level in LEVELS.into_iter().filter(|l| l.available()) {
            let what = format!("{g} at {level:?}");
            let setup = g.setup(Some(level), false);
            let mut out = vec![f32::NAN; want.len()];
            g.run(&setup, &x, &mut out, Mode::Sum(Some(clamp)), &w, &b)
                .unwrap();
            assert_close(&out, &want, &what);
            g.run(&setup, &x, &mut out, Mode::Max, &[], &[]).unwrap();
            assert_eq!(out, pooled, "max pool {what}");
            // channels last: weights tap-major, a row of zeros for the taps outside
            let hw_in = g.in_h * g.in_w;
            let xl = to_last(&x, g.batch, c, hw_in);
            let wl: Vec<f32> = (0..k * k * c).map(|i| w[(i % c) * k * k + i / c]).collect();
            let zeros = vec![0.0; g.in_w * c];
            let mut last = vec![f32::NAN; want.len()];
            g.run_last(level, &xl, &mut last, &wl, &b, Some(clamp), &zeros)
                .unwrap();
            let want_last = to_last(&want, g.batch, c, g.out_h * g.out_w);
            assert_close(&last, &want_last, &format!("channels last {what}"));
        }
    }
}

#[test]
fn buffers_that_do_not_fit_are_an_error() {
    let g = geometry(3, (8, 8), 3, 1, 1);
    let setup = g.setup(None, false);
    let mut out = vec![0.0; 10];
    assert!(g
        .run(&setup, &[0.0; 5], &mut out, Mode::Max, &[], &[])
        .is_err());
    assert!(channels::transpose(Level::best(), &[0.0; 6], &mut [0.0; 5], 1, 2, 3).is_err());
    assert!(channels::scale(&[0.0; 7], &[1.0, 2.0], &mut [0.0; 7]).is_err());
    let plan = Plan {
        window: 1,
        indices: vec![9],
        weights: vec![1.0],
    };
    let err = resample::run((2, 2), (1, 1), &plan, &plan, &[0.0; 4], &mut [0.0; 1]);
    assert!(err.is_err(), "an index outside the input is refused");
}

#[test]
fn transposes_and_scales_match_index_arithmetic() {
    for (images, rows, cols) in [(1, 3, 5), (2, 40, 42), (1, 16, 16), (3, 17, 33), (1, 0, 4)] {
        let x: Vec<f32> = (0..images * rows * cols).map(|i| i as f32).collect();
        let mut want = vec![0.0; x.len()];
        for b in 0..images {
            for r in 0..rows {
                for c in 0..cols {
                    want[b * rows * cols + c * rows + r] = x[b * rows * cols + r * cols + c];
                }
            }
        }
        for level in LEVELS.into_iter().filter(|l| l.available()) {
            let mut got = vec![f32::NAN; x.len()];
            channels::transpose(level, &x, &mut got, images, rows, cols).unwrap();
            assert_eq!(got, want, "{images}x{rows}x{cols} at {level:?}");
        }
    }
    let s = [2.0, -1.0, 0.5];
    let x = random(12, 3);
    let mut out = vec![0.0; 12];
    channels::scale(&x, &s, &mut out).unwrap();
    for (i, (o, v)) in out.iter().zip(&x).enumerate() {
        assert_eq!(*o, v * s[i % 3]);
    }
}

#[test]
fn resampling_blends_rows_then_columns() {
    // 2x bilinear-like plan on 3x4 -> 2x3, weights summing to 1
    let rows = Plan {
        window: 2,
        indices: vec![0, 1, 1, 2],
        weights: vec![0.25, 0.75, 0.5, 0.5],
    };
    let cols = Plan {
        window: 2,
        indices: vec![0, 1, 1, 2, 2, 3],
        weights: vec![0.5, 0.5, 0.1, 0.9, 1.0, 0.0],
    };
    let x = random(2 * 3 * 4, 5);
    let mut out = vec![0.0; 2 * 2 * 3];
    resample::run((3, 4), (2, 3), &rows, &cols, &x, &mut out).unwrap();
    for p in 0..2 {
        for y in 0..2 {
            for c in 0..3 {
                let mut want = 0.0;
                for i in 0..2 {
                    for j in 0..2 {
                        let (iy, wy) = (rows.indices[y * 2 + i], rows.weights[y * 2 + i]);
                        let (ix, wx) = (cols.indices[c * 2 + j], cols.weights[c * 2 + j]);
                        want += wy * wx * x[p * 12 + iy * 4 + ix];
                    }
                }
                let got = out[p * 6 + y * 3 + c];
                assert!((got - want).abs() < 1e-6, "{p} {y} {c}: {got} vs {want}");
            }
        }
    }
}
