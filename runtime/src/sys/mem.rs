//! Copies between raw bytes and typed buffers.

use bytemuck::Pod;

/// A `Vec<P>` holding the bytes of `src` (its length a multiple of
/// `size_of::<P>()`; any trailing part of an element is ignored), in one
/// `memcpy` into fresh, uninitialised memory: no zeroing first, and `src`
/// need not be aligned for `P`.
pub(crate) fn vec_from_bytes<P: Pod>(src: &[u8]) -> Vec<P> {
    let size = size_of::<P>().max(1);
    let n = src.len() / size;
    let mut v: Vec<P> = Vec::with_capacity(n);
    // SAFETY: `v` owns room for `n` elements, that is `n * size` bytes, and
    // `src` holds at least that many; a fresh allocation cannot overlap `src`.
    // Copying bytes needs no alignment of `src`, and the destination is `P`'s
    // own allocation, so it is aligned. `P: Pod`: every bit pattern is a valid
    // `P`, so the `n` elements are initialised once their bytes are written,
    // which makes `set_len(n)` sound. (For a zero-sized `P`, `n` is 0.)
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), v.as_mut_ptr().cast::<u8>(), n * size_of::<P>());
        v.set_len(n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::vec_from_bytes;

    #[test]
    fn copies_from_any_alignment() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(8 * 10).collect();
        for off in 0..8 {
            let src = &bytes[off..off + 8 * 9];
            let v: Vec<u64> = vec_from_bytes(src);
            let want: Vec<u64> = src.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
            assert_eq!(v, want);
        }
        assert!(vec_from_bytes::<f64>(&[1, 2, 3]).is_empty());
        assert_eq!(vec_from_bytes::<u8>(&[4, 5]), vec![4, 5]);
    }
}
