//! Segmentation: per-pixel scores → a class per source pixel (and, for probability masks, the
//! probability), class fractions, a colorized mask, an overlay, and the background effects
//! masks are used for: replacement (an image or a color) and blur.
//!
//! The mask is sampled back to the source through the preprocessing [`Transform`]: letterbox
//! bars and crops are handled, probabilities are interpolated bilinearly and class maps taken
//! from the nearest model pixel.

use crate::error::{settings, Error, Result};
use serde::Deserialize;
use tensorcv_imgproc::draw::{blend_class_map, palette, Color};
use tensorcv_imgproc::filter::GaussianBlur;
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::{Image, ImageView, ImageViewMut, PixelFormat};
use tensorcv_infer::ndarray::ArrayViewD;
use tensorcv_infer::{ModelCard, Outputs};

/// What the segmentation output holds.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MaskKind {
    /// one channel of foreground probability (or several, one per class, independent):
    /// thresholded
    #[default]
    Probability,
    /// one channel per class (probabilities or logits): the argmax wins
    Classes,
}

/// `[segmentation]` of the model card.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentSettings {
    /// the mask output (default: the first), `[1, h, w]`, `[1, h, w, c]` or, with
    /// `channels_first`, `[1, c, h, w]`
    pub output: Option<String>,
    /// probability (thresholded) or classes (argmax)
    pub kind: MaskKind,
    /// foreground above this (probability masks)
    pub threshold: f32,
    /// which channel is the foreground (probability masks with several channels)
    pub channel: usize,
    /// the output is `[1, c, h, w]`
    pub channels_first: bool,
}

impl Default for SegmentSettings {
    fn default() -> Self {
        SegmentSettings {
            output: None,
            kind: MaskKind::Probability,
            threshold: 0.5,
            channel: 0,
            channels_first: false,
        }
    }
}

impl SegmentSettings {
    /// The card's `[segmentation]` table (defaults where it is silent), checked.
    pub fn from_card(card: &ModelCard) -> Result<Self> {
        let s: Self = settings("segmentation", card.segmentation.as_ref())?;
        s.validate()?;
        Ok(s)
    }

    /// A finite `threshold` (NaN would make every pixel background).
    pub fn validate(&self) -> Result<()> {
        if !self.threshold.is_finite() {
            return Err(Error::Card {
                section: "segmentation",
                message: format!("threshold = {} must be a finite number", self.threshold),
            });
        }
        Ok(())
    }
}

/// A segmentation of one source image.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// one class index per source pixel (probability masks: 1 = foreground, 0 = background)
    pub classes: Image,
    /// the foreground probability per source pixel (probability masks only)
    pub probability: Option<Vec<f32>>,
    /// how many classes the model knows (2 for a probability mask)
    pub num_classes: usize,
}

/// One class's share of the image.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassShare {
    /// class index
    pub index: usize,
    /// the card's label
    pub label: Option<String>,
    /// fraction of the source pixels, 0..1
    pub fraction: f32,
}

/// Segment one source image of `width`×`height` pixels from the model's outputs (`transform`:
/// source → model input, as [`tensorcv_infer::Session::run`] returns it).
pub fn segment(
    outputs: &Outputs,
    settings: &SegmentSettings,
    transform: &Transform,
    width: usize,
    height: usize,
) -> Result<Segmentation> {
    let mask = match &settings.output {
        Some(name) => outputs.get(name)?,
        None => outputs.by_index(0).ok_or_else(|| Error::Output {
            output: String::new(),
            message: "the model has no outputs".into(),
        })?,
    };
    segment_array(&mask.view(), settings, transform, width, height)
}

/// [`segment`] on a raw mask array (from any engine).
pub fn segment_array(
    mask: &ArrayViewD<'_, f32>,
    settings: &SegmentSettings,
    transform: &Transform,
    width: usize,
    height: usize,
) -> Result<Segmentation> {
    settings.validate()?;
    let name = settings.output.clone().unwrap_or_default();
    let shape = mask.shape();
    let bad = |message: String| Error::Output {
        output: name.clone(),
        message,
    };
    let lead = shape.iter().take_while(|&&d| d == 1).count().min(1);
    let (mh, mw, mc) = match (&shape[lead..], settings.channels_first) {
        ([h, w], _) => (*h, *w, 1),
        ([c, h, w], true) => (*h, *w, *c),
        ([h, w, c], false) => (*h, *w, *c),
        _ => {
            return Err(bad(format!(
                "expected a mask [1, h, w], [1, h, w, c] or (channels_first) [1, c, h, w], \
                 found {shape:?}"
            )))
        }
    };
    if mh == 0 || mw == 0 || mc == 0 {
        return Err(bad(format!("empty mask {shape:?}")));
    }
    if settings.kind == MaskKind::Probability && settings.channel >= mc {
        return Err(Error::Card {
            section: "segmentation",
            message: format!("channel {} of a mask with {mc} channels", settings.channel),
        });
    }
    if settings.kind == MaskKind::Classes && mc > 256 {
        return Err(bad(format!("{mc} classes do not fit an 8-bit class map")));
    }
    let data = crate::values(mask);
    let at = |y: usize, x: usize, c: usize| {
        if settings.channels_first {
            data[(c * mh + y) * mw + x]
        } else {
            data[(y * mw + x) * mc + c]
        }
    };
    let mut classes = Image::new(width, height, PixelFormat::Gray8)?;
    let (w_out, h_out) = (classes.width(), classes.height());
    // model-input pixel centers of each source column / row
    let model_x: Vec<f64> = (0..w_out)
        .map(|x| transform.to_target(x as f64 + 0.5, 0.0).0 - 0.5)
        .collect();
    let model_y: Vec<f64> = (0..h_out)
        .map(|y| transform.to_target(0.0, y as f64 + 0.5).1 - 0.5)
        .collect();
    match settings.kind {
        MaskKind::Probability => {
            let c = settings.channel;
            let mut probability = vec![0f32; w_out * h_out];
            for (y, &my) in model_y.iter().enumerate() {
                let (y0, y1, fy) = taps(my, mh);
                for (x, &mx) in model_x.iter().enumerate() {
                    let (x0, x1, fx) = taps(mx, mw);
                    let top = at(y0, x0, c) * (1.0 - fx) + at(y0, x1, c) * fx;
                    let bottom = at(y1, x0, c) * (1.0 - fx) + at(y1, x1, c) * fx;
                    probability[y * w_out + x] = top * (1.0 - fy) + bottom * fy;
                }
            }
            let threshold = settings.threshold;
            for (dst, &p) in classes.as_bytes_mut().iter_mut().zip(&probability) {
                *dst = u8::from(p > threshold);
            }
            Ok(Segmentation {
                classes,
                probability: Some(probability),
                num_classes: 2,
            })
        }
        MaskKind::Classes => {
            let bytes = classes.as_bytes_mut();
            for (y, &my) in model_y.iter().enumerate() {
                let ny = (my.round().max(0.0) as usize).min(mh - 1);
                for (x, &mx) in model_x.iter().enumerate() {
                    let nx = (mx.round().max(0.0) as usize).min(mw - 1);
                    let best = (0..mc)
                        .max_by(|&a, &b| at(ny, nx, a).total_cmp(&at(ny, nx, b)).then(b.cmp(&a)))
                        .unwrap_or(0);
                    bytes[y * w_out + x] = best as u8;
                }
            }
            Ok(Segmentation {
                classes,
                probability: None,
                num_classes: mc,
            })
        }
    }
}

/// The two source taps and the weight of the second for linear sampling at `v` (clamped to the
/// edge, like `cv2.resize`'s replicated border).
fn taps(v: f64, n: usize) -> (usize, usize, f32) {
    let v = v.clamp(0.0, (n - 1) as f64);
    let i0 = v.floor() as usize;
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, (v - i0 as f64) as f32)
}

impl Segmentation {
    /// Each class's share of the image, classes in index order (labels from `labels`).
    pub fn fractions(&self, labels: &[String]) -> Vec<ClassShare> {
        let mut counts = vec![0usize; self.num_classes.max(1)];
        for &c in self.classes.as_bytes() {
            if let Some(n) = counts.get_mut(c as usize) {
                *n += 1;
            }
        }
        let total = (self.classes.width() * self.classes.height()).max(1) as f32;
        counts
            .into_iter()
            .enumerate()
            .map(|(index, n)| ClassShare {
                index,
                label: labels.get(index).cloned(),
                fraction: n as f32 / total,
            })
            .collect()
    }

    /// The pixels of class `class` as COCO's uncompressed run-length encoding: runs of
    /// alternately out and in (starting with out, which may be 0 long), the pixels taken
    /// column by column (Fortran order, as `pycocotools.mask` reads `{"size": [h, w],
    /// "counts": [...]}`).
    pub fn rle(&self, class: u8) -> Vec<u32> {
        let (w, h) = (self.classes.width(), self.classes.height());
        let bytes = self.classes.as_bytes();
        let mut counts = Vec::new();
        let (mut inside, mut run) = (false, 0u32);
        for x in 0..w {
            for y in 0..h {
                if (bytes[y * w + x] == class) != inside {
                    counts.push(run);
                    inside = !inside;
                    run = 0;
                }
                run += 1;
            }
        }
        counts.push(run);
        counts
    }

    /// The class map in colors (`palette(num_classes)`; class 0 black), RGB.
    pub fn colorized(&self) -> Result<Image> {
        let mut out = Image::new(
            self.classes.width(),
            self.classes.height(),
            PixelFormat::Rgb8,
        )?;
        let colors = self.colors();
        blend_class_map(
            &mut out.view_mut(),
            &self.classes.view(),
            &colors,
            1.0,
            &[0],
        )?;
        Ok(out)
    }

    /// Blend the classes over `image` (the source, any 3/4-channel format) at opacity `alpha`,
    /// leaving class 0 (background) untouched.
    pub fn overlay(&self, image: &mut ImageViewMut<'_>, alpha: f32) -> Result<()> {
        blend_class_map(image, &self.classes.view(), &self.colors(), alpha, &[0])?;
        Ok(())
    }

    /// Replace the background of `image` by `background` (same size and format), blending by
    /// the foreground probability where there is one (soft edges), else by the class map.
    pub fn replace_background(
        &self,
        image: &mut ImageViewMut<'_>,
        background: &ImageView<'_>,
    ) -> Result<()> {
        let (w, h) = (self.classes.width(), self.classes.height());
        if (image.width(), image.height()) != (w, h)
            || (background.width(), background.height(), background.format())
                != (w, h, image.format())
        {
            return Err(Error::Output {
                output: "segmentation".into(),
                message: format!(
                    "the mask is {w}x{h}; the image is {}x{} {:?}, the background {}x{} {:?}",
                    image.width(),
                    image.height(),
                    image.format(),
                    background.width(),
                    background.height(),
                    background.format()
                ),
            });
        }
        let ch = image.channels();
        for y in 0..h {
            let bg = background.row(y);
            let row = image.row_mut(y);
            for x in 0..w {
                let keep = match &self.probability {
                    Some(p) => p[y * w + x].clamp(0.0, 1.0),
                    None => f32::from(self.classes.as_bytes()[y * w + x] != 0),
                };
                for c in 0..ch {
                    let i = x * ch + c;
                    let v = row[i] as f32 * keep + bg[i] as f32 * (1.0 - keep);
                    row[i] = v.round() as u8;
                }
            }
        }
        Ok(())
    }

    fn colors(&self) -> Vec<Color> {
        palette(self.num_classes.max(2))
    }
}

/// What replaces the background of a segmented image, with the buffers it reuses frame after
/// frame.
#[derive(Clone, Debug)]
pub enum Background {
    /// a Gaussian blur (`cv2.GaussianBlur`, bit-exact) of the image itself; `None` picks a
    /// kernel a tenth of the longer image side (odd, at least 3), sigma from the size
    Blur(Option<GaussianBlur>, Option<Image>),
    /// one color (given in RGB; converted to the image's format)
    Color(Color, Option<Image>),
    /// a picture, resized (area) and converted to each image's size and format
    Picture(Image, Option<Image>),
}

impl Background {
    /// A blur with a `k`×`k` kernel (odd), or a tenth of the image side for `None`.
    pub fn blur(k: Option<usize>) -> Result<Self> {
        let blur = k
            .map(|k| GaussianBlur::new((k, k), (0.0, 0.0)))
            .transpose()?;
        Ok(Background::Blur(blur, None))
    }

    /// One color.
    pub fn color(color: Color) -> Self {
        Background::Color(color, None)
    }

    /// A picture.
    pub fn picture(picture: Image) -> Self {
        Background::Picture(picture, None)
    }

    /// Give `image`'s background (per `seg`) this effect: the foreground stays, blended by
    /// the probability at the edges.
    pub fn apply(&mut self, seg: &Segmentation, image: &mut ImageViewMut<'_>) -> Result<()> {
        let (w, h, format) = (image.width(), image.height(), image.format());
        let fits = |b: &Option<Image>| {
            b.as_ref()
                .is_some_and(|b| (b.width(), b.height(), b.format()) == (w, h, format))
        };
        match self {
            Background::Blur(blur, buffer) => {
                if blur.is_none() {
                    let k = (w.max(h) / 10).max(3) | 1;
                    *blur = Some(GaussianBlur::new((k, k), (0.0, 0.0))?);
                }
                if !fits(buffer) {
                    *buffer = Some(Image::new(w, h, format)?);
                }
                let (Some(blur), Some(buffer)) = (blur.as_mut(), buffer.as_mut()) else {
                    unreachable!("both set above")
                };
                blur.apply(&image.as_view(), &mut buffer.view_mut())?;
                seg.replace_background(image, &buffer.view())
            }
            Background::Color(color, buffer) => {
                if !fits(buffer) {
                    let mut b = Image::new(w, h, format)?;
                    let px = color.to_pixel(format);
                    b.view_mut().fill(&px[..format.channels()])?;
                    *buffer = Some(b);
                }
                seg.replace_background(image, &buffer.as_ref().expect("set above").view())
            }
            Background::Picture(picture, buffer) => {
                if !fits(buffer) {
                    let resized = tensorcv_imgproc::resize::resize_to(
                        &picture.view(),
                        w,
                        h,
                        tensorcv_imgproc::Interpolation::Area,
                    )?;
                    *buffer = Some(tensorcv_imgproc::color::convert_to(
                        &resized.view(),
                        format,
                    )?);
                }
                seg.replace_background(image, &buffer.as_ref().expect("set above").view())
            }
        }
    }
}
