//! Per-row loops of the YUV → RGB conversions, in OpenCV's BT.601 fixed point
//! (`ITUR_BT_601_*` constants, 20 fractional bits, video range Y in 16..235).

const SHIFT: i32 = 20;
const CY: i32 = 1_220_542; // 1.164 * 2^20
const CUB: i32 = 2_116_026; // 2.018 * 2^20
const CUG: i32 = -409_993; // -0.391 * 2^20
const CVG: i32 = -852_492; // -0.813 * 2^20
const CVR: i32 = 1_673_527; // 1.596 * 2^20
const HALF: i32 = 1 << (SHIFT - 1);

/// Chroma contributions of one (U, V) pair, rounding term included.
#[inline(always)]
fn chroma(u: u8, v: u8) -> (i32, i32, i32) {
    let (uu, vv) = (u as i32 - 128, v as i32 - 128);
    (HALF + CVR * vv, HALF + CVG * vv + CUG * uu, HALF + CUB * uu)
}

#[inline(always)]
fn clamp8(v: i32) -> u8 {
    (v >> SHIFT).clamp(0, 255) as u8
}

/// Where a destination pixel wants its channels: red and blue offsets, and the channel count
/// (4 means an alpha of 255 is written).
#[derive(Clone, Copy)]
pub(crate) struct Out {
    pub ri: usize,
    pub bi: usize,
    pub cn: usize,
}

impl Out {
    /// Where `format` (a color format) keeps red and blue.
    pub(crate) fn for_format(format: crate::PixelFormat) -> Out {
        let [ri, _, bi, _] = format.rgba_index();
        Out {
            ri: ri.unwrap_or(0),
            bi: bi.unwrap_or(2),
            cn: format.channels(),
        }
    }
}

#[inline(always)]
fn put(d: &mut [u8], o: Out, y: u8, c: (i32, i32, i32)) {
    let yy = (y as i32 - 16).max(0) * CY;
    d[o.ri] = clamp8(yy + c.0);
    d[1] = clamp8(yy + c.1);
    d[o.bi] = clamp8(yy + c.2);
    if o.cn == 4 {
        d[3] = 255;
    }
}

/// One row of 4:2:2 packed pixels (`YUYV`, `UYVY`, ...): `yi`, `ui`, `vi` are the offsets of
/// the first luma, U and V in each 4-byte group; the second luma is at `yi + 2`.
pub(crate) fn packed422_row(src: &[u8], dst: &mut [u8], o: Out, yi: usize, ui: usize, vi: usize) {
    for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(2 * o.cn)) {
        let c = chroma(s[ui], s[vi]);
        let (d0, d1) = d.split_at_mut(o.cn);
        put(d0, o, s[yi], c);
        put(d1, o, s[yi + 2], c);
    }
}

/// One row of 4:2:0 pixels: luma row `y`, and the chroma of the row pair as separate U and V
/// samples, each reached through `chroma_at(i)` for the `i`-th pair of pixels.
pub(crate) fn planar420_row(
    y: &[u8],
    dst: &mut [u8],
    o: Out,
    mut chroma_at: impl FnMut(usize) -> (u8, u8),
) {
    for (i, (ys, d)) in y
        .chunks_exact(2)
        .zip(dst.chunks_exact_mut(2 * o.cn))
        .enumerate()
    {
        let (u, v) = chroma_at(i);
        let c = chroma(u, v);
        let (d0, d1) = d.split_at_mut(o.cn);
        put(d0, o, ys[0], c);
        put(d1, o, ys[1], c);
    }
}

/// One row of planar pixels whose chroma is subsampled horizontally by `1 << sx` (4:4:4: 0,
/// 4:2:x: 1): the chroma of pixel `x` is `u[x >> sx]`, `v[x >> sx]`.
pub(crate) fn planar_row(y: &[u8], u: &[u8], v: &[u8], dst: &mut [u8], o: Out, sx: u32) {
    for (x, (&ys, d)) in y.iter().zip(dst.chunks_exact_mut(o.cn)).enumerate() {
        let c = chroma(u[x >> sx], v[x >> sx]);
        put(d, o, ys, c);
    }
}

// RGB -> YUV, OpenCV's `RGB8toYUV420pInvoker` (BT.601 video range, 20 fraction bits).
const CRY: i32 = 269_484;
const CGY: i32 = 528_482;
const CBY: i32 = 102_760;
const CRU: i32 = -155_188;
const CGU: i32 = -305_135;
const CBU: i32 = 460_324;
const CGV: i32 = -385_875;
const CBV: i32 = -74_448;

/// Luma of one pixel.
#[inline(always)]
pub(crate) fn luma(r: u8, g: u8, b: u8) -> u8 {
    let y = CRY * r as i32 + CGY * g as i32 + CBY * b as i32 + HALF + (16 << SHIFT);
    clamp8(y)
}

/// U and V of one pixel (OpenCV takes the top-left pixel of each 2×2 block).
#[inline(always)]
pub(crate) fn chroma_of(r: u8, g: u8, b: u8) -> (u8, u8) {
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let u = CRU * r + CGU * g + CBU * b + HALF + (128 << SHIFT);
    let v = CBU * r + CGV * g + CBV * b + HALF + (128 << SHIFT);
    (clamp8(u), clamp8(v))
}
