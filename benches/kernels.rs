//! tensorcv's kernels against tract's own operators, one lever at a time, on the layer shapes
//! of MobileNetV2 and BlazeFace: each case is a small graph (the convolution and the nodes its
//! replacement absorbs) run once optimized by tract alone (`.../tract`) and once patched by
//! `tensorcv_infer::rewrite::accelerate` (`.../tensorcv`), on one thread. The whole-model
//! effect is `infer/<model>/run_1t` against `run_1t_tract` in the `infer` bench.

use criterion::{criterion_group, criterion_main, Criterion};
use tensorcv_infer::rewrite::{accelerate, Replaced};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::math;
use tract_onnx::tract_core::ops::nn::DataFormat;

fn random(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// One convolution of a channels-first graph: `groups == c` is depthwise.
struct Layer {
    c: usize,
    m: usize,
    k: usize,
    stride: usize,
    groups: usize,
    relu6: bool,
}

/// Wire `layer` after `x` (NCHW), with a bias and, when asked, ReLU6 as Max/Min (as tf2onnx
/// writes them).
fn wire(g: &mut TypedModel, x: OutletId, l: &Layer, name: &str) -> TractResult<OutletId> {
    let kernel = tract_ndarray::Array4::from_shape_vec(
        (l.m, l.c / l.groups, l.k, l.k),
        random(l.m * l.c / l.groups * l.k * l.k, 3),
    )?;
    let k = g.add_const(format!("{name}.k"), kernel.into_tensor())?;
    let b = g.add_const(format!("{name}.b"), tensor1(&random(l.m, 4)))?;
    // TF's SAME padding: nothing before, one after at stride 2
    let (before, after) = match (l.k, l.stride) {
        (1, _) => (0, 0),
        (_, 2) => (l.k / 2 - 1, l.k / 2),
        _ => (l.k / 2, l.k / 2),
    };
    let spec = PoolSpec::new(
        DataFormat::NCHW,
        tvec![l.k, l.k],
        PaddingSpec::Explicit(tvec![before, before], tvec![after, after]),
        Some(tvec![1, 1]),
        Some(tvec![l.stride, l.stride]),
        l.c,
        l.m,
    );
    let conv = Conv::new(spec, KernelFormat::OIHW, l.groups, None);
    let mut y = g.wire_node(name, conv, &[x, k, b])?[0];
    if l.relu6 {
        let zero = g.add_const(format!("{name}.zero"), tensor4(&[[[[0f32]]]]))?;
        y = g.wire_node(format!("{name}.max"), math::max(), &[y, zero])?[0];
        let six = g.add_const(format!("{name}.six"), tensor4(&[[[[6f32]]]]))?;
        y = g.wire_node(format!("{name}.min"), math::min(), &[y, six])?[0];
    }
    Ok(y)
}

/// A graph of `layers` in a row on an NCHW input of `c`×`h`×`h` (`channels_last_source`: the
/// source is NHWC and transposed first, as tf2onnx exports a Keras stem), with the first
/// layer's input added to the last one's output when `residual`.
fn graph(
    c: usize,
    h: usize,
    channels_last_source: bool,
    layers: &[Layer],
    residual: bool,
) -> TractResult<(TypedModel, Tensor)> {
    let mut g = TypedModel::default();
    let shape = if channels_last_source {
        [1, h, h, c]
    } else {
        [1, c, h, h]
    };
    let mut x = g.add_source("x", f32::fact(shape))?;
    if channels_last_source {
        x = g.wire_node("to_nchw", AxisOp::Move(3, 1), &[x])?[0];
    }
    let mut y = x;
    for (i, l) in layers.iter().enumerate() {
        y = wire(&mut g, y, l, &format!("conv{i}"))?;
    }
    if residual {
        y = g.wire_node("add", math::add(), &[x, y])?[0];
    }
    g.select_output_outlets(&[y])?;
    let input = tract_ndarray::Array4::from_shape_vec(shape, random(c * h * h, 9))?.into_tensor();
    Ok((g, input))
}

type Plan = Arc<TypedRunnableModel>;

/// The graph optimized by tract alone, and with tensorcv's kernels.
fn plans(g: TypedModel) -> TractResult<(Plan, Plan, Replaced)> {
    let mut theirs = g.clone();
    theirs.declutter()?;
    theirs.optimize()?;
    let mut ours = g;
    ours.declutter()?;
    let replaced = accelerate(&mut ours)?;
    ours.optimize()?;
    Ok((ours.into_runnable()?, theirs.into_runnable()?, replaced))
}

fn dw(c: usize, k: usize, stride: usize) -> Layer {
    Layer {
        c,
        m: c,
        k,
        stride,
        groups: c,
        relu6: true,
    }
}

fn pw(c: usize, m: usize, relu6: bool) -> Layer {
    Layer {
        c,
        m,
        k: 1,
        stride: 1,
        groups: 1,
        relu6,
    }
}

/// name, input channels, size, channels-last source, layers, residual
type Case = (&'static str, usize, usize, bool, Vec<Layer>, bool);

fn kernels(c: &mut Criterion) {
    let stem = Layer {
        c: 3,
        m: 32,
        k: 3,
        stride: 2,
        groups: 1,
        relu6: true,
    };
    let cases: Vec<Case> = vec![
        (
            "depthwise/3x3_s1_144x56",
            144,
            56,
            false,
            vec![dw(144, 3, 1)],
            false,
        ),
        (
            "depthwise/3x3_s2_96x112",
            96,
            112,
            false,
            vec![dw(96, 3, 2)],
            false,
        ),
        (
            "depthwise/5x5_s1_48x32",
            48,
            32,
            false,
            vec![dw(48, 5, 1)],
            false,
        ),
        (
            "pointwise/32to144_56",
            32,
            56,
            false,
            vec![pw(32, 144, true)],
            false,
        ),
        (
            "pointwise/384to64_14",
            384,
            14,
            false,
            vec![pw(384, 64, false)],
            false,
        ),
        (
            "pointwise/960to160_7",
            960,
            7,
            false,
            vec![pw(960, 160, false)],
            false,
        ),
        ("conv/stem_3to32_s2_224", 3, 224, true, vec![stem], false),
        (
            "block/24_144_24_56_residual",
            24,
            56,
            false,
            vec![pw(24, 144, true), dw(144, 3, 1), pw(144, 24, false)],
            true,
        ),
    ];
    for (name, ch, h, last, layers, residual) in cases {
        let (g, input) = graph(ch, h, last, &layers, residual).expect("the graph builds");
        let (ours, theirs, replaced) = plans(g).expect("the graph optimizes");
        let replaced_any = replaced.depthwise + replaced.pointwise + replaced.convs;
        assert!(replaced_any > 0, "{name}: tensorcv replaced nothing");
        let input = tvec![input.into_tvalue()];
        for (which, plan) in [("tensorcv", &ours), ("tract", &theirs)] {
            c.bench_function(&format!("kernels/{name}/{which}"), |b| {
                b.iter(|| plan.run(input.clone()).unwrap())
            });
        }
    }
}

/// PReLU (face_landmark's first stage: 16 channels of 96×96, channels first; a 7×7 stage
/// channels last), against the plain loop.
fn prelu(c: &mut Criterion) {
    use tensorcv_kernels::activation;
    use tensorcv_kernels::Level;
    for (name, channels, plane) in [
        ("16x96x96_first", 16usize, 96 * 96),
        ("7x7x128_last", 128, 1),
    ] {
        let pixels = if plane == 1 { 49 } else { 1 };
        let x = random(channels * plane * pixels, 3);
        let alpha = random(channels, 4);
        let mut out = vec![0f32; x.len()];
        c.bench_function(&format!("kernels/prelu/{name}/tensorcv"), |b| {
            b.iter(|| activation::prelu(Level::best(), &x, &alpha, plane, &mut out).unwrap())
        });
        c.bench_function(&format!("kernels/prelu/{name}/loop"), |b| {
            b.iter(|| {
                for (i, (o, &v)) in out.iter_mut().zip(&x).enumerate() {
                    let a = alpha[(i / plane) % channels];
                    *o = if v < 0.0 { a * v } else { v };
                }
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = kernels, prelu
}
criterion_main!(benches);
