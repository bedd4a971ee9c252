//! The kernels alone, without tract, on MobileNetV2 layer shapes, one thread:
//! `cargo bench -p tensorcv-kernels`. (`tensorcv-benches --bench kernels` times the tract ops
//! built on them against tract's own.)

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tensorcv_kernels::depthwise::{Geometry, Mode};
use tensorcv_kernels::gemm::{Kind, Packed};
use tensorcv_kernels::pointwise::{self, Shape};
use tensorcv_kernels::{channels, Level};

fn random(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn kernels(c: &mut Criterion) {
    let level = Level::best();
    // expand 1x1 of MobileNetV2's second block: 16 -> 96 channels on 112x112
    let s = Shape {
        batch: 1,
        m: 96,
        k: 16,
        n: 112 * 112,
        in_last: false,
        out_last: false,
    };
    let w = Packed::new(level, s.kind(level), &random(96 * 16), &random(96), 96, 16);
    let x = random(16 * 112 * 112);
    let mut y = vec![0.0; 96 * 112 * 112];
    c.bench_function("pointwise_16x96_112x112", |b| {
        b.iter(|| pointwise::run(&s, &w, Some((0.0, 6.0)), None, black_box(&x), None, &mut y))
    });
    // a 7x7-plane product, channel vectors
    let s7 = Shape {
        batch: 1,
        m: 960,
        k: 160,
        n: 49,
        in_last: false,
        out_last: false,
    };
    let w7 = Packed::new(
        level,
        Kind::Cols,
        &random(960 * 160),
        &random(960),
        960,
        160,
    );
    let x7 = random(160 * 49);
    let mut y7 = vec![0.0; 960 * 49];
    c.bench_function("pointwise_160x960_7x7", |b| {
        b.iter(|| pointwise::run(&s7, &w7, None, None, black_box(&x7), None, &mut y7))
    });
    // depthwise 3x3 stride 1 on 144x56x56
    let g = Geometry {
        batch: 1,
        channels: 144,
        in_h: 56,
        in_w: 56,
        out_h: 56,
        out_w: 56,
        kh: 3,
        kw: 3,
        stride_h: 1,
        stride_w: 1,
        pad_top: 1,
        pad_left: 1,
    };
    let setup = g.setup(None, false);
    let (dx, dw, db) = (random(144 * 56 * 56), random(144 * 9), random(144));
    let mut dy = vec![0.0; 144 * 56 * 56];
    c.bench_function("depthwise_3x3_144x56x56", |b| {
        b.iter(|| {
            g.run(
                &setup,
                black_box(&dx),
                &mut dy,
                Mode::Sum(Some((0.0, 6.0))),
                &dw,
                &db,
            )
        })
    });
    // the selfie segmenter's 16x128x128 channel move
    let t = random(16 * 128 * 128);
    let mut u = vec![0.0; t.len()];
    c.bench_function("transpose_16x16384", |b| {
        b.iter(|| channels::transpose(level, black_box(&t), &mut u, 1, 16, 128 * 128))
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
