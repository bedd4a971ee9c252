//! Invariants checked on random images and settings with proptest.

use proptest::prelude::*;
use tensorcv_imgproc::color;
use tensorcv_imgproc::geometry::{self, Fit, Transform};
use tensorcv_imgproc::resize::{self, Interpolation};
use tensorcv_imgproc::tensor::{
    write_image, ChannelOrder, DType, Layout, Preprocessor, Quantization, Range, TensorSpec,
};
use tensorcv_imgproc::{Image, PixelFormat};

fn any_format() -> impl Strategy<Value = PixelFormat> {
    prop::sample::select(PixelFormat::ALL.to_vec())
}
fn any_interp() -> impl Strategy<Value = Interpolation> {
    prop::sample::select(Interpolation::ALL.to_vec())
}

/// A random image: format, 1..=40 × 1..=40 pixels, random bytes.
fn any_image() -> impl Strategy<Value = Image> {
    (any_format(), 1usize..=40, 1usize..=40).prop_flat_map(|(f, w, h)| {
        prop::collection::vec(any::<u8>(), w * h * f.channels())
            .prop_map(move |data| Image::from_vec(data, w, h, f).unwrap())
    })
}

fn any_spec() -> impl Strategy<Value = TensorSpec> {
    (
        (1usize..=24, 1usize..=24),
        prop::sample::select(ChannelOrder::ALL.to_vec()),
        prop::sample::select(Layout::ALL.to_vec()),
        prop::sample::select(Range::ALL.to_vec()),
        any_interp(),
        prop::sample::select(DType::ALL.to_vec()),
        any::<bool>(),
    )
        .prop_map(|((w, h), order, layout, range, interp, dtype, meanstd)| {
            let mut s = TensorSpec::new(w, h)
                .with_channels(order)
                .with_layout(layout)
                .with_range(range)
                .with_interp(interp)
                .with_dtype(dtype);
            if meanstd {
                s = s.with_mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
            }
            if dtype != DType::F32 {
                s = s.with_quantization(Quantization {
                    scale: 0.02,
                    zero_point: if dtype == DType::U8 { 128 } else { 0 },
                });
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn resize_to_the_same_size_is_identity(img in any_image(), interp in any_interp()) {
        let out = resize::resize_to(&img.view(), img.width(), img.height(), interp).unwrap();
        prop_assert_eq!(out, img);
    }

    #[test]
    fn swapping_red_and_blue_twice_is_identity(img in any_image()) {
        let other = match img.format() {
            PixelFormat::Rgb8 => PixelFormat::Bgr8,
            PixelFormat::Bgr8 => PixelFormat::Rgb8,
            PixelFormat::Rgba8 => PixelFormat::Bgra8,
            PixelFormat::Bgra8 => PixelFormat::Rgba8,
            PixelFormat::Gray8 => PixelFormat::Gray8,
        };
        let once = color::convert_to(&img.view(), other).unwrap();
        let back = color::convert_to(&once.view().reinterpret(img.format()).unwrap(), other).unwrap();
        prop_assert_eq!(back.view().reinterpret(img.format()).unwrap().to_image(), img);
    }

    #[test]
    fn fused_preprocessing_equals_the_steps(img in any_image(), spec in any_spec()) {
        // one pass
        let mut pre = Preprocessor::new(spec.clone());
        let mut fused = spec.alloc(1);
        pre.run(&img.view(), &mut fused, 0).unwrap();
        // cvtColor, then resize, then normalize
        let conv = color::convert_to(&img.view(), spec.channels.pixel_format()).unwrap();
        let small = resize::resize_to(&conv.view(), spec.width, spec.height, spec.interp).unwrap();
        let mut steps = spec.alloc(1);
        write_image(&spec, &small.view(), &mut steps, 0).unwrap();
        prop_assert_eq!(fused, steps);
    }

    #[test]
    fn letterbox_maps_corners_back_within_half_a_pixel(
        sw in 1usize..3000, sh in 1usize..3000, dw in 1usize..1000, dh in 1usize..1000,
        bx in 0.0f64..1.0, by in 0.0f64..1.0, bw in 0.0f64..1.0, bh in 0.0f64..1.0,
    ) {
        let p = geometry::placement(sw, sh, dw, dh, Fit::Letterbox).unwrap();
        let tf: Transform = p.transform;
        // the image corners land on the content rectangle
        let (x2, y2) = tf.to_target(sw as f64, sh as f64);
        prop_assert!((tf.to_target(0.0, 0.0).0 - p.target.x as f64).abs() < 1e-9);
        prop_assert!((x2 - (p.target.x + p.target.width) as f64).abs() < 1e-9);
        prop_assert!((y2 - (p.target.y + p.target.height) as f64).abs() < 1e-9);
        // a box found at the model's input, snapped to its pixel grid, maps back to the source
        // box within half a target pixel (in source units)
        let b = [bx * sw as f64, by * sh as f64,
                 (bx + (1.0 - bx) * bw) * sw as f64, (by + (1.0 - by) * bh) * sh as f64];
        let t = tf.box_to_target(b).map(f64::round);
        let back = tf.box_to_source(t);
        let (hx, hy) = (0.5 / tf.scale_x + 1e-9, 0.5 / tf.scale_y + 1e-9);
        for i in 0..4 {
            let half = if i % 2 == 0 { hx } else { hy };
            prop_assert!((back[i] - b[i]).abs() <= half, "corner {i}: {} vs {}", back[i], b[i]);
        }
        // the aspect ratio is kept up to rounding: each side is the scaled side rounded (at
        // least one pixel), and one side fills the target
        let scale = (dw as f64 / sw as f64).min(dh as f64 / sh as f64);
        let side = |s: usize, d: usize| ((s as f64 * scale).round() as usize).clamp(1, d);
        prop_assert_eq!(p.target.width, side(sw, dw));
        prop_assert_eq!(p.target.height, side(sh, dh));
        prop_assert!(p.target.width == dw || p.target.height == dh);
    }

    #[test]
    fn fit_into_and_the_preprocessor_agree_on_placement(img in any_image(), fit in prop::sample::select(Fit::ALL.to_vec())) {
        let spec = TensorSpec::new(17, 11).with_fit(fit, 114).with_range(Range::Raw).with_channels(ChannelOrder::Bgr);
        let (t, tf) = tensorcv_imgproc::tensor::to_tensor(&img.view(), &spec).unwrap();
        let src = color::convert_to(&img.view(), PixelFormat::Bgr8).unwrap();
        let mut out = Image::new(17, 11, PixelFormat::Bgr8).unwrap();
        let tf2 = geometry::fit_into(&src.view(), &mut out.view_mut(), fit, spec.interp, &[114; 3], &mut resize::Resizer::new()).unwrap();
        prop_assert_eq!(tf, tf2);
        let bytes: Vec<u8> = t.as_f32().unwrap().iter().map(|&v| v as u8).collect();
        prop_assert_eq!(bytes, out.into_vec());
    }
}
