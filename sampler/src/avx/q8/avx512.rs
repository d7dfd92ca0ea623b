//! The q8 integer network (`crate::q8`) with AVX-512 ([`crate::Kernels::Avx512Vnni`]), from
//! a [`Packed`] copy: the same integers as the portable code, 16 rows per vector.
//!
//! The products are [`super::products_vnni`]'s, read two blocks at a time: in a panel the
//! pieces of one group of 4 columns lie block after block, so 64 bytes hold 4 columns of 16
//! consecutive rows, and one 512-bit `vpdpbusd` adds 64 products (a panel's last block, when
//! it has an odd number, is read alone, its upper lanes zero). Each row's sum starts from its
//! bias plus `-128` times its weights' sum and gets `w (x + 128)` for each input, the inputs
//! kept biased (`x + 128` as an unsigned byte) from one layer to the next; the exactness
//! argument is `products_vnni`'s.
//!
//! Each panel is finished as soon as its products are: [`requantize`] 16 rows at a time (the
//! portable [`namegen_model::q8::requantize`], lane by lane), then for a hidden layer 64 rows
//! at a time narrowed to int8 with signed saturation, which is the portable code's clamp to
//! `-128..=127`, and looked up in the `tanh` table by two `vpermi2b` and a blend ([`Table`]),
//! whose entries are stored biased, so that the lookup writes the next layer's unsigned inputs
//! directly. No gather, no scalar step between two layers.
//!
//! A panel's lookups write whole vectors of 64 codes: past a layer's last row they write
//! codes of rows that do not exist, which the next layer reads only against the zero weights
//! packed past its last column, and the next panel's lookups overwrite where they overlap.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpgt_epi32_mask,
    _mm512_cmplt_epi32_mask, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_mask_add_epi32,
    _mm512_mask_blend_epi8, _mm512_mask_blend_epi32, _mm512_mask_storeu_epi32, _mm512_max_epi32,
    _mm512_movepi8_mask, _mm512_mul_epi32, _mm512_packs_epi16, _mm512_packs_epi32,
    _mm512_permutex2var_epi8, _mm512_permutexvar_epi32, _mm512_set1_epi32, _mm512_set1_epi64,
    _mm512_setr_epi32, _mm512_setzero_si512, _mm512_shuffle_epi32, _mm512_slli_epi32,
    _mm512_slli_epi64, _mm512_sllv_epi32, _mm512_srai_epi32, _mm512_srav_epi32, _mm512_srli_epi32,
    _mm512_srli_epi64, _mm512_storeu_si512, _mm512_sub_epi32, _mm512_xor_si512,
};
use core::mem::MaybeUninit;

use namegen_model::config::MAX_WIDTH;
use namegen_model::q8::{MAX_SHIFT, MIN_SHIFT, MULTIPLIER_LOW_BITS, SHIFT_BITS, TANH_TABLE_LEN};
use std::vec::Vec;

use super::{CHUNK, GROUP, PANEL, Packed, ROWS, groups, stride};
use crate::view::ModelView;

/// Rows per vector of sums: two blocks of the packed layout.
const LANES: usize = 2 * ROWS;

/// Vectors of sums per panel: its blocks two by two.
const VECTORS: usize = PANEL.div_ceil(2);

/// [`VECTORS`] rounded up to whole lookups of 64 rows.
const PAIRS: usize = VECTORS.next_multiple_of(4);

/// Codes per table lookup: 64 bytes, the sums of 4 vectors.
const CODES: usize = 4 * LANES;

/// The logits after `context` into `logits`, exactly as [`crate::q8::logits`] computes them,
/// from `packed`, the view's [`Packed`] layers; `x` is scratch for the embedding codes.
/// Returns how many logits were written. Panics (slice bounds) on buffers shorter than the
/// model's widest layer, symbols out of range or a `packed` of other layers, never reads
/// outside them.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni,avx512vbmi")]
pub(super) fn logits(
    model: &ModelView<'_>,
    packed: &[Packed],
    table: &[u8; TANH_TABLE_LEN],
    context: &[u8],
    x: &mut [i8],
    logits: &mut [i32],
) -> usize {
    let width = model.config().input_width();
    crate::q8::embed(model, context, x);
    let table = Table::new(table);
    // The inputs of the layer being computed and the outputs it writes, biased, swapped after
    // each hidden layer; each holds a layer's rows rounded up to whole lookups of 64.
    let mut a = [MaybeUninit::<u8>::uninit(); MAX_WIDTH + CODES];
    let mut b = [MaybeUninit::<u8>::uninit(); MAX_WIDTH + CODES];
    let (mut input, mut output) = (&mut a, &mut b);
    let mut inputs = groups(&x[..width], 0x80, input).len();
    let last = model.config().n_layers() - 1;
    let mut rows = 0;
    for (index, layer) in model.layers().enumerate() {
        let packed = &packed[index];
        rows = layer.weight.rows();
        let cols = layer.weight.cols();
        assert_eq!(
            packed.shape(),
            (rows, cols, layer.weight.dtype()),
            "packed from the layer"
        );
        assert_eq!(inputs, cols.div_ceil(GROUP), "one group per 4 columns");
        // SAFETY: the first `inputs` groups were written: by `groups` for the first layer,
        // and for the others by the previous layer's lookups, which cover its rows (this
        // layer's columns) rounded up to whole blocks of 8, so to whole groups of 4 too.
        let (groups, _) = unsafe { input[..inputs * GROUP].assume_init_ref() }.as_chunks();
        let (pieces, _) = packed.data().as_chunks::<CHUNK>();
        let panels = pieces.chunks(stride(PANEL) * groups.len());
        let blocks = rows.div_ceil(ROWS);
        for (p, pieces) in panels.enumerate() {
            let first = p * PANEL * ROWS;
            let mut out = match index == last {
                true => Out::Logits(&mut logits[first..rows]),
                false => Out::Codes(&table, &mut output[first..]),
            };
            let vectors = &packed.rows_q8().vectors[p * VECTORS..];
            by_panel!(
                (blocks - p * PANEL).min(PANEL),
                panel(vectors, pieces, groups, &mut out)
            );
        }
        inputs = rows.div_ceil(GROUP);
        core::mem::swap(&mut input, &mut output);
    }
    rows
}

/// Where a panel's requantised outputs go: a hidden layer's through the `tanh` table, as the
/// next layer's biased inputs (whole lookups of 64, from the panel's first row on); the output
/// layer's as Q16 logits (the panel's rows, up to the layer's last).
enum Out<'o> {
    Codes(&'o Table, &'o mut [MaybeUninit<u8>]),
    Logits(&'o mut [i32]),
}

/// One panel of `N` blocks: the sums of its `pieces` (as [`super::piece`] orders them) and the
/// biased `groups` of 4 inputs ([`products`]), from the rows' starts, requantised with the
/// panel's `rows` into `out`. Panics unless there are `N` pieces per group and a [`Vector`]
/// of rows per 16.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni,avx512vbmi")]
fn panel<const N: usize>(
    rows: &[Vector],
    pieces: &[[u8; CHUNK]],
    groups: &[[u8; GROUP]],
    out: &mut Out<'_>,
) {
    // `vpdpbusd` takes 5 cycles before its sum is ready for the next: a narrow panel (the
    // output layer) keeps 4 sums per vector to have enough independent ones, a wide one 2.
    let mut z = match N <= 4 {
        true => products::<N, 4>(pieces, groups),
        false => products::<N, 2>(pieces, groups),
    };
    let vectors = N.div_ceil(2);
    requantized(&mut z[..vectors], &rows[..vectors]);
    match out {
        Out::Codes(table, codes) => {
            for (j, z) in z.as_chunks::<4>().0.iter().enumerate() {
                if j * CODES < N * ROWS {
                    let at = &mut codes[j * CODES..][..CODES];
                    let biased = table.lookup(narrow(*z));
                    // SAFETY: `at` is the 64 bytes stored; no alignment is required.
                    unsafe { _mm512_storeu_si512(at.as_mut_ptr().cast(), biased) };
                }
            }
        }
        Out::Logits(logits) => {
            for (k, z) in z.iter().enumerate().take(vectors) {
                // The lanes of the rows there are, stored in place (no copy through the stack).
                let rows = logits.get_mut(k * LANES..).unwrap_or_default();
                let lanes = rows.len().min(LANES);
                let mask = ((1u32 << lanes) - 1) as u16;
                // SAFETY: the mask stores the first `lanes` int32, all within `rows`; no
                // alignment is required.
                unsafe { _mm512_mask_storeu_epi32(rows.as_mut_ptr(), mask, *z) };
            }
        }
    }
}

/// The sums of products of the `N` blocks of a panel, `pieces`, and the biased `groups` of 4
/// inputs, 16 rows per vector (vector `k` holds blocks `2 k` and `2 k + 1`; those past the
/// panel's are zero), without the rows' starts: each vector summed in `S` independent parts,
/// group `g` into part `g % S`, added at the end (integer additions modulo 2^32 in any order).
/// Panics unless there are `N` pieces per group.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
fn products<const N: usize, const S: usize>(
    pieces: &[[u8; CHUNK]],
    groups: &[[u8; GROUP]],
) -> [__m512i; PAIRS] {
    assert_eq!(pieces.len(), groups.len() * stride(N), "a stride per group");
    let vectors = N.div_ceil(2);
    let (pieces, _) = pieces.as_chunks::<2>();
    let mut parts = [[_mm512_setzero_si512(); PAIRS]; S];
    // Whole runs of `S` groups, part `s` taking the run's group `s` (an index the compiler
    // knows, so every sum stays in a register), then the groups left over into part 0.
    let (runs, left) = groups.as_chunks::<S>();
    let (run_pieces, left_pieces) = pieces.split_at(runs.len() * S * vectors);
    for (w, xs) in run_pieces.chunks_exact(S * vectors).zip(runs) {
        for (s, (part, xs)) in parts.iter_mut().zip(xs).enumerate() {
            multiply_add::<N>(part, &w[s * vectors..], xs);
        }
    }
    for (w, xs) in left_pieces.chunks_exact(vectors).zip(left) {
        multiply_add::<N>(&mut parts[0], w, xs);
    }
    let mut sums = parts[0];
    for part in &parts[1..] {
        for (sum, &v) in sums.iter_mut().zip(part).take(vectors) {
            *sum = _mm512_add_epi32(*sum, v);
        }
    }
    sums
}

/// `sums` plus the products of one group's pieces, two blocks per item of `w` (vector `k`
/// from item `k`), and its 4 biased inputs `xs`, broadcast to every row.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
fn multiply_add<const N: usize>(
    sums: &mut [__m512i; PAIRS],
    w: &[[[u8; CHUNK]; 2]],
    xs: &[u8; GROUP],
) {
    let xs = _mm512_set1_epi32(i32::from_le_bytes(*xs));
    for (sum, w) in sums.iter_mut().zip(&w[..N.div_ceil(2)]) {
        *sum = _mm512_dpbusd_epi32(*sum, xs, load(&w[..]));
    }
}

/// The sums `z` of 16 rows each, from their `rows`' starts and requantised ([`requantize`]).
/// One function for every panel width, so that `requantize` is inlined into one loop.
#[target_feature(enable = "avx512f")]
fn requantized(z: &mut [__m512i], rows: &[Vector]) {
    for (z, rows) in z.iter_mut().zip(rows) {
        *z = requantize(_mm512_add_epi32(*z, load(&rows.start)), rows);
    }
}

/// The first 16 values of `values`, as one vector. Panics if there are fewer.
#[inline]
#[target_feature(enable = "avx512f")]
fn load<T: Copy>(values: &[T]) -> __m512i {
    let values = &values[..64 / size_of::<T>()];
    // SAFETY: `values` is the 64 bytes read; no alignment is required.
    unsafe { _mm512_loadu_si512(values.as_ptr().cast()) }
}

/// One row's integers: where its sum starts, its multiplier and its shift.
pub(super) struct Row {
    /// The bias plus [`Rows`]' offset: where the row's sum of products starts.
    pub(super) start: i32,
    /// The 32-bit multiplier, as [`namegen_model::q8::requantize`] takes it.
    pub(super) multiplier: i32,
    /// The shift, as stored (not clamped).
    pub(super) shift: i8,
}

/// The integers of the 16 rows of one vector of sums, laid out once from each row's [`Row`]:
/// 8 bytes a row, against 100 bytes of weights a row of the default model, because a forward
/// pass (about 57 KB) does not fit a 32 KB L1 cache and each byte read costs more than the few
/// instructions that derive the shifts from the stored one. Lanes past the panel's rows are
/// zero.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
pub(super) struct Vector {
    /// Where each row's sum starts.
    start: [i32; LANES],
    /// The multiplier, whose low 16 bits are zero ([`namegen_model::q8::widen_multiplier`]),
    /// with the shift in its low [`SHIFT_BITS`], clamped to the range the loader admits
    /// ([`MIN_SHIFT`]`..=`[`MAX_SHIFT`]).
    scale: [i32; LANES],
}

/// The bits of a [`Vector`]'s `scale` that hold the shift.
const SHIFT_MASK: i32 = (1 << SHIFT_BITS) - 1;

// The shift fits in the multiplier's zero bits.
const _: () = assert!(SHIFT_BITS <= MULTIPLIER_LOW_BITS);

impl Vector {
    /// The vectors of a layer of `rows` rows, whose row `r` is `row(r)`: panel by panel of
    /// [`PANEL`] blocks of 8 rows, [`VECTORS`] per panel, as [`panel`] reads them.
    pub(super) fn layer(rows: usize, row: impl Fn(usize) -> Row) -> Vec<Self> {
        let mut vectors = Vec::new();
        for first in (0..rows).step_by(PANEL * ROWS) {
            let panel = (rows - first).min(PANEL * ROWS);
            for k in 0..VECTORS {
                let lanes = (k * LANES..panel.min((k + 1) * LANES)).map(|r| row(first + r));
                vectors.push(Self::new(lanes));
            }
        }
        vectors
    }

    /// The vector of up to 16 `rows`, the lanes past them zero. Panics on a multiplier whose
    /// low [`SHIFT_BITS`] are not zero, which the shift would overwrite.
    pub(super) fn new(rows: impl Iterator<Item = Row>) -> Self {
        let mut vector = Self::default();
        for (lane, row) in rows.enumerate() {
            assert_eq!(row.multiplier & SHIFT_MASK, 0, "a widened multiplier");
            let shift = row.shift.clamp(MIN_SHIFT, MAX_SHIFT);
            vector.start[lane] = row.start;
            vector.scale[lane] = row.multiplier | (i32::from(shift) & SHIFT_MASK);
        }
        vector
    }
}

/// [`super::requantize`] in 16 lanes: [`namegen_model::q8::requantize`] of `acc` and each
/// lane's row of `rows`, lane by lane, by the same steps.
#[inline]
#[target_feature(enable = "avx512f")]
fn requantize(acc: __m512i, rows: &Vector) -> __m512i {
    let one = _mm512_set1_epi32(1);
    let zero = _mm512_setzero_si512();
    let scale = load(&rows.scale);
    const HIGH: u32 = 32 - SHIFT_BITS;
    let multiplier = _mm512_and_si512(scale, _mm512_set1_epi32(!SHIFT_MASK));
    let shift = _mm512_srai_epi32::<HIGH>(_mm512_slli_epi32::<HIGH>(scale));
    let right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    // `2^right - 1`, the bits the right shift drops, and half of it, the largest remainder
    // that rounds down (for a non-negative quotient).
    let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    let half = _mm512_srli_epi32::<1>(mask);
    let a = _mm512_sllv_epi32(acc, _mm512_max_epi32(shift, zero));
    let nudge = _mm512_set1_epi64(1 << 30);
    let even = _mm512_add_epi64(_mm512_mul_epi32(a, multiplier), nudge);
    // The odd lanes, and their multipliers, moved down by shuffles, which run beside the
    // multiplications.
    let odd_a = _mm512_shuffle_epi32::<0b11_11_01_01>(a);
    let odd_multiplier = _mm512_shuffle_epi32::<0b11_11_01_01>(multiplier);
    let odd = _mm512_add_epi64(_mm512_mul_epi32(odd_a, odd_multiplier), nudge);
    // Bits 31..62 of each: shifted down into the low half of each even lane, up into the
    // high half of each odd one (`super::requantize` says why these are the high product).
    let high = _mm512_mask_blend_epi32(
        0b1010_1010_1010_1010,
        _mm512_srli_epi64::<31>(even),
        _mm512_slli_epi64::<1>(odd),
    );
    let remainder = _mm512_and_si512(high, mask);
    // The threshold is half the mask, plus 1 for a negative `high`.
    let negative = _mm512_cmplt_epi32_mask(high, zero);
    let threshold = _mm512_mask_add_epi32(half, negative, half, one);
    let up = _mm512_cmpgt_epi32_mask(remainder, threshold);
    let quotient = _mm512_srav_epi32(high, right);
    _mm512_mask_add_epi32(quotient, up, quotient, one)
}

/// The 64 int32 of `z` (rows in order, 16 per vector) as int8 with signed saturation, in
/// order: each clamped to `-128..=127`, as the portable code clamps before the lookup.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn narrow(z: [__m512i; 4]) -> __m512i {
    // Per 128-bit lane `l`: z[0]'s 4 lanes of that part, then z[1]'s, z[2]'s and z[3]'s, as
    // 4 bytes each; the permutation puts each vector's 16 back together.
    let bytes = _mm512_packs_epi16(
        _mm512_packs_epi32(z[0], z[1]),
        _mm512_packs_epi32(z[2], z[3]),
    );
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_epi32(order, bytes)
}

/// The model's `tanh` table for `vpermi2b`, each entry plus 128 (the next layer's unsigned
/// input): entries 0 to 127 (codes -128 to -1), then 128 to 255 (codes 0 to 127), 64 per
/// vector.
struct Table([__m512i; 4]);

impl Table {
    /// `table`, loaded and biased.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(table: &[u8; TANH_TABLE_LEN]) -> Self {
        let (quarters, _) = table.as_chunks::<64>();
        let bias = _mm512_set1_epi32(0x8080_8080_u32 as i32);
        Self(core::array::from_fn(|i| {
            _mm512_xor_si512(load(&quarters[i]), bias)
        }))
    }

    /// The biased entries of the 64 int8 codes `codes`: `vpermi2b` reads each code's low 7
    /// bits, which are those of its entry's index `code + 128`, and the sign picks the half.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn lookup(&self, codes: __m512i) -> __m512i {
        let [t0, t1, t2, t3] = self.0;
        let negative = _mm512_movepi8_mask(codes);
        let low = _mm512_permutex2var_epi8(t0, codes, t1);
        let high = _mm512_permutex2var_epi8(t2, codes, t3);
        _mm512_mask_blend_epi8(negative, high, low)
    }
}

#[cfg(test)]
mod tests {
    use core::arch::x86_64::_mm512_storeu_si512;

    use std::vec::Vec;

    use super::{Row, Vector, load, requantize};
    use crate::Kernels;

    /// [`super::requantize`] of 16 lanes at once against the portable
    /// [`namegen_model::q8::requantize`] of each, on [`super::super::tests::cases`] with their
    /// multipliers narrowed to the 16 bits a file stores.
    #[test]
    fn requantize_is_the_portable_one() {
        if Kernels::detect() != Kernels::Avx512Vnni {
            return;
        }
        // The multipliers a q8 file can hold: 16 bits, widened.
        let cases: Vec<_> = super::super::tests::cases()
            .into_iter()
            .map(|(acc, multiplier, shift)| (acc, (multiplier >> 16).max(1) << 16, shift))
            .collect();
        for sixteen in cases.chunks(16) {
            let rows = sixteen.iter().map(|&(_, multiplier, shift)| Row {
                start: 0,
                multiplier,
                shift,
            });
            let rows = Vector::new(rows);
            let acc: [i32; 16] = core::array::from_fn(|i| sixteen.get(i).map_or(0, |c| c.0));
            let mut got = [0i32; 16];
            // SAFETY: `Kernels::detect` found AVX-512 F above; `got` is the 64 bytes stored,
            // no alignment is required.
            unsafe {
                let z = requantize(load(&acc[..]), &rows);
                _mm512_storeu_si512(got.as_mut_ptr().cast(), z);
            }
            for (&(acc, multiplier, shift), got) in sixteen.iter().zip(got) {
                let want = namegen_model::q8::requantize(acc, multiplier, shift);
                assert_eq!(got, want, "{acc} {multiplier} {shift}");
            }
        }
    }
}
