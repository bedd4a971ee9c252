//! Camera YUV formats → RGB/BGR/RGBA/BGRA/gray, with OpenCV's BT.601 numbers
//! (`cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_NV12)` and friends; within 1 of OpenCV, exact in
//! practice).
//!
//! ```
//! use tensorcv_imgproc::color::yuv::{self, YuvFormat, YuvImage};
//! use tensorcv_imgproc::PixelFormat;
//! // a 2x2 NV12 frame: four luma bytes, then one interleaved U,V pair
//! let nv12 = [126, 126, 126, 126, 128, 128];
//! let frame = YuvImage::new(&nv12, 2, 2, YuvFormat::Nv12).unwrap();
//! let rgb = yuv::to_image(&frame, PixelFormat::Rgb8).unwrap();
//! assert_eq!(&rgb.as_bytes()[..3], &[128, 128, 128]);
//! ```

mod kernels;

use crate::error::{Error, Result};
use crate::image::{check_same_size, Image, ImageViewMut, PixelFormat};
use crate::names::named_enum;
use kernels::Out;

named_enum! {
    /// The YUV layouts cameras and decoders hand out.
    pub enum YuvFormat, "YUV format" {
        /// 4:2:2 packed `Y0 U Y1 V` (also called YUY2); V4L2's most common webcam format
        Yuyv = "yuyv" | "yuy2",
        /// 4:2:2 packed `U Y0 V Y1`
        Uyvy = "uyvy",
        /// 4:2:2 packed `Y0 V Y1 U`
        Yvyu = "yvyu",
        /// 4:2:0: Y plane, then interleaved `U V` plane
        Nv12 = "nv12",
        /// 4:2:0: Y plane, then interleaved `V U` plane (Android camera default)
        Nv21 = "nv21",
        /// 4:2:0 planar: Y, U, V planes (also called IYUV)
        I420 = "i420" | "iyuv" | "yu12",
        /// 4:2:0 planar: Y, V, U planes
        Yv12 = "yv12",
    }
}

impl YuvFormat {
    /// Whether chroma is shared by 2×2 pixels (4:2:0) rather than by horizontal pairs.
    pub const fn is_420(self) -> bool {
        matches!(
            self,
            YuvFormat::Nv12 | YuvFormat::Nv21 | YuvFormat::I420 | YuvFormat::Yv12
        )
    }

    /// The tightly packed row stride (of the luma plane for 4:2:0) for `width` pixels.
    pub const fn packed_stride(self, width: usize) -> usize {
        if self.is_420() {
            width
        } else {
            width * 2
        }
    }

    /// Bytes of a frame with the given luma stride.
    fn frame_len(self, stride: usize, height: usize) -> Option<usize> {
        let luma = stride.checked_mul(height)?;
        if self.is_420() {
            luma.checked_add(luma / 2)
        } else {
            Some(luma)
        }
    }
}

/// A borrowed YUV frame. For 4:2:0 formats `stride` is the luma row stride; the chroma planes
/// follow the luma plane with stride `stride` (NV12/NV21) or `stride / 2` (I420/YV12).
#[derive(Clone, Copy, Debug)]
pub struct YuvImage<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
    format: YuvFormat,
}

impl<'a> YuvImage<'a> {
    /// A tightly packed frame.
    pub fn new(data: &'a [u8], width: usize, height: usize, format: YuvFormat) -> Result<Self> {
        Self::with_stride(data, width, height, format.packed_stride(width), format)
    }

    /// A frame whose rows are `stride` bytes apart.
    pub fn with_stride(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        format: YuvFormat,
    ) -> Result<Self> {
        if !width.is_multiple_of(2) || (format.is_420() && !height.is_multiple_of(2)) {
            return Err(Error::Invalid(format!(
                "{format} frames need an even width{}, got {width}x{height}",
                if format.is_420() { " and height" } else { "" }
            )));
        }
        if stride < format.packed_stride(width) || (format.is_420() && !stride.is_multiple_of(2)) {
            return Err(Error::Invalid(format!(
                "stride {stride} is too short (or odd) for a {width} pixel wide {format} frame"
            )));
        }
        let needed = format
            .frame_len(stride, height)
            .ok_or(Error::TooLarge { width, height })?;
        if data.len() < needed {
            return Err(Error::BufferTooSmall {
                width,
                height,
                stride,
                format: format.to_string(),
                len: data.len(),
                needed,
            });
        }
        Ok(YuvImage {
            data,
            width,
            height,
            stride,
            format,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// The layout.
    pub fn format(&self) -> YuvFormat {
        self.format
    }
}

/// Convert a YUV frame into `dst` (RGB, BGR, RGBA, BGRA with alpha 255, or gray = the luma
/// plane, as OpenCV's `COLOR_YUV2GRAY_*`).
pub fn convert(src: &YuvImage<'_>, dst: &mut ImageViewMut<'_>) -> Result<()> {
    check_same_size(
        "YUV conversion",
        src.width,
        src.height,
        dst.width(),
        dst.height(),
    )?;
    let (w, h, stride) = (src.width, src.height, src.stride);
    let df = dst.format();
    if df == PixelFormat::Gray8 {
        // the luma plane, as OpenCV's COLOR_YUV2GRAY_* does
        let first_luma = usize::from(src.format == YuvFormat::Uyvy);
        for y in 0..h {
            let row = &src.data[y * stride..y * stride + src.format.packed_stride(w)];
            if src.format.is_420() {
                dst.row_mut(y).copy_from_slice(row);
            } else {
                let luma = row.iter().skip(first_luma).step_by(2);
                for (d, s) in dst.row_mut(y).iter_mut().zip(luma) {
                    *d = *s;
                }
            }
        }
        return Ok(());
    }
    let out = Out::for_format(df);
    let data = src.data;
    match src.format {
        YuvFormat::Yuyv | YuvFormat::Uyvy | YuvFormat::Yvyu => {
            let (yi, ui, vi) = match src.format {
                YuvFormat::Yuyv => (0, 1, 3),
                YuvFormat::Uyvy => (1, 0, 2),
                _ => (0, 3, 1),
            };
            for y in 0..h {
                let row = &data[y * stride..y * stride + 2 * w];
                kernels::packed422_row(row, dst.row_mut(y), out, yi, ui, vi);
            }
        }
        YuvFormat::Nv12 | YuvFormat::Nv21 => {
            let (ui, vi) = if src.format == YuvFormat::Nv12 {
                (0, 1)
            } else {
                (1, 0)
            };
            let uv_plane = &data[stride * h..];
            for y in 0..h {
                let uv = &uv_plane[(y / 2) * stride..(y / 2) * stride + w];
                kernels::planar420_row(luma_row(src, y), dst.row_mut(y), out, |i| {
                    (uv[2 * i + ui], uv[2 * i + vi])
                });
            }
        }
        YuvFormat::I420 | YuvFormat::Yv12 => {
            let cstride = stride / 2;
            let plane = cstride * (h / 2);
            let first = &data[stride * h..];
            let (u_plane, v_plane) = if src.format == YuvFormat::I420 {
                (first, &first[plane..])
            } else {
                (&first[plane..], first)
            };
            for y in 0..h {
                let off = (y / 2) * cstride;
                let (u, v) = (&u_plane[off..off + w / 2], &v_plane[off..off + w / 2]);
                kernels::planar420_row(luma_row(src, y), dst.row_mut(y), out, |i| (u[i], v[i]));
            }
        }
    }
    Ok(())
}

fn luma_row<'a>(src: &YuvImage<'a>, y: usize) -> &'a [u8] {
    debug_assert!(src.format.is_420());
    &src.data[y * src.stride..y * src.stride + src.width]
}

/// Convert into a new image of `format`.
pub fn to_image(src: &YuvImage<'_>, format: PixelFormat) -> Result<Image> {
    let mut out = Image::new(src.width, src.height, format)?;
    convert(src, &mut out.view_mut())?;
    Ok(out)
}

/// Chroma subsampling of a planar YUV frame (Y4M's `C420`, `C422`, `C444`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chroma {
    /// one U and one V per 2×2 pixels
    C420,
    /// one U and one V per horizontal pair
    C422,
    /// one U and one V per pixel
    C444,
}

impl Chroma {
    /// `(horizontal, vertical)` subsampling as shifts.
    const fn shifts(self) -> (u32, u32) {
        match self {
            Chroma::C420 => (1, 1),
            Chroma::C422 => (1, 0),
            Chroma::C444 => (0, 0),
        }
    }

    /// The size of a chroma plane for a `width`×`height` frame (odd sizes round up).
    pub const fn plane_size(self, width: usize, height: usize) -> (usize, usize) {
        let (sx, sy) = self.shifts();
        (width.div_ceil(1 << sx), height.div_ceil(1 << sy))
    }

    /// Bytes of a tightly packed frame: the Y plane, then U, then V.
    pub fn frame_len(self, width: usize, height: usize) -> Option<usize> {
        let (cw, ch) = self.plane_size(width, height);
        width
            .checked_mul(height)?
            .checked_add(cw.checked_mul(ch)?.checked_mul(2)?)
    }
}

/// Convert a tightly packed planar frame (Y plane, then U, then V, as Y4M stores them) into
/// `dst` with the same BT.601 numbers as [`convert`] (for 4:2:0 the result equals I420's).
pub fn convert_planar(frame: &[u8], chroma: Chroma, dst: &mut ImageViewMut<'_>) -> Result<()> {
    let (w, h) = (dst.width(), dst.height());
    let needed = chroma.frame_len(w, h).ok_or(Error::TooLarge {
        width: w,
        height: h,
    })?;
    if frame.len() < needed {
        return Err(Error::BufferTooSmall {
            width: w,
            height: h,
            stride: w,
            format: format!("planar YUV {chroma:?}"),
            len: frame.len(),
            needed,
        });
    }
    let (cw, ch) = chroma.plane_size(w, h);
    let (sx, sy) = chroma.shifts();
    let (luma, rest) = frame.split_at(w * h);
    let (u_plane, v_plane) = rest.split_at(cw * ch);
    let df = dst.format();
    if df == PixelFormat::Gray8 {
        for y in 0..h {
            dst.row_mut(y).copy_from_slice(&luma[y * w..(y + 1) * w]);
        }
        return Ok(());
    }
    let out = Out::for_format(df);
    for y in 0..h {
        let c = (y >> sy) * cw;
        kernels::planar_row(
            &luma[y * w..(y + 1) * w],
            &u_plane[c..c + cw],
            &v_plane[c..c + cw],
            dst.row_mut(y),
            out,
            sx,
        );
    }
    Ok(())
}

/// An RGB/BGR/RGBA/BGRA/gray image as I420 (Y plane, U plane, V plane) into `out` (resized to
/// fit, so a reused buffer allocates once), as `cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420)`
/// does: BT.601 video range, chroma taken from the top-left pixel of each 2×2 block. The size
/// must be even.
pub fn to_i420(src: &crate::ImageView<'_>, out: &mut Vec<u8>) -> Result<()> {
    let (w, h) = (src.width(), src.height());
    if w % 2 != 0 || h % 2 != 0 {
        return Err(Error::Invalid(format!(
            "I420 needs an even width and height, got {w}x{h}"
        )));
    }
    to_planar(src, Chroma::C420, out)
}

/// An image as planar YUV with `chroma` subsampling (Y, U, V planes, tightly packed, as Y4M
/// stores them), with [`to_i420`]'s numbers; subsampled chroma comes from the top-left pixel
/// of each block, and odd sizes get a last, partial block.
pub fn to_planar(src: &crate::ImageView<'_>, chroma: Chroma, out: &mut Vec<u8>) -> Result<()> {
    let (w, h) = (src.width(), src.height());
    let len = chroma.frame_len(w, h).ok_or(Error::TooLarge {
        width: w,
        height: h,
    })?;
    out.resize(len, 0);
    let (cw, ch) = chroma.plane_size(w, h);
    let (sx, sy) = chroma.shifts();
    let (luma, rest) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = rest.split_at_mut(cw * ch);
    let sf = src.format();
    let cn = sf.channels();
    let [ri, gi, bi, _] = sf.rgba_index();
    let (ri, gi, bi) = (ri.unwrap_or(0), gi.unwrap_or(0), bi.unwrap_or(0));
    let (mx, my) = ((1usize << sx) - 1, (1usize << sy) - 1);
    for y in 0..h {
        let row = src.row(y);
        for (x, px) in row.chunks_exact(cn).take(w).enumerate() {
            let (r, g, b) = (px[ri], px[gi], px[bi]);
            luma[y * w + x] = kernels::luma(r, g, b);
            if y & my == 0 && x & mx == 0 {
                let (u, v) = kernels::chroma_of(r, g, b);
                let c = (y >> sy) * cw + (x >> sx);
                u_plane[c] = u;
                v_plane[c] = v;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_levels_and_primaries() {
        // Y=16 is black, Y=235 white, neutral chroma
        for (y, want) in [(16u8, 0u8), (235, 255), (126, 128)] {
            let buf = [y, 128, y, 128];
            let f = YuvImage::new(&buf, 2, 1, YuvFormat::Yuyv).unwrap();
            assert_eq!(
                to_image(&f, PixelFormat::Rgb8).unwrap().as_bytes(),
                &[want; 6]
            );
        }
        // strong V gives red, strong U gives blue; BGR puts them the other way round
        let buf = [81, 90, 81, 240];
        let f = YuvImage::new(&buf, 2, 1, YuvFormat::Yuyv).unwrap();
        let rgb = to_image(&f, PixelFormat::Rgb8).unwrap();
        let bgr = to_image(&f, PixelFormat::Bgr8).unwrap();
        assert!(
            rgb.as_bytes()[0] > 240 && rgb.as_bytes()[2] < 10,
            "{:?}",
            rgb.as_bytes()
        );
        assert_eq!(bgr.as_bytes()[0], rgb.as_bytes()[2]);
    }

    #[test]
    fn bad_frames_are_refused() {
        let buf = [0u8; 10];
        assert!(YuvImage::new(&buf, 3, 2, YuvFormat::Nv12).is_err());
        assert!(YuvImage::new(&buf, 4, 2, YuvFormat::Nv12).is_err()); // needs 12 bytes
        assert!(YuvImage::new(&buf, 2, 2, YuvFormat::Yuyv).is_ok());
        let err = "mjpg".parse::<YuvFormat>().unwrap_err().to_string();
        assert!(err.contains("nv12"), "{err}");
    }

    #[test]
    fn gray_of_packed_formats_is_the_luma() {
        let buf = [10, 1, 20, 2, 30, 3, 40, 4];
        let f = YuvImage::new(&buf, 4, 1, YuvFormat::Yuyv).unwrap();
        assert_eq!(
            to_image(&f, PixelFormat::Gray8).unwrap().as_bytes(),
            &[10, 20, 30, 40]
        );
        let f = YuvImage::new(&buf, 4, 1, YuvFormat::Uyvy).unwrap();
        assert_eq!(
            to_image(&f, PixelFormat::Gray8).unwrap().as_bytes(),
            &[1, 2, 3, 4]
        );
    }
}
