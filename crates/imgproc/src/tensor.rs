//! From images to model input tensors.
//!
//! A [`TensorSpec`] says what a model wants: size, channel order, layout, element type, value
//! range, per-channel mean/std, quantization, interpolation and fit. A [`Preprocessor`] turns
//! any image into that tensor in **one pass**: channel reordering (BGR→RGB, dropping alpha,
//! gray→RGB) is folded into the resize's output, and normalization and layout into the write,
//! so a 1080p BGR frame becomes a `1×224×224×3` tensor without ever converting the full frame.
//! Conversions that need arithmetic on the source (color→gray) are done first, into a reused
//! buffer, exactly as the step-by-step path does; the numbers are the same either way.
//!
//! Normalization follows the float32 arithmetic of the NumPy code it replaces, operation by
//! operation — `x / 255`, `x / 127.5 - 1`, `(x / 255 - mean) / std`, `x - mean` — through a
//! 256-entry table per channel, so results are bit-identical to NumPy's.

use crate::color;
use crate::error::{Error, Result};
use crate::geometry::{placement, Fit, Placement, Transform};
use crate::image::{Image, ImageView, PixelFormat, Rect};
use crate::names::named_enum;
use crate::resize::{Interpolation, Resizer};
use std::fmt;

named_enum! {
    /// How the image is resampled to the tensor's size.
    #[derive(Default)]
    pub enum Resample, "resample" {
        /// `cv2.resize` of the fitted region (every interpolation), then padding
        #[default]
        Resize = "resize",
        /// one affine warp of the whole image onto the tensor, as MediaPipe's
        /// `ImageToTensorCalculator` does (linear or nearest; the image's edges map to the
        /// tensor's, padding is `pad` outside the image)
        Warp = "warp" | "mediapipe",
    }
}

named_enum! {
    /// Memory layout of a 4-D image tensor.
    pub enum Layout, "layout" {
        /// batch, height, width, channels (TensorFlow's default)
        Nhwc = "nhwc" | "channels_last",
        /// batch, channels, height, width (PyTorch, many ONNX exports)
        Nchw = "nchw" | "channels_first",
    }
}

named_enum! {
    /// Element type of a tensor.
    pub enum DType, "dtype" {
        /// 32-bit float
        F32 = "f32" | "float32" | "float",
        /// 8-bit unsigned (quantized models, or raw pixels)
        U8 = "u8" | "uint8",
        /// 8-bit signed (quantized models)
        I8 = "i8" | "int8",
    }
}

named_enum! {
    /// The value range pixels are mapped to before mean/std.
    pub enum Range, "range" {
        /// `x / 255` → [0, 1]
        Unit = "0,1" | "[0,1]" | "unit",
        /// `x / 127.5 - 1` → [-1, 1]
        Symmetric = "-1,1" | "[-1,1]" | "symmetric",
        /// `x` → [0, 255]
        Raw = "0,255" | "[0,255]" | "raw",
    }
}

named_enum! {
    /// The channels a model wants, in order.
    pub enum ChannelOrder, "channel order" {
        /// red, green, blue
        Rgb = "rgb",
        /// blue, green, red (Caffe-era and OpenCV-trained models)
        Bgr = "bgr",
        /// one luma channel
        Gray = "gray" | "grey" | "grayscale",
    }
}

impl ChannelOrder {
    /// Channels in the tensor.
    pub const fn channels(self) -> usize {
        match self {
            ChannelOrder::Gray => 1,
            _ => 3,
        }
    }
    /// The pixel format of an image in this order.
    pub const fn pixel_format(self) -> PixelFormat {
        match self {
            ChannelOrder::Rgb => PixelFormat::Rgb8,
            ChannelOrder::Bgr => PixelFormat::Bgr8,
            ChannelOrder::Gray => PixelFormat::Gray8,
        }
    }
}

/// Affine quantization of an integer tensor: `real = (q - zero_point) * scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantization {
    /// size of one integer step
    pub scale: f32,
    /// the integer that means 0.0
    pub zero_point: i32,
}

/// Everything needed to turn an image into a model's input tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// tensor width in pixels
    pub width: usize,
    /// tensor height in pixels
    pub height: usize,
    /// channels and their order
    pub channels: ChannelOrder,
    /// NHWC or NCHW
    pub layout: Layout,
    /// element type
    pub dtype: DType,
    /// value range, applied first
    pub range: Range,
    /// subtracted per channel (tensor channel order) after the range mapping
    pub mean: [f32; 3],
    /// divided per channel after subtracting the mean
    pub std: [f32; 3],
    /// integer quantization of the normalized values (`u8`/`i8` only); without it, integer
    /// tensors hold the normalized values rounded and saturated
    pub quantization: Option<Quantization>,
    /// resize interpolation
    pub interp: Interpolation,
    /// how other aspect ratios are fitted
    pub fit: Fit,
    /// letterbox padding, as a pixel value (normalized like pixels)
    pub pad_value: u8,
    /// resize, or warp as MediaPipe does
    pub resample: Resample,
}

impl TensorSpec {
    /// A `width`×`height` RGB, NHWC, `f32`, [0, 1] spec with linear interpolation, stretched.
    pub fn new(width: usize, height: usize) -> Self {
        TensorSpec {
            width,
            height,
            channels: ChannelOrder::Rgb,
            layout: Layout::Nhwc,
            dtype: DType::F32,
            range: Range::Unit,
            mean: [0.0; 3],
            std: [1.0; 3],
            quantization: None,
            interp: Interpolation::Linear,
            fit: Fit::Stretch,
            pad_value: 0,
            resample: Resample::Resize,
        }
    }
    /// Set the resampling.
    pub fn with_resample(mut self, r: Resample) -> Self {
        self.resample = r;
        self
    }
    /// Set the channel order.
    pub fn with_channels(mut self, c: ChannelOrder) -> Self {
        self.channels = c;
        self
    }
    /// Set the layout.
    pub fn with_layout(mut self, l: Layout) -> Self {
        self.layout = l;
        self
    }
    /// Set the element type.
    pub fn with_dtype(mut self, d: DType) -> Self {
        self.dtype = d;
        self
    }
    /// Set the value range.
    pub fn with_range(mut self, r: Range) -> Self {
        self.range = r;
        self
    }
    /// Set per-channel mean and standard deviation.
    pub fn with_mean_std(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }
    /// Set quantization parameters.
    pub fn with_quantization(mut self, q: Quantization) -> Self {
        self.quantization = Some(q);
        self
    }
    /// Set the interpolation.
    pub fn with_interp(mut self, i: Interpolation) -> Self {
        self.interp = i;
        self
    }
    /// Set the fit and the letterbox padding value.
    pub fn with_fit(mut self, fit: Fit, pad_value: u8) -> Self {
        self.fit = fit;
        self.pad_value = pad_value;
        self
    }

    /// Check the values: positive size, finite mean, non-zero finite std, sensible
    /// quantization.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::Invalid(format!(
                "tensor size {}x{} must be positive",
                self.width, self.height
            )));
        }
        if let Some(i) = (0..3).find(|&i| !self.mean[i].is_finite()) {
            return Err(Error::Invalid(format!(
                "mean[{i}] = {} is not finite",
                self.mean[i]
            )));
        }
        if let Some(i) = (0..3).find(|&i| !self.std[i].is_finite() || self.std[i] == 0.0) {
            return Err(Error::Invalid(format!(
                "std[{i}] = {} must be finite and non-zero",
                self.std[i]
            )));
        }
        if self.resample == Resample::Warp
            && !matches!(self.interp, Interpolation::Linear | Interpolation::Nearest)
        {
            return Err(Error::Invalid(format!(
                "resample = warp takes linear or nearest interpolation, not {}",
                self.interp
            )));
        }
        if let Some(q) = self.quantization {
            if self.dtype == DType::F32 {
                return Err(Error::Invalid(
                    "quantization needs a u8 or i8 tensor".into(),
                ));
            }
            if !(q.scale.is_finite() && q.scale > 0.0) {
                return Err(Error::Invalid(format!(
                    "quantization scale {} must be positive",
                    q.scale
                )));
            }
        }
        Ok(())
    }

    /// The shape of a batch of `n` in this spec's layout.
    pub fn shape(&self, n: usize) -> [usize; 4] {
        let c = self.channels.channels();
        match self.layout {
            Layout::Nhwc => [n, self.height, self.width, c],
            Layout::Nchw => [n, c, self.height, self.width],
        }
    }

    /// A zeroed tensor for a batch of `n`.
    pub fn alloc(&self, n: usize) -> Tensor {
        let shape = self.shape(n);
        let len = shape.iter().product();
        let data = match self.dtype {
            DType::F32 => TensorData::F32(vec![0.0; len]),
            DType::U8 => TensorData::U8(vec![0; len]),
            DType::I8 => TensorData::I8(vec![0; len]),
        };
        Tensor {
            shape,
            layout: self.layout,
            data,
        }
    }

    /// The normalized value of pixel value `x` in tensor channel `c`, in `f32` (before
    /// quantization). Follows NumPy's float32 operation order.
    pub fn normalize(&self, x: u8, c: usize) -> f32 {
        let v = x as f32;
        let v = match self.range {
            Range::Unit => v / 255.0,
            Range::Symmetric => v / 127.5 - 1.0,
            Range::Raw => v,
        };
        let c = c.min(2);
        (v - self.mean[c]) / self.std[c]
    }
}

/// Tensor elements.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// 32-bit floats
    F32(Vec<f32>),
    /// 8-bit unsigned
    U8(Vec<u8>),
    /// 8-bit signed
    I8(Vec<i8>),
}

/// A dense 4-D image tensor (batch first).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: [usize; 4],
    layout: Layout,
    data: TensorData,
}

impl Tensor {
    /// `[n, h, w, c]` for NHWC, `[n, c, h, w]` for NCHW.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }
    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::U8(_) => DType::U8,
            TensorData::I8(_) => DType::I8,
        }
    }
    /// Batch size.
    pub fn batch(&self) -> usize {
        self.shape[0]
    }
    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }
    /// The elements, to fill in place (a batch assembled from tensors made elsewhere); their
    /// count and type stay the tensor's.
    pub fn data_mut(&mut self) -> &mut [u8] {
        match &mut self.data {
            TensorData::F32(v) => bytemuck::cast_slice_mut(v),
            TensorData::U8(v) => v,
            TensorData::I8(v) => bytemuck::cast_slice_mut(v),
        }
    }
    /// The elements if they are `f32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }
    /// The elements if they are `u8`.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            TensorData::U8(v) => Some(v),
            _ => None,
        }
    }
    /// The elements if they are `i8`.
    pub fn as_i8(&self) -> Option<&[i8]> {
        match &self.data {
            TensorData::I8(v) => Some(v),
            _ => None,
        }
    }
    /// Copy image 0 of the batch into every other slot (one preprocessing pass for a batch
    /// of the same image).
    pub fn repeat_first(&mut self) {
        fn rep<T: Copy>(v: &mut [T], n: usize) {
            let per = v.len() / n.max(1);
            let (first, rest) = v.split_at_mut(per);
            for slot in rest.chunks_exact_mut(per.max(1)) {
                slot.copy_from_slice(first);
            }
        }
        let n = self.shape[0];
        match &mut self.data {
            TensorData::F32(v) => rep(v, n),
            TensorData::U8(v) => rep(v, n),
            TensorData::I8(v) => rep(v, n),
        }
    }
    fn hwc(&self) -> (usize, usize, usize) {
        match self.layout {
            Layout::Nhwc => (self.shape[1], self.shape[2], self.shape[3]),
            Layout::Nchw => (self.shape[2], self.shape[3], self.shape[1]),
        }
    }
}

/// Per-channel lookup tables from pixel value to tensor element.
#[derive(Clone)]
enum Lut {
    F32(Vec<[f32; 256]>),
    U8(Vec<[u8; 256]>),
    I8(Vec<[i8; 256]>),
}

impl Lut {
    fn new(spec: &TensorSpec) -> Lut {
        let cn = spec.channels.channels();
        let real = |c: usize| -> [f32; 256] { std::array::from_fn(|x| spec.normalize(x as u8, c)) };
        let quant = |v: f32| -> f32 {
            match spec.quantization {
                Some(q) => (v / q.scale).round_ties_even() + q.zero_point as f32,
                None => v.round_ties_even(),
            }
        };
        match spec.dtype {
            DType::F32 => Lut::F32((0..cn).map(real).collect()),
            DType::U8 => Lut::U8(
                (0..cn)
                    .map(|c| real(c).map(|v| quant(v).clamp(0.0, 255.0) as u8))
                    .collect(),
            ),
            DType::I8 => Lut::I8(
                (0..cn)
                    .map(|c| real(c).map(|v| quant(v).clamp(-128.0, 127.0) as i8))
                    .collect(),
            ),
        }
    }
}

/// Where one image of a batch goes, and how pixel bytes become elements.
struct Writer<'a> {
    lut: &'a Lut,
    /// tensor channel `c` takes byte `perm[c]` of a working pixel
    perm: [usize; 3],
    /// bytes per working pixel
    cn: usize,
}

impl Writer<'_> {
    /// Write one row of working pixels at (`x0`, `y`) of image `n`.
    fn row(&self, t: &mut Tensor, n: usize, y: usize, x0: usize, row: &[u8]) {
        let (h, w, c) = t.hwc();
        let layout = t.layout;
        macro_rules! put {
            ($data:expr, $tabs:expr) => {{
                match layout {
                    Layout::Nhwc => {
                        let start = ((n * h + y) * w + x0) * c;
                        let out = &mut $data[start..start + (row.len() / self.cn) * c];
                        if c == 3 {
                            let (t0, t1, t2) = (&$tabs[0], &$tabs[1], &$tabs[2]);
                            let [p0, p1, p2] = self.perm;
                            for (o, px) in out.chunks_exact_mut(3).zip(row.chunks_exact(self.cn)) {
                                o[0] = t0[px[p0] as usize];
                                o[1] = t1[px[p1] as usize];
                                o[2] = t2[px[p2] as usize];
                            }
                        } else {
                            let (t0, p0) = (&$tabs[0], self.perm[0]);
                            for (o, px) in out.iter_mut().zip(row.chunks_exact(self.cn)) {
                                *o = t0[px[p0] as usize];
                            }
                        }
                    }
                    Layout::Nchw => {
                        let npx = row.len() / self.cn;
                        for ch in 0..c {
                            let start = ((n * c + ch) * h + y) * w + x0;
                            let tab = &$tabs[ch];
                            let p = self.perm[ch];
                            let out = &mut $data[start..start + npx];
                            for (o, px) in out.iter_mut().zip(row.chunks_exact(self.cn)) {
                                *o = tab[px[p] as usize];
                            }
                        }
                    }
                }
            }};
        }
        match (&mut t.data, self.lut) {
            (TensorData::F32(d), Lut::F32(tabs)) => put!(d, tabs),
            (TensorData::U8(d), Lut::U8(tabs)) => put!(d, tabs),
            (TensorData::I8(d), Lut::I8(tabs)) => put!(d, tabs),
            _ => debug_assert!(false, "tensor and table types are checked before writing"),
        }
    }

    /// Fill everything of image `n` outside `keep` with pixel value `v`.
    fn pad(&self, t: &mut Tensor, n: usize, keep: Rect, v: u8) {
        let (h, w, _) = t.hwc();
        // written in chunks from a stack buffer, so padding allocates nothing
        const CHUNK: usize = 256;
        let fill = [v; CHUNK * 4];
        let span = |t: &mut Tensor, y: usize, from: usize, to: usize| {
            let mut x = from;
            while x < to {
                let len = (to - x).min(CHUNK);
                self.row(t, n, y, x, &fill[..len * self.cn]);
                x += len;
            }
        };
        for y in 0..h {
            if y < keep.y || y >= keep.y + keep.height {
                span(t, y, 0, w);
            } else {
                span(t, y, 0, keep.x);
                span(t, y, keep.x + keep.width, w);
            }
        }
    }
}

/// Turns images into tensors of one [`TensorSpec`], reusing its tables and buffers from call
/// to call (nothing is allocated per frame once sizes are stable).
pub struct Preprocessor {
    spec: TensorSpec,
    lut: Lut,
    resizer: Resizer,
    scratch: Image,
    warped: Image,
}

impl fmt::Debug for Preprocessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Preprocessor")
            .field("spec", &self.spec)
            .finish()
    }
}

impl Preprocessor {
    /// A preprocessor for `spec`. Panics only on a spec that fails [`TensorSpec::validate`];
    /// use [`Preprocessor::try_new`] for specs read from user input.
    pub fn new(spec: TensorSpec) -> Self {
        match Self::try_new(spec) {
            Ok(p) => p,
            Err(e) => panic!("invalid tensor spec: {e}"),
        }
    }

    /// A preprocessor for `spec`, checking it first.
    pub fn try_new(spec: TensorSpec) -> Result<Self> {
        spec.validate()?;
        Ok(Preprocessor {
            lut: Lut::new(&spec),
            spec,
            resizer: Resizer::new(),
            scratch: Image::new(0, 0, PixelFormat::Gray8)?,
            warped: Image::new(0, 0, PixelFormat::Gray8)?,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &TensorSpec {
        &self.spec
    }

    fn check_tensor(&self, tensor: &Tensor, index: usize) -> Result<()> {
        let want = self.spec.shape(tensor.batch());
        if tensor.shape() != want
            || tensor.dtype() != self.spec.dtype
            || tensor.layout() != self.spec.layout
        {
            return Err(Error::Invalid(format!(
                "tensor is {:?} {} {}, the spec makes {:?} {} {}",
                tensor.shape(),
                tensor.dtype(),
                tensor.layout(),
                want,
                self.spec.dtype,
                self.spec.layout
            )));
        }
        if index >= tensor.batch() {
            return Err(Error::Invalid(format!(
                "batch index {index} is outside a batch of {}",
                tensor.batch()
            )));
        }
        Ok(())
    }

    /// Preprocess `src` (any pixel format) into image `index` of `tensor`, in one pass.
    /// Returns the transform from source pixels to tensor pixels (for mapping results back).
    pub fn run(
        &mut self,
        src: &ImageView<'_>,
        tensor: &mut Tensor,
        index: usize,
    ) -> Result<Transform> {
        self.check_tensor(tensor, index)?;
        if self.spec.resample == Resample::Warp {
            return self.run_warp(src, tensor, index);
        }
        let spec = &self.spec;
        let p: Placement = placement(src.width(), src.height(), spec.width, spec.height, spec.fit)?;
        let region = src.sub_view(p.source)?;
        let want = spec.channels.pixel_format();
        // Reorders commute with resizing: resize the source as it is and pick channels while
        // writing. Gray output from color needs arithmetic first, as cv2.cvtColor would do.
        let (work, perm) = if want != PixelFormat::Gray8 || src.format() == PixelFormat::Gray8 {
            (region, pick(src.format(), want))
        } else {
            self.scratch
                .reshape(region.width(), region.height(), want)?;
            color::convert(&region, &mut self.scratch.view_mut())?;
            (self.scratch.view(), [0, 0, 0])
        };
        let writer = Writer {
            lut: &self.lut,
            perm,
            cn: work.channels(),
        };
        let t = p.target;
        if t.width == work.width() && t.height == work.height() {
            for (y, row) in work.rows().enumerate() {
                writer.row(tensor, index, t.y + y, t.x, row);
            }
        } else {
            self.resizer
                .resize_rows(&work, t.width, t.height, spec.interp, |y, row| {
                    writer.row(tensor, index, t.y + y, t.x, row)
                })?;
        }
        if t != Rect::new(0, 0, spec.width, spec.height) {
            writer.pad(tensor, index, t, spec.pad_value);
        }
        Ok(p.transform)
    }

    /// [`Resample::Warp`]: the whole image warped onto the tensor by the fit's scale, centered
    /// (MediaPipe's `ImageToTensorCalculator` with `keep_aspect_ratio` for a letterbox).
    fn run_warp(
        &mut self,
        src: &ImageView<'_>,
        tensor: &mut Tensor,
        index: usize,
    ) -> Result<Transform> {
        let spec = &self.spec;
        // the same checks (an empty image) as the resize path
        placement(src.width(), src.height(), spec.width, spec.height, spec.fit)?;
        let (w, h) = (src.width() as f64, src.height() as f64);
        let (tw, th) = (spec.width as f64, spec.height as f64);
        let (sx, sy) = match spec.fit {
            Fit::Stretch => (tw / w, th / h),
            Fit::Letterbox => {
                let s = (tw / w).min(th / h);
                (s, s)
            }
            Fit::Crop => {
                let s = (tw / w).max(th / h);
                (s, s)
            }
        };
        let transform = Transform {
            scale_x: sx,
            scale_y: sy,
            offset_x: (tw - w * sx) / 2.0,
            offset_y: (th - h * sy) / 2.0,
        };
        let want = spec.channels.pixel_format();
        let work = if want == PixelFormat::Gray8 && src.format() != PixelFormat::Gray8 {
            self.scratch.reshape(src.width(), src.height(), want)?;
            color::convert(src, &mut self.scratch.view_mut())?;
            self.scratch.view()
        } else {
            *src
        };
        self.warped
            .reshape(spec.width, spec.height, work.format())?;
        // MediaPipe applies the map to pixel centres as it is
        let m = crate::warp::Affine([sx, 0.0, transform.offset_x, 0.0, sy, transform.offset_y]);
        crate::warp::warp_affine(
            &work,
            &mut self.warped.view_mut(),
            &m,
            spec.interp,
            crate::filter::Border::Constant,
            &[spec.pad_value; 4],
        )?;
        let writer = Writer {
            lut: &self.lut,
            perm: pick(work.format(), want),
            cn: work.channels(),
        };
        for (y, row) in self.warped.view().rows().enumerate() {
            writer.row(tensor, index, y, 0, row);
        }
        Ok(transform)
    }

    /// Preprocess several images into one new batch tensor.
    pub fn run_batch(&mut self, images: &[ImageView<'_>]) -> Result<(Tensor, Vec<Transform>)> {
        let mut tensor = self.spec.alloc(images.len());
        let tfs = images
            .iter()
            .enumerate()
            .map(|(i, img)| self.run(img, &mut tensor, i))
            .collect::<Result<Vec<_>>>()?;
        Ok((tensor, tfs))
    }
}

/// For each tensor channel, the byte of a `from` pixel that holds it.
fn pick(from: PixelFormat, to: PixelFormat) -> [usize; 3] {
    let s = from.rgba_index();
    match to {
        PixelFormat::Gray8 => [0, 0, 0],
        _ => {
            let d = to.rgba_index();
            let mut perm = [0; 3];
            for logical in 0..3 {
                if let Some(di) = d[logical] {
                    perm[di] = s[logical].unwrap_or(0);
                }
            }
            perm
        }
    }
}

/// Write an image that already has the spec's size and channel order into image `index` of
/// `tensor`, normalizing and laying it out (the last step of the unfused path:
/// `astype(float32)`, scaling, `transpose`).
pub fn write_image(
    spec: &TensorSpec,
    img: &ImageView<'_>,
    tensor: &mut Tensor,
    index: usize,
) -> Result<()> {
    let want = spec.channels.pixel_format();
    if img.format() != want {
        return Err(Error::FormatMismatch {
            what: "write_image",
            expected: want.to_string(),
            found: img.format(),
        });
    }
    crate::image::check_same_size(
        "write_image",
        spec.width,
        spec.height,
        img.width(),
        img.height(),
    )?;
    let pre = Preprocessor::try_new(TensorSpec {
        fit: Fit::Stretch,
        ..spec.clone()
    })?;
    pre.check_tensor(tensor, index)?;
    let writer = Writer {
        lut: &pre.lut,
        perm: pick(want, want),
        cn: want.channels(),
    };
    for (y, row) in img.rows().enumerate() {
        writer.row(tensor, index, y, 0, row);
    }
    Ok(())
}

/// One image to a new batch-of-one tensor.
pub fn to_tensor(src: &ImageView<'_>, spec: &TensorSpec) -> Result<(Tensor, Transform)> {
    let mut pre = Preprocessor::try_new(spec.clone())?;
    let mut tensor = spec.alloc(1);
    let tf = pre.run(src, &mut tensor, 0)?;
    Ok((tensor, tf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("NCHW".parse::<Layout>().unwrap(), Layout::Nchw);
        assert_eq!("[-1, 1]".parse::<Range>().unwrap(), Range::Symmetric);
        assert_eq!("uint8".parse::<DType>().unwrap(), DType::U8);
        let e = "hsv".parse::<ChannelOrder>().unwrap_err().to_string();
        assert!(e.contains("'hsv'") && e.contains("rgb, bgr, gray"), "{e}");
    }

    #[test]
    fn quantized_values_follow_scale_and_zero_point() {
        let px = Image::from_vec(vec![0, 128, 255], 1, 1, PixelFormat::Rgb8).unwrap();
        // a typical int8 TFLite input: [-1, 1] with scale 1/128, zero point 0
        let spec = TensorSpec::new(1, 1)
            .with_dtype(DType::I8)
            .with_range(Range::Symmetric)
            .with_quantization(Quantization {
                scale: 1.0 / 128.0,
                zero_point: 0,
            });
        let (t, _) = to_tensor(&px.view(), &spec).unwrap();
        assert_eq!(t.as_i8().unwrap(), &[-128, 1, 127]); // 128 -> 0.0039 -> 0.502 steps
                                                         // raw u8 pixels pass through unchanged
        let spec = TensorSpec::new(1, 1)
            .with_dtype(DType::U8)
            .with_range(Range::Raw);
        let (t, _) = to_tensor(&px.view(), &spec).unwrap();
        assert_eq!(t.as_u8().unwrap(), &[0, 128, 255]);
        // uint8 with zero point 128 and scale 1/127.5 on [-1, 1]
        let spec = TensorSpec::new(1, 1)
            .with_dtype(DType::U8)
            .with_range(Range::Symmetric)
            .with_quantization(Quantization {
                scale: 1.0 / 127.5,
                zero_point: 128,
            });
        let (t, _) = to_tensor(&px.view(), &spec).unwrap();
        assert_eq!(t.as_u8().unwrap(), &[1, 129, 255]); // 1/127.5 is not exact in f32
    }

    #[test]
    fn repeat_first_fills_every_slot() {
        let px = Image::from_vec(vec![1, 2, 3, 4, 5, 6], 2, 1, PixelFormat::Rgb8).unwrap();
        let spec = TensorSpec::new(2, 1)
            .with_dtype(DType::U8)
            .with_range(Range::Raw);
        let mut pre = Preprocessor::new(spec.clone());
        let mut t = spec.alloc(3);
        pre.run(&px.view(), &mut t, 0).unwrap();
        assert_eq!(&t.as_u8().unwrap()[6..], &[0; 12]);
        t.repeat_first();
        assert_eq!(t.as_u8().unwrap(), [1, 2, 3, 4, 5, 6].repeat(3));
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut spec = TensorSpec::new(4, 4);
        spec.std[1] = 0.0;
        assert!(Preprocessor::try_new(spec)
            .unwrap_err()
            .to_string()
            .contains("std[1]"));
        let spec = TensorSpec::new(4, 4).with_quantization(Quantization {
            scale: 0.1,
            zero_point: 0,
        });
        assert!(Preprocessor::try_new(spec).is_err());
        let mut pre = Preprocessor::new(TensorSpec::new(4, 4));
        let img = Image::new(8, 8, PixelFormat::Rgb8).unwrap();
        let mut wrong = TensorSpec::new(5, 4).alloc(1);
        assert!(pre.run(&img.view(), &mut wrong, 0).is_err());
        let mut t = pre.spec().alloc(2);
        assert!(pre.run(&img.view(), &mut t, 2).is_err());
    }

    #[test]
    fn letterbox_pads_with_the_normalized_pad_value() {
        let img = Image::from_vec(vec![255; 4 * 2 * 3], 4, 2, PixelFormat::Rgb8).unwrap();
        let spec = TensorSpec::new(4, 4)
            .with_layout(Layout::Nchw)
            .with_fit(Fit::Letterbox, 0);
        let (t, tf) = to_tensor(&img.view(), &spec).unwrap();
        let d = t.as_f32().unwrap();
        // channel 0: rows 0 and 3 padding (0.0), rows 1 and 2 image (1.0)
        assert_eq!(
            &d[..16],
            &[0., 0., 0., 0., 1., 1., 1., 1., 1., 1., 1., 1., 0., 0., 0., 0.]
        );
        assert_eq!(tf.to_source(0.0, 1.0), (0.0, 0.0));
    }
}
