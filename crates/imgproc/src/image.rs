//! Image types: an owned [`Image`], a borrowed [`ImageView`] and a writable [`ImageViewMut`],
//! all 8-bit interleaved with an explicit row stride and [`PixelFormat`].
//!
//! Views borrow caller memory (a camera frame, a WASM memory slice) without copying; a view of
//! a sub-rectangle is another view with the same stride.

use crate::error::{Error, Result};
use crate::names::named_enum;
use std::fmt;

named_enum! {
    /// Interleaved 8-bit pixel formats. The channel order is part of the format, as OpenCV's
    /// users have to remember it: `cv2.imread` hands out [`PixelFormat::Bgr8`].
    pub enum PixelFormat, "pixel format" {
        /// one channel
        Gray8 = "gray" | "gray8" | "grey" | "l",
        /// red, green, blue
        Rgb8 = "rgb" | "rgb8",
        /// blue, green, red (OpenCV's order)
        Bgr8 = "bgr" | "bgr8",
        /// red, green, blue, alpha
        Rgba8 = "rgba" | "rgba8",
        /// blue, green, red, alpha
        Bgra8 = "bgra" | "bgra8",
    }
}

impl PixelFormat {
    /// Channels per pixel (= bytes per pixel).
    pub const fn channels(self) -> usize {
        match self {
            PixelFormat::Gray8 => 1,
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => 4,
        }
    }

    /// Index of red, green, blue and alpha inside a pixel (`None` for a missing channel; gray
    /// has only `r` = `g` = `b` = 0).
    pub(crate) const fn rgba_index(self) -> [Option<usize>; 4] {
        match self {
            PixelFormat::Gray8 => [Some(0), Some(0), Some(0), None],
            PixelFormat::Rgb8 => [Some(0), Some(1), Some(2), None],
            PixelFormat::Bgr8 => [Some(2), Some(1), Some(0), None],
            PixelFormat::Rgba8 => [Some(0), Some(1), Some(2), Some(3)],
            PixelFormat::Bgra8 => [Some(2), Some(1), Some(0), Some(3)],
        }
    }

    /// Whether the format has an alpha channel.
    pub const fn has_alpha(self) -> bool {
        matches!(self, PixelFormat::Rgba8 | PixelFormat::Bgra8)
    }
}

/// The accessors both view types share.
macro_rules! geometry_accessors {
    () => {
        /// Width in pixels.
        pub fn width(&self) -> usize {
            self.width
        }
        /// Height in pixels.
        pub fn height(&self) -> usize {
            self.height
        }
        /// Bytes from one row to the next.
        pub fn stride(&self) -> usize {
            self.stride
        }
        /// Pixel format.
        pub fn format(&self) -> PixelFormat {
            self.format
        }
        /// Channels per pixel.
        pub fn channels(&self) -> usize {
            self.format.channels()
        }
    };
}

/// Bytes needed for `height` rows of `row` bytes at `stride`; `None` on overflow.
fn needed_bytes(row: usize, stride: usize, height: usize) -> Option<usize> {
    if height == 0 {
        return Some(0);
    }
    stride.checked_mul(height - 1)?.checked_add(row)
}

fn check_geometry(
    len: usize,
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
) -> Result<()> {
    let row = width
        .checked_mul(format.channels())
        .ok_or(Error::TooLarge { width, height })?;
    if stride < row {
        return Err(Error::BadStride {
            stride,
            width,
            format,
            row,
        });
    }
    let needed = needed_bytes(row, stride, height).ok_or(Error::TooLarge { width, height })?;
    if len < needed {
        return Err(Error::BufferTooSmall {
            width,
            height,
            stride,
            format: format.to_string(),
            len,
            needed,
        });
    }
    Ok(())
}

/// A borrowed, read-only image: `height` rows of `width` pixels, each row `stride` bytes apart.
#[derive(Clone, Copy)]
pub struct ImageView<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
}

impl fmt::Debug for ImageView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImageView({}x{} {}, stride {})",
            self.width, self.height, self.format, self.stride
        )
    }
}

impl<'a> ImageView<'a> {
    /// A view over tightly packed pixels (`stride = width * channels`).
    pub fn new(data: &'a [u8], width: usize, height: usize, format: PixelFormat) -> Result<Self> {
        let stride = width
            .checked_mul(format.channels())
            .ok_or(Error::TooLarge { width, height })?;
        Self::with_stride(data, width, height, stride, format)
    }

    /// A view over rows that are `stride` bytes apart (padding after each row is ignored).
    pub fn with_stride(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        format: PixelFormat,
    ) -> Result<Self> {
        check_geometry(data.len(), width, height, stride, format)?;
        Ok(ImageView {
            data,
            width,
            height,
            stride,
            format,
        })
    }

    geometry_accessors!();

    /// Whether the image has no pixels.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }
    /// The underlying bytes, from the first pixel to the end of the last row.
    pub fn as_bytes(&self) -> &'a [u8] {
        let end = needed_bytes(self.width * self.channels(), self.stride, self.height).unwrap_or(0);
        &self.data[..end]
    }
    /// Row `y` (`width * channels` bytes). Panics if `y >= height`.
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width * self.channels()]
    }

    /// Rows from top to bottom.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        (0..self.height).map(move |y| self.row(y))
    }

    /// The pixel at (`x`, `y`), `channels` bytes; `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<&'a [u8]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let cn = self.channels();
        Some(&self.row(y)[x * cn..x * cn + cn])
    }

    /// A zero-copy view of a sub-rectangle. Errors when the rectangle leaves the image.
    pub fn sub_view(&self, rect: Rect) -> Result<ImageView<'a>> {
        rect.check_inside(self.width, self.height)?;
        if rect.is_empty() {
            return Ok(ImageView {
                data: &[],
                width: rect.width,
                height: rect.height,
                stride: self.stride,
                format: self.format,
            });
        }
        let start = rect.y * self.stride + rect.x * self.channels();
        Ok(ImageView {
            data: &self.data[start..],
            width: rect.width,
            height: rect.height,
            stride: self.stride,
            format: self.format,
        })
    }

    /// The same pixels with another format of the same channel count (e.g. to read an RGB
    /// buffer as BGR); no bytes move.
    pub fn reinterpret(&self, format: PixelFormat) -> Result<ImageView<'a>> {
        if format.channels() != self.channels() {
            return Err(Error::Invalid(format!(
                "cannot reinterpret a {} image as {}: channel counts differ",
                self.format, format
            )));
        }
        Ok(ImageView { format, ..*self })
    }

    /// Copy into a tightly packed owned image.
    pub fn to_image(&self) -> Image {
        let row = self.width * self.channels();
        let mut data = Vec::with_capacity(row * self.height);
        for r in self.rows() {
            data.extend_from_slice(r);
        }
        Image {
            data,
            width: self.width,
            height: self.height,
            format: self.format,
        }
    }
}

/// A borrowed, writable image.
pub struct ImageViewMut<'a> {
    data: &'a mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
}

impl fmt::Debug for ImageViewMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImageViewMut({}x{} {}, stride {})",
            self.width, self.height, self.format, self.stride
        )
    }
}

impl<'a> ImageViewMut<'a> {
    /// A writable view over tightly packed pixels.
    pub fn new(
        data: &'a mut [u8],
        width: usize,
        height: usize,
        format: PixelFormat,
    ) -> Result<Self> {
        let stride = width
            .checked_mul(format.channels())
            .ok_or(Error::TooLarge { width, height })?;
        Self::with_stride(data, width, height, stride, format)
    }

    /// A writable view over rows `stride` bytes apart.
    pub fn with_stride(
        data: &'a mut [u8],
        width: usize,
        height: usize,
        stride: usize,
        format: PixelFormat,
    ) -> Result<Self> {
        check_geometry(data.len(), width, height, stride, format)?;
        Ok(ImageViewMut {
            data,
            width,
            height,
            stride,
            format,
        })
    }

    geometry_accessors!();

    /// A read-only view of the same pixels.
    pub fn as_view(&self) -> ImageView<'_> {
        ImageView {
            data: self.data,
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
        }
    }

    /// Row `y`, writable. Panics if `y >= height`.
    #[inline]
    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let start = y * self.stride;
        let len = self.width * self.channels();
        &mut self.data[start..start + len]
    }

    /// The first `rows` rows and the rest, as two views over disjoint bytes (bands of rows
    /// written by different threads).
    pub(crate) fn split_at_row(self, rows: usize) -> (ImageViewMut<'a>, ImageViewMut<'a>) {
        let rows = rows.min(self.height);
        let at = (rows * self.stride).min(self.data.len());
        let (top, bottom) = self.data.split_at_mut(at);
        let band = |data, height| ImageViewMut {
            data,
            width: self.width,
            height,
            stride: self.stride,
            format: self.format,
        };
        (band(top, rows), band(bottom, self.height - rows))
    }

    /// A writable view of a sub-rectangle (zero-copy).
    pub fn sub_view_mut(&mut self, rect: Rect) -> Result<ImageViewMut<'_>> {
        rect.check_inside(self.width, self.height)?;
        let start = if rect.is_empty() {
            self.data.len()
        } else {
            rect.y * self.stride + rect.x * self.channels()
        };
        Ok(ImageViewMut {
            data: &mut self.data[start..],
            width: rect.width,
            height: rect.height,
            stride: self.stride,
            format: self.format,
        })
    }

    /// Set every pixel to `value` (`channels` bytes).
    pub fn fill(&mut self, value: &[u8]) -> Result<()> {
        if value.len() != self.channels() {
            return Err(Error::Invalid(format!(
                "fill value has {} channels, the {} image has {}",
                value.len(),
                self.format,
                self.channels()
            )));
        }
        for y in 0..self.height {
            for px in self.row_mut(y).chunks_exact_mut(value.len()) {
                px.copy_from_slice(value);
            }
        }
        Ok(())
    }
}

pub(crate) fn check_same_format(
    what: &'static str,
    src: PixelFormat,
    dst: PixelFormat,
) -> Result<()> {
    if src != dst {
        return Err(Error::FormatMismatch {
            what,
            expected: src.to_string(),
            found: dst,
        });
    }
    Ok(())
}

pub(crate) fn check_same_size(
    what: &'static str,
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Result<()> {
    if src_w != dst_w || src_h != dst_h {
        return Err(Error::SizeMismatch {
            what,
            expected_w: src_w,
            expected_h: src_h,
            found_w: dst_w,
            found_h: dst_h,
        });
    }
    Ok(())
}

/// An owned, tightly packed 8-bit image.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    data: Vec<u8>,
    width: usize,
    height: usize,
    format: PixelFormat,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Image({}x{} {})", self.width, self.height, self.format)
    }
}

impl Image {
    /// A zero-filled image.
    pub fn new(width: usize, height: usize, format: PixelFormat) -> Result<Self> {
        let len = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(format.channels()))
            .ok_or(Error::TooLarge { width, height })?;
        Ok(Image {
            data: vec![0; len],
            width,
            height,
            format,
        })
    }

    /// Take ownership of tightly packed pixels.
    pub fn from_vec(
        data: Vec<u8>,
        width: usize,
        height: usize,
        format: PixelFormat,
    ) -> Result<Self> {
        let needed = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(format.channels()))
            .ok_or(Error::TooLarge { width, height })?;
        if data.len() != needed {
            return Err(Error::BufferTooSmall {
                width,
                height,
                stride: width * format.channels(),
                format: format.to_string(),
                len: data.len(),
                needed,
            });
        }
        Ok(Image {
            data,
            width,
            height,
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
    /// Pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    /// Channels per pixel.
    pub fn channels(&self) -> usize {
        self.format.channels()
    }
    /// Pixel bytes, row after row.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
    /// Pixel bytes, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    /// Give the pixel bytes back.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    /// A read-only view.
    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            data: &self.data,
            width: self.width,
            height: self.height,
            stride: self.width * self.channels(),
            format: self.format,
        }
    }

    /// A writable view.
    pub fn view_mut(&mut self) -> ImageViewMut<'_> {
        let stride = self.width * self.channels();
        ImageViewMut {
            data: &mut self.data,
            width: self.width,
            height: self.height,
            stride,
            format: self.format,
        }
    }

    /// Resize the buffer for new dimensions and format, keeping its allocation when it is large
    /// enough (the per-frame way to reuse a destination). Pixel contents are unspecified after.
    pub fn reshape(&mut self, width: usize, height: usize, format: PixelFormat) -> Result<()> {
        let len = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(format.channels()))
            .ok_or(Error::TooLarge { width, height })?;
        self.data.resize(len, 0);
        self.width = width;
        self.height = height;
        self.format = format;
        Ok(())
    }
}

/// A rectangle of pixels: top-left corner and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// left column
    pub x: usize,
    /// top row
    pub y: usize,
    /// width in pixels
    pub width: usize,
    /// height in pixels
    pub height: usize,
}

impl Rect {
    /// A rectangle from its corner and size.
    pub const fn new(x: usize, y: usize, width: usize, height: usize) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// Whether it holds no pixel.
    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    pub(crate) fn check_inside(&self, width: usize, height: usize) -> Result<()> {
        let right = self.x.checked_add(self.width);
        let bottom = self.y.checked_add(self.height);
        match (right, bottom) {
            (Some(r), Some(b)) if r <= width && b <= height => Ok(()),
            _ => Err(Error::Invalid(format!(
                "rectangle {}x{} at ({}, {}) leaves the {}x{} image",
                self.width, self.height, self.x, self.y, width, height
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_check_their_buffers() {
        let buf = vec![0u8; 10 * 4 * 3];
        assert!(ImageView::new(&buf, 10, 4, PixelFormat::Rgb8).is_ok());
        assert!(matches!(
            ImageView::new(&buf, 10, 5, PixelFormat::Rgb8),
            Err(Error::BufferTooSmall { needed: 150, .. })
        ));
        assert!(matches!(
            ImageView::with_stride(&buf, 10, 2, 20, PixelFormat::Rgb8),
            Err(Error::BadStride { row: 30, .. })
        ));
        // the last row needs no padding after it
        assert!(ImageView::with_stride(&buf[..100], 10, 3, 35, PixelFormat::Gray8).is_ok());
        assert!(matches!(
            ImageView::new(&buf, usize::MAX / 2, 3, PixelFormat::Rgba8),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn sub_views_share_memory_and_stride() {
        let data: Vec<u8> = (0..(6 * 5)).map(|v| v as u8).collect();
        let img = ImageView::new(&data, 6, 5, PixelFormat::Gray8).unwrap();
        let sub = img.sub_view(Rect::new(2, 1, 3, 2)).unwrap();
        assert_eq!(sub.row(0), &[8, 9, 10]);
        assert_eq!(sub.row(1), &[14, 15, 16]);
        assert_eq!(sub.stride(), 6);
        assert!(img.sub_view(Rect::new(4, 0, 3, 1)).is_err());
        assert_eq!(sub.to_image().as_bytes(), &[8, 9, 10, 14, 15, 16]);
    }

    #[test]
    fn formats_parse_with_a_helpful_error() {
        assert_eq!("BGR".parse::<PixelFormat>().unwrap(), PixelFormat::Bgr8);
        assert_eq!("rgba8".parse::<PixelFormat>().unwrap(), PixelFormat::Rgba8);
        let err = "yuv".parse::<PixelFormat>().unwrap_err().to_string();
        assert!(
            err.contains("'yuv'") && err.contains("gray, rgb, bgr, rgba, bgra"),
            "{err}"
        );
    }
}
