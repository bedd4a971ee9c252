//! Cameras through nokhwa's V4L2 backend: only device access (query, open, raw buffers) is
//! nokhwa's; mode choice and pixel conversion are tensorcv's ([`super::choose_mode`],
//! [`super::convert`]).

use super::{choose_mode, convert, CameraFormat, CameraInfo, CameraMode, CameraRequest};
use crate::error::{Error, Result};
use crate::{Frame, Source, SourceInfo};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat as NFormat, CameraIndex, FrameFormat, RequestedFormat,
    RequestedFormatType, Resolution,
};
use nokhwa::Camera;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many times a vanished camera is reopened before the stream fails.
const RECONNECTS: u32 = 3;

fn our_format(f: FrameFormat) -> Option<CameraFormat> {
    match f {
        FrameFormat::YUYV => Some(CameraFormat::Yuyv),
        FrameFormat::NV12 => Some(CameraFormat::Nv12),
        FrameFormat::MJPEG => Some(CameraFormat::Mjpeg),
        _ => None,
    }
}

fn their_format(f: CameraFormat) -> FrameFormat {
    match f {
        CameraFormat::Yuyv => FrameFormat::YUYV,
        CameraFormat::Nv12 => FrameFormat::NV12,
        CameraFormat::Mjpeg => FrameFormat::MJPEG,
    }
}

fn index_of(device: &str) -> CameraIndex {
    match device.parse::<u32>() {
        Ok(i) => CameraIndex::Index(i),
        Err(_) => CameraIndex::String(device.to_string()),
    }
}

fn cam_err(device: &str, e: impl std::fmt::Display) -> Error {
    Error::Camera {
        device: device.to_string(),
        message: e.to_string(),
    }
}

fn modes_of(camera: &mut Camera) -> Vec<CameraMode> {
    camera
        .compatible_camera_formats()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| {
            Some(CameraMode {
                width: f.resolution().width_x as usize,
                height: f.resolution().height_y as usize,
                fps: f.frame_rate() as f64,
                format: our_format(f.format())?,
            })
        })
        .collect()
}

/// Every camera V4L2 lists, with the modes tensorcv converts.
pub fn list() -> Result<Vec<CameraInfo>> {
    let found = nokhwa::query(ApiBackend::Video4Linux).map_err(|e| cam_err("list", e))?;
    let mut out = Vec::new();
    for (i, info) in found.into_iter().enumerate() {
        let any = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
        let modes = Camera::with_backend(info.index().clone(), any, ApiBackend::Video4Linux)
            .map(|mut c| modes_of(&mut c))
            .unwrap_or_default();
        out.push(CameraInfo {
            index: i,
            name: info.human_name(),
            path: info.description().to_string(),
            modes,
        });
    }
    Ok(out)
}

/// The camera lives on its own thread (nokhwa's `Camera` cannot move between threads); frames
/// come over a channel.
struct CameraSource {
    info: SourceInfo,
    device: String,
    mode: CameraMode,
    frames: Receiver<std::result::Result<Vec<u8>, String>>,
    stop: Arc<AtomicBool>,
    index: u64,
    start: Instant,
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn open_camera(device: &str, mode: &CameraMode) -> Result<Camera> {
    let format = NFormat::new(
        Resolution::new(mode.width as u32, mode.height as u32),
        their_format(mode.format),
        mode.fps.round() as u32,
    );
    let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Exact(format));
    let mut camera = Camera::with_backend(index_of(device), requested, ApiBackend::Video4Linux)
        .map_err(|e| cam_err(device, format!("cannot open ({e}); is it there and free?")))?;
    camera
        .open_stream()
        .map_err(|e| cam_err(device, format!("cannot start streaming: {e}")))?;
    Ok(camera)
}

/// Capture until `stop`, reopening a vanished camera a bounded number of times.
fn capture(
    device: String,
    mode: CameraMode,
    opened: SyncSender<Result<()>>,
    frames: SyncSender<std::result::Result<Vec<u8>, String>>,
    stop: Arc<AtomicBool>,
) {
    let mut camera = match open_camera(&device, &mode) {
        Ok(c) => {
            let _ = opened.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        match camera.frame_raw() {
            Ok(b) => {
                failures = 0;
                if frames.send(Ok(b.to_vec())).is_err() {
                    return;
                }
            }
            Err(e) => {
                failures += 1;
                if failures > RECONNECTS {
                    let _ = frames.send(Err(format!("lost: {e}")));
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
                if let Ok(c) = open_camera(&device, &mode) {
                    camera = c;
                }
            }
        }
    }
}

/// Open `device` in the mode that best fits `request`.
pub fn open(device: &str, request: &CameraRequest) -> Result<Box<dyn Source>> {
    let any = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
    let mut probe = Camera::with_backend(index_of(device), any, ApiBackend::Video4Linux)
        .map_err(|e| cam_err(device, format!("cannot open ({e}); is it there and free?")))?;
    let modes = modes_of(&mut probe);
    drop(probe);
    let mode = choose_mode(&modes, request).ok_or_else(|| {
        cam_err(
            device,
            format!("no mode fits {request:?}; the camera offers {modes:?}"),
        )
    })?;
    let (opened_tx, opened_rx) = sync_channel(1);
    let (frames_tx, frames_rx) = sync_channel(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (d, s) = (device.to_string(), stop.clone());
    std::thread::spawn(move || capture(d, mode, opened_tx, frames_tx, s));
    match opened_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            stop.store(true, Ordering::Relaxed);
            return Err(cam_err(device, "did not start within 10 s"));
        }
    }
    Ok(Box::new(CameraSource {
        info: SourceInfo {
            name: format!("camera:{device}"),
            width: Some(mode.width),
            height: Some(mode.height),
            format: format!("{:?}", mode.format),
            fps: Some(mode.fps),
            frames: None,
            live: true,
        },
        device: device.to_string(),
        mode,
        frames: frames_rx,
        stop,
        index: 0,
        start: Instant::now(),
    }))
}

impl Source for CameraSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        // a camera that stops sending is an error, not a hang
        let buffer = match self.frames.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(cam_err(&self.device, e)),
            Err(_) => return Err(cam_err(&self.device, "no frame for 10 s")),
        };
        let index = self.index;
        self.index += 1;
        let image = convert(&buffer, &self.mode).map_err(|e| Error::Frame {
            source_name: self.info.name.clone(),
            index,
            message: e.to_string(),
        })?;
        Ok(Some(Frame {
            image,
            index,
            timestamp: self.start.elapsed(),
            name: None,
            scale: 1.0,
        }))
    }
}
