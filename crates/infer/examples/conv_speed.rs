//! Dense convolution kernel speed on the stems (hot caches).
use std::time::Instant;
use tensorcv_infer::kernels::conv::{Conv2d, ConvShape};
use tensorcv_infer::kernels::Geometry;
use tract_onnx::prelude::*;

fn main() {
    for &(c, h, m, k, s, pad, out_last) in &[
        (
            3usize,
            224usize,
            32usize,
            3usize,
            2usize,
            (0usize, 0usize),
            false,
        ),
        (3, 224, 32, 3, 2, (0, 0), true),
        (3, 128, 24, 5, 2, (1, 1), false),
    ] {
        let oh = (h + 2 * pad.0 + 1 - k) / s + 1;
        let geo = Geometry {
            batch: 1,
            channels: c,
            in_h: h,
            in_w: h,
            out_h: oh,
            out_w: oh,
            kh: k,
            kw: k,
            stride_h: s,
            stride_w: s,
            pad_top: pad.0,
            pad_left: pad.1,
        };
        let shape = ConvShape {
            geo: geo.clone(),
            m,
            in_last: true,
            out_last,
        };
        let out_shape: TVec<usize> = if out_last {
            tvec![1, oh, oh, m]
        } else {
            tvec![1, m, oh, oh]
        };
        let op = Conv2d::new(
            shape,
            tvec![1, h, h, c],
            out_shape,
            vec![0.01; m * c * k * k],
            vec![0.0; m],
            Some((0.0, 6.0)),
            None,
            None,
        )
        .unwrap();
        let x = vec![0.5f32; c * h * h];
        let mut y = vec![0f32; m * oh * oh];
        for _ in 0..3 {
            op.compute(&x, None, &mut y).unwrap();
        }
        let mut best = f64::MAX;
        for _ in 0..5 {
            let reps = 50;
            let t = Instant::now();
            for _ in 0..reps {
                op.compute(&x, None, &mut y).unwrap();
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "{geo} -> {m} out_last {out_last}: {:8.1} us, {:.1} GMAC/s",
            best * 1e6,
            (m * c * k * k * oh * oh) as f64 / best / 1e9
        );
    }
}
