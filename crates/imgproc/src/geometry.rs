//! Crops, letterboxing and flips, and the [`Transform`] that maps coordinates found in a
//! model's input back to the source image.
//!
//! ```
//! use tensorcv_imgproc::{geometry, Image, Interpolation, PixelFormat};
//! let photo = Image::new(640, 480, PixelFormat::Bgr8).unwrap();
//! let (boxed, tf) = geometry::letterbox_to(&photo.view(), 320, 320, Interpolation::Linear, &[114, 114, 114]).unwrap();
//! assert_eq!((boxed.width(), boxed.height()), (320, 320));
//! // a detection at the model's input, back in photo pixels
//! let [x1, y1, x2, y2] = tf.box_to_source([0.0, 40.0, 320.0, 280.0]);
//! assert_eq!([x1, y1, x2, y2], [0.0, 0.0, 640.0, 480.0]);
//! ```

use crate::error::{Error, Result};
use crate::image::{check_same_format, check_same_size, Image, ImageView, ImageViewMut, Rect};
use crate::names::named_enum;
use crate::resize::{Interpolation, Resizer};

/// An axis-aligned scale and offset from source-image coordinates to target coordinates:
/// `target = source * scale + offset`. Coordinates are continuous, with pixel `i` covering
/// `[i, i + 1)`, so box corners map exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// horizontal scale
    pub scale_x: f64,
    /// vertical scale
    pub scale_y: f64,
    /// horizontal offset, in target pixels
    pub offset_x: f64,
    /// vertical offset, in target pixels
    pub offset_y: f64,
}

impl Default for Transform {
    fn default() -> Self {
        Transform::IDENTITY
    }
}

impl Transform {
    /// No change.
    pub const IDENTITY: Transform = Transform {
        scale_x: 1.0,
        scale_y: 1.0,
        offset_x: 0.0,
        offset_y: 0.0,
    };

    /// Source point → target point.
    pub fn to_target(&self, x: f64, y: f64) -> (f64, f64) {
        (
            x * self.scale_x + self.offset_x,
            y * self.scale_y + self.offset_y,
        )
    }

    /// Target point → source point.
    pub fn to_source(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - self.offset_x) / self.scale_x,
            (y - self.offset_y) / self.scale_y,
        )
    }

    /// A target box `[x1, y1, x2, y2]` in source coordinates (not clipped).
    pub fn box_to_source(&self, b: [f64; 4]) -> [f64; 4] {
        let (x1, y1) = self.to_source(b[0], b[1]);
        let (x2, y2) = self.to_source(b[2], b[3]);
        [x1, y1, x2, y2]
    }

    /// A source box `[x1, y1, x2, y2]` in target coordinates.
    pub fn box_to_target(&self, b: [f64; 4]) -> [f64; 4] {
        let (x1, y1) = self.to_target(b[0], b[1]);
        let (x2, y2) = self.to_target(b[2], b[3]);
        [x1, y1, x2, y2]
    }

    /// First `self`, then `next`.
    pub fn then(&self, next: &Transform) -> Transform {
        Transform {
            scale_x: self.scale_x * next.scale_x,
            scale_y: self.scale_y * next.scale_y,
            offset_x: self.offset_x * next.scale_x + next.offset_x,
            offset_y: self.offset_y * next.scale_y + next.offset_y,
        }
    }
}

named_enum! {
    /// How an image is fitted into a target size of another aspect ratio.
    #[derive(Default)]
    pub enum Fit, "fit" {
        /// resize to the target size, ignoring the aspect ratio (`cv2.resize`)
        #[default]
        Stretch = "stretch",
        /// keep the aspect ratio, center, pad the rest (YOLO, MediaPipe)
        Letterbox = "letterbox" | "pad",
        /// keep the aspect ratio, center-crop the largest window of the target's aspect ratio,
        /// then resize (Keras `smart_resize`)
        Crop = "crop",
    }
}

/// Where the source goes inside a `dst_w`×`dst_h` target for a given [`Fit`]: the source
/// region read, the target region written, and the transform between them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// part of the source that is used
    pub source: Rect,
    /// part of the target that receives it (the rest is padding)
    pub target: Rect,
    /// source → target coordinates
    pub transform: Transform,
}

/// Compute the [`Placement`] of a `src_w`×`src_h` image in a `dst_w`×`dst_h` target.
pub fn placement(
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    fit: Fit,
) -> Result<Placement> {
    if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
        return Err(Error::Invalid(format!(
            "cannot fit a {src_w}x{src_h} image into {dst_w}x{dst_h}: sizes must be positive"
        )));
    }
    let full_src = Rect::new(0, 0, src_w, src_h);
    let full_dst = Rect::new(0, 0, dst_w, dst_h);
    let (source, target) = match fit {
        Fit::Stretch => (full_src, full_dst),
        Fit::Letterbox => {
            let scale = (dst_w as f64 / src_w as f64).min(dst_h as f64 / src_h as f64);
            let w = ((src_w as f64 * scale).round() as usize).clamp(1, dst_w);
            let h = ((src_h as f64 * scale).round() as usize).clamp(1, dst_h);
            (full_src, Rect::new((dst_w - w) / 2, (dst_h - h) / 2, w, h))
        }
        Fit::Crop => {
            // Keras smart_resize: the largest centered window with the target aspect ratio
            let crop_h = ((src_w as f64 * dst_h as f64 / dst_w as f64) as usize).clamp(1, src_h);
            let crop_w = ((src_h as f64 * dst_w as f64 / dst_h as f64) as usize).clamp(1, src_w);
            (
                Rect::new((src_w - crop_w) / 2, (src_h - crop_h) / 2, crop_w, crop_h),
                full_dst,
            )
        }
    };
    let scale_x = target.width as f64 / source.width as f64;
    let scale_y = target.height as f64 / source.height as f64;
    Ok(Placement {
        source,
        target,
        transform: Transform {
            scale_x,
            scale_y,
            offset_x: target.x as f64 - source.x as f64 * scale_x,
            offset_y: target.y as f64 - source.y as f64 * scale_y,
        },
    })
}

/// A zero-copy view of `rect`.
pub fn crop<'a>(src: &ImageView<'a>, rect: Rect) -> Result<ImageView<'a>> {
    src.sub_view(rect)
}

/// A zero-copy view of the centered `width`×`height` window.
pub fn center_crop<'a>(src: &ImageView<'a>, width: usize, height: usize) -> Result<ImageView<'a>> {
    if width > src.width() || height > src.height() {
        return Err(Error::Invalid(format!(
            "cannot center-crop {width}x{height} out of a {}x{} image",
            src.width(),
            src.height()
        )));
    }
    src.sub_view(Rect::new(
        (src.width() - width) / 2,
        (src.height() - height) / 2,
        width,
        height,
    ))
}

/// Fit `src` into `dst` (same format) with `fit`: resize the used part of the source into the
/// target region and fill the rest with `pad` (one value per channel). Returns the transform
/// from source to `dst` coordinates.
pub fn fit_into(
    src: &ImageView<'_>,
    dst: &mut ImageViewMut<'_>,
    fit: Fit,
    interp: Interpolation,
    pad: &[u8],
    resizer: &mut Resizer,
) -> Result<Transform> {
    let p = placement(src.width(), src.height(), dst.width(), dst.height(), fit)?;
    if p.target != Rect::new(0, 0, dst.width(), dst.height()) {
        dst.fill(pad)?;
    }
    let region = src.sub_view(p.source)?;
    let mut target = dst.sub_view_mut(p.target)?;
    resizer.resize(&region, &mut target, interp)?;
    Ok(p.transform)
}

/// Letterbox into a new `width`×`height` image padded with `pad`; returns the image and the
/// transform from source to letterboxed coordinates.
pub fn letterbox_to(
    src: &ImageView<'_>,
    width: usize,
    height: usize,
    interp: Interpolation,
    pad: &[u8],
) -> Result<(Image, Transform)> {
    let mut out = Image::new(width, height, src.format())?;
    let tf = fit_into(
        src,
        &mut out.view_mut(),
        Fit::Letterbox,
        interp,
        pad,
        &mut Resizer::new(),
    )?;
    Ok((out, tf))
}

/// Flip directions, as `cv2.flip`'s codes 1, 0 and -1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flip {
    /// mirror left-right (`cv2.flip(img, 1)`)
    Horizontal,
    /// upside down (`cv2.flip(img, 0)`)
    Vertical,
    /// both (`cv2.flip(img, -1)`, a 180° rotation)
    Both,
}

/// Flip `src` into `dst` (same size and format).
pub fn flip(src: &ImageView<'_>, dst: &mut ImageViewMut<'_>, mode: Flip) -> Result<()> {
    check_same_size("flip", src.width(), src.height(), dst.width(), dst.height())?;
    check_same_format("flip", src.format(), dst.format())?;
    let cn = src.channels();
    let h = src.height();
    for y in 0..h {
        let sy = if mode == Flip::Horizontal {
            y
        } else {
            h - 1 - y
        };
        let s = src.row(sy);
        let d = dst.row_mut(y);
        if mode == Flip::Vertical {
            d.copy_from_slice(s);
        } else {
            for (dp, sp) in d.chunks_exact_mut(cn).zip(s.chunks_exact(cn).rev()) {
                dp.copy_from_slice(sp);
            }
        }
    }
    Ok(())
}

/// Flip into a new image.
pub fn flip_to(src: &ImageView<'_>, mode: Flip) -> Result<Image> {
    let mut out = Image::new(src.width(), src.height(), src.format())?;
    flip(src, &mut out.view_mut(), mode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelFormat;

    #[test]
    fn letterbox_centers_and_pads() {
        let p = placement(640, 480, 320, 320, Fit::Letterbox).unwrap();
        assert_eq!(p.target, Rect::new(0, 40, 320, 240));
        assert_eq!(p.transform.to_target(640.0, 480.0), (320.0, 280.0));
        let src = Image::from_vec(vec![200; 4 * 2], 4, 2, PixelFormat::Gray8).unwrap();
        let (out, tf) = letterbox_to(&src.view(), 4, 4, Interpolation::Nearest, &[7]).unwrap();
        assert_eq!(
            out.as_bytes(),
            &[7, 7, 7, 7, 200, 200, 200, 200, 200, 200, 200, 200, 7, 7, 7, 7]
        );
        assert_eq!(tf.to_source(0.0, 1.0), (0.0, 0.0));
    }

    #[test]
    fn crop_fit_takes_the_center() {
        let p = placement(400, 200, 100, 100, Fit::Crop).unwrap();
        assert_eq!(p.source, Rect::new(100, 0, 200, 200));
        assert_eq!(p.transform.to_source(0.0, 0.0), (100.0, 0.0));
        assert_eq!(p.transform.to_source(100.0, 100.0), (300.0, 200.0));
    }

    #[test]
    fn flips_match_opencv_codes() {
        let src = Image::from_vec((0..6).collect(), 3, 2, PixelFormat::Gray8).unwrap();
        let f = |m| flip_to(&src.view(), m).unwrap().into_vec();
        assert_eq!(f(Flip::Horizontal), vec![2, 1, 0, 5, 4, 3]);
        assert_eq!(f(Flip::Vertical), vec![3, 4, 5, 0, 1, 2]);
        assert_eq!(f(Flip::Both), vec![5, 4, 3, 2, 1, 0]);
    }

    #[test]
    fn center_crop_checks_size() {
        let src = Image::new(10, 6, PixelFormat::Rgb8).unwrap();
        let c = center_crop(&src.view(), 4, 4).unwrap();
        assert_eq!((c.width(), c.height()), (4, 4));
        assert!(center_crop(&src.view(), 11, 4).is_err());
    }
}
