//! Whole-frame operations split over threads, by bands of output rows.
//!
//! Color conversion ([`crate::color::convert_threads`]) and [`crate::resize::Resizer`] (with
//! [`Resizer::set_threads`](crate::resize::Resizer::set_threads)) can split a frame's output
//! rows into bands: the calling thread computes the first, a pool of one thread fewer than the
//! machine runs at once (made on first use, shared by the whole process) the others, and the call
//! returns when all are written. Every band computes its rows exactly as the one-thread loop
//! does, so the output is the same bytes at any thread count. The default is one thread: in
//! tensorcv's pipelined runner, decoding and preprocessing already run beside inference, which
//! has the other cores. Small frames stay on one thread (a band of fewer than [`MIN_BAND`]
//! pixels costs more to hand over than to compute). In WASM there is no pool and every band
//! runs on the calling thread.

use crate::error::{Error, Result};
use crate::image::ImageViewMut;

/// The most threads an operation may be given.
pub const MAX_THREADS: usize = 64;

/// The fewest output pixels worth a band of their own.
pub const MIN_BAND: usize = 16 * 1024;

/// `threads` if it is an accepted thread count (1 to [`MAX_THREADS`]).
pub fn check_threads(threads: usize) -> Result<usize> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(threads)
    } else {
        Err(Error::Invalid(format!(
            "{threads} threads: expected 1 to {MAX_THREADS}"
        )))
    }
}

/// How many bands `height` rows of `width` pixels make with `threads` threads: at most one per
/// thread the process can run at once, at least [`MIN_BAND`] pixels each.
pub(crate) fn bands(width: usize, height: usize, threads: usize) -> usize {
    let by_size = (width.saturating_mul(height) / MIN_BAND).max(1);
    let n = threads.min(height).min(by_size);
    // the pool is made only when a call can use it
    if n <= 1 {
        return 1;
    }
    n.min(1 + workers())
}

/// Run `work` on every item: the first on the calling thread, the others on the pool.
pub(crate) fn each<T: Send>(items: impl Iterator<Item = T>, work: &(impl Fn(T) + Sync)) {
    #[cfg(not(target_family = "wasm"))]
    if let Some(pool) = pool() {
        pool.in_place_scope(|scope| {
            let mut first = None;
            for (k, item) in items.enumerate() {
                if k == 0 {
                    first = Some(item);
                } else {
                    scope.spawn(move |_| work(item));
                }
            }
            if let Some(item) = first {
                work(item);
            }
        });
        return;
    }
    items.for_each(work);
}

/// Threads of the pool (0 when the process may run one thread at a time, and in WASM).
fn workers() -> usize {
    #[cfg(not(target_family = "wasm"))]
    {
        pool().map_or(0, |p| p.current_num_threads())
    }
    #[cfg(target_family = "wasm")]
    {
        0
    }
}

#[cfg(not(target_family = "wasm"))]
fn pool() -> Option<&'static rayon::ThreadPool> {
    use std::sync::OnceLock;
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = cores.clamp(1, MAX_THREADS) - 1;
        if n == 0 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("tensorcv-imgproc-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// `view`'s rows in `n` bands of nearly equal height, each with its first row's index.
pub(crate) fn row_bands(
    view: ImageViewMut<'_>,
    n: usize,
) -> impl Iterator<Item = (usize, ImageViewMut<'_>)> {
    let height = view.height();
    let n = n.clamp(1, height.max(1));
    let mut rest = Some(view);
    (0..n).map_while(move |k| {
        let (y0, y1) = (height * k / n, height * (k + 1) / n);
        let view = rest.take()?;
        if k + 1 == n {
            return Some((y0, view));
        }
        let (band, tail) = view.split_at_row(y1 - y0);
        rest = Some(tail);
        Some((y0, band))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, PixelFormat};

    #[test]
    fn thread_counts_are_checked() {
        assert!(check_threads(0).is_err());
        assert_eq!(check_threads(1).unwrap(), 1);
        assert_eq!(check_threads(MAX_THREADS).unwrap(), MAX_THREADS);
        let e = check_threads(MAX_THREADS + 1).unwrap_err().to_string();
        assert!(e.contains("expected 1 to 64"), "{e}");
    }

    #[test]
    fn bands_cover_every_row_once() {
        for (h, n) in [(1, 1), (1, 4), (7, 2), (1080, 2), (5, 5), (3, 8)] {
            let mut img = Image::new(4, h, PixelFormat::Gray8).unwrap();
            let mut seen = Vec::new();
            for (y0, band) in row_bands(img.view_mut(), n) {
                assert!(band.height() >= 1);
                seen.extend(y0..y0 + band.height());
            }
            assert_eq!(seen, (0..h).collect::<Vec<_>>(), "{h} rows in {n} bands");
        }
    }

    #[test]
    fn small_frames_make_one_band() {
        assert_eq!(bands(100, 100, 8), 1);
        assert_eq!(bands(1920, 1080, 1), 1);
        assert!(bands(1920, 1080, 2) <= 2);
        assert_eq!(bands(1920, 1, 4), 1);
    }
}
