//! Cache hints for loops whose next reads are known but scattered.

/// Ask the cache for the line holding `values[i]` before it is read: for
/// loops that know their next scattered reads a few steps ahead (hash-table
/// slots, the fixed rows of a sparse row's entries). A hint only: nothing
/// is read or changed, an index out of range is ignored, and on targets
/// without a prefetch instruction it does nothing.
#[inline(always)]
pub fn prefetch<T>(values: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v) = values.get(i) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch never faults and reads nothing; the pointer is
        // inside `values` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((v as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, i);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_index_is_accepted_and_nothing_changes() {
        let v = vec![1u32, 2, 3];
        for i in [0, 2, 3, usize::MAX] {
            prefetch(&v, i);
        }
        prefetch::<u8>(&[], 0);
        assert_eq!(v, [1, 2, 3]);
    }
}
