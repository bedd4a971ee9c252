//! Depthwise kernel speed on MobileNetV2's shapes (hot caches).
use std::time::Instant;
use tensorcv_infer::kernels::{DepthwiseConv, Geometry};

fn main() {
    let only: Option<usize> = std::env::args().nth(1).map(|a| a.parse().unwrap());
    for (case, &(c, h, s)) in [
        (96usize, 112usize, 2usize),
        (144, 56, 1),
        (144, 56, 2),
        (192, 28, 1),
        (384, 14, 1),
        (576, 14, 2),
        (960, 7, 1),
    ]
    .iter()
    .enumerate()
    {
        if only.is_some_and(|o| o != case) {
            continue;
        }
        let (oh, pad) = if s == 1 { (h, 1) } else { (h / 2, 0) };
        let geo = Geometry {
            batch: 1,
            channels: c,
            in_h: h,
            in_w: h,
            out_h: oh,
            out_w: oh,
            kh: 3,
            kw: 3,
            stride_h: s,
            stride_w: s,
            pad_top: pad,
            pad_left: pad,
        };
        let op = DepthwiseConv::new(
            geo.clone(),
            false,
            false,
            vec![0.1; c * 9],
            vec![0.0; c],
            Some((0.0, 6.0)),
        )
        .unwrap();
        let x = vec![0.5f32; c * h * h];
        let mut y = vec![0f32; c * oh * oh];
        for _ in 0..3 {
            op.compute(&x, &mut y).unwrap();
        }
        let mut best = f64::MAX;
        for _ in 0..5 {
            let reps = if only.is_some() { 200 } else { 20 };
            let t = Instant::now();
            for _ in 0..reps {
                op.compute(&x, &mut y).unwrap();
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "{geo}: {:8.1} us, {:.2} ns per output vector of 16",
            best * 1e6,
            best * 1e9 / (c * oh * oh.div_ceil(16)) as f64
        );
    }
}
