//! tensorcv's own kernels for the operators where tract loses most time on mobile vision
//! models, put into tract's graph when a model is loaded (tract's ops are trait objects and its
//! graphs can be patched, so this needs no fork).
//!
//! Today: [`depthwise::DepthwiseConv`], the workhorse of MobileNet, EfficientNet-Lite,
//! BlazeFace and the selfie segmenter, with the bias, per-channel scale/shift and a following
//! ReLU / ReLU6 / clip folded in. [`LoadOptions::tract_kernels`](crate::LoadOptions) turns it
//! off, to compare with tract's own op.

pub mod depthwise;
mod simd;

pub use depthwise::{accelerate, DepthwiseConv, Geometry};
pub use simd::Level;
