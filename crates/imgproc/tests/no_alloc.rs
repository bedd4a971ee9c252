//! Per-frame paths allocate nothing once their sizes are known: the second call of a
//! `Preprocessor`, `Resizer`, `PilResizer` or `GaussianBlur` on a same-sized frame makes no heap allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tensorcv_imgproc::filter::{Border, GaussianBlur};
use tensorcv_imgproc::geometry::Fit;
use tensorcv_imgproc::resize::pil::{PilFilter, PilResizer};
use tensorcv_imgproc::resize::{Interpolation, Resizer};
use tensorcv_imgproc::tensor::{ChannelOrder, DType, Layout as TLayout, Preprocessor, TensorSpec};
use tensorcv_imgproc::{Image, PixelFormat};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts, on the thread that asked for it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

fn frame() -> Image {
    let data = (0..640 * 360 * 3).map(|i| (i * 7 % 251) as u8).collect();
    Image::from_vec(data, 640, 360, PixelFormat::Bgr8).unwrap()
}

#[test]
fn warm_per_frame_calls_do_not_allocate() {
    // the counter sees allocations
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))), 1);
    let img = frame();
    let specs = [
        TensorSpec::new(224, 224),
        TensorSpec::new(320, 320)
            .with_fit(Fit::Letterbox, 114)
            .with_interp(Interpolation::Area)
            .with_layout(TLayout::Nchw),
        TensorSpec::new(96, 64)
            .with_interp(Interpolation::Cubic)
            .with_fit(Fit::Crop, 0),
        TensorSpec::new(64, 64)
            .with_channels(ChannelOrder::Gray)
            .with_interp(Interpolation::Lanczos4),
        TensorSpec::new(128, 128).with_dtype(DType::U8),
        TensorSpec::new(320, 180).with_interp(Interpolation::Area), // integer factor
    ];
    for spec in specs {
        let mut pre = Preprocessor::new(spec.clone());
        let mut t = spec.alloc(1);
        pre.run(&img.view(), &mut t, 0).unwrap();
        let n = allocations(|| {
            pre.run(&img.view(), &mut t, 0).unwrap();
        });
        assert_eq!(n, 0, "{spec:?}");
    }
    let mut out = Image::new(200, 150, PixelFormat::Bgr8).unwrap();
    for interp in Interpolation::ALL {
        let mut r = Resizer::new();
        r.resize(&img.view(), &mut out.view_mut(), interp).unwrap();
        let n = allocations(|| r.resize(&img.view(), &mut out.view_mut(), interp).unwrap());
        assert_eq!(n, 0, "{interp}");
    }
    for filter in PilFilter::ALL {
        let mut r = PilResizer::new();
        r.resize(&img.view(), &mut out.view_mut(), filter).unwrap();
        let n = allocations(|| r.resize(&img.view(), &mut out.view_mut(), filter).unwrap());
        assert_eq!(n, 0, "{filter}");
    }
    let mut blurred = Image::new(img.width(), img.height(), img.format()).unwrap();
    for border in Border::ALL {
        let mut b = GaussianBlur::new((15, 9), (0.0, 0.0))
            .unwrap()
            .with_border(border);
        b.apply(&img.view(), &mut blurred.view_mut()).unwrap();
        let n = allocations(|| b.apply(&img.view(), &mut blurred.view_mut()).unwrap());
        assert_eq!(n, 0, "{border}");
    }
}
