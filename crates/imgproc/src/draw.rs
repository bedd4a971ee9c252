//! Drawing for visualization: boxes, filled boxes with alpha, lines, circles and points, text
//! labels in an embedded 8×8 bitmap font (public-domain `font8x8`), and alpha blending of masks
//! and class maps. Colors are given as RGB whatever the image's channel order; coordinates are
//! in pixels and clipped to the image, so drawing partly outside is fine.
//!
//! ```
//! use tensorcv_imgproc::{draw::{self, Color}, Image, PixelFormat};
//! let mut img = Image::new(64, 48, PixelFormat::Bgr8).unwrap();
//! let mut canvas = img.view_mut();
//! draw::rectangle(&mut canvas, [8, 8, 40, 30], Color::GREEN, 2);
//! draw::label(&mut canvas, 8, 8, "face 0.98", Color::WHITE, Color::GREEN, 1);
//! assert_eq!(canvas.as_view().pixel(8, 20).unwrap(), &[0, 255, 0]);
//! ```

use crate::error::{Error, Result};
use crate::image::{check_same_size, ImageView, ImageViewMut, PixelFormat};

/// An RGB color.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Color {
    /// red
    pub r: u8,
    /// green
    pub g: u8,
    /// blue
    pub b: u8,
}

impl Color {
    /// A color from its components.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Color { r, g, b }
    }
    /// black
    pub const BLACK: Color = Color::rgb(0, 0, 0);
    /// white
    pub const WHITE: Color = Color::rgb(255, 255, 255);
    /// red
    pub const RED: Color = Color::rgb(255, 0, 0);
    /// green
    pub const GREEN: Color = Color::rgb(0, 255, 0);
    /// blue
    pub const BLUE: Color = Color::rgb(0, 0, 255);
    /// yellow
    pub const YELLOW: Color = Color::rgb(255, 255, 0);

    /// The bytes of this color in a pixel of `format` (alpha 255; gray by OpenCV's weights).
    pub fn to_pixel(self, format: PixelFormat) -> [u8; 4] {
        let mut px = [255u8; 4];
        match format {
            PixelFormat::Gray8 => px[0] = crate::color::kernels::luma(self.r, self.g, self.b),
            _ => {
                let idx = format.rgba_index();
                for (v, i) in [self.r, self.g, self.b].into_iter().zip(idx) {
                    if let Some(i) = i {
                        px[i] = v;
                    }
                }
            }
        }
        px
    }
}

/// `n` well-separated colors (golden-angle hues), for classes and legends.
pub fn palette(n: usize) -> Vec<Color> {
    (0..n)
        .map(|i| {
            let h = (i as f32 * 137.507_77) % 360.0;
            let (s, v) = (0.75f32, if i % 2 == 0 { 1.0f32 } else { 0.8 });
            let c = v * s;
            let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
            let (r, g, b) = match (h / 60.0) as u32 {
                0 => (c, x, 0.0),
                1 => (x, c, 0.0),
                2 => (0.0, c, x),
                3 => (0.0, x, c),
                4 => (x, 0.0, c),
                _ => (c, 0.0, x),
            };
            let m = v - c;
            let q = |f: f32| ((f + m) * 255.0).round() as u8;
            Color::rgb(q(r), q(g), q(b))
        })
        .collect()
}

#[inline]
fn blend(dst: u8, src: u8, a: f32) -> u8 {
    (dst as f32 + (src as f32 - dst as f32) * a).round() as u8
}

/// Paint one pixel with `alpha` (1 = opaque); outside the image does nothing.
fn put(img: &mut ImageViewMut<'_>, x: i64, y: i64, px: &[u8; 4], alpha: f32) {
    if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
        return;
    }
    let cn = img.channels();
    let color_cn = if img.format().has_alpha() { 3 } else { cn };
    let at = x as usize * cn;
    let row = img.row_mut(y as usize);
    for c in 0..color_cn {
        row[at + c] = if alpha >= 1.0 {
            px[c]
        } else {
            blend(row[at + c], px[c], alpha)
        };
    }
}

/// Fill the clipped box `[x1, y1, x2, y2)` (x2, y2 exclusive) with `alpha`.
fn fill_span(img: &mut ImageViewMut<'_>, b: [i64; 4], px: &[u8; 4], alpha: f32) {
    let x1 = b[0].max(0);
    let y1 = b[1].max(0);
    let x2 = b[2].min(img.width() as i64);
    let y2 = b[3].min(img.height() as i64);
    for y in y1..y2 {
        for x in x1..x2 {
            put(img, x, y, px, alpha);
        }
    }
}

/// Outline of the box with corners (`x1`, `y1`) and (`x2`, `y2`) (inclusive, like
/// `cv2.rectangle`), `thickness` pixels wide, growing inwards.
pub fn rectangle(img: &mut ImageViewMut<'_>, b: [i32; 4], color: Color, thickness: u32) {
    let px = color.to_pixel(img.format());
    let t = thickness.max(1) as i64;
    let [x1, y1, x2, y2] = b.map(i64::from);
    let (x1, x2) = (x1.min(x2), x1.max(x2));
    let (y1, y2) = (y1.min(y2), y1.max(y2));
    fill_span(img, [x1, y1, x2 + 1, (y1 + t).min(y2 + 1)], &px, 1.0);
    fill_span(img, [x1, (y2 + 1 - t).max(y1), x2 + 1, y2 + 1], &px, 1.0);
    fill_span(img, [x1, y1, (x1 + t).min(x2 + 1), y2 + 1], &px, 1.0);
    fill_span(img, [(x2 + 1 - t).max(x1), y1, x2 + 1, y2 + 1], &px, 1.0);
}

/// Fill the box (inclusive corners) with `color` at opacity `alpha` in [0, 1].
pub fn fill_rectangle(img: &mut ImageViewMut<'_>, b: [i32; 4], color: Color, alpha: f32) {
    let px = color.to_pixel(img.format());
    let [x1, y1, x2, y2] = b.map(i64::from);
    let (x1, x2) = (x1.min(x2), x1.max(x2));
    let (y1, y2) = (y1.min(y2), y1.max(y2));
    fill_span(img, [x1, y1, x2 + 1, y2 + 1], &px, alpha.clamp(0.0, 1.0));
}

/// A straight line, `thickness` pixels wide (Bresenham with a square pen).
pub fn line(
    img: &mut ImageViewMut<'_>,
    from: (i32, i32),
    to: (i32, i32),
    color: Color,
    thickness: u32,
) {
    let px = color.to_pixel(img.format());
    let t = thickness.max(1) as i64;
    let (lo, hi) = (-(t - 1) / 2, t / 2);
    let (mut x, mut y) = (from.0 as i64, from.1 as i64);
    let (x1, y1) = (to.0 as i64, to.1 as i64);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    // bounded by the number of steps, so a line far off-image ends
    for _ in 0..=(dx - dy) {
        fill_span(img, [x + lo, y + lo, x + hi + 1, y + hi + 1], &px, 1.0);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// A circle of `radius` around `center`: an outline `thickness` wide, or filled when
/// `thickness` is 0.
pub fn circle(
    img: &mut ImageViewMut<'_>,
    center: (i32, i32),
    radius: u32,
    color: Color,
    thickness: u32,
) {
    let px = color.to_pixel(img.format());
    let r = radius as i64;
    let (cx, cy) = (center.0 as i64, center.1 as i64);
    let outer = (r as f64 + 0.5).powi(2);
    let inner = if thickness == 0 {
        -1.0
    } else {
        (r as f64 - thickness as f64 + 0.5).max(0.0).powi(2)
    };
    let y_lo = (cy - r).max(0);
    let y_hi = (cy + r).min(img.height() as i64 - 1);
    let x_lo = (cx - r).max(0);
    let x_hi = (cx + r).min(img.width() as i64 - 1);
    for y in y_lo..=y_hi {
        for x in x_lo..=x_hi {
            let d = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) as f64;
            if d <= outer && (thickness == 0 || d > inner) {
                put(img, x, y, &px, 1.0);
            }
        }
    }
}

/// A filled dot (a keypoint).
pub fn point(img: &mut ImageViewMut<'_>, at: (i32, i32), radius: u32, color: Color) {
    circle(img, at, radius, color, 0);
}

const GLYPH: i64 = 8;

/// Width and height in pixels of `text` drawn at integer `scale`.
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let s = scale.max(1);
    (
        text.chars().count() as u32 * GLYPH as u32 * s,
        GLYPH as u32 * s,
    )
}

/// Draw `text` with its top-left corner at (`x`, `y`), each glyph 8×8 pixels times `scale`.
/// Characters outside the font's basic Latin and Latin-1 sets draw as `?`.
pub fn text(img: &mut ImageViewMut<'_>, x: i32, y: i32, text: &str, color: Color, scale: u32) {
    use font8x8::UnicodeFonts;
    let px = color.to_pixel(img.format());
    let s = scale.max(1) as i64;
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::LATIN_FONTS.get(ch))
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        let gx = x as i64 + i as i64 * GLYPH * s;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let (px0, py0) = (gx + col * s, y as i64 + row as i64 * s);
                    fill_span(img, [px0, py0, px0 + s, py0 + s], &px, 1.0);
                }
            }
        }
    }
}

/// A text label on a filled background, placed just above (`x`, `y`) when there is room (the
/// usual spot for a detection's label) and just below otherwise.
pub fn label(
    img: &mut ImageViewMut<'_>,
    x: i32,
    y: i32,
    txt: &str,
    fg: Color,
    bg: Color,
    scale: u32,
) {
    let (w, h) = text_size(txt, scale);
    let pad = scale.max(1) as i32;
    let (w, h) = (w as i32 + 2 * pad, h as i32 + 2 * pad);
    let top = if y - h >= 0 { y - h } else { y };
    let left = x.clamp(0, (img.width() as i32 - w).max(0));
    fill_rectangle(img, [left, top, left + w - 1, top + h - 1], bg, 1.0);
    text(img, left + pad, top + pad, txt, fg, scale);
}

fn check_mask(img: &ImageViewMut<'_>, mask: &ImageView<'_>, what: &'static str) -> Result<()> {
    check_same_size(what, img.width(), img.height(), mask.width(), mask.height())?;
    if mask.format() != PixelFormat::Gray8 {
        return Err(Error::FormatMismatch {
            what,
            expected: "gray".into(),
            found: mask.format(),
        });
    }
    Ok(())
}

/// Blend `color` over the image where `mask` (gray, same size) is set: each pixel moves toward
/// `color` by `alpha * mask / 255`.
pub fn blend_mask(
    img: &mut ImageViewMut<'_>,
    mask: &ImageView<'_>,
    color: Color,
    alpha: f32,
) -> Result<()> {
    check_mask(img, mask, "blend_mask")?;
    let px = color.to_pixel(img.format());
    let alpha = alpha.clamp(0.0, 1.0) / 255.0;
    for y in 0..img.height() {
        for (x, &m) in mask.row(y).iter().enumerate() {
            if m > 0 {
                put(img, x as i64, y as i64, &px, alpha * m as f32);
            }
        }
    }
    Ok(())
}

/// Blend a class map (gray, one class index per pixel) over the image with `palette[class]`
/// at opacity `alpha`; classes without a palette entry, and those in `skip` (e.g. background),
/// are left as they are.
pub fn blend_class_map(
    img: &mut ImageViewMut<'_>,
    classes: &ImageView<'_>,
    palette: &[Color],
    alpha: f32,
    skip: &[u8],
) -> Result<()> {
    check_mask(img, classes, "blend_class_map")?;
    let fmt = img.format();
    let pixels: Vec<[u8; 4]> = palette.iter().map(|c| c.to_pixel(fmt)).collect();
    let alpha = alpha.clamp(0.0, 1.0);
    for y in 0..img.height() {
        for (x, &k) in classes.row(y).iter().enumerate() {
            if let Some(px) = pixels.get(k as usize) {
                if !skip.contains(&k) {
                    put(img, x as i64, y as i64, px, alpha);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Image;

    fn canvas(w: usize, h: usize) -> Image {
        Image::new(w, h, PixelFormat::Rgb8).unwrap()
    }

    #[test]
    fn rectangle_is_an_inclusive_outline() {
        let mut img = canvas(10, 10);
        rectangle(&mut img.view_mut(), [2, 2, 7, 6], Color::RED, 1);
        let v = img.view();
        assert_eq!(v.pixel(2, 2).unwrap(), &[255, 0, 0]);
        assert_eq!(v.pixel(7, 6).unwrap(), &[255, 0, 0]);
        assert_eq!(v.pixel(4, 4).unwrap(), &[0, 0, 0]);
        assert_eq!(v.pixel(8, 6).unwrap(), &[0, 0, 0]);
        // off-image drawing is clipped, not a panic
        rectangle(&mut img.view_mut(), [-50, -50, 500, 3], Color::BLUE, 4);
    }

    #[test]
    fn bgr_images_get_the_right_colors() {
        let mut img = Image::new(4, 4, PixelFormat::Bgr8).unwrap();
        fill_rectangle(&mut img.view_mut(), [0, 0, 3, 3], Color::RED, 1.0);
        assert_eq!(img.view().pixel(1, 1).unwrap(), &[0, 0, 255]);
        fill_rectangle(&mut img.view_mut(), [0, 0, 3, 3], Color::BLUE, 0.5);
        assert_eq!(img.view().pixel(1, 1).unwrap(), &[128, 0, 128]);
    }

    #[test]
    fn circles_and_lines_touch_the_right_pixels() {
        let mut img = canvas(21, 21);
        circle(&mut img.view_mut(), (10, 10), 5, Color::GREEN, 0);
        let v = img.view();
        assert_eq!(v.pixel(10, 5).unwrap(), &[0, 255, 0]);
        assert_eq!(v.pixel(10, 4).unwrap(), &[0, 0, 0]);
        assert_eq!(v.pixel(14, 14).unwrap(), &[0, 0, 0]);
        let mut img = canvas(10, 10);
        line(&mut img.view_mut(), (0, 0), (9, 9), Color::WHITE, 1);
        let lit = img.as_bytes().iter().filter(|&&b| b == 255).count() / 3;
        assert_eq!(lit, 10);
        assert_eq!(img.view().pixel(5, 5).unwrap(), &[255, 255, 255]);
    }

    #[test]
    fn text_draws_glyph_bits() {
        use font8x8::UnicodeFonts;
        let mut img = canvas(16, 8);
        text(&mut img.view_mut(), 0, 0, "I", Color::WHITE, 1);
        let lit = img.as_bytes().iter().filter(|&&b| b == 255).count() / 3;
        // font8x8's 'I' has 18 set bits
        let glyph = font8x8::BASIC_FONTS.get('I').unwrap();
        assert_eq!(
            lit,
            glyph.iter().map(|b| b.count_ones() as usize).sum::<usize>()
        );
        assert_eq!(text_size("abc", 2), (48, 16));
    }

    #[test]
    fn masks_blend_by_their_value() {
        let mut img = canvas(2, 1);
        let mask = Image::from_vec(vec![255, 0], 2, 1, PixelFormat::Gray8).unwrap();
        blend_mask(&mut img.view_mut(), &mask.view(), Color::WHITE, 0.5).unwrap();
        assert_eq!(img.as_bytes(), &[128, 128, 128, 0, 0, 0]);
        let classes = Image::from_vec(vec![0, 1], 2, 1, PixelFormat::Gray8).unwrap();
        let mut img = canvas(2, 1);
        blend_class_map(
            &mut img.view_mut(),
            &classes.view(),
            &[Color::RED, Color::GREEN],
            1.0,
            &[0],
        )
        .unwrap();
        assert_eq!(img.as_bytes(), &[0, 0, 0, 0, 255, 0]);
        let wrong = Image::new(3, 1, PixelFormat::Gray8).unwrap();
        assert!(blend_mask(&mut img.view_mut(), &wrong.view(), Color::RED, 1.0).is_err());
    }

    #[test]
    fn palette_colors_differ() {
        let p = palette(20);
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                assert_ne!(p[i], p[j]);
            }
        }
    }
}
