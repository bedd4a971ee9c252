//! GEMM kernel speed on MobileNetV2's 1×1 shapes (hot caches): `cargo run --release -p
//! tensorcv-infer --example gemm_speed`.
use std::time::Instant;
use tensorcv_infer::kernels::gemm::{run, Epilogue, Kind, Mat, Packed};
use tensorcv_infer::kernels::Level;

fn main() {
    let shapes = [
        (96, 16, 12544),
        (16, 32, 12544),
        (144, 24, 3136),
        (24, 144, 3136),
        (192, 32, 784),
        (32, 192, 784),
        (384, 64, 196),
        (64, 384, 196),
        (576, 96, 196),
        (96, 576, 196),
        (960, 160, 49),
        (160, 960, 49),
        (1280, 320, 49),
    ];
    for &(m, k, n) in &shapes {
        for kind in [Kind::Rows, Kind::Cols] {
            let w = vec![0.01f32; m * k];
            let bias = vec![0.1f32; m];
            let x = vec![0.5f32; k * n];
            let mut c = vec![0f32; m * n];
            let p = Packed::new(Level::best(), kind, &w, &bias, m, k);
            let ep = Epilogue {
                pre: Some((0.0, 6.0)),
                ..Default::default()
            };
            let f = |c: &mut [f32]| unsafe {
                run(
                    &p,
                    Mat {
                        ptr: x.as_ptr(),
                        rs: n,
                        cs: 1,
                    },
                    &[0],
                    Mat {
                        ptr: c.as_mut_ptr(),
                        rs: n,
                        cs: 1,
                    },
                    &ep,
                    0..p.m_tiles(),
                    0..n,
                )
            };
            for _ in 0..3 {
                f(&mut c);
            }
            let mut best = f64::MAX;
            for _ in 0..5 {
                let reps = 20;
                let t = Instant::now();
                for _ in 0..reps {
                    f(&mut c);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            println!(
                "{kind:?} M{m:>5} K{k:>4} N{n:>6}: {:8.1} us {:6.1} GMAC/s",
                best * 1e6,
                (m * k * n) as f64 / best / 1e9
            );
        }
    }
}
