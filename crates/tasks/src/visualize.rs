//! Drawing results on the source image with `imgproc`'s drawing: boxes with label and score,
//! keypoints, class lists, and a legend for segmentations.

use crate::classification::Class;
use crate::detection::Detection;
use crate::error::Result;
use crate::landmarks::Landmarks;
use crate::pipeline::Outcome;
use crate::segmentation::{ClassShare, Segmentation};
use tensorcv_imgproc::draw::{self, palette, Color};
use tensorcv_imgproc::ImageViewMut;

/// Text scale for an image: the 8×8 font grows with the image so labels stay readable.
fn text_scale(img: &ImageViewMut<'_>) -> u32 {
    (img.width().max(img.height()) / 640).clamp(1, 4) as u32
}

/// How one class is called in labels: its label, else `class N`.
fn name(label: &Option<String>, index: usize) -> String {
    label.clone().unwrap_or_else(|| format!("class {index}"))
}

/// Draw an outcome on the image it came from: boxes and keypoints, the class list, or the
/// segmentation overlaid at `alpha` with its legend (`labels` name the classes). `segmentation`
/// is the whole image's, as [`Outcome::segmentation`] gives it (computed once by the caller,
/// who usually writes it out too). Regions of a two-stage run show their box labelled with the
/// region's top class and the detections found inside them.
pub fn draw_outcome(
    img: &mut ImageViewMut<'_>,
    outcome: &Outcome,
    segmentation: Option<&Segmentation>,
    labels: &[String],
    alpha: f32,
    connections: &[[usize; 2]],
) -> Result<()> {
    if let Some(seg) = segmentation {
        seg.overlay(img, alpha)?;
        draw_legend(img, &seg.fractions(labels));
    }
    match outcome {
        Outcome::Classes(classes) => draw_classes(img, classes),
        Outcome::Detections(found) => draw_detections(img, found),
        Outcome::Landmarks(found) => draw_landmarks(img, found, connections),
        Outcome::Segmentation(_) | Outcome::Outputs(_) => {}
        Outcome::Regions(regions) => {
            let mut boxes = Vec::new();
            let mut inner = Vec::new();
            for r in regions {
                let mut d = r.detection.clone();
                match &r.outcome {
                    Outcome::Classes(classes) => {
                        if let Some(top) = classes.first() {
                            d.label = top.label.clone().or(d.label);
                            d.score = top.score;
                        }
                    }
                    Outcome::Detections(found) => inner.extend(found.iter().cloned()),
                    Outcome::Landmarks(found) => {
                        draw_landmarks(img, found, connections);
                        continue;
                    }
                    _ => {}
                }
                boxes.push(d);
            }
            draw_detections(img, &boxes);
            draw_detections(img, &inner);
        }
    }
    Ok(())
}

/// Each detection's box (color by class), `label 0.97` above it, and its keypoints.
pub fn draw_detections(img: &mut ImageViewMut<'_>, detections: &[Detection]) {
    let classes = detections.iter().map(|d| d.class + 1).max().unwrap_or(1);
    let colors = palette(classes);
    let scale = text_scale(img);
    let thickness = scale + 1;
    for d in detections {
        let color = colors[d.class];
        let b = d.bbox.map(|v| v.round() as i32);
        draw::rectangle(img, b, color, thickness);
        let text = format!("{} {:.2}", name(&d.label, d.class), d.score);
        draw::label(img, b[0], b[1], &text, Color::BLACK, color, scale);
        for k in &d.keypoints {
            let at = (k[0].round() as i32, k[1].round() as i32);
            draw::point(img, at, thickness + 1, Color::WHITE);
            draw::point(img, at, thickness, color);
        }
    }
}

/// Each object's landmarks: the `connections` as lines (MediaPipe's connection lists), the
/// points as dots, sized for the object, and the two-way label (handedness) above it.
pub fn draw_landmarks(img: &mut ImageViewMut<'_>, found: &[Landmarks], connections: &[[usize; 2]]) {
    let scale = text_scale(img);
    for l in found {
        let b = l.bbox();
        let size = (b[2] - b[0]).max(b[3] - b[1]);
        // a 468-point mesh is drawn as its lines with one-pixel points; a 21-point hand with
        // dots sized for it
        let dense = l.points.len() > 100;
        let line = ((size / 150.0).round() as u32).clamp(1, 4);
        let at = |p: &[f32; 3]| (p[0].round() as i32, p[1].round() as i32);
        for &[a, b] in connections {
            if let (Some(p), Some(q)) = (l.points.get(a), l.points.get(b)) {
                draw::line(img, at(p), at(q), Color::WHITE, line);
            }
        }
        for p in &l.points {
            if dense {
                draw::line(img, at(p), at(p), Color::GREEN, 1);
            } else {
                let radius = ((size / 60.0).round() as u32).clamp(1, 8);
                draw::point(img, at(p), radius + 1, Color::WHITE);
                draw::point(img, at(p), radius, Color::RED);
            }
        }
        if let Some((text, p)) = &l.label {
            let text = format!("{text} {p:.2}");
            draw::label(
                img,
                b[0].round() as i32,
                b[1].round() as i32,
                &text,
                Color::BLACK,
                Color::YELLOW,
                scale,
            );
        }
    }
}

/// The top classes as lines of `label 0.91` in the top-left corner.
pub fn draw_classes(img: &mut ImageViewMut<'_>, classes: &[Class]) {
    let scale = text_scale(img);
    let line = draw::text_size("Ag", scale).1 as i32 + 4 * scale as i32;
    for (i, c) in classes.iter().enumerate() {
        let text = format!("{} {:.2}", name(&c.label, c.index), c.score);
        let bg = if i == 0 { Color::YELLOW } else { Color::WHITE };
        draw::label(
            img,
            0,
            (i as i32 + 1) * line,
            &text,
            Color::BLACK,
            bg,
            scale,
        );
    }
}

/// A legend of the segmentation's classes (color swatch, label, share of the image) in the
/// top-left corner; classes covering nothing are left out, and so is class 0 (background,
/// which overlays leave uncolored).
pub fn draw_legend(img: &mut ImageViewMut<'_>, shares: &[ClassShare]) {
    let colors = palette(shares.len().max(2));
    let scale = text_scale(img);
    let line = draw::text_size("Ag", scale).1 as i32 + 4 * scale as i32;
    let shown = shares.iter().filter(|s| s.index > 0 && s.fraction > 0.0);
    for (row, s) in shown.enumerate() {
        let text = format!("{} {:.1}%", name(&s.label, s.index), s.fraction * 100.0);
        draw::label(
            img,
            0,
            (row as i32 + 1) * line,
            &text,
            Color::BLACK,
            colors[s.index],
            scale,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcv_imgproc::{Image, PixelFormat};

    #[test]
    fn detections_draw_their_box_label_and_keypoints() {
        let mut img = Image::new(100, 80, PixelFormat::Rgb8).unwrap();
        let d = Detection {
            bbox: [20.0, 30.0, 60.0, 70.0],
            score: 0.97,
            class: 0,
            label: Some("face".into()),
            keypoints: vec![[40.0, 50.0]],
        };
        draw_detections(&mut img.view_mut(), &[d]);
        let color = palette(1)[0].to_pixel(PixelFormat::Rgb8);
        let px = |x: usize, y: usize| img.view().pixel(x, y).unwrap().to_vec();
        assert_eq!(px(20, 50), color[..3].to_vec(), "left edge");
        assert_eq!(px(60, 69), color[..3].to_vec(), "bottom-right corner");
        assert_eq!(px(40, 50), color[..3].to_vec(), "keypoint");
        assert_eq!(px(40, 60), vec![0, 0, 0], "inside stays");
        // the label sits above the box: its background color, somewhere in rows 10..30
        assert!((10..30).any(|y| px(25, y) == color[..3].to_vec()));
    }

    #[test]
    fn class_lines_do_not_cover_each_other() {
        let mut img = Image::new(200, 100, PixelFormat::Rgb8).unwrap();
        let class = |index, score| Class {
            index,
            label: None,
            score,
        };
        draw_classes(&mut img.view_mut(), &[class(0, 0.9), class(1, 0.1)]);
        let yellow = Color::YELLOW.to_pixel(PixelFormat::Rgb8);
        let white = Color::WHITE.to_pixel(PixelFormat::Rgb8);
        let line = draw::text_size("Ag", 1).1 as usize + 4;
        let rows: Vec<Vec<u8>> = (0..2 * line)
            .map(|y| img.view().pixel(0, y).unwrap().to_vec())
            .collect();
        assert!(rows.contains(&yellow[..3].to_vec()), "the top class's line");
        assert!(rows.contains(&white[..3].to_vec()), "the second line");
    }

    #[test]
    fn legends_skip_background_and_empty_classes() {
        let mut img = Image::new(200, 100, PixelFormat::Rgb8).unwrap();
        let shares = [
            ClassShare {
                index: 0,
                label: Some("background".into()),
                fraction: 0.5,
            },
            ClassShare {
                index: 1,
                label: Some("person".into()),
                fraction: 0.5,
            },
            ClassShare {
                index: 2,
                label: Some("dog".into()),
                fraction: 0.0,
            },
        ];
        draw_legend(&mut img.view_mut(), &shares);
        let person = palette(3)[1].to_pixel(PixelFormat::Rgb8);
        let line = draw::text_size("Ag", 1).1 as usize + 4;
        assert_eq!(&img.view().pixel(0, line - 2).unwrap()[..3], &person[..3]);
        // one line only
        assert_eq!(img.view().pixel(0, 2 * line - 2).unwrap(), &[0, 0, 0]);
    }
}
