//! tensorcv's kernels against tract's own operators: one-op graphs (with the nodes the ops
//! absorb) run through tract alone and through tensorcv's patch, on random inputs, for each
//! kernel size, stride, padding, width (vector tails), batch and activation; and each
//! instruction set this machine has against the same reference.

use tensorcv_infer::kernels::{accelerate, DepthwiseConv, Level, Replaced};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::math;
use tract_onnx::tract_core::ops::nn::resize::{CoordTransformer, Interpolator, Nearest, Resize};
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

/// Run `model` on `input` optimized by tract alone and with tensorcv's kernels; returns both
/// outputs and what was replaced.
fn both(model: TypedModel, input: &Tensor) -> (Vec<f32>, Vec<f32>, Replaced) {
    let run = |m: TypedModel| -> Vec<f32> {
        let out = m
            .into_runnable()
            .unwrap()
            .run(tvec!(input.clone().into_tvalue()))
            .unwrap();
        out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    };
    let mut theirs = model.clone();
    theirs.declutter().unwrap();
    theirs.optimize().unwrap();
    let mut ours = model;
    ours.declutter().unwrap();
    let replaced = accelerate(&mut ours).unwrap();
    ours.optimize().unwrap();
    (run(ours), run(theirs), replaced)
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: sizes");
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0f32, f32::max);
    assert!(worst <= 2e-6, "{what}: relative difference {worst}");
}

#[derive(Clone, Copy, Debug)]
enum Act {
    None,
    Relu,
    Relu6,
    /// a per-channel scale then shift after the convolution (batch-norm remnants), then ReLU
    ScaleShiftRelu,
}

struct Case {
    /// NHWC with this kernel format, else NCHW / OIHW
    nhwc: Option<KernelFormat>,
    batch: usize,
    channels: usize,
    h: usize,
    w: usize,
    k: (usize, usize),
    stride: usize,
    padding: PaddingSpec,
    act: Act,
}

fn input_shape(c: &Case) -> [usize; 4] {
    if c.nhwc.is_some() {
        [c.batch, c.h, c.w, c.channels]
    } else {
        [c.batch, c.channels, c.h, c.w]
    }
}

fn depthwise_model(c: &Case) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact(input_shape(c)))?;
    let (kh, kw) = c.k;
    let kernel = tract_ndarray::Array4::from_shape_vec(
        (c.channels, 1, kh, kw),
        random(c.channels * kh * kw, 7),
    )?;
    let (format, kernel) = match c.nhwc {
        None => (DataFormat::NCHW, kernel),
        // the depthwise layouts tract takes: [kh, kw, C, 1] and [1, kh, kw, C] (TFLite's)
        Some(KernelFormat::HWIO) => (DataFormat::NHWC, kernel.permuted_axes([2, 3, 0, 1])),
        Some(KernelFormat::OHWI) => (DataFormat::NHWC, kernel.permuted_axes([1, 2, 3, 0])),
        Some(KernelFormat::OIHW) => (DataFormat::NHWC, kernel),
    };
    let kernel_fmt = c.nhwc.unwrap_or(KernelFormat::OIHW);
    let k = m.add_const("k", kernel.as_standard_layout().into_owned().into_tensor())?;
    let b = m.add_const("b", tensor1(&random(c.channels, 11)))?;
    let spec = PoolSpec::new(
        format,
        tvec![kh, kw],
        c.padding.clone(),
        Some(tvec![1, 1]),
        Some(tvec![c.stride, c.stride]),
        c.channels,
        c.channels,
    );
    let conv = Conv::new(spec, kernel_fmt, c.channels, None);
    let mut y = m.wire_node("conv", conv, &[x, k, b])?[0];
    let scalar = |m: &mut TypedModel, name: &str, v: f32| m.add_const(name, tensor4(&[[[[v]]]]));
    let per_channel = |m: &mut TypedModel, name: &str, seed: u32| {
        let shape = if c.nhwc.is_some() {
            (1, 1, 1, c.channels)
        } else {
            (1, c.channels, 1, 1)
        };
        let v = tract_ndarray::Array4::from_shape_vec(shape, random(c.channels, seed)).unwrap();
        m.add_const(name, v.into_tensor())
    };
    if let Act::ScaleShiftRelu = c.act {
        let s = per_channel(&mut m, "scale", 3)?;
        y = m.wire_node("mul", math::mul(), &[y, s])?[0];
        let t = per_channel(&mut m, "shift", 5)?;
        y = m.wire_node("add", math::add(), &[t, y])?[0];
    }
    if !matches!(c.act, Act::None) {
        let zero = scalar(&mut m, "zero", 0.0)?;
        y = m.wire_node("relu", math::max(), &[y, zero])?[0];
    }
    if let Act::Relu6 = c.act {
        let six = scalar(&mut m, "six", 0.5)?;
        y = m.wire_node("relu6", math::min(), &[y, six])?[0];
    }
    m.select_output_outlets(&[y])?;
    Ok(m)
}

#[test]
fn depthwise_matches_tracts_op() {
    let same = |k: usize| PaddingSpec::Explicit(tvec![k / 2, k / 2], tvec![k / 2, k / 2]);
    let tf_s2 = PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]);
    let mut cases = vec![];
    for (h, w) in [(16, 16), (13, 7), (33, 35), (64, 64), (5, 40), (1, 1)] {
        for k in [3, 5] {
            for (stride, padding) in [
                (1, same(k)),
                (2, same(k)),
                (2, tf_s2.clone()),
                (1, PaddingSpec::Valid),
                (2, PaddingSpec::SameUpper),
                (2, PaddingSpec::SameLower),
            ] {
                if matches!(padding, PaddingSpec::Valid) && (h < k || w < k) {
                    continue;
                }
                cases.push(Case {
                    nhwc: None,
                    batch: 1,
                    channels: 3,
                    h,
                    w,
                    k: (k, k),
                    stride,
                    padding,
                    act: Act::None,
                });
            }
        }
    }
    for act in [Act::Relu, Act::Relu6, Act::ScaleShiftRelu] {
        cases.push(Case {
            nhwc: None,
            batch: 2,
            channels: 24,
            h: 20,
            w: 18,
            k: (3, 3),
            stride: 1,
            padding: same(3),
            act,
        });
    }
    // a rectangular kernel, stride 3, more channels than a vector
    cases.push(Case {
        nhwc: None,
        batch: 1,
        channels: 40,
        h: 31,
        w: 29,
        k: (1, 7),
        stride: 3,
        padding: PaddingSpec::Explicit(tvec![0, 3], tvec![0, 3]),
        act: Act::None,
    });
    // channels last (tract-tflite's layout, and where tract keeps a graph NHWC): channel counts
    // around the vector widths, both kernel formats, borders, strides, activations
    for (i, (channels, k, stride, padding, act)) in [
        (32, 3, 1, same(3), Act::Relu6),
        (16, 3, 2, tf_s2.clone(), Act::None),
        (24, 5, 2, same(5), Act::ScaleShiftRelu),
        (7, 3, 1, PaddingSpec::Valid, Act::Relu),
        (40, 3, 2, PaddingSpec::SameUpper, Act::None),
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(Case {
            nhwc: Some(if i % 2 == 0 {
                KernelFormat::HWIO
            } else {
                KernelFormat::OHWI
            }),
            batch: 1 + i % 2,
            channels,
            h: 17,
            w: 12,
            k: (k, k),
            stride,
            padding,
            act,
        });
    }
    for (i, c) in cases.iter().enumerate() {
        let model = depthwise_model(c).unwrap();
        let input = tract_ndarray::Array4::from_shape_vec(
            input_shape(c),
            random(c.batch * c.channels * c.h * c.w, i as u32),
        )
        .unwrap()
        .into_tensor();
        let what = format!(
            "case {i}: {}x{}x{} k {:?} stride {} {:?} {:?} nhwc {:?}",
            c.channels, c.h, c.w, c.k, c.stride, c.padding, c.act, c.nhwc
        );
        let (ours, theirs, replaced) = both(model, &input);
        assert_eq!(replaced.depthwise, 1, "{what}: not replaced");
        let folded = !matches!(c.act, Act::None) as usize;
        assert_eq!(
            replaced.activations, folded,
            "{what}: activation not folded"
        );
        assert_close(&ours, &theirs, &what);
    }
}

/// The op itself, at every instruction set this machine runs, against tract's graph.
#[test]
fn every_instruction_set_gives_the_same_depthwise_result() {
    // channels first, and channels last with a vector and a remainder of channels
    for (nhwc, channels) in [(None, 5), (Some(KernelFormat::HWIO), 21)] {
        let c = Case {
            nhwc,
            batch: 1,
            channels,
            h: 37,
            w: 41,
            k: (3, 3),
            stride: 2,
            padding: PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
            act: Act::Relu6,
        };
        let model = depthwise_model(&c).unwrap();
        let data = random(c.channels * c.h * c.w, 99);
        let input = tract_ndarray::Array4::from_shape_vec(input_shape(&c), data.clone())
            .unwrap()
            .into_tensor();
        let (_, theirs, _) = both(model.clone(), &input);
        // the op tensorcv put in the graph
        let mut patched = model;
        patched.declutter().unwrap();
        accelerate(&mut patched).unwrap();
        let op = patched
            .nodes()
            .iter()
            .find_map(|n| n.op_as::<DepthwiseConv>())
            .expect("a tensorcv depthwise op")
            .clone();
        let mut tested = 0;
        for level in [Level::Portable, Level::Avx2, Level::Avx512, Level::Simd128] {
            if !level.available() {
                continue;
            }
            let mut out = vec![0f32; theirs.len()];
            op.clone()
                .with_level(level)
                .compute(&data, &mut out)
                .unwrap();
            assert_close(&out, &theirs, &format!("{level:?}, nhwc {nhwc:?}"));
            tested += 1;
        }
        assert!(tested >= 1);
    }
}

#[test]
fn max_pool_matches_tracts_op() {
    let cases = [
        (2, 2, PaddingSpec::Valid, 32, 32),
        (2, 2, PaddingSpec::Valid, 15, 9),
        (3, 2, PaddingSpec::Valid, 60, 60),
        (
            3,
            2,
            PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
            15,
            15,
        ),
        (3, 2, PaddingSpec::SameUpper, 8, 21),
        (3, 1, PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]), 7, 7),
    ];
    for (i, (k, s, padding, h, w)) in cases.into_iter().enumerate() {
        let channels = 6;
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([2, channels, h, w])).unwrap();
        let spec = PoolSpec::new(
            DataFormat::NCHW,
            tvec![k, k],
            padding.clone(),
            None,
            Some(tvec![s, s]),
            channels,
            channels,
        );
        let y = m.wire_node("pool", MaxPool::new(spec, None), &[x]).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        let input = tract_ndarray::Array4::from_shape_vec(
            (2, channels, h, w),
            random(2 * channels * h * w, 50 + i as u32),
        )
        .unwrap()
        .into_tensor();
        let what = format!("pool case {i}: {k}x{k} stride {s} {padding:?} on {h}x{w}");
        let (ours, theirs, replaced) = both(m, &input);
        assert_eq!(replaced.pools, 1, "{what}: not replaced");
        // a maximum is exact
        assert_eq!(ours, theirs, "{what}");
    }
}

#[test]
fn resize_matches_tracts_op() {
    let cases = [
        (
            CoordTransformer::HalfPixel,
            Interpolator::Linear,
            [1.0f32, 1.0, 2.0, 2.0],
            16,
            16,
        ),
        (
            CoordTransformer::HalfPixel,
            Interpolator::Linear,
            [1.0f32, 1.0, 2.0, 2.0],
            5,
            9,
        ),
        (
            CoordTransformer::Asymmetric,
            Interpolator::Nearest,
            [1.0, 1.0, 1.5, 2.5],
            7,
            6,
        ),
        (
            CoordTransformer::AlignCorners,
            Interpolator::Linear,
            [1.0, 1.0, 0.5, 1.5],
            12,
            10,
        ),
        (
            CoordTransformer::HalfPixel,
            Interpolator::Cubic,
            [1.0f32, 1.0, 2.0, 2.0],
            8,
            8,
        ),
    ];
    for (i, (coord, interp, scales, h, w)) in cases.into_iter().enumerate() {
        let channels = 4;
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([1, channels, h, w])).unwrap();
        let s = m.add_const("scales", tensor1(&scales)).unwrap();
        let op = Resize {
            coord_transformer: coord.clone(),
            interpolator: interp.clone(),
            nearest: Nearest::Floor,
            optional_scales_input: Some(1),
            optional_sizes_input: None,
        };
        let y = m.wire_node("resize", op, &[x, s]).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        let input = tract_ndarray::Array4::from_shape_vec(
            (1, channels, h, w),
            random(channels * h * w, 80 + i as u32),
        )
        .unwrap()
        .into_tensor();
        let what = format!("resize case {i}: {coord:?} {interp:?} {scales:?} on {h}x{w}");
        let (ours, theirs, replaced) = both(m, &input);
        assert_eq!(replaced.resizes, 1, "{what}: not replaced");
        assert_close(&ours, &theirs, &what);
    }
}
