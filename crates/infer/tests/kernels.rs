//! tensorcv's kernels against tract's own operators: one-op graphs (with the nodes the ops
//! absorb) run through tract alone and through tensorcv's patch, on random inputs, for each
//! kernel size, stride, padding, width (vector tails), batch and activation; and each
//! instruction set this machine has against the same reference.

use tensorcv_infer::ops::{DepthwiseConv, PointwiseConv};
use tensorcv_infer::rewrite::{accelerate, Replaced};
use tensorcv_kernels::Level;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::axes::AxesMapping;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
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
    both_inputs(model, std::slice::from_ref(input))
}

/// [`both`] with several inputs.
fn both_inputs(model: TypedModel, inputs: &[Tensor]) -> (Vec<f32>, Vec<f32>, Replaced) {
    let (mut ours, mut theirs, replaced) = both_outputs(model, inputs);
    (ours.swap_remove(0), theirs.swap_remove(0), replaced)
}

/// [`both_inputs`] returning every output.
fn both_outputs(model: TypedModel, inputs: &[Tensor]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Replaced) {
    let run = |m: TypedModel| -> Vec<Vec<f32>> {
        m.into_runnable()
            .unwrap()
            .run(inputs.iter().map(|t| t.clone().into_tvalue()).collect())
            .unwrap()
            .iter()
            .map(|t| {
                t.to_plain_array_view::<f32>()
                    .unwrap()
                    .iter()
                    .copied()
                    .collect()
            })
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
    assert_within(ours, theirs, 2e-6, what)
}

/// `assert_close` with a tolerance (chains of several products round more).
fn assert_within(ours: &[f32], theirs: &[f32], tolerance: f32, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: sizes");
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0f32, f32::max);
    assert!(worst <= tolerance, "{what}: relative difference {worst}");
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
        // the register-blocked rows: two-vector blocks, a leftover vector, a masked tail,
        // 5×5, padding on one side only
        (64, 3, 1, same(3), Act::Relu6),
        (53, 3, 2, tf_s2.clone(), Act::None),
        (48, 5, 1, same(5), Act::Relu),
        (80, 3, 1, PaddingSpec::Valid, Act::None),
        (37, 5, 2, PaddingSpec::SameLower, Act::ScaleShiftRelu),
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
    for (nhwc, channels) in [
        (None, 5),
        (Some(KernelFormat::HWIO), 21),
        (Some(KernelFormat::HWIO), 53),
    ] {
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
        for level in Level::ALL {
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

/// A tensor of one value per channel for a rank-`rank` tensor whose channel axis is `c_axis`.
fn channel_const(c: usize, rank: usize, c_axis: usize, seed: u32) -> Tensor {
    let mut shape = vec![1; rank];
    shape[c_axis] = c;
    tract_ndarray::ArrayD::from_shape_vec(shape, random(c, seed))
        .unwrap()
        .into_tensor()
}

/// A scalar of rank `rank`.
fn scalar(v: f32, rank: usize) -> Tensor {
    tract_ndarray::ArrayD::from_shape_vec(vec![1; rank], vec![v])
        .unwrap()
        .into_tensor()
}

/// What follows a convolution in the test graphs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tail {
    /// nothing
    None,
    /// per-channel scale, then ReLU6
    ScaleRelu6,
    /// a residual add (the block's input, or a channel-padded copy of it), then ReLU
    Residual,
}

struct DenseCase {
    nhwc: bool,
    /// channels-last source transposed to channels first right before the convolution
    moved: bool,
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
    k: (usize, usize),
    stride: usize,
    padding: PaddingSpec,
    tail: Tail,
}

fn dense_model(d: &DenseCase) -> TractResult<(TypedModel, Vec<usize>)> {
    let mut m = TypedModel::default();
    let src_shape = if d.nhwc || d.moved {
        vec![d.batch, d.h, d.w, d.c]
    } else {
        vec![d.batch, d.c, d.h, d.w]
    };
    let mut x = m.add_source("x", f32::fact(&src_shape))?;
    if d.moved {
        x = m.wire_node("move", AxisOp::Move(3, 1), &[x])?[0];
    }
    let (kh, kw) = d.k;
    let kernel =
        tract_ndarray::Array4::from_shape_vec((d.m, d.c, kh, kw), random(d.m * d.c * kh * kw, 3))?;
    let k = m.add_const("k", kernel.into_tensor())?;
    let b = m.add_const("b", tensor1(&random(d.m, 4)))?;
    let format = if d.nhwc {
        DataFormat::NHWC
    } else {
        DataFormat::NCHW
    };
    let spec = PoolSpec::new(
        format,
        tvec![kh, kw],
        d.padding.clone(),
        Some(tvec![1, 1]),
        Some(tvec![d.stride, d.stride]),
        d.c,
        d.m,
    );
    let conv = Conv::new(spec, KernelFormat::OIHW, 1, None);
    let mut y = m.wire_node("conv", conv, &[x, k, b])?[0];
    tail(
        &mut m,
        &mut y,
        d.tail,
        if d.nhwc { 3 } else { 1 },
        d.m,
        None,
    )?;
    m.select_output_outlets(&[y])?;
    Ok((m, src_shape))
}

/// Wire `tail` after `y`, whose channels (`channels` of them) are on `c_axis` (`residual`:
/// the tensor to add).
fn tail(
    m: &mut TypedModel,
    y: &mut OutletId,
    tail: Tail,
    c_axis: usize,
    channels: usize,
    residual: Option<OutletId>,
) -> TractResult<()> {
    let rank = m.outlet_fact(*y)?.rank();
    match tail {
        Tail::None => {}
        Tail::ScaleRelu6 => {
            let s = m.add_const("scale.v", channel_const(channels, rank, c_axis, 8))?;
            *y = m.wire_node("scale", math::mul(), &[*y, s])?[0];
            let zero = m.add_const("zero.v", scalar(0.0, rank))?;
            *y = m.wire_node("relu", math::max(), &[*y, zero])?[0];
            let six = m.add_const("six.v", scalar(6.0, rank))?;
            *y = m.wire_node("relu6", math::min(), &[*y, six])?[0];
        }
        Tail::Residual => {
            let r = residual.expect("a residual to add");
            *y = m.wire_node("residual", math::add(), &[r, *y])?[0];
            let zero = m.add_const("zero.v", scalar(0.0, rank))?;
            *y = m.wire_node("relu", math::max(), &[*y, zero])?[0];
        }
    }
    Ok(())
}

#[test]
fn dense_convolution_matches_tracts_op() {
    let same = |k: usize| PaddingSpec::Explicit(tvec![k / 2, k / 2], tvec![k / 2, k / 2]);
    let tf_s2 = PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]);
    let cases = [
        // MobileNet's stem (channels last), BlazeFace's (channels-last source moved first)
        DenseCase {
            nhwc: true,
            moved: false,
            batch: 1,
            c: 3,
            h: 32,
            w: 30,
            m: 32,
            k: (3, 3),
            stride: 2,
            padding: tf_s2.clone(),
            tail: Tail::ScaleRelu6,
        },
        DenseCase {
            nhwc: false,
            moved: true,
            batch: 1,
            c: 3,
            h: 32,
            w: 32,
            m: 24,
            k: (5, 5),
            stride: 2,
            padding: PaddingSpec::Explicit(tvec![1, 1], tvec![2, 2]),
            tail: Tail::ScaleRelu6,
        },
        // MobileNet's stem as the channels-first chain runs it (rows of output pixels from
        // phase planes), rows of 20 pixels (a vector and a tail), batch 2
        DenseCase {
            nhwc: false,
            moved: true,
            batch: 2,
            c: 3,
            h: 41,
            w: 40,
            m: 32,
            k: (3, 3),
            stride: 2,
            padding: tf_s2.clone(),
            tail: Tail::ScaleRelu6,
        },
        // channels first, odd sizes, vector tails of channels and pixels, batch 2
        DenseCase {
            nhwc: false,
            moved: false,
            batch: 2,
            c: 5,
            h: 13,
            w: 17,
            m: 20,
            k: (3, 3),
            stride: 1,
            padding: same(3),
            tail: Tail::None,
        },
        DenseCase {
            nhwc: true,
            moved: false,
            batch: 2,
            c: 7,
            h: 9,
            w: 11,
            m: 40,
            k: (3, 3),
            stride: 1,
            padding: PaddingSpec::Valid,
            tail: Tail::None,
        },
        // a 1×1 stride-2 projection (a residual branch that halves the size), a 1×7 kernel
        DenseCase {
            nhwc: false,
            moved: false,
            batch: 1,
            c: 16,
            h: 12,
            w: 12,
            m: 24,
            k: (1, 1),
            stride: 2,
            padding: PaddingSpec::Valid,
            tail: Tail::None,
        },
        DenseCase {
            nhwc: false,
            moved: false,
            batch: 1,
            c: 4,
            h: 10,
            w: 21,
            m: 9,
            k: (1, 7),
            stride: 1,
            padding: PaddingSpec::Explicit(tvec![0, 3], tvec![0, 3]),
            tail: Tail::ScaleRelu6,
        },
        // wide patches (channels first, transposed through memory)
        DenseCase {
            nhwc: false,
            moved: false,
            batch: 1,
            c: 64,
            h: 8,
            w: 8,
            m: 17,
            k: (3, 3),
            stride: 1,
            padding: same(3),
            tail: Tail::None,
        },
        DenseCase {
            nhwc: true,
            moved: false,
            batch: 1,
            c: 3,
            h: 41,
            w: 39,
            m: 16,
            k: (3, 3),
            stride: 2,
            padding: PaddingSpec::SameUpper,
            tail: Tail::None,
        },
    ];
    for (i, d) in cases.iter().enumerate() {
        let (model, shape) = dense_model(d).unwrap();
        let n: usize = shape.iter().product();
        let input = tract_ndarray::ArrayD::from_shape_vec(shape, random(n, 40 + i as u32))
            .unwrap()
            .into_tensor();
        let what = format!(
            "dense case {i}: {}x{}x{} -> {} k {:?} stride {} {:?} nhwc {} moved {} {:?}",
            d.c, d.h, d.w, d.m, d.k, d.stride, d.padding, d.nhwc, d.moved, d.tail
        );
        let (ours, theirs, replaced) = both(model, &input);
        // tract declutters a 1×1 convolution into a product (and a stride into a subsampling)
        assert_eq!(
            replaced.convs + replaced.pointwise,
            1,
            "{what}: not replaced"
        );
        // sums of K products in another order: rounding grows with the square root of K
        let k = d.c * d.k.0 * d.k.1;
        assert_within(
            &ours,
            &theirs,
            2e-6 * (k as f32 / 16.0).sqrt().max(1.0),
            &what,
        );
    }
}

/// A 1×1 convolution with its channel axes last on both sides (TFLite's NHWC) runs as one
/// image of every pixel, channels last — not as that many images of one pixel, channels first,
/// which computes the same numbers a tile per pixel (5× slower on MediaPipe's models).
#[test]
fn channels_last_pointwise_runs_on_all_pixels_at_once() {
    for (shape, pixels) in [(vec![1, 9, 10, 20], 90), (vec![2, 6, 5, 16], 60)] {
        let p = PointCase {
            expr: "NHWI,OI->NHWO",
            shape: shape.clone(),
            m: 24,
            tail: Tail::ScaleRelu6,
            padded_residual: false,
        };
        let mut model = pointwise_model(&p).unwrap();
        model.declutter().unwrap();
        accelerate(&mut model).unwrap();
        let ops: Vec<&PointwiseConv> = model
            .nodes()
            .iter()
            .filter_map(|n| n.op_as::<PointwiseConv>())
            .collect();
        assert_eq!(ops.len(), 1, "{shape:?}");
        assert!(ops[0].in_last() && ops[0].out_last(), "{shape:?}");
        assert_eq!(ops[0].pixels(), pixels, "{shape:?}");
    }
}

struct PointCase {
    /// the einsum's expression (`I` contracted with the weights `OI`)
    expr: &'static str,
    shape: Vec<usize>,
    m: usize,
    tail: Tail,
    /// the residual reaches the output through a zero `Pad` of the channel axis
    padded_residual: bool,
}

fn pointwise_model(p: &PointCase) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact(&p.shape))?;
    let (inputs, output) = p.expr.split_once("->").unwrap();
    let x_axes = inputs.split(',').next().unwrap();
    let k = p.shape[x_axes.find('I').unwrap()];
    let w = tract_ndarray::Array2::from_shape_vec((p.m, k), random(p.m * k, 5))?;
    let w = m.add_const("w", w.into_tensor())?;
    let axes = AxesMapping::from_strs(&inputs.split(',').collect::<Vec<_>>(), &[output])?;
    let mut y = m.wire_node("einsum", EinSum::new(axes, f32::datum_type()), &[x, w])?[0];
    let out_shape = m.outlet_fact(y)?.shape.as_concrete().unwrap().to_vec();
    let c_axis = output.find('O').unwrap();
    // a bias, as tf2onnx's graphs have one
    let mut bshape = vec![1; out_shape.len()];
    bshape[c_axis] = p.m;
    let b = tract_ndarray::ArrayD::from_shape_vec(bshape, random(p.m, 6))?;
    let b = m.add_const("b", b.into_tensor())?;
    y = m.wire_node("bias", math::add(), &[y, b])?[0];
    let residual = if p.tail == Tail::Residual {
        // the block's input when it fits, else a second source with the output's shape
        let mut r = if p.shape == out_shape || p.padded_residual {
            x
        } else {
            m.add_source("r", f32::fact(&out_shape))?
        };
        if p.padded_residual {
            let mut pads = vec![(0, 0); out_shape.len()];
            pads[c_axis] = (0, p.m - k);
            let pad = Pad::new(pads, PadMode::Constant(tensor0(0f32).into_arc_tensor()));
            r = m.wire_node("pad", pad, &[r])?[0];
        }
        Some(r)
    } else {
        None
    };
    tail(&mut m, &mut y, p.tail, c_axis, p.m, residual)?;
    m.select_output_outlets(&[y])?;
    Ok(m)
}

#[test]
fn pointwise_convolution_matches_tracts_op() {
    let cases = [
        // channels first: large planes (pixels in vectors), 14x14 and 7x7 (channels in vectors)
        PointCase {
            expr: "IHW,OI->OHW",
            shape: vec![24, 28, 28],
            m: 40,
            tail: Tail::ScaleRelu6,
            padded_residual: false,
        },
        PointCase {
            expr: "IHW,OI->OHW",
            shape: vec![64, 14, 14],
            m: 96,
            tail: Tail::None,
            padded_residual: false,
        },
        PointCase {
            expr: "IHW,OI->OHW",
            shape: vec![48, 7, 7],
            m: 48,
            tail: Tail::Residual,
            padded_residual: false,
        },
        PointCase {
            expr: "IHW,OI->OHW",
            shape: vec![33, 5, 9],
            m: 17,
            tail: Tail::ScaleRelu6,
            padded_residual: false,
        },
        // batch axes, BlazeFace's channel-padded residual
        PointCase {
            expr: "NIHW,OI->NOHW",
            shape: vec![1, 24, 16, 16],
            m: 28,
            tail: Tail::Residual,
            padded_residual: true,
        },
        PointCase {
            expr: "NIHW,OI->NOHW",
            shape: vec![2, 12, 8, 9],
            m: 12,
            tail: Tail::Residual,
            padded_residual: false,
        },
        // channels last in (MobileNet after its stem), out; both
        PointCase {
            expr: "NHWI,OI->OHW",
            shape: vec![1, 12, 11, 32],
            m: 16,
            tail: Tail::None,
            padded_residual: false,
        },
        PointCase {
            expr: "NHWI,OI->NHWO",
            shape: vec![1, 9, 10, 20],
            m: 36,
            tail: Tail::ScaleRelu6,
            padded_residual: false,
        },
        PointCase {
            expr: "NHWI,OI->NHWO",
            shape: vec![2, 6, 5, 16],
            m: 16,
            tail: Tail::Residual,
            padded_residual: false,
        },
    ];
    for (i, p) in cases.iter().enumerate() {
        let model = pointwise_model(p).unwrap();
        let n: usize = p.shape.iter().product();
        let input =
            tract_ndarray::ArrayD::from_shape_vec(p.shape.clone(), random(n, 60 + i as u32))
                .unwrap()
                .into_tensor();
        let what = format!(
            "pointwise case {i}: {} {:?} -> {} {:?}",
            p.expr, p.shape, p.m, p.tail
        );
        let inputs: TVec<Tensor> = if model.inputs.len() == 2 {
            let r = model
                .outlet_fact(model.inputs[1])
                .unwrap()
                .shape
                .as_concrete()
                .unwrap()
                .to_vec();
            let rn: usize = r.iter().product();
            tvec![
                input,
                tract_ndarray::ArrayD::from_shape_vec(r, random(rn, 7))
                    .unwrap()
                    .into_tensor()
            ]
        } else {
            tvec![input]
        };
        let (ours, theirs, replaced) = both_inputs(model, &inputs);
        assert_eq!(replaced.pointwise, 1, "{what}: not replaced");
        let residual = (p.tail == Tail::Residual) as usize;
        assert_eq!(replaced.residuals, residual, "{what}: residual not folded");
        assert_close(&ours, &theirs, &what);
    }
}

/// `min(max(y, 0), 6)` on a CHW tensor, as tract's ops.
fn relu6(m: &mut TypedModel, y: OutletId, name: &str) -> OutletId {
    let zero = m
        .add_const(format!("{name}.zero"), tensor3(&[[[0f32]]]))
        .unwrap();
    let y = m
        .wire_node(format!("{name}.max"), math::max(), &[y, zero])
        .unwrap()[0];
    let six = m
        .add_const(format!("{name}.six"), tensor3(&[[[6f32]]]))
        .unwrap();
    m.wire_node(format!("{name}.min"), math::min(), &[y, six])
        .unwrap()[0]
}

/// A 1×1 convolution of a CHW tensor from `k` to `o` channels, as tract declutters one.
fn einsum(m: &mut TypedModel, y: OutletId, k: usize, o: usize, name: &str) -> OutletId {
    let w = tract_ndarray::Array2::from_shape_vec((o, k), random(o * k, 9)).unwrap();
    let w = m.add_const(format!("{name}.w"), w.into_tensor()).unwrap();
    let axes = AxesMapping::from_strs(&["IHW", "OI"], &["OHW"]).unwrap();
    m.wire_node(name, EinSum::new(axes, f32::datum_type()), &[y, w])
        .unwrap()[0]
}

/// A 3×3 depthwise convolution of a CHW tensor of `ch` channels with bias, padded "same" at
/// stride 1 and as TensorFlow pads at stride 2.
fn depthwise(m: &mut TypedModel, y: OutletId, ch: usize, stride: usize, name: &str) -> OutletId {
    let kernel = tract_ndarray::Array4::from_shape_vec((ch, 1, 3, 3), random(ch * 9, 10)).unwrap();
    let k = m
        .add_const(format!("{name}.k"), kernel.into_tensor())
        .unwrap();
    let b = m
        .add_const(format!("{name}.b"), tensor1(&random(ch, 11)))
        .unwrap();
    let padding = if stride == 1 {
        PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1])
    } else {
        PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1])
    };
    let spec = PoolSpec::new(
        DataFormat::CHW,
        tvec![3, 3],
        padding,
        Some(tvec![1, 1]),
        Some(tvec![stride, stride]),
        ch,
        ch,
    );
    m.wire_node(
        name,
        Conv::new(spec, KernelFormat::OIHW, ch, None),
        &[y, k, b],
    )
    .unwrap()[0]
}

/// Inverted residual block cases: input channels, expansion, size, stride, residual. The
/// last runs in 5 bands on one thread, 6 on two.
const BLOCKS: [(usize, Option<usize>, usize, usize, bool); 5] = [
    (16, Some(96), 40, 1, true),
    (16, Some(96), 41, 2, false),
    (24, Some(144), 32, 1, false),
    (96, None, 40, 1, false),
    (8, Some(48), 90, 1, true),
];

/// An inverted residual block (expand, ReLU6, depthwise, ReLU6, project, + input) in tract's
/// ops, and a random input for it.
fn block_model(
    (c, expand, h, stride, residual): (usize, Option<usize>, usize, usize, bool),
    seed: u32,
) -> (TypedModel, Tensor) {
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact([c, h, h])).unwrap();
    let mut y = x;
    let m1 = expand.unwrap_or(c);
    if let Some(e) = expand {
        y = einsum(&mut m, y, c, e, "expand");
        y = relu6(&mut m, y, "expand");
    }
    y = depthwise(&mut m, y, m1, stride, "dw");
    y = relu6(&mut m, y, "dw");
    y = einsum(&mut m, y, m1, c, "project");
    if residual {
        y = m.wire_node("add", math::add(), &[x, y]).unwrap()[0];
    }
    m.select_output_outlets(&[y]).unwrap();
    let input = tract_ndarray::Array3::from_shape_vec((c, h, h), random(c * h * h, seed))
        .unwrap()
        .into_tensor();
    (m, input)
}

/// Inverted residual blocks large enough to be fused, at strides 1 and 2, with and without the
/// expansion and the residual.
#[test]
fn fused_blocks_match_tracts_ops() {
    for (i, &case) in BLOCKS.iter().enumerate() {
        let (m, input) = block_model(case, 70 + i as u32);
        let what = format!("block case {i}: {case:?}");
        let (ours, theirs, replaced) = both(m, &input);
        assert_eq!(replaced.blocks, 1, "{what}: not fused");
        // three products in a row, each rounding in its own order
        assert_within(&ours, &theirs, 1e-5, &what);
    }
}

/// The first output of an (accelerated) model run on one thread, then on `team`.
fn one_and_two_threads(
    model: TypedModel,
    input: &Tensor,
    team: &std::sync::Arc<tensorcv_kernels::team::Team>,
) -> (Vec<f32>, Vec<f32>) {
    let plan = model.into_runnable().unwrap();
    let run = || -> Vec<f32> {
        let out = plan.run(tvec!(input.clone().into_tvalue())).unwrap();
        out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    };
    let one = run();
    (one, team.scope(run))
}

/// A fused block gives the same numbers on two threads (its output rows in bands shared
/// evenly, so other bands than on one) as on one.
#[test]
fn fused_blocks_split_bands_between_threads() {
    use std::sync::Arc;
    use tensorcv_kernels::team::Team;
    let Some(team) = Team::new(2) else {
        return;
    };
    let team = Arc::new(team);
    for (i, &case) in BLOCKS.iter().enumerate() {
        let (mut m, input) = block_model(case, 80 + i as u32);
        m.declutter().unwrap();
        assert_eq!(accelerate(&mut m).unwrap().blocks, 1);
        let (one, two) = one_and_two_threads(m, &input, &team);
        assert_eq!(one, two, "block case {i}: {case:?}");
    }
}

/// Small-plane tails switched to channels last (MobileNet's 14×14 and 7×7 stages): an inverted
/// residual block, a strided depthwise convolution, a 1×1 convolution and a global sum, with a
/// tensor also read outside the switched ops (a second output) and one 1×1 convolution whose
/// residual comes from inside.
#[test]
fn channels_last_tails_match_tracts_ops() {
    for (i, &(c, e, h, o)) in [(16usize, 64usize, 14usize, 40usize), (24, 48, 7, 33)]
        .iter()
        .enumerate()
    {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([c, h, h])).unwrap();
        let mut y = einsum(&mut m, x, c, e, "expand");
        y = relu6(&mut m, y, "expand");
        y = depthwise(&mut m, y, e, 1, "dw1");
        y = relu6(&mut m, y, "dw1");
        y = einsum(&mut m, y, e, c, "project");
        let block = m.wire_node("add", math::add(), &[x, y]).unwrap()[0];
        y = depthwise(&mut m, block, c, 2, "dw2");
        y = relu6(&mut m, y, "dw2");
        y = einsum(&mut m, y, c, o, "head");
        y = relu6(&mut m, y, "head");
        let pooled = m
            .wire_node(
                "pool",
                tract_onnx::tract_core::ops::nn::Reduce::new(
                    tvec![1, 2],
                    tract_onnx::tract_core::ops::nn::Reducer::Sum,
                ),
                &[y],
            )
            .unwrap()[0];
        m.select_output_outlets(&[pooled, block]).unwrap();
        let input =
            tract_ndarray::Array3::from_shape_vec((c, h, h), random(c * h * h, 90 + i as u32))
                .unwrap()
                .into_tensor();
        let what = format!("channels-last tail {i}: {c} -> {e} at {h}x{h}, head {o}");
        let (ours, theirs, replaced) = both_outputs(m, std::slice::from_ref(&input));
        // expand, both depthwise convolutions, project, head and the sum
        assert_eq!(replaced.channels_last, 6, "{what}: {replaced:?}");
        assert_eq!(ours.len(), 2, "{what}: outputs");
        // output 0, the pooled sum, adds up h² pixels' rounding differences; output 1 is the
        // block's sum
        for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            let tolerance = if j == 0 { 1e-5 * (h * h) as f32 } else { 1e-5 };
            assert_within(a, b, tolerance, &format!("{what}: output {j}"));
        }
    }
}

/// A channels-last depthwise convolution large enough to split its rows between two threads
/// gives the numbers it gives on one.
#[test]
fn channels_last_depthwise_splits_rows_between_threads() {
    use std::sync::Arc;
    use tensorcv_kernels::team::Team;
    let c = Case {
        nhwc: Some(KernelFormat::HWIO),
        batch: 2,
        channels: 72,
        h: 33,
        w: 30,
        k: (3, 3),
        stride: 1,
        padding: PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
        act: Act::Relu6,
    };
    let mut model = depthwise_model(&c).unwrap();
    model.declutter().unwrap();
    accelerate(&mut model).unwrap();
    let op = model
        .nodes()
        .iter()
        .find_map(|n| n.op_as::<DepthwiseConv>())
        .expect("a tensorcv depthwise op")
        .clone();
    let data = random(c.batch * c.channels * c.h * c.w, 5);
    let mut one = vec![0f32; data.len()];
    op.compute(&data, &mut one).unwrap();
    let Some(team) = Team::new(2) else {
        return;
    };
    let mut two = vec![f32::NAN; data.len()];
    Arc::new(team).scope(|| op.compute(&data, &mut two).unwrap());
    assert_eq!(one, two);
}

/// 1×1 convolutions on small planes split between two threads give the numbers they give on
/// one, and tract's: 160 output channels (5 tiles of 32, which do not split evenly, so the
/// middle tile is shared by pixels; on 7×7 and on 5×5 pixels) and 96 (3 tiles, too few to
/// split: the pixels are).
#[test]
fn pointwise_shares_uneven_channel_tiles_between_threads() {
    use std::sync::Arc;
    use tensorcv_kernels::gemm::Kind;
    use tensorcv_kernels::team::Team;
    let Some(team) = Team::new(2) else {
        return;
    };
    let team = Arc::new(team);
    for (i, &(k, o, h)) in [(96usize, 160usize, 7usize), (576, 96, 7), (320, 160, 5)]
        .iter()
        .enumerate()
    {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([k, h, h])).unwrap();
        let y = einsum(&mut m, x, k, o, "pw");
        let y = relu6(&mut m, y, "pw");
        m.select_output_outlets(&[y]).unwrap();
        let input =
            tract_ndarray::Array3::from_shape_vec((k, h, h), random(k * h * h, 90 + i as u32))
                .unwrap()
                .into_tensor();
        let what = format!("pointwise case {i}: {k} -> {o} at {h}x{h}");
        let (ours, theirs, _) = both(m.clone(), &input);
        assert_within(&ours, &theirs, 1e-5, &what);
        m.declutter().unwrap();
        accelerate(&mut m).unwrap();
        let op = m
            .nodes()
            .iter()
            .find_map(|n| n.op_as::<PointwiseConv>())
            .expect("a tensorcv 1x1 op");
        assert_eq!(op.kind(), Kind::Cols, "{what}: channel tiles");
        let (one, two) = one_and_two_threads(m, &input, &team);
        assert_eq!(one, two, "{what}");
    }
}

/// A channels-last tensor times per-channel factors computed in the graph (squeeze-and-excite
/// attention), either operand first, against tract's broadcasting `Mul`.
#[test]
fn channel_scales_match_tracts_mul() {
    for (i, &(h, c, swapped)) in [(8usize, 24usize, false), (5, 19, true), (33, 16, false)]
        .iter()
        .enumerate()
    {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([1, h, h, c])).unwrap();
        let s = m.add_source("s", f32::fact([1, 1, 1, c])).unwrap();
        let s = m
            .wire_node("sigmoid", tract_onnx::tract_core::ops::nn::sigmoid(), &[s])
            .unwrap()[0];
        let inputs = if swapped { [s, x] } else { [x, s] };
        let y = m.wire_node("mul", math::mul(), &inputs).unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        let x =
            tract_ndarray::Array4::from_shape_vec((1, h, h, c), random(h * h * c, 40 + i as u32))
                .unwrap()
                .into_tensor();
        let s = tract_ndarray::Array4::from_shape_vec((1, 1, 1, c), random(c, 50 + i as u32))
            .unwrap()
            .into_tensor();
        let (ours, theirs, replaced) = both_inputs(m, &[x, s]);
        let what = format!("scale case {i}: {h}x{h}x{c} swapped {swapped}");
        assert_eq!(replaced.scales, 1, "{what}: not replaced");
        assert_eq!(ours, theirs, "{what}");
    }
}

/// `y`'s PReLU as tract-onnx expands ONNX `PRelu` (`Iff(0 > x, x * alpha, x)`), or in the
/// other form (`Iff(x > 0, x, x * alpha)`).
fn prelu(
    m: &mut TypedModel,
    y: OutletId,
    alpha: Tensor,
    negative_form: bool,
    name: &str,
) -> OutletId {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::logic::{comp_gt, Iff};
    let rank = m.outlet_fact(y).unwrap().rank();
    // (tract-onnx adds the leading axes, as here)
    let mut alpha = alpha;
    while alpha.rank() < rank {
        alpha.insert_axis(0).unwrap();
    }
    let a = m.add_const(format!("{name}.alpha"), alpha).unwrap();
    let ab = m
        .wire_node(format!("{name}.mul"), math::mul(), &[y, a])
        .unwrap()[0];
    let zero = tensor0(0f32).broadcast_into_rank(rank).unwrap();
    let zero = m.add_const(format!("{name}.zero"), zero).unwrap();
    let (test_inputs, branches) = if negative_form {
        ([zero, y], [ab, y])
    } else {
        ([y, zero], [y, ab])
    };
    let test = m
        .wire_node(
            format!("{name}.test"),
            TypedBinOp(comp_gt(), None),
            &test_inputs,
        )
        .unwrap()[0];
    m.wire_node(
        format!("{name}.iff"),
        Iff,
        &[test, branches[0], branches[1]],
    )
    .unwrap()[0]
}

/// PReLUs on channels-first, channels-last and flat tensors, with one slope per channel or
/// one for all, in both of the forms of the expansion: one op each, the same numbers as
/// tract's three, and the same on two threads as on one.
#[test]
fn prelus_match_tracts_expansion() {
    use std::sync::Arc;
    use tensorcv_kernels::team::Team;
    let team = Team::new(2).map(Arc::new);
    let cases: [(&[usize], &[usize], bool); 7] = [
        (&[1, 16, 24, 24], &[16, 1, 1], true),
        (&[1, 7, 5, 9], &[1, 7, 1, 1], false),
        (&[1, 12, 12, 37], &[37], true),
        (&[2, 33, 6, 6], &[1], true),
        (&[1, 64, 128, 128], &[64, 1, 1], true),
        (&[5, 300], &[300], false),
        (&[1, 8, 9, 10], &[], true),
    ];
    for (i, &(shape, alpha_shape, negative)) in cases.iter().enumerate() {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let n: usize = alpha_shape.iter().product();
        let alpha = tract_ndarray::ArrayD::from_shape_vec(alpha_shape, random(n, 60 + i as u32))
            .unwrap()
            .into_tensor();
        let y = prelu(&mut m, x, alpha, negative, "p");
        m.select_output_outlets(&[y]).unwrap();
        let input = tract_ndarray::ArrayD::from_shape_vec(
            shape,
            random(shape.iter().product(), 61 + i as u32),
        )
        .unwrap()
        .into_tensor();
        let what = format!("prelu case {i}: {shape:?} by {alpha_shape:?}");
        let (ours, theirs, replaced) = both(m.clone(), &input);
        assert_eq!(replaced.prelus, 1, "{what}: not replaced");
        assert_eq!(ours, theirs, "{what}");
        if let Some(team) = &team {
            m.declutter().unwrap();
            accelerate(&mut m).unwrap();
            let (one, two) = one_and_two_threads(m, &input, team);
            assert_eq!(one, two, "{what}: threads");
        }
    }
}

/// A PReLU that is not one (a slope tensor shaped like neither a channel nor a scalar, a
/// product read twice) is left to tract.
#[test]
fn near_prelus_stay_tracts() {
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact([1, 4, 6, 6])).unwrap();
    let alpha = tract_ndarray::Array3::from_shape_vec((4, 6, 1), random(24, 5))
        .unwrap()
        .into_tensor();
    let y = prelu(&mut m, x, alpha, true, "p");
    m.select_output_outlets(&[y]).unwrap();
    let input = tract_ndarray::Array4::from_shape_vec((1, 4, 6, 6), random(144, 6))
        .unwrap()
        .into_tensor();
    let (ours, theirs, replaced) = both(m, &input);
    assert_eq!(replaced.prelus, 0);
    assert_eq!(ours, theirs);

    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact([1, 4, 6, 6])).unwrap();
    let y = prelu(&mut m, x, tensor3(&[[[0.25f32]]]), true, "p");
    let product = m.node(y.node).inputs[1];
    m.select_output_outlets(&[y, product]).unwrap();
    let (ours, theirs, replaced) = both_outputs(m, &[input]);
    assert_eq!(replaced.prelus, 0);
    assert_eq!(ours, theirs);
}

/// A PReLU between tensorcv's ops on a small plane switches to channels last with them.
#[test]
fn prelus_join_channels_last_tails() {
    let (c, e, h) = (16usize, 48usize, 14usize);
    let mut m = TypedModel::default();
    let x = m.add_source("x", f32::fact([c, h, h])).unwrap();
    let mut y = einsum(&mut m, x, c, e, "expand");
    let slopes = tract_ndarray::Array3::from_shape_vec((e, 1, 1), random(e, 7))
        .unwrap()
        .into_tensor();
    y = prelu(&mut m, y, slopes, true, "p1");
    y = depthwise(&mut m, y, e, 1, "dw");
    y = relu6(&mut m, y, "dw");
    y = einsum(&mut m, y, e, c, "project");
    m.select_output_outlets(&[y]).unwrap();
    let input = tract_ndarray::Array3::from_shape_vec((c, h, h), random(c * h * h, 8))
        .unwrap()
        .into_tensor();
    let (ours, theirs, replaced) = both(m, &input);
    assert_eq!(replaced.prelus, 1, "{replaced:?}");
    // expand, the PReLU, the depthwise convolution and the projection
    assert_eq!(replaced.channels_last, 4, "{replaced:?}");
    assert_within(&ours, &theirs, 1e-5, "prelu in a channels-last tail");
}
