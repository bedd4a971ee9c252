//! Cameras. Devices are reached through `nokhwa`'s V4L2 backend when the crate is built with
//! the `camera` feature (its bindings need libclang at build time, so the default build goes
//! without). What does not need a device lives here for every build and is tested: choosing a
//! mode from what a camera offers ([`choose_mode`]) and turning captured buffers (YUYV, NV12,
//! MJPEG) into frames with `tensorcv-imgproc` ([`convert`]) — not with nokhwa's decoders, which
//! pull in C.

use crate::error::{Error, Result};
use crate::{jpeg, Source};
use std::str::FromStr;
use tensorcv_imgproc::color::yuv::{self, YuvFormat, YuvImage};
use tensorcv_imgproc::io::{imdecode, DecodeOptions};
use tensorcv_imgproc::{Image, PixelFormat};

/// The buffer formats tensorcv converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CameraFormat {
    /// packed 4:2:2
    Yuyv,
    /// 4:2:0, interleaved chroma
    Nv12,
    /// one JPEG per frame
    Mjpeg,
}

impl FromStr for CameraFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "yuyv" | "yuy2" | "yuyv422" => Ok(CameraFormat::Yuyv),
            "nv12" => Ok(CameraFormat::Nv12),
            "mjpeg" | "mjpg" => Ok(CameraFormat::Mjpeg),
            _ => Err(format!("unknown camera format '{s}' (yuyv, nv12, mjpeg)")),
        }
    }
}

/// One mode a camera offers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraMode {
    /// frame width
    pub width: usize,
    /// frame height
    pub height: usize,
    /// frames per second
    pub fps: f64,
    /// buffer format
    pub format: CameraFormat,
}

/// What the user asked for (`--camera-size`, `--camera-fps`, `--camera-format`); anything
/// left `None` is up to [`choose_mode`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CameraRequest {
    /// wanted width and height
    pub size: Option<(usize, usize)>,
    /// wanted frame rate
    pub fps: Option<f64>,
    /// wanted format
    pub format: Option<CameraFormat>,
}

/// The mode to open: among the modes of the requested format (any, if none was asked), the one
/// closest to the requested size (by pixel count, then by aspect) and rate; with no size asked,
/// the largest up to 1280×720, since bigger frames only cost decoding time for models that see
/// a few hundred pixels. Ties prefer raw formats (no JPEG decoding) over MJPEG. `None` when the
/// camera offers nothing of the requested format.
pub fn choose_mode(modes: &[CameraMode], request: &CameraRequest) -> Option<CameraMode> {
    let wanted_px = request
        .size
        .map(|(w, h)| (w * h) as f64)
        .unwrap_or(1280.0 * 720.0);
    let score = |m: &CameraMode| {
        let px = (m.width * m.height) as f64;
        let size_cost = if request.size.is_some() {
            (px / wanted_px).ln().abs()
        } else if px <= wanted_px {
            (wanted_px / px).ln()
        } else {
            // over the cap: worse than any mode under it
            10.0 + (px / wanted_px).ln()
        };
        let aspect_cost = request
            .size
            .map(|(w, h)| {
                ((m.width as f64 / m.height as f64) / (w as f64 / h as f64))
                    .ln()
                    .abs()
            })
            .unwrap_or(0.0);
        let fps_cost = match request.fps {
            Some(f) => (m.fps / f).ln().abs(),
            None => -m.fps.ln() * 0.01,
        };
        let format_cost = if m.format == CameraFormat::Mjpeg {
            0.001
        } else {
            0.0
        };
        size_cost * 10.0 + aspect_cost * 5.0 + fps_cost + format_cost
    };
    modes
        .iter()
        .filter(|m| request.format.is_none_or(|f| f == m.format))
        .min_by(|a, b| score(a).total_cmp(&score(b)))
        .copied()
}

/// A captured buffer as a BGR frame.
pub fn convert(buffer: &[u8], mode: &CameraMode) -> Result<Image> {
    let (w, h) = (mode.width, mode.height);
    Ok(match mode.format {
        CameraFormat::Yuyv => yuv::to_image(
            &YuvImage::new(buffer, w, h, YuvFormat::Yuyv)?,
            PixelFormat::Bgr8,
        )?,
        CameraFormat::Nv12 => yuv::to_image(
            &YuvImage::new(buffer, w, h, YuvFormat::Nv12)?,
            PixelFormat::Bgr8,
        )?,
        CameraFormat::Mjpeg => {
            let image = imdecode(
                &jpeg::with_huffman_tables(buffer),
                &DecodeOptions::default(),
            )?;
            if (image.width(), image.height()) != (w, h) {
                return Err(Error::Camera {
                    device: String::new(),
                    message: format!(
                        "a {}x{} JPEG in a {w}x{h} stream",
                        image.width(),
                        image.height()
                    ),
                });
            }
            image
        }
    })
}

/// A camera's description for `tensorcv cameras`.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraInfo {
    /// index, as in `camera:N`
    pub index: usize,
    /// the device's name
    pub name: String,
    /// the device path or description
    pub path: String,
    /// the modes tensorcv can convert
    pub modes: Vec<CameraMode>,
}

/// The cameras present, with their modes.
pub fn list() -> Result<Vec<CameraInfo>> {
    #[cfg(feature = "camera")]
    {
        device::list()
    }
    #[cfg(not(feature = "camera"))]
    {
        Err(not_built("list"))
    }
}

#[cfg(not(feature = "camera"))]
fn not_built(device: &str) -> Error {
    Error::Camera {
        device: device.to_string(),
        message: "this tensorcv was built without camera support (build with `--features \
                  camera`; it needs libclang)"
            .into(),
    }
}

/// Open `camera:<device>` (an index or a `/dev/videoN` path).
pub fn open(device: &str, request: &CameraRequest) -> Result<Box<dyn Source>> {
    #[cfg(feature = "camera")]
    {
        device::open(device, request)
    }
    #[cfg(not(feature = "camera"))]
    {
        let _ = request;
        Err(not_built(device))
    }
}

#[cfg(feature = "camera")]
mod device;

#[cfg(test)]
mod tests {
    use super::*;

    fn m(width: usize, height: usize, fps: f64, format: CameraFormat) -> CameraMode {
        CameraMode {
            width,
            height,
            fps,
            format,
        }
    }

    #[test]
    fn modes_are_chosen_as_asked() {
        use CameraFormat::*;
        let modes = [
            m(640, 480, 30.0, Yuyv),
            m(1280, 720, 10.0, Yuyv),
            m(1280, 720, 30.0, Mjpeg),
            m(1920, 1080, 30.0, Mjpeg),
            m(320, 240, 30.0, Yuyv),
            m(320, 240, 30.0, Mjpeg),
        ];
        let pick = |size, fps, format| choose_mode(&modes, &CameraRequest { size, fps, format });
        // nothing asked: the largest up to 720p, at the best rate
        assert_eq!(pick(None, None, None), Some(modes[2]));
        // a size: that size, raw before MJPEG
        assert_eq!(pick(Some((320, 240)), None, None), Some(modes[4]));
        assert_eq!(pick(Some((1920, 1080)), None, None), Some(modes[3]));
        // a format rules the others out
        assert_eq!(pick(Some((1280, 720)), None, Some(Yuyv)), Some(modes[1]));
        assert_eq!(pick(None, None, Some(Nv12)), None);
        // a rate: closest
        assert_eq!(pick(Some((1280, 720)), Some(10.0), None), Some(modes[1]));
        // a size the camera lacks: the nearest
        assert_eq!(pick(Some((800, 600)), None, Some(Yuyv)), Some(modes[0]));
        assert_eq!("MJPG".parse::<CameraFormat>(), Ok(Mjpeg));
        assert!("rgb".parse::<CameraFormat>().is_err());
    }

    #[test]
    fn captured_buffers_convert() {
        // YUYV gray and a bad buffer length
        let mode = m(2, 2, 30.0, CameraFormat::Yuyv);
        let img = convert(&[126, 128, 126, 128, 126, 128, 126, 128], &mode).unwrap();
        assert_eq!(img.as_bytes(), &[128; 12]);
        assert!(convert(&[0; 7], &mode).is_err());
        let nv12 = m(2, 2, 30.0, CameraFormat::Nv12);
        assert_eq!(
            convert(&[235, 235, 235, 235, 128, 128], &nv12)
                .unwrap()
                .as_bytes(),
            &[255; 12]
        );
        // MJPEG without Huffman tables, as webcams send it
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/imgproc/chelsea_q90_420.jpg"
        );
        let jpeg_bytes = std::fs::read(path).unwrap();
        let bare = jpeg::strip_huffman_tables(&jpeg_bytes);
        let want = imdecode(&jpeg_bytes, &DecodeOptions::default()).unwrap();
        let mode = m(want.width(), want.height(), 30.0, CameraFormat::Mjpeg);
        assert_eq!(convert(&bare, &mode).unwrap().as_bytes(), want.as_bytes());
        assert!(convert(&bare, &m(10, 10, 30.0, CameraFormat::Mjpeg)).is_err());
        // with the feature, a camera that is not there is a clear error, at once
        #[cfg(feature = "camera")]
        match open("/dev/video97", &CameraRequest::default()) {
            Err(e) => assert!(e.to_string().starts_with("camera /dev/video97: "), "{e}"),
            Ok(_) => panic!("there is no /dev/video97"),
        }
        #[cfg(not(feature = "camera"))]
        match open("0", &CameraRequest::default()) {
            Err(e) => assert!(e.to_string().contains("--features camera"), "{e}"),
            Ok(_) => panic!("no camera support in this build"),
        }
    }
}
