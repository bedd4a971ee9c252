//! Color conversion between the interleaved formats, with OpenCV's numbers.
//!
//! `convert(&src, &mut dst)` converts to whatever format `dst` has, like
//! `cv2.cvtColor(src, code)`: channel reorders (BGR↔RGB, dropping or adding alpha as 255) are
//! exact copies, gray uses OpenCV's fixed-point BT.601 weights (15-bit) and rounding, so results are
//! bit-identical to `cvtColor`. Camera YUV formats are in [`yuv`].
//!
//! ```
//! use tensorcv_imgproc::{color, Image, PixelFormat};
//! let bgr = Image::from_vec(vec![255, 0, 0], 1, 1, PixelFormat::Bgr8).unwrap(); // pure blue
//! let gray = color::convert_to(&bgr.view(), PixelFormat::Gray8).unwrap();
//! assert_eq!(gray.as_bytes(), &[29]); // (255 * 3735 + 16384) >> 15
//! ```

#[cfg(target_arch = "x86_64")]
mod avx2;
pub(crate) mod kernels;
pub mod yuv;

use crate::error::Result;
use crate::image::{check_same_size, Image, ImageView, ImageViewMut, PixelFormat};
use crate::parallel;

/// Convert one row of `width` pixels from `sf` to `df`. Both slices hold exactly one row.
pub(crate) fn convert_row(src: &[u8], sf: PixelFormat, dst: &mut [u8], df: PixelFormat) {
    use PixelFormat::*;
    debug_assert_eq!(src.len() / sf.channels(), dst.len() / df.channels());
    if sf == df {
        dst.copy_from_slice(src);
        return;
    }
    match (sf, df) {
        (Rgb8, Gray8) => kernels::to_gray::<3, 0, 2>(src, dst),
        (Bgr8, Gray8) => kernels::to_gray::<3, 2, 0>(src, dst),
        (Rgba8, Gray8) => kernels::to_gray::<4, 0, 2>(src, dst),
        (Bgra8, Gray8) => kernels::to_gray::<4, 2, 0>(src, dst),
        (Gray8, Rgb8 | Bgr8) => kernels::from_gray::<3>(src, dst),
        (Gray8, Rgba8 | Bgra8) => kernels::from_gray::<4>(src, dst),
        (Rgb8, Bgr8) | (Bgr8, Rgb8) => kernels::swap_rb3(src, dst),
        _ => {
            let map = channel_map(sf, df);
            match (sf.channels(), df.channels()) {
                (3, 3) => kernels::shuffle::<3, 3>(src, dst, [map[0], map[1], map[2]]),
                (3, 4) => kernels::shuffle::<3, 4>(src, dst, map),
                (4, 3) => kernels::shuffle::<4, 3>(src, dst, [map[0], map[1], map[2]]),
                _ => kernels::shuffle::<4, 4>(src, dst, map),
            }
        }
    }
}

/// Swap red and blue of tightly packed 3- or 4-channel pixels in place (RGB <-> BGR, RGBA <->
/// BGRA): the conversion's numbers without a second frame-sized buffer (a few kB at a time go
/// through a copy on the stack, so the vectorised row kernels do the work).
pub(crate) fn swap_red_blue_in_place(data: &mut [u8], format: PixelFormat) {
    let to = match format {
        PixelFormat::Rgb8 => PixelFormat::Bgr8,
        PixelFormat::Bgr8 => PixelFormat::Rgb8,
        PixelFormat::Rgba8 => PixelFormat::Bgra8,
        PixelFormat::Bgra8 => PixelFormat::Rgba8,
        other => unreachable!("red and blue of {other}"),
    };
    // 1024 pixels of 3 or 4 channels
    let mut copy = [0u8; 4096];
    for chunk in data.chunks_mut(1024 * format.channels()) {
        let copy = &mut copy[..chunk.len()];
        copy.copy_from_slice(chunk);
        convert_row(copy, format, chunk, to);
    }
}

/// For color formats: which source channel feeds each destination channel (`None` = alpha
/// that the source lacks). Only meaningful when neither format is gray.
pub(crate) fn channel_map(sf: PixelFormat, df: PixelFormat) -> [Option<usize>; 4] {
    let s = sf.rgba_index();
    let d = df.rgba_index();
    let mut map = [None; 4];
    for (logical, di) in d.iter().enumerate() {
        if let Some(di) = di {
            map[*di] = s[logical];
        }
    }
    map
}

/// Convert `src` into `dst`, whose format says what to produce. Sizes must match.
pub fn convert(src: &ImageView<'_>, dst: &mut ImageViewMut<'_>) -> Result<()> {
    convert_threads(src, dst, 1)
}

/// [`convert`] with the frame's rows split over up to `threads` threads (1 to
/// [`parallel::MAX_THREADS`]; see [`crate::parallel`]): the same bytes as one thread.
pub fn convert_threads(
    src: &ImageView<'_>,
    dst: &mut ImageViewMut<'_>,
    threads: usize,
) -> Result<()> {
    let threads = parallel::check_threads(threads)?;
    check_same_size(
        "color conversion",
        src.width(),
        src.height(),
        dst.width(),
        dst.height(),
    )?;
    let (sf, df) = (src.format(), dst.format());
    let band = |(y0, mut band): (usize, ImageViewMut<'_>)| {
        for y in 0..band.height() {
            convert_row(src.row(y0 + y), sf, band.row_mut(y), df);
        }
    };
    let whole = dst.sub_view_mut(crate::Rect::new(0, 0, dst.width(), dst.height()))?;
    match parallel::bands(whole.width(), whole.height(), threads) {
        1 => band((0, whole)),
        n => parallel::each(parallel::row_bands(whole, n), &band),
    }
    Ok(())
}

/// Convert into a new image of `format`.
pub fn convert_to(src: &ImageView<'_>, format: PixelFormat) -> Result<Image> {
    let mut out = Image::new(src.width(), src.height(), format)?;
    convert(src, &mut out.view_mut())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_keeps_the_colors() {
        // one pixel with distinct r, g, b, a in every format
        let (r, g, b, a) = (10u8, 20u8, 30u8, 40u8);
        let px = |f: PixelFormat| -> Vec<u8> {
            match f {
                PixelFormat::Gray8 => vec![kernels::luma(r, g, b)],
                PixelFormat::Rgb8 => vec![r, g, b],
                PixelFormat::Bgr8 => vec![b, g, r],
                PixelFormat::Rgba8 => vec![r, g, b, a],
                PixelFormat::Bgra8 => vec![b, g, r, a],
            }
        };
        for sf in PixelFormat::ALL {
            for df in PixelFormat::ALL {
                let src = Image::from_vec(px(sf), 1, 1, sf).unwrap();
                let out = convert_to(&src.view(), df).unwrap();
                let mut want = if sf == PixelFormat::Gray8 {
                    let v = px(sf)[0];
                    match df {
                        PixelFormat::Gray8 => vec![v],
                        PixelFormat::Rgba8 | PixelFormat::Bgra8 => vec![v, v, v, 255],
                        _ => vec![v, v, v],
                    }
                } else {
                    px(df)
                };
                if df.has_alpha() && !sf.has_alpha() {
                    want[3] = 255;
                }
                assert_eq!(out.as_bytes(), &want[..], "{sf} -> {df}");
            }
        }
    }

    #[test]
    fn threads_give_the_same_bytes() {
        let (w, h) = (517, 301);
        for sf in PixelFormat::ALL {
            let data: Vec<u8> = (0..w * h * sf.channels())
                .map(|i| (i * 31 % 256) as u8)
                .collect();
            let src = Image::from_vec(data, w, h, sf).unwrap();
            for df in PixelFormat::ALL {
                let want = convert_to(&src.view(), df).unwrap();
                for threads in [1, 2, 5] {
                    let mut got = Image::new(w, h, df).unwrap();
                    convert_threads(&src.view(), &mut got.view_mut(), threads).unwrap();
                    assert_eq!(got, want, "{sf} -> {df}, {threads} threads");
                }
            }
        }
        let src = Image::new(4, 4, PixelFormat::Rgb8).unwrap();
        let mut dst = Image::new(4, 4, PixelFormat::Gray8).unwrap();
        assert!(convert_threads(&src.view(), &mut dst.view_mut(), 0).is_err());
    }

    #[test]
    fn gray_uses_opencv_rounding() {
        assert_eq!(kernels::luma(255, 255, 255), 255);
        assert_eq!(kernels::luma(0, 0, 255), 29);
        assert_eq!(kernels::luma(255, 0, 0), 76);
        assert_eq!(kernels::luma(0, 255, 0), 150);
    }
}
