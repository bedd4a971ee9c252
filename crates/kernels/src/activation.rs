//! Element-wise activations with one parameter per channel: PReLU (`x < 0 ? alpha·x : x`,
//! LeakyReLU when every channel has the same slope), over tensors seen as `[outer][C][inner]`
//! (channels first: `inner` the plane; channels last: `inner == 1`), split between threads on
//! large tensors.

use crate::error::{ensure, SizeError};
use crate::isa::{dispatch, Kernel, Lanes, Level};
use crate::parallel::{for_parts, parts_for, SendPtr};

/// `out = x < 0 ? alpha[c] * x : x`, `x` and `out` laid out `[outer][alpha.len()][inner]`.
/// The product is the one rounding, as in TensorFlow's and tract's PReLU.
pub fn prelu(
    level: Level,
    x: &[f32],
    alpha: &[f32],
    inner: usize,
    out: &mut [f32],
) -> Result<(), SizeError> {
    let c = alpha.len();
    ensure!(x.len() == out.len() && x.len().is_multiple_of((c * inner).max(1)));
    if x.is_empty() {
        return Ok(());
    }
    ensure!(
        c > 0 && inner > 0,
        "a PReLU needs channels and values per channel"
    );
    // split on pixels channels last, on runs of `inner` values (a plane) channels first
    let unit = if inner == 1 { c } else { inner };
    let units = x.len() / unit;
    let parts = parts_for(x.len(), units);
    let per = units.div_ceil(parts);
    let o = SendPtr(out.as_mut_ptr());
    for_parts(parts, |p| {
        let first = (p * per).min(units);
        let last = ((p + 1) * per).min(units);
        let kernel = Prelu {
            x: &x[first * unit..last * unit],
            // SAFETY: units `first..last` lie inside `out`, which is as long as `x`
            out: unsafe { o.get().add(first * unit) },
            alpha,
            inner,
            first,
        };
        // SAFETY: `out` has room for the values of these units; parts write disjoint units
        unsafe { dispatch(level, kernel) }
    });
    Ok(())
}

/// Units `first..` of `x` into `out`: pixels of `alpha.len()` channels when `inner == 1`, else
/// runs of `inner` values, run `r` of channel `r % alpha.len()`.
struct Prelu<'a> {
    x: &'a [f32],
    out: *mut f32,
    alpha: &'a [f32],
    inner: usize,
    first: usize,
}

/// `max(x, 0) + alpha * min(x, 0)`: exactly `x` or `alpha * x` (the other term is a zero).
///
/// # Safety
/// The CPU supports `L`'s instruction set.
#[inline(always)]
unsafe fn prelu_lanes<L: Lanes>(x: L, alpha: L) -> L {
    // SAFETY: the instruction set is the caller's contract
    unsafe {
        let zero = L::splat(0.0);
        x.clamp(L::splat(f32::NEG_INFINITY), zero)
            .mul_add(alpha, x.max(zero))
    }
}

/// `len` values from `src` to `dst`, the slopes of the vector at `i` given by `slope(i)`.
///
/// # Safety
/// The CPU supports `L`'s instruction set; `src` readable and `dst` writable for `len` floats,
/// and `slope(i)` sound for every `i < len` that is a multiple of `L::N`.
#[inline(always)]
unsafe fn prelu_run<L: Lanes>(
    src: *const f32,
    dst: *mut f32,
    len: usize,
    slope: impl Fn(usize) -> L,
) {
    let n = L::N;
    let whole = len / n * n;
    // SAFETY: whole vectors end at `whole <= len`, the tail is the `len - whole` values after
    unsafe {
        for i in (0..whole).step_by(n) {
            prelu_lanes(L::load(src.add(i)), slope(i)).store(dst.add(i));
        }
        if whole < len {
            prelu_lanes(L::load_first(src.add(whole), len - whole), slope(whole))
                .store_first(dst.add(whole), len - whole);
        }
    }
}

impl Kernel for Prelu<'_> {
    type Output = ();
    /// # Safety
    /// `out` has room for `x.len()` floats.
    #[inline(always)]
    unsafe fn run<L: Lanes>(self) {
        let Prelu {
            x,
            out,
            alpha,
            inner,
            first,
        } = self;
        let (n, c) = (L::N, alpha.len());
        // SAFETY: each run reads and writes its own `c` or `inner` values of `x` and `out`
        // (`x` is whole units); slopes are read below `c`; the instruction set is `dispatch`'s
        unsafe {
            if inner == 1 {
                // channels last: a pixel is a vector of channels times the vector of slopes
                let ap = alpha.as_ptr();
                let slope = |i: usize| {
                    if i + n <= c {
                        L::load(ap.add(i))
                    } else {
                        L::load_first(ap.add(i), c - i)
                    }
                };
                for (p, src) in x.chunks_exact(c).enumerate() {
                    prelu_run(src.as_ptr(), out.add(p * c), c, slope);
                }
            } else {
                for (r, src) in x.chunks_exact(inner).enumerate() {
                    let a = L::splat(alpha[(first + r) % c]);
                    prelu_run(src.as_ptr(), out.add(r * inner), inner, |_| a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(x: &[f32], alpha: &[f32], inner: usize) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                if v < 0.0 {
                    alpha[(i / inner) % alpha.len()] * v
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn prelu_matches_the_definition_at_every_level_and_layout() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        };
        for &(outer, c, inner) in &[
            (1, 3, 1),
            (1, 16, 1),
            (2, 37, 1),
            (1, 1, 64),
            (1, 5, 7),
            (2, 24, 49),
            (1, 32, 4096),
            (3, 130, 1),
        ] {
            let x: Vec<f32> = (0..outer * c * inner).map(|_| next()).collect();
            let alpha: Vec<f32> = (0..c).map(|_| next()).collect();
            let want = want(&x, &alpha, inner);
            for level in Level::ALL {
                if !level.available() {
                    continue;
                }
                let mut got = vec![f32::NAN; x.len()];
                prelu(level, &x, &alpha, inner, &mut got).unwrap();
                assert_eq!(got, want, "{outer}x{c}x{inner} {level:?}");
            }
        }
    }

    #[test]
    fn prelu_refuses_buffers_that_do_not_fit() {
        let mut out = [0f32; 5];
        assert!(prelu(Level::best(), &[0.0; 6], &[1.0; 2], 1, &mut out).is_err());
        assert!(prelu(Level::best(), &[0.0; 5], &[1.0; 2], 1, &mut out).is_err());
        let mut out = [0f32; 4];
        assert!(prelu(Level::best(), &[0.0; 4], &[], 1, &mut out).is_err());
        assert!(prelu(Level::best(), &[], &[1.0], 1, &mut []).is_ok());
    }
}
