//! Parity with OpenCV 4.10 on real photos and edge cases, against the committed references in
//! `tests/data/imgproc` (made by `tools/make_imgproc_refs.py`). The project promises exact
//! nearest/nearest-exact and RGB/gray conversions, at most 1 for YUV and the other
//! interpolations, 1e-6 for float tensors; these tests hold the tighter line we reach (exact
//! nearly everywhere) and say where not.

mod common;

use common::{diff_u8, load, load_npy, manifest};
use tensorcv_imgproc::color::{self, yuv};
use tensorcv_imgproc::resize::{self, Interpolation};
use tensorcv_imgproc::{Image, PixelFormat};

fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing {key} in {v}"))
}
fn n(v: &serde_json::Value, key: &str) -> usize {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing {key} in {v}")) as usize
}

/// Source and destination formats of an OpenCV `COLOR_*` code.
fn color_code(code: &str) -> (PixelFormat, PixelFormat) {
    let (a, b) = code.split_once('2').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn color_conversions_match_opencv_exactly() {
    let m = manifest();
    let cases = m["color"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let (sf, df) = color_code(s(case, "code"));
        let src = load(s(case, "input"));
        // the file holds the channels OpenCV had; read them as the code's source format
        let src = src.view().reinterpret(sf).unwrap();
        let want = load(s(case, "output"));
        let got = color::convert_to(&src, df).unwrap();
        assert_eq!(got.format().channels(), want.channels(), "{case}");
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        assert_eq!(
            (max, count),
            (0, 0),
            "{}: max diff {max} on {count} bytes",
            s(case, "code")
        );
    }
}

#[test]
fn yuv_conversions_match_opencv_within_one() {
    let m = manifest();
    let cases = m["yuv"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut exact = 0;
    for case in cases {
        let raw = load_npy(s(case, "input"));
        let fmt: yuv::YuvFormat = s(case, "format").parse().unwrap();
        let frame =
            yuv::YuvImage::new(&raw.data, n(case, "width"), n(case, "height"), fmt).unwrap();
        let order: PixelFormat = s(case, "order").parse().unwrap();
        let got = yuv::to_image(&frame, order).unwrap();
        // references are stored through cv2.imwrite, i.e. as BGR bytes in OpenCV's array order
        let want = load(s(case, "output"));
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        assert!(max <= 1, "{case}: max diff {max} on {count} bytes");
        exact += usize::from(count == 0);
    }
    println!("yuv: {exact}/{} cases bit-exact", cases.len());
}

#[test]
fn resize_matches_opencv() {
    let m = manifest();
    let cases = m["resize"].as_array().unwrap();
    assert!(cases.len() >= 90);
    let mut report = Vec::new();
    for case in cases {
        let interp: Interpolation = s(case, "interp").parse().unwrap();
        let src = load(s(case, "input"));
        let want = load(s(case, "output"));
        let (w, h) = (n(case, "width"), n(case, "height"));
        let got = resize::resize_to(&src.view(), w, h, interp).unwrap();
        assert_eq!((got.width(), got.height()), (want.width(), want.height()));
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        // The promise is "exact for nearest, within 1 otherwise"; we are bit-exact everywhere
        // but for cubic on sources under 4 pixels a side, where OpenCV's cubic (Intel IPP for
        // 8-bit images) treats the border in a way we do not reproduce. Hold the stricter line
        // so any regression shows.
        let tiny = src.width() < 4 || src.height() < 4;
        let limit = u8::from(interp == Interpolation::Cubic && tiny);
        report.push(format!(
            "{:<40} {:>9} {w}x{h}: max {max}, {count} of {} bytes differ",
            s(case, "input"),
            interp.name(),
            got.as_bytes().len()
        ));
        assert!(max <= limit, "{}", report.last().unwrap());
    }
    println!("{}", report.join("\n"));
}

#[test]
fn resize_of_a_strided_view_equals_resize_of_a_copy() {
    let src = load("chelsea.png");
    let sub = src
        .view()
        .sub_view(tensorcv_imgproc::Rect::new(13, 7, 301, 177))
        .unwrap();
    for interp in Interpolation::ALL {
        let a = resize::resize_to(&sub, 97, 61, interp).unwrap();
        let b = resize::resize_to(&sub.to_image().view(), 97, 61, interp).unwrap();
        assert_eq!(a, b, "{interp}");
    }
    let _ = Image::new(1, 1, PixelFormat::Gray8).unwrap();
}

#[test]
fn gray_matches_opencv_on_every_color() {
    let m = manifest();
    let want: u64 = s(&m, "gray_all_colors_fnv1a64").parse().unwrap();
    let data: Vec<u8> = (0u32..1 << 24)
        .flat_map(|i| [(i >> 16) as u8, (i >> 8) as u8, i as u8])
        .collect();
    let bgr = tensorcv_imgproc::ImageView::new(&data, 4096, 4096, PixelFormat::Bgr8).unwrap();
    let gray = color::convert_to(&bgr, PixelFormat::Gray8).unwrap();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in gray.as_bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    assert_eq!(h, want, "BGR2GRAY differs from OpenCV for some colors");
}

/// The spec that reproduces a tensor case of `tools/make_imgproc_refs.py`'s `glue()`.
fn tensor_spec(case: &serde_json::Value) -> tensorcv_imgproc::tensor::TensorSpec {
    use tensorcv_imgproc::tensor::{ChannelOrder, Layout, Range, TensorSpec};
    let mut spec = TensorSpec::new(n(case, "width"), n(case, "height"))
        .with_interp(s(case, "interp").parse().unwrap())
        .with_layout(s(case, "layout").parse::<Layout>().unwrap())
        .with_channels(s(case, "order").parse::<ChannelOrder>().unwrap());
    spec = match s(case, "norm") {
        "unit" => spec.with_range(Range::Unit),
        "symmetric" => spec.with_range(Range::Symmetric),
        "raw" => spec.with_range(Range::Raw),
        "imagenet" => spec
            .with_range(Range::Unit)
            .with_mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        "caffe" => spec
            .with_range(Range::Raw)
            .with_mean_std([103.939, 116.779, 123.68], [1.0; 3]),
        other => panic!("unknown norm {other}"),
    };
    spec
}

#[test]
fn tensors_match_the_numpy_pipeline() {
    use tensorcv_imgproc::tensor::{write_image, Preprocessor};
    let m = manifest();
    let cases = m["tensor"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let spec = tensor_spec(case);
        let want = load_npy(s(case, "output"));
        let want_f = want.f32s();
        let images: Vec<Image> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| load(v.as_str().unwrap()))
            .collect();
        let views: Vec<_> = images.iter().map(|i| i.view()).collect();
        // fused, one pass
        let mut pre = Preprocessor::new(spec.clone());
        let (fused, _) = pre.run_batch(&views).unwrap();
        assert_eq!(fused.shape().to_vec(), want.shape, "{}", s(case, "name"));
        // step by step: cvtColor, resize, normalize
        let mut steps = spec.alloc(images.len());
        for (i, img) in images.iter().enumerate() {
            let conv = color::convert_to(&img.view(), spec.channels.pixel_format()).unwrap();
            let small =
                resize::resize_to(&conv.view(), spec.width, spec.height, spec.interp).unwrap();
            write_image(&spec, &small.view(), &mut steps, i).unwrap();
        }
        for (label, t) in [("fused", &fused), ("steps", &steps)] {
            let got = t.as_f32().unwrap();
            let max = got
                .iter()
                .zip(&want_f)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            println!("tensor {} ({label}): max abs diff {max:e}", s(case, "name"));
            assert!(
                max <= 1e-6,
                "{} ({label}): max abs diff {max}",
                s(case, "name")
            );
        }
        assert_eq!(
            fused,
            steps,
            "{}: fused and step-by-step differ",
            s(case, "name")
        );
    }
}

fn decode(name: &str, mode: tensorcv_imgproc::io::ImreadMode) -> Image {
    use tensorcv_imgproc::io::{imread, DecodeOptions};
    imread(common::data_dir().join(name), &DecodeOptions::new(mode)).unwrap()
}

#[test]
fn exif_orientation_is_applied_like_cv2_imread() {
    use tensorcv_imgproc::io::ImreadMode;
    let m = manifest();
    let cases = m["exif"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        for (mode, key) in [
            (ImreadMode::Color, "output"),
            (ImreadMode::Unchanged, "unchanged"),
        ] {
            let got = decode(s(case, "input"), mode);
            let want = load(s(case, key));
            assert_eq!(
                (got.width(), got.height()),
                (want.width(), want.height()),
                "orientation {} ({key})",
                case["orientation"]
            );
            // JPEG decoders differ by a few levels; a wrong rotation or mirror differs by 255
            let (max, _) = diff_u8(got.as_bytes(), want.as_bytes());
            assert!(
                max <= 8,
                "orientation {} ({key}): max diff {max}",
                case["orientation"]
            );
        }
    }
}

#[test]
fn jpeg_decoding_is_close_to_libjpeg_turbo() {
    use tensorcv_imgproc::io::ImreadMode;
    let m = manifest();
    for case in m["jpeg"].as_array().unwrap() {
        let got = decode(s(case, "input"), ImreadMode::Color);
        let want = load(s(case, "output"));
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        let total: u64 = got
            .as_bytes()
            .iter()
            .zip(want.as_bytes())
            .map(|(a, b)| a.abs_diff(*b) as u64)
            .sum();
        let mean = total as f64 / got.as_bytes().len() as f64;
        println!(
            "{}: max diff {max}, mean {mean:.4}, {count} of {} bytes differ",
            s(case, "input"),
            got.as_bytes().len()
        );
        // zune-jpeg is not libjpeg-turbo: measured max 4 (4:2:0) and 3 (4:4:4), mean under 0.18
        assert!(
            max <= 4 && mean < 0.3,
            "{}: max {max}, mean {mean}",
            s(case, "input")
        );
    }
}

#[test]
fn pil_resize_matches_pillow() {
    use tensorcv_imgproc::resize::pil::{PilFilter, PilResizer};
    let m = manifest();
    let cases = m["pil"].as_array().unwrap();
    assert!(cases.len() >= 24);
    let mut resizer = PilResizer::new();
    let mut report = Vec::new();
    for case in cases {
        let filter: PilFilter = s(case, "filter").parse().unwrap();
        let src = load(s(case, "input"));
        let want = load(s(case, "output"));
        let mut got = Image::new(n(case, "width"), n(case, "height"), src.format()).unwrap();
        resizer
            .resize(&src.view(), &mut got.view_mut(), filter)
            .unwrap();
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        report.push((
            max,
            format!(
                "{} {filter}: max {max}, {count} bytes differ",
                s(case, "output")
            ),
        ));
    }
    println!(
        "{}",
        report
            .iter()
            .map(|r| r.1.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(report.iter().all(|r| r.0 <= 1));
}

#[test]
fn gaussian_blur_matches_opencv_exactly() {
    use tensorcv_imgproc::filter::{Border, GaussianBlur};
    let m = manifest();
    let cases = m["blur"].as_array().unwrap();
    assert!(cases.len() >= 13);
    let mut report = Vec::new();
    for case in cases {
        let src = load(s(case, "input"));
        let want = load(s(case, "output"));
        let k: Vec<usize> = case["ksize"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let sigma: Vec<f64> = case["sigma"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let border: Border = s(case, "border").parse().unwrap();
        let mut blur = GaussianBlur::new((k[0], k[1]), (sigma[0], sigma[1]))
            .unwrap()
            .with_border(border);
        let mut got = Image::new(src.width(), src.height(), src.format()).unwrap();
        blur.apply(&src.view(), &mut got.view_mut()).unwrap();
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        report.push(format!(
            "{:<22} {:?} sigma {:?} {border}: max {max}, {count} of {} bytes differ",
            s(case, "input"),
            k,
            sigma,
            got.as_bytes().len()
        ));
        assert_eq!(max, 0, "{}", report.last().unwrap());
        // a second frame through the same blur (buffers reused) gives the same bytes
        let mut again = Image::new(src.width(), src.height(), src.format()).unwrap();
        blur.apply(&src.view(), &mut again.view_mut()).unwrap();
        assert_eq!(again.as_bytes(), got.as_bytes());
    }
    println!("{}", report.join("\n"));
}

#[test]
fn i420_encoding_matches_opencv_exactly() {
    let m = manifest();
    let cases = m["yuv_encode"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let mut buf = Vec::new();
    for case in cases {
        let bgr = load(s(case, "input"));
        let src = if s(case, "code").starts_with("RGB") {
            // OpenCV was handed the same bytes and told they are RGB
            bgr.view().reinterpret(PixelFormat::Rgb8).unwrap()
        } else {
            bgr.view()
        };
        yuv::to_i420(&src, &mut buf).unwrap();
        let want = load_npy(s(case, "output"));
        assert_eq!(buf, want.data, "{case}");
    }
}

#[test]
fn planar_422_and_444_decode_like_i420_with_repeated_chroma() {
    // OpenCV has no planar 4:2:2 / 4:4:4 → BGR; the same chroma repeated to full resolution
    // must give exactly what OpenCV's I420 conversion gave (same per-pixel arithmetic)
    let m = manifest();
    for case in m["yuv"].as_array().unwrap() {
        if s(case, "format") != "I420" {
            continue;
        }
        let raw = load_npy(s(case, "input")).data;
        let (w, h) = (n(case, "width"), n(case, "height"));
        let (luma, rest) = raw.split_at(w * h);
        let (u, v) = rest.split_at(w * h / 4);
        let order: PixelFormat = s(case, "order").parse().unwrap();
        let want = load(s(case, "output"));
        let up = |plane: &[u8], full_rows: bool| -> Vec<u8> {
            let rows = if full_rows { h } else { h / 2 };
            (0..rows)
                .flat_map(|y| {
                    let sy = if full_rows { y / 2 } else { y };
                    (0..w).map(move |x| plane[sy * (w / 2) + x / 2])
                })
                .collect()
        };
        let i422: Vec<u8> = [
            luma.to_vec(),
            (0..h)
                .flat_map(|y| u[(y / 2) * (w / 2)..(y / 2 + 1) * (w / 2)].to_vec())
                .collect(),
            (0..h)
                .flat_map(|y| v[(y / 2) * (w / 2)..(y / 2 + 1) * (w / 2)].to_vec())
                .collect(),
        ]
        .concat();
        let i444: Vec<u8> = [luma.to_vec(), up(u, true), up(v, true)].concat();
        for (frame, chroma) in [
            (&raw, yuv::Chroma::C420),
            (&i422, yuv::Chroma::C422),
            (&i444, yuv::Chroma::C444),
        ] {
            let mut got = Image::new(w, h, order).unwrap();
            yuv::convert_planar(frame, chroma, &mut got.view_mut()).unwrap();
            assert_eq!(got.as_bytes(), want.as_bytes(), "{case} {chroma:?}");
        }
        let mut short = Image::new(w, h, order).unwrap();
        assert!(
            yuv::convert_planar(&i444[..100], yuv::Chroma::C444, &mut short.view_mut()).is_err()
        );
    }
}

#[test]
fn affine_warps_match_opencv_exactly() {
    use tensorcv_imgproc::filter::Border;
    use tensorcv_imgproc::warp::{warp_affine, warp_affine_inverse, Affine};
    let m = manifest();
    let cases = m["warp"].as_array().unwrap();
    assert!(cases.len() >= 11);
    let mut report = Vec::new();
    for case in cases {
        let src = load(s(case, "input"));
        let want = load(s(case, "output"));
        let k: Vec<f64> = case["matrix"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mat = Affine(k.try_into().unwrap());
        let size = &case["size"];
        let (w, h) = (
            size[0].as_u64().unwrap() as usize,
            size[1].as_u64().unwrap() as usize,
        );
        let interp: Interpolation = s(case, "interpolation").parse().unwrap();
        let border: Border = s(case, "border").parse().unwrap();
        let fill: Vec<u8> = case["fill"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let mut got = Image::new(w, h, src.format()).unwrap();
        if case["inverse"].as_bool().unwrap() {
            warp_affine_inverse(
                &src.view(),
                &mut got.view_mut(),
                &mat,
                interp,
                border,
                &fill,
            )
        } else {
            warp_affine(
                &src.view(),
                &mut got.view_mut(),
                &mat,
                interp,
                border,
                &fill,
            )
        }
        .unwrap();
        let (max, count) = diff_u8(got.as_bytes(), want.as_bytes());
        report.push(format!(
            "{:<14} {w}x{h} {interp} {border}: max {max}, {count} of {} bytes differ",
            s(case, "input"),
            got.as_bytes().len()
        ));
        assert_eq!(max, 0, "{}", report.last().unwrap());
    }
    println!("{}", report.join("\n"));
}
