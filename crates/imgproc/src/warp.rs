//! Affine warps, bit-exact with `cv2.warpAffine` on 8-bit images: the rotated, shifted crops
//! a landmark model is fed (MediaPipe's `ImageToTensorCalculator` warps the frame the same way),
//! and the [`Affine`] that maps points found in the crop back to the frame.
//!
//! ```
//! use tensorcv_imgproc::{warp::{warp_affine, Affine}, filter::Border, Image, Interpolation, PixelFormat};
//! let photo = Image::new(640, 480, PixelFormat::Bgr8).unwrap();
//! // a 256x256 crop of the photo, turned 30 degrees about (320, 240)
//! let m = Affine::rotation((320.0, 240.0), 30.0, 1.0).then(&Affine::translation(128.0 - 320.0, 128.0 - 240.0));
//! let mut crop = Image::new(256, 256, PixelFormat::Bgr8).unwrap();
//! warp_affine(&photo.view(), &mut crop.view_mut(), &m, Interpolation::Linear, Border::Replicate, &[0; 4]).unwrap();
//! // a point found in the crop, back in photo pixels
//! let (x, y) = m.invert().apply(128.0, 128.0);
//! assert!((x - 320.0).abs() < 1e-9 && (y - 240.0).abs() < 1e-9);
//! ```
//!
//! OpenCV's arithmetic, kept exactly: the inverse matrix as `invertAffineTransform` computes it,
//! source positions in fixed point (10 fractional bits per row and column step, rounded to
//! 1/32 pixel), bilinear weights from its 32×32 table of 15-bit weights — including the one
//! entry OpenCV saturates (a whole-pixel position weighs `32767` and `1`, not `32768` and `0`)
//! — and its border rules: a pixel whose four neighbours all lie outside takes the fill value,
//! others read outside pixels through the border mode.

use crate::error::{Error, Result};
use crate::filter::{border_index, Border};
use crate::geometry::Transform;
use crate::image::{check_same_format, ImageView, ImageViewMut};
use crate::resize::Interpolation;

/// A 2×3 affine map `[a, b, c, d, e, f]`: `x' = a·x + b·y + c`, `y' = d·x + e·y + f` (the
/// layout of OpenCV's 2×3 matrices). Coordinates follow OpenCV's warp convention: pixel `i`'s
/// centre is at `i`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine(pub [f64; 6]);

impl Default for Affine {
    fn default() -> Self {
        Affine::IDENTITY
    }
}

impl Affine {
    /// No change.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// A shift by `(dx, dy)`.
    pub fn translation(dx: f64, dy: f64) -> Affine {
        Affine([1.0, 0.0, dx, 0.0, 1.0, dy])
    }

    /// A scale by `(sx, sy)` about the origin.
    pub fn scaling(sx: f64, sy: f64) -> Affine {
        Affine([sx, 0.0, 0.0, 0.0, sy, 0.0])
    }

    /// `cv2.getRotationMatrix2D(center, angle, scale)`: a turn by `angle_deg` degrees
    /// (counter-clockwise on the screen, y pointing down) and a scale, about `center`.
    pub fn rotation(center: (f64, f64), angle_deg: f64, scale: f64) -> Affine {
        let angle = angle_deg.to_radians();
        let (alpha, beta) = (angle.cos() * scale, angle.sin() * scale);
        let (cx, cy) = center;
        Affine([
            alpha,
            beta,
            (1.0 - alpha) * cx - beta * cy,
            -beta,
            alpha,
            beta * cx + (1.0 - alpha) * cy,
        ])
    }

    /// The map of an axis-aligned [`Transform`] (whose pixel `i` covers `[i, i + 1)`) in the
    /// warp convention (pixel centres at integers).
    pub fn from_transform(t: &Transform) -> Affine {
        Affine([
            t.scale_x,
            0.0,
            t.offset_x + 0.5 * t.scale_x - 0.5,
            0.0,
            t.scale_y,
            t.offset_y + 0.5 * t.scale_y - 0.5,
        ])
    }

    /// Where `(x, y)` goes.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.0;
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// First `self`, then `next`.
    pub fn then(&self, next: &Affine) -> Affine {
        let (a, b) = (&self.0, &next.0);
        Affine([
            b[0] * a[0] + b[1] * a[3],
            b[0] * a[1] + b[1] * a[4],
            b[0] * a[2] + b[1] * a[5] + b[2],
            b[3] * a[0] + b[4] * a[3],
            b[3] * a[1] + b[4] * a[4],
            b[3] * a[2] + b[4] * a[5] + b[5],
        ])
    }

    /// The inverse map, computed as `cv2.invertAffineTransform` does (all zeros for a singular
    /// map, as OpenCV gives).
    pub fn invert(&self) -> Affine {
        let m = &self.0;
        let d = m[0] * m[4] - m[1] * m[3];
        let d = if d != 0.0 { 1.0 / d } else { 0.0 };
        let (a11, a22) = (m[4] * d, m[0] * d);
        let (a12, a21) = (-m[1] * d, -m[3] * d);
        let b1 = -a11 * m[2] - a12 * m[5];
        let b2 = -a21 * m[2] - a22 * m[5];
        Affine([a11, a12, b1, a21, a22, b2])
    }

    /// Whether every coefficient is finite.
    pub fn is_finite(&self) -> bool {
        self.0.iter().all(|v| v.is_finite())
    }
}

/// Fixed-point steps of OpenCV's warp: 10 bits per coordinate step, 5 kept for interpolation.
const AB_BITS: u32 = 10;
const INTER_BITS: u32 = 5;
const INTER_TAB: i64 = 1 << INTER_BITS;

/// `saturate_cast<int>(double)`: round half to even, clamp to `i32`.
fn round_i32(v: f64) -> i64 {
    if v.is_nan() {
        return 0;
    }
    v.round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i64
}

/// `saturate_cast<short>(int)`.
fn sat_i16(v: i64) -> isize {
    v.clamp(i16::MIN as i64, i16::MAX as i64) as isize
}

/// The four 15-bit weights of OpenCV's bilinear table for a position `fx/32`, `fy/32` past a
/// pixel: `[top-left, top-right, bottom-left, bottom-right]`. The whole-pixel entry saturates
/// to `32767` in OpenCV's table, and its sum correction puts the missing `1` on the
/// bottom-right weight.
fn bilinear_weights(fx: i64, fy: i64) -> [i32; 4] {
    if fx == 0 && fy == 0 {
        return [32767, 0, 0, 1];
    }
    let (fx, fy) = (fx as i32, fy as i32);
    let (wx0, wy0) = (32 - fx, 32 - fy);
    [wy0 * wx0 * 32, wy0 * fx * 32, fy * wx0 * 32, fy * fx * 32]
}

/// `dst = src` warped by `m` (source → destination, as `cv2.warpAffine(src, m, dsize)`), with
/// [`Interpolation::Nearest`] or [`Interpolation::Linear`]; outside the source the border mode
/// applies, `fill` (one value per channel; missing channels are 0) for [`Border::Constant`].
/// Same pixel format in and out; the destination's size is the output size.
pub fn warp_affine(
    src: &ImageView<'_>,
    dst: &mut ImageViewMut<'_>,
    m: &Affine,
    interpolation: Interpolation,
    border: Border,
    fill: &[u8],
) -> Result<()> {
    warp_affine_inverse(src, dst, &m.invert(), interpolation, border, fill)
}

/// As [`warp_affine`], with `inverse` mapping destination pixels to source positions
/// (`cv2.WARP_INVERSE_MAP`).
pub fn warp_affine_inverse(
    src: &ImageView<'_>,
    dst: &mut ImageViewMut<'_>,
    inverse: &Affine,
    interpolation: Interpolation,
    border: Border,
    fill: &[u8],
) -> Result<()> {
    check_same_format("warp_affine", src.format(), dst.format())?;
    if !inverse.is_finite() {
        return Err(Error::Invalid(format!(
            "warp_affine: the matrix {:?} is not finite",
            inverse.0
        )));
    }
    if !matches!(
        interpolation,
        Interpolation::Nearest | Interpolation::Linear
    ) {
        return Err(Error::Invalid(format!(
            "warp_affine: interpolation {interpolation} is not supported (nearest or linear)"
        )));
    }
    let cn = src.format().channels();
    let mut cval = [0u8; 4];
    for (c, v) in cval.iter_mut().zip(fill) {
        *c = *v;
    }
    let (sw, sh) = (src.width(), src.height());
    let (dw, dh) = (dst.width(), dst.height());
    if dw == 0 || dh == 0 {
        return Ok(());
    }
    let cval = &cval[..cn];
    if sw == 0 || sh == 0 {
        for y in 0..dh {
            for px in dst.row_mut(y)[..dw * cn].chunks_exact_mut(cn) {
                px.copy_from_slice(cval);
            }
        }
        return Ok(());
    }
    let m = &inverse.0;
    let scale = (1i64 << AB_BITS) as f64;
    let linear = interpolation == Interpolation::Linear;
    let round_delta: i64 = if linear {
        (1 << AB_BITS) / INTER_TAB / 2
    } else {
        (1 << AB_BITS) / 2
    };
    let stride = src.stride();
    let bytes = src.as_bytes();
    // the source pixel (x, y) read through the border, or the fill value
    let at = |x: isize, y: isize| -> &[u8] {
        match (border_index(x, sw, border), border_index(y, sh, border)) {
            (Some(x), Some(y)) => &bytes[y * stride + x * cn..][..cn],
            _ => cval,
        }
    };
    for y in 0..dh {
        let x0 = round_i32((m[1] * y as f64 + m[2]) * scale) + round_delta;
        let y0 = round_i32((m[4] * y as f64 + m[5]) * scale) + round_delta;
        let row = &mut dst.row_mut(y)[..dw * cn];
        for (x, out) in row.chunks_exact_mut(cn).enumerate() {
            let ax = round_i32(m[0] * x as f64 * scale);
            let ay = round_i32(m[3] * x as f64 * scale);
            if !linear {
                let sx = sat_i16((x0 + ax) >> AB_BITS);
                let sy = sat_i16((y0 + ay) >> AB_BITS);
                out.copy_from_slice(at(sx, sy));
                continue;
            }
            let fx_full = (x0 + ax) >> (AB_BITS - INTER_BITS);
            let fy_full = (y0 + ay) >> (AB_BITS - INTER_BITS);
            let sx = sat_i16(fx_full >> INTER_BITS);
            let sy = sat_i16(fy_full >> INTER_BITS);
            let w = bilinear_weights(fx_full & (INTER_TAB - 1), fy_full & (INTER_TAB - 1));
            let inside = sx >= 0 && sy >= 0 && (sx as usize) + 1 < sw && (sy as usize) + 1 < sh;
            let (p00, p01, p10, p11) = if inside {
                let o = sy as usize * stride + sx as usize * cn;
                (
                    &bytes[o..o + cn],
                    &bytes[o + cn..o + 2 * cn],
                    &bytes[o + stride..o + stride + cn],
                    &bytes[o + stride + cn..o + stride + 2 * cn],
                )
            } else if border == Border::Constant
                && (sx >= sw as isize || sx + 1 < 0 || sy >= sh as isize || sy + 1 < 0)
            {
                out.copy_from_slice(cval);
                continue;
            } else {
                (
                    at(sx, sy),
                    at(sx + 1, sy),
                    at(sx, sy + 1),
                    at(sx + 1, sy + 1),
                )
            };
            for c in 0..cn {
                let v = p00[c] as i32 * w[0]
                    + p01[c] as i32 * w[1]
                    + p10[c] as i32 * w[2]
                    + p11[c] as i32 * w[3];
                out[c] = ((v + (1 << 14)) >> 15).clamp(0, 255) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, PixelFormat};

    fn ramp(w: usize, h: usize) -> Image {
        let data = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        Image::from_vec(data, w, h, PixelFormat::Gray8).unwrap()
    }

    #[test]
    fn identity_copies_the_image() {
        let src = ramp(13, 9);
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let mut dst = Image::new(13, 9, PixelFormat::Gray8).unwrap();
            warp_affine(
                &src.view(),
                &mut dst.view_mut(),
                &Affine::IDENTITY,
                interp,
                Border::Constant,
                &[0],
            )
            .unwrap();
            assert_eq!(dst.as_bytes(), src.as_bytes());
        }
    }

    #[test]
    fn a_shift_moves_pixels_and_fills_the_rest() {
        let src = ramp(8, 8);
        let mut dst = Image::new(8, 8, PixelFormat::Gray8).unwrap();
        let m = Affine::translation(2.0, 1.0);
        warp_affine(
            &src.view(),
            &mut dst.view_mut(),
            &m,
            Interpolation::Linear,
            Border::Constant,
            &[9],
        )
        .unwrap();
        let (s, d) = (src.view(), dst.view());
        assert_eq!(d.pixel(5, 4).unwrap(), s.pixel(3, 3).unwrap());
        assert_eq!(d.pixel(0, 0).unwrap(), &[9]);
    }

    #[test]
    fn inverse_and_composition_agree() {
        let m = Affine::rotation((10.0, 20.0), 37.0, 1.3).then(&Affine::translation(5.0, -3.0));
        let back = m.then(&m.invert());
        for (v, want) in back.0.iter().zip(Affine::IDENTITY.0) {
            assert!((v - want).abs() < 1e-12, "{:?}", back);
        }
        let t = Transform {
            scale_x: 0.5,
            scale_y: 0.25,
            offset_x: 3.0,
            offset_y: 1.0,
        };
        // the box corner convention and the pixel centre convention describe the same map
        let (x, y) = Affine::from_transform(&t).apply(0.5 - 0.5, 0.5 - 0.5);
        let (tx, ty) = t.to_target(0.5, 0.5);
        assert!((x - (tx - 0.5)).abs() < 1e-12 && (y - (ty - 0.5)).abs() < 1e-12);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let src = ramp(4, 4);
        let mut dst = Image::new(4, 4, PixelFormat::Gray8).unwrap();
        let nan = Affine([f64::NAN, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert!(warp_affine_inverse(
            &src.view(),
            &mut dst.view_mut(),
            &nan,
            Interpolation::Linear,
            Border::Constant,
            &[]
        )
        .is_err());
        assert!(warp_affine(
            &src.view(),
            &mut dst.view_mut(),
            &Affine::IDENTITY,
            Interpolation::Cubic,
            Border::Constant,
            &[]
        )
        .is_err());
        let mut rgb = Image::new(4, 4, PixelFormat::Rgb8).unwrap();
        assert!(warp_affine(
            &src.view(),
            &mut rgb.view_mut(),
            &Affine::IDENTITY,
            Interpolation::Linear,
            Border::Constant,
            &[]
        )
        .is_err());
        // huge coordinates saturate instead of overflowing
        let far = Affine([1e12, 0.0, 1e15, 0.0, 1.0, -1e15]);
        warp_affine_inverse(
            &src.view(),
            &mut dst.view_mut(),
            &far,
            Interpolation::Linear,
            Border::Replicate,
            &[],
        )
        .unwrap();
        // a singular map inverts to zeros, as OpenCV's: every pixel reads the source's (0, 0)
        warp_affine(
            &src.view(),
            &mut dst.view_mut(),
            &Affine([0.0; 6]),
            Interpolation::Linear,
            Border::Constant,
            &[],
        )
        .unwrap();
        assert!(dst.as_bytes().iter().all(|&v| v == src.as_bytes()[0]));
    }
}
