//! The memory helpers the compiler calls (the ARM EABI's copy, set and clear, and C's
//! `memcmp`), in loops of words or bytes.
//!
//! The compiler calls these for every struct it moves or zeroes by memory (a `Name` returned by
//! value, a zeroed buffer) and to compare strings (the settings' keys). compiler-builtins
//! defines them weakly, around a word-at-a-time `memcpy` tuned for speed: 1.3 KB of the 64 KB
//! part's flash, where these take about 150 bytes. The
//! firmware copies a few hundred bytes per name, against millions of instructions of network,
//! so these simple loops cost little (measured on the LM3S811: see the commit log).
//!
//! Each byte moves through a volatile access: the compiler turns a plain copy loop back into a
//! call to these very functions, which would never return.

use core::ptr;

/// Copies `n` bytes from `src` to `dest` (regions that do not overlap); the `4` and `8`
/// variants below promise aligned pointers, which a byte copy does not need.
///
/// # Safety
///
/// `src` must be valid for `n` reads and `dest` for `n` writes, and they must not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy(dest: *mut u8, src: *const u8, n: usize) {
    // Whole words while both are aligned: the i8 network moves arrays of f32 in its inner loop.
    let words = if (dest as usize | src as usize).is_multiple_of(4) {
        n / 4
    } else {
        0
    };
    for i in 0..words {
        // SAFETY: the caller promises `n` readable bytes at `src` and `n` writable at `dest`;
        // words `0..n / 4` are within them, and both pointers are 4-byte aligned.
        unsafe {
            let word = ptr::read_volatile(src.cast::<u32>().add(i));
            ptr::write_volatile(dest.cast::<u32>().add(i), word);
        }
    }
    for i in words * 4..n {
        // SAFETY: as above, byte by byte.
        unsafe { ptr::write_volatile(dest.add(i), ptr::read_volatile(src.add(i))) };
    }
}

/// [`__aeabi_memcpy`] for 4-byte aligned pointers.
///
/// # Safety
///
/// As for [`__aeabi_memcpy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy4(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memcpy(dest, src, n) }
}

/// [`__aeabi_memcpy`] for 8-byte aligned pointers.
///
/// # Safety
///
/// As for [`__aeabi_memcpy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy8(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memcpy(dest, src, n) }
}

/// Sets `n` bytes at `dest` to `value` (the EABI's argument order: length before value).
///
/// # Safety
///
/// `dest` must be valid for `n` writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memset(dest: *mut u8, n: usize, value: i32) {
    for i in 0..n {
        // SAFETY: the caller promises `n` writable bytes at `dest`.
        unsafe { ptr::write_volatile(dest.add(i), value as u8) };
    }
}

/// [`__aeabi_memset`] for 4-byte aligned pointers.
///
/// # Safety
///
/// As for [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memset4(dest: *mut u8, n: usize, value: i32) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memset(dest, n, value) }
}

/// [`__aeabi_memset`] for 8-byte aligned pointers.
///
/// # Safety
///
/// As for [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memset8(dest: *mut u8, n: usize, value: i32) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memset(dest, n, value) }
}

/// Zeroes `n` bytes at `dest`.
///
/// # Safety
///
/// As for [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memclr(dest: *mut u8, n: usize) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memset(dest, n, 0) }
}

/// [`__aeabi_memclr`] for 4-byte aligned pointers.
///
/// # Safety
///
/// As for [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memclr4(dest: *mut u8, n: usize) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memset(dest, n, 0) }
}

/// [`__aeabi_memclr`] for 8-byte aligned pointers.
///
/// # Safety
///
/// As for [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memclr8(dest: *mut u8, n: usize) {
    // SAFETY: the caller's promise, passed on.
    unsafe { __aeabi_memset(dest, n, 0) }
}

/// Compares `n` bytes at `a` and `b`: 0 if equal, otherwise the difference of the first
/// bytes that differ, as unsigned bytes.
///
/// # Safety
///
/// `a` and `b` must be valid for `n` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller promises `n` readable bytes at `a` and at `b`.
        let (x, y) = unsafe { (ptr::read_volatile(a.add(i)), ptr::read_volatile(b.add(i))) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}
