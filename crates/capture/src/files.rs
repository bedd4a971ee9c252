//! Image files as a stream: one file, a folder (walked, sorted, images only) or a numbered
//! sequence (`frames/%05d.png`, as ffmpeg's image2 muxer writes). A file that cannot be
//! decoded is one bad frame ([`Error::Frame`]); the stream goes on with the next file.

use crate::error::{source_err, Error, Result};
use crate::{Frame, FrameJob, Source, SourceInfo};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tensorcv_imgproc::io::{imread_scaled, DecodeLimits, DecodeOptions};

/// The extensions a folder walk picks up (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff", "pgm", "ppm", "pnm", "pbm",
];

/// [`SourceInfo::format`] of image files (as opposed to a video or a live stream).
pub const FORMAT: &str = "image files";

/// The widest zero padding of a sequence pattern (`%020d`); wider is not a pattern.
pub const MAX_PATTERN_WIDTH: usize = 20;

/// The most images a folder walk collects (their paths are sorted in memory).
pub const MAX_FOLDER_IMAGES: usize = 1_000_000;

/// How deep a folder walk descends.
pub const MAX_FOLDER_DEPTH: usize = 64;

/// Whether `input` is a numbered-sequence pattern: it holds `%d` or `%0Nd`.
pub fn is_sequence_pattern(input: &str) -> bool {
    split_pattern(input).is_some()
}

/// `(before, zero-padded width, after)` of a `%d` / `%0Nd` pattern.
fn split_pattern(input: &str) -> Option<(&str, usize, &str)> {
    let start = input.find('%')?;
    let rest = &input[start + 1..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].strip_prefix('d')?;
    if after.contains('%') {
        return None;
    }
    let width = if digits.is_empty() {
        0
    } else {
        digits.parse().ok().filter(|&w| w <= MAX_PATTERN_WIDTH)?
    };
    Some((&input[..start], width, after))
}

/// Fill a sequence pattern with a number.
pub fn sequence_path(pattern: &str, n: u64) -> Option<String> {
    let (before, width, after) = split_pattern(pattern)?;
    Some(format!("{before}{n:0width$}{after}"))
}

/// Image files read one after another.
pub struct ImageFiles {
    info: SourceInfo,
    paths: Vec<PathBuf>,
    next: usize,
    decode: DecodeOptions,
}

impl ImageFiles {
    fn new(name: String, paths: Vec<PathBuf>) -> Self {
        ImageFiles {
            info: SourceInfo {
                name,
                width: None,
                height: None,
                format: FORMAT.into(),
                fps: None,
                frames: Some(paths.len() as u64),
                live: false,
            },
            paths,
            next: 0,
            decode: DecodeOptions::default(),
        }
    }

    /// Decode JPEGs reduced while they stay at least `size` (`None`: full size).
    pub fn reduce_to(mut self, size: Option<(u32, u32)>) -> Self {
        self.decode.reduce_to = size;
        self
    }

    /// Refuse images over these limits (default: [`DecodeLimits::default`]).
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.decode.limits = limits;
        self
    }

    /// One image file (reading and decoding errors, a missing file included, come with the
    /// frame).
    pub fn file(path: &Path) -> Result<Self> {
        Ok(Self::new(
            path.display().to_string(),
            vec![path.to_path_buf()],
        ))
    }

    /// Every image below `dir`, sorted by path. Links to folders are not followed (as ripgrep
    /// and `find` do by default: a link to a parent would loop); links to files are read. At
    /// most [`MAX_FOLDER_IMAGES`] images, [`MAX_FOLDER_DEPTH`] folders deep.
    pub fn folder(dir: &Path) -> Result<Self> {
        let name = dir.display().to_string();
        let mut found = Vec::new();
        let mut dirs = vec![(dir.to_path_buf(), 0)];
        while let Some((d, depth)) = dirs.pop() {
            let entries = std::fs::read_dir(&d)
                .map_err(|e| source_err(&d.display().to_string(), format!("cannot read: {e}")))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if depth + 1 > MAX_FOLDER_DEPTH {
                        return Err(source_err(
                            &name,
                            format!("folders nested more than {MAX_FOLDER_DEPTH} deep"),
                        ));
                    }
                    dirs.push((path, depth + 1));
                } else if found.len() >= MAX_FOLDER_IMAGES {
                    return Err(source_err(
                        &name,
                        format!(
                            "more than {MAX_FOLDER_IMAGES} images: give a numbered sequence                              (frames/%06d.jpg) or several folders"
                        ),
                    ));
                } else if (kind.is_file() || path.is_file())
                    && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
                {
                    found.push(path);
                }
            }
        }
        found.sort();
        if found.is_empty() {
            return Err(source_err(&name, "the folder holds no images"));
        }
        Ok(Self::new(name, found))
    }

    /// A numbered sequence: the first existing number of 0..=4 (as ffmpeg looks), then every
    /// following number until one is missing.
    pub fn sequence(pattern: &str) -> Result<Self> {
        let first = (0..=4)
            .find(|&n| sequence_path(pattern, n).is_some_and(|p| Path::new(&p).is_file()))
            .ok_or_else(|| source_err(pattern, "no file of the sequence exists (tried 0 to 4)"))?;
        let paths: Vec<PathBuf> = (first..)
            .map_while(|n| {
                let p = PathBuf::from(sequence_path(pattern, n)?);
                p.is_file().then_some(p)
            })
            .collect();
        Ok(Self::new(pattern.to_string(), paths))
    }

    /// The files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl Source for ImageFiles {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        match self.next_job()? {
            Some(job) => job().map(Some),
            None => Ok(None),
        }
    }

    fn next_job(&mut self) -> Result<Option<FrameJob>> {
        let Some(path) = self.paths.get(self.next).cloned() else {
            return Ok(None);
        };
        let index = self.next as u64;
        self.next += 1;
        let decode = self.decode;
        Ok(Some(Box::new(move || {
            // imread's errors name the file
            let (image, scale) =
                imread_scaled(&path, &decode).map_err(|e| Error::Input(e.to_string()))?;
            Ok(Frame {
                image,
                index,
                timestamp: Duration::ZERO,
                name: Some(path.display().to_string()),
                scale,
            })
        })))
    }

    fn decodes_in_jobs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(sequence_path("f/%05d.png", 7).unwrap(), "f/00007.png");
        assert_eq!(sequence_path("f/%d.png", 12).unwrap(), "f/12.png");
        assert!(!is_sequence_pattern("f/100%.png"));
        assert!(!is_sequence_pattern("f/%s.png"));
        assert!(!is_sequence_pattern("f/%d_%d.png"));
        // a width that would ask for gigabytes of zeros is not a pattern
        assert!(!is_sequence_pattern("f/%0999999999d.png"));
        assert!(is_sequence_pattern("f/%020d.png"));
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_linked_into_itself_is_walked_once() {
        let dir = std::env::temp_dir().join(format!("tensorcv-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/x.png"), b"not read here").unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("a/loop")).unwrap();
        let files = ImageFiles::folder(&dir).unwrap();
        assert_eq!(files.paths(), [dir.join("a/x.png")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
