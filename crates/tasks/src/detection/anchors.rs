//! SSD anchors as MediaPipe's `SsdAnchorsCalculator` generates them (the BlazeFace family,
//! MediaPipe's palm and pose detectors): one grid per stride, several anchors per cell.

use crate::error::{Error, Result};
use serde::Deserialize;

/// `[detection.anchors]` of the model card: the `SsdAnchorsCalculatorOptions` of the model's
/// MediaPipe graph, under shorter names.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnchorOptions {
    /// number of output layers (`num_layers`)
    pub num_layers: usize,
    /// one stride per layer, in input pixels (`strides`)
    #[serde(default)]
    pub strides: Vec<usize>,
    /// feature map heights per layer, instead of strides (`feature_map_height`)
    #[serde(default)]
    pub feature_map_height: Vec<usize>,
    /// feature map widths per layer (`feature_map_width`)
    #[serde(default)]
    pub feature_map_width: Vec<usize>,
    /// smallest anchor scale (`min_scale`)
    pub min_scale: f32,
    /// largest anchor scale (`max_scale`)
    pub max_scale: f32,
    /// anchor center within its cell, `[x, y]` (`anchor_offset_x/y`)
    #[serde(default = "half")]
    pub offset: [f32; 2],
    /// aspect ratios per cell (`aspect_ratios`)
    #[serde(default = "one")]
    pub aspect_ratios: Vec<f32>,
    /// an extra anchor per cell of this aspect ratio at the geometric mean of this layer's and
    /// the next layer's scale; 0 for none (`interpolated_scale_aspect_ratio`)
    #[serde(default = "one_f")]
    pub interpolated_scale_aspect_ratio: f32,
    /// every anchor is 1×1 and the model regresses sizes directly (`fixed_anchor_size`)
    #[serde(default)]
    pub fixed_anchor_size: bool,
    /// the first layer uses three predefined anchors (`reduce_boxes_in_lowest_layer`)
    #[serde(default)]
    pub reduce_boxes_in_lowest_layer: bool,
}

fn half() -> [f32; 2] {
    [0.5, 0.5]
}
fn one() -> Vec<f32> {
    vec![1.0]
}
fn one_f() -> f32 {
    1.0
}

/// One anchor, normalized to the model input (0..1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// center x
    pub x: f32,
    /// center y
    pub y: f32,
    /// width
    pub w: f32,
    /// height
    pub h: f32,
}

/// The scale of layer `i` of `n`, linear from `min` to `max` (computed in double precision,
/// as MediaPipe's C++ promotes it).
fn layer_scale(min: f32, max: f32, i: usize, n: usize) -> f32 {
    if n == 1 {
        (min + max) * 0.5
    } else {
        (min as f64 + (max - min) as f64 * i as f64 / (n as f64 - 1.0)) as f32
    }
}

impl AnchorOptions {
    /// The most anchors a card may make (MediaPipe's detectors have 896 to 2,304).
    pub const MAX_ANCHORS: usize = 1 << 20;
    /// The most layers, and aspect ratios per cell.
    pub const MAX_LAYERS: usize = 64;

    /// The anchors for a `width`×`height` model input, in the order the model's boxes come.
    pub fn generate(&self, width: usize, height: usize) -> Result<Vec<Anchor>> {
        let bad = |message: String| Error::Card {
            section: "detection.anchors",
            message,
        };
        let by_size = !self.feature_map_height.is_empty();
        if by_size {
            if self.feature_map_height.len() != self.num_layers
                || self.feature_map_width.len() != self.num_layers
            {
                return Err(bad(format!(
                    "feature_map_height and feature_map_width need {} values each (num_layers)",
                    self.num_layers
                )));
            }
        } else if self.strides.len() != self.num_layers {
            return Err(bad(format!(
                "strides has {} values, num_layers is {}",
                self.strides.len(),
                self.num_layers
            )));
        }
        if self.strides.contains(&0) || (width == 0 || height == 0) {
            return Err(bad("strides and the input size must be positive".into()));
        }
        if self
            .aspect_ratios
            .iter()
            .chain([&self.min_scale, &self.max_scale])
            .any(|&a| !(a.is_finite() && a > 0.0))
        {
            return Err(bad(
                "aspect_ratios, min_scale and max_scale must be positive numbers".into(),
            ));
        }
        if !(self.offset.iter().all(|v| v.is_finite())
            && self.interpolated_scale_aspect_ratio.is_finite())
        {
            return Err(bad(
                "offset and interpolated_scale_aspect_ratio must be finite".into(),
            ));
        }
        if self.num_layers > Self::MAX_LAYERS || self.aspect_ratios.len() > Self::MAX_LAYERS {
            return Err(bad(format!(
                "{} layers and {} aspect ratios: at most {} of each",
                self.num_layers,
                self.aspect_ratios.len(),
                Self::MAX_LAYERS
            )));
        }
        let n = self.strides.len();
        let mut anchors = Vec::new();
        let mut layer = 0;
        while layer < self.num_layers {
            // consecutive layers of the same stride share one grid, their anchors interleaved
            let mut ratios = Vec::new();
            let mut scales = Vec::new();
            let mut last = layer;
            while last < n && self.strides[last] == self.strides[layer] {
                let scale = layer_scale(self.min_scale, self.max_scale, last, n);
                if last == 0 && self.reduce_boxes_in_lowest_layer {
                    ratios.extend([1.0, 2.0, 0.5]);
                    scales.extend([0.1, scale, scale]);
                } else {
                    for &r in &self.aspect_ratios {
                        ratios.push(r);
                        scales.push(scale);
                    }
                    if self.interpolated_scale_aspect_ratio > 0.0 {
                        let next = if last == n - 1 {
                            1.0
                        } else {
                            layer_scale(self.min_scale, self.max_scale, last + 1, n)
                        };
                        scales.push((scale * next).sqrt());
                        ratios.push(self.interpolated_scale_aspect_ratio);
                    }
                }
                last += 1;
            }
            if by_size {
                last = last.max(layer + 1);
            }
            let (fh, fw) = if by_size {
                (
                    self.feature_map_height[layer],
                    self.feature_map_width[layer],
                )
            } else {
                let s = self.strides[layer];
                (height.div_ceil(s), width.div_ceil(s))
            };
            let cells = fh.checked_mul(fw).and_then(|c| c.checked_mul(ratios.len()));
            if cells.is_none_or(|c| anchors.len() + c > Self::MAX_ANCHORS) {
                return Err(bad(format!(
                    "more than {} anchors (layer {layer}: {fh}x{fw} cells)",
                    Self::MAX_ANCHORS
                )));
            }
            for y in 0..fh {
                for x in 0..fw {
                    for (&r, &s) in ratios.iter().zip(&scales) {
                        let (w, h) = if self.fixed_anchor_size {
                            (1.0, 1.0)
                        } else {
                            (s * r.sqrt(), s / r.sqrt())
                        };
                        anchors.push(Anchor {
                            x: (x as f32 + self.offset[0]) / fw as f32,
                            y: (y as f32 + self.offset[1]) / fh as f32,
                            w,
                            h,
                        });
                    }
                }
            }
            layer = last;
        }
        Ok(anchors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blazeface() -> AnchorOptions {
        AnchorOptions {
            num_layers: 4,
            strides: vec![8, 16, 16, 16],
            feature_map_height: vec![],
            feature_map_width: vec![],
            min_scale: 0.1484375,
            max_scale: 0.75,
            offset: [0.5, 0.5],
            aspect_ratios: vec![1.0],
            interpolated_scale_aspect_ratio: 1.0,
            fixed_anchor_size: true,
            reduce_boxes_in_lowest_layer: false,
        }
    }

    #[test]
    fn blazeface_short_range_has_896_anchors_in_model_order() {
        let a = blazeface().generate(128, 128).unwrap();
        // 16x16 cells x 2 anchors, then 8x8 cells x 6 (three layers of stride 16, two each)
        assert_eq!(a.len(), 16 * 16 * 2 + 8 * 8 * 6);
        assert_eq!(
            a[0],
            Anchor {
                x: 0.5 / 16.0,
                y: 0.5 / 16.0,
                w: 1.0,
                h: 1.0
            }
        );
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2].x, 1.5 / 16.0);
        assert_eq!(
            a[512],
            Anchor {
                x: 0.5 / 8.0,
                y: 0.5 / 8.0,
                w: 1.0,
                h: 1.0
            }
        );
        assert_eq!(a[517], a[512]);
        assert_eq!(a[518].x, 1.5 / 8.0);
        assert_eq!(
            a[895],
            Anchor {
                x: 7.5 / 8.0,
                y: 7.5 / 8.0,
                w: 1.0,
                h: 1.0
            }
        );
    }

    #[test]
    fn sized_anchors_follow_scales_and_ratios() {
        let mut o = blazeface();
        o.fixed_anchor_size = false;
        o.num_layers = 2;
        o.strides = vec![8, 16];
        o.aspect_ratios = vec![1.0, 2.0];
        let a = o.generate(32, 32).unwrap();
        // layer 0: scale 0.1484375; ratios 1, 2, then the interpolated one at
        // sqrt(0.1484375 * 0.75)
        assert_eq!(a.len(), 4 * 4 * 3 + 2 * 2 * 3);
        assert!((a[0].w - 0.1484375).abs() < 1e-7);
        assert!((a[1].w - 0.1484375 * 2f32.sqrt()).abs() < 1e-6);
        assert!((a[1].h - 0.1484375 / 2f32.sqrt()).abs() < 1e-6);
        assert!((a[2].w - (0.1484375f32 * 0.75).sqrt()).abs() < 1e-6);
        // the last layer interpolates towards 1
        assert!((a[50].w - 0.75f32.sqrt()).abs() < 1e-6, "{:?}", a[50]);
        o.strides = vec![8];
        let e = o.generate(32, 32).unwrap_err().to_string();
        assert!(e.contains("strides has 1 values, num_layers is 2"), "{e}");
    }
}
