//! The q8 integer network (`crate::q8`) with AVX2: the int8 products 32 at a time, then each
//! layer's requantisation, clamp and `tanh` lookup 8 rows at a time, the same integers as the
//! portable code; from the weights in place, or from a [`Packed`] copy.
//!
//! Why it is the same: integer addition modulo 2^32 is associative and commutative, so any
//! order of the same exact products gives the portable code's wrapping sum, provided no step
//! saturates or rounds. The products come from `vpmaddubsw`, which multiplies unsigned by
//! signed bytes and adds pairs into int16 with saturation; it gets `|x|` as the unsigned
//! operand and `w` with the sign of `x` (`vpsignb`) as the signed one, so each pair is
//! `|x0| sgn(x0) w0 + |x1| sgn(x1) w1 = x0 w0 + x1 w1`. No step saturates:
//!
//! - `|x|` of any int8, -128 included, is at most 128 as an unsigned byte;
//! - the loader admits weight codes in `-127..=127` only (`LoadError::QuantOutOfRange`), so
//!   `-w` is an int8 too (`vpsignb` of -128 would wrap);
//! - a pair is then at most `2 * 128 * 127 = 32,512` in magnitude, within int16's 32,767;
//! - `vpmaddwd` by 1 widens the pairs to int32 exactly, and from there every addition wraps
//!   as the portable code's does.
//!
//! The inputs may thus be any int8 (the embedding and the `tanh` table hold `-127..=127`
//! anyway). The requantisation ([`requantize`]) is [`namegen_model::q8::requantize`] in
//! 32- and 64-bit lanes, for the multipliers and shifts the loader admits.
//!
//! In place, each row of a block of 8 has its own vector of sums, added across lanes at the
//! end; a row's last, partial chunk of 32 bytes is read forward, past the row's end, against
//! inputs padded with zeros, so the bytes past the row add nothing; where that read would pass
//! the end of the matrix, the row's last bytes are copied into a zeroed chunk instead. Packed,
//! each 32 bytes hold 4 columns of a block's 8 rows, multiplied by those 4 inputs in every
//! lane: each row's sum stays in its lane, no row has a partial chunk, and the bytes are read
//! front to back, a panel of up to 7 blocks ([`PANEL`]) at a time, so that each group of
//! inputs is broadcast once for 56 rows whose sums stay in registers.
//!
//! A layer's products are all summed before any is requantised ([`finish`]): the
//! requantisations of successive blocks are independent and overlap, and each hidden layer
//! writes the next one's codes directly, 32 at a time, narrowed to int8 with signed saturation
//! (the portable clamp) and looked up in the `tanh` table by 16 `vpshufb` ([`Table`]).
//!
//! Per product this costs half the instructions of the f32 kernel (`vpsignb`, `vpmaddubsw`,
//! `vpmaddwd` and `vpaddd` per 32 against a multiply and an add per 8): AVX2 has no int8
//! multiply-accumulate. Where the CPU has AVX-VNNI ([`crate::Kernels::Avx2Vnni`]), the
//! packed copy is read by [`products_vnni`] instead: one `vpdpbusd` per 32 products (its own
//! exactness argument is on it). The in-place read keeps the AVX2 products: only a packed view
//! carries the per-row sums that kernel needs.

use core::arch::x86_64::{
    __m128i, __m256i, _mm_loadu_si128, _mm256_abs_epi8, _mm256_add_epi32, _mm256_add_epi64,
    _mm256_adds_epu8, _mm256_and_si256, _mm256_blend_epi32, _mm256_broadcastsi128_si256,
    _mm256_cmpgt_epi32, _mm256_cvtepu16_epi32, _mm256_dpbusd_avx_epi32, _mm256_hadd_epi32,
    _mm256_loadu_si256, _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_max_epi32,
    _mm256_min_epi32, _mm256_mul_epi32, _mm256_or_si256, _mm256_packs_epi16, _mm256_packs_epi32,
    _mm256_permute2x128_si256, _mm256_permutevar8x32_epi32, _mm256_set1_epi8, _mm256_set1_epi16,
    _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_setr_epi32, _mm256_setzero_si256,
    _mm256_shuffle_epi8, _mm256_sign_epi8, _mm256_slli_epi32, _mm256_slli_epi64, _mm256_sllv_epi32,
    _mm256_srai_epi32, _mm256_srav_epi32, _mm256_srli_epi32, _mm256_srli_epi64,
    _mm256_storeu_si256, _mm256_sub_epi8, _mm256_sub_epi32, _mm256_xor_si256,
};
use core::mem::MaybeUninit;
use std::vec::Vec;

use namegen_model::config::MAX_WIDTH;
use namegen_model::q8::{MAX_SHIFT, MIN_SHIFT, MULTIPLIER_LOW_BITS, SHIFT_BITS, TANH_TABLE_LEN};

use super::Packed;
use crate::Kernels;
use crate::view::{Layer, ModelView};

/// Bytes of weights and inputs per vector: 32 products.
const CHUNK: usize = 32;

/// Rows computed together: their 8 sums are requantised at once.
const ROWS: usize = 8;

/// Columns per piece of a [`Packed`] q8 matrix: a vector holds 4 columns of 8 rows.
pub(crate) const GROUP: usize = CHUNK / ROWS;

/// Blocks of 8 rows whose sums the packed kernels keep in registers at once (a panel of
/// 56 rows; a hidden layer of the default model is two): each group of 4 inputs is broadcast
/// once for all of them, and AVX-VNNI's `vpdpbusd`, which takes 5 cycles before its sum is
/// ready for the next, has more independent sums than that to work on. Why not 13, a whole
/// hidden layer of the default model: AVX-512 requantises and looks up each panel as soon as
/// its products are summed, and the first panel's steps then run beside the second one's
/// products, where a single panel leaves them all between one layer's last product and the
/// next layer's first. Its pass measured about 12 % faster with 7 than with 13 (and faster
/// than with 6, 8, 9 or 10) on an AMD EPYC, where the AVX2 kernel, which sums a whole layer
/// before it requantises any, ran about as fast with either (1.5 % faster with 7).
const PANEL: usize = 7;

/// Pieces per group in a panel of `blocks` blocks: even, so that each group's pieces start
/// 64 bytes after the previous group's and AVX-512's reads of two blocks never straddle two
/// cache lines (an odd panel's last piece of each group is zeros, which no kernel reads).
pub(crate) const fn stride(blocks: usize) -> usize {
    blocks.next_multiple_of(2)
}

/// Pieces per group of a [`Packed`] q8 matrix of `blocks` blocks of 8 rows: each panel's
/// [`stride`].
pub(crate) const fn padded_blocks(blocks: usize) -> usize {
    blocks / PANEL * stride(PANEL) + stride(blocks % PANEL)
}

/// The index of the 32 bytes of block `block`, group `group` in a [`Packed`] q8 matrix of
/// `blocks` blocks of 8 rows and `groups` groups of 4 columns: panel by panel of [`PANEL`]
/// blocks (the last may have fewer), group by group within a panel, block by block within a
/// group (each group [`stride`] pieces long), so that each panel's kernel reads its weights
/// front to back.
pub(crate) fn piece(block: usize, group: usize, blocks: usize, groups: usize) -> usize {
    let first = block / PANEL * PANEL;
    let panel = (blocks - first).min(PANEL);
    padded_blocks(first) * groups + group * stride(panel) + (block - first)
}

/// The `N` pieces of each group of one panel of `N` blocks, `pieces` (as [`piece`] orders
/// them). Panics unless there are `groups` groups.
#[inline(always)]
fn by_group<const N: usize>(
    pieces: &[[u8; CHUNK]],
    groups: usize,
) -> impl Iterator<Item = &[[u8; CHUNK]; N]> {
    assert_eq!(
        pieces.len(),
        groups * stride(N),
        "a stride of pieces per group"
    );
    let whole = pieces.chunks_exact(stride(N));
    whole.map(|w| w.first_chunk::<N>().expect("N pieces in a stride"))
}

/// A q8 layer's per-row integers as the packed kernels read them, computed once when the
/// weights are packed.
#[derive(Default)]
pub(crate) struct Rows {
    /// `-128` times the row's sum of weight codes, the rows padded with zeros to whole blocks:
    /// where AVX-VNNI's sums start ([`products_vnni`]).
    offsets: Vec<i32>,
    /// Every row's integers as AVX-512 reads them, 16 rows per vector of a panel.
    vectors: Vec<avx512::Vector>,
}

impl Rows {
    /// `layer`'s, which must be q8.
    pub(crate) fn new(layer: &Layer<'_>) -> Self {
        let (rows, requant) = (layer.weight.rows(), &layer.requant);
        let offset = |row: usize| -> i32 {
            let codes = layer.weight.row_bytes(row).iter();
            -128 * codes.map(|&w| i32::from(w as i8)).sum::<i32>()
        };
        let blocks = rows.div_ceil(ROWS);
        let offsets: Vec<i32> = (0..blocks * ROWS)
            .map(|row| if row < rows { offset(row) } else { 0 })
            .collect();
        let row = |row: usize| avx512::Row {
            // Wrapping, as every addition of the sum wraps.
            start: requant.bias(row).wrapping_add(offsets[row]),
            multiplier: requant.multiplier(row),
            shift: requant.shift(row),
        };
        let vectors = avx512::Vector::layer(rows, row);
        Self { offsets, vectors }
    }
}

// `by_panel!` has one arm per panel width.
const _: () = assert!(PANEL == 7);

/// Calls `$kernel::<N>($args)` with `N` the number of blocks `$blocks` of a panel, 1 to
/// [`PANEL`]: each width is its own kernel, whose sums the compiler keeps in registers.
macro_rules! by_panel {
    ($blocks:expr, $kernel:ident($($arg:expr),*)) => {
        match $blocks {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            _ => unreachable!("a panel has 1 to PANEL blocks"),
        }
    };
}

mod avx512;

/// The logits after `context` into `logits`, exactly as [`crate::q8::logits`] computes them
/// (the same arguments, the same integers), with the model's
/// [`ModelView::kernels`]: the products by AVX-VNNI from a packed copy where the kernels are
/// [`Kernels::Avx2Vnni`], by AVX2 otherwise, and every layer's requantisation, clamp and
/// `tanh` lookup 8 rows at a time, the next layer's codes stored directly. Returns how many
/// logits were written. Panics (slice bounds) on buffers shorter than the model's widest
/// layer or symbols out of range, never reads outside them.
#[target_feature(enable = "avx2")]
pub(crate) fn logits<'b>(
    model: &ModelView<'_>,
    table: &[u8; TANH_TABLE_LEN],
    context: &[u8],
    mut x: &'b mut [i8],
    mut y: &'b mut [i8],
    logits: &mut [i32],
) -> usize {
    if let (Kernels::Avx512Vnni, Some(packed)) = (model.kernels(), model.packed.as_deref()) {
        // SAFETY: `avx512::logits` requires only that the CPU supports AVX2 and AVX-512 F, BW,
        // VNNI and VBMI; a view's kernels are `Kernels::Avx512Vnni` only when
        // `Kernels::detect` found them all.
        return unsafe { avx512::logits(model, packed, table, context, x, logits) };
    }
    crate::q8::embed(model, context, x);
    let table = Table::new(table);
    let vnni = model.kernels() == Kernels::Avx2Vnni;
    let mut width = model.config().input_width();
    let last = model.config().n_layers() - 1;
    let mut buffer = [MaybeUninit::<__m256i>::uninit(); MAX_WIDTH / ROWS];
    for (index, layer) in model.layers().enumerate() {
        let rows = layer.weight.rows();
        let sums = &mut buffer[..rows.div_ceil(ROWS)];
        for sum in sums.iter_mut() {
            sum.write(_mm256_setzero_si256());
        }
        // SAFETY: the loop above wrote every element.
        let sums = unsafe { sums.assume_init_mut() };
        let mut out = if index == last {
            Out::Logits(&mut logits[..rows])
        } else {
            Out::Codes {
                table: &table,
                codes: &mut y[..rows],
            }
        };
        let packed = model.packed.as_deref().and_then(|packed| packed.get(index));
        match packed {
            // SAFETY: `products_vnni` requires only that the CPU supports AVX2 and AVX-VNNI; a
            // view's kernels are `Kernels::Avx2Vnni` only when `Kernels::detect` found both.
            Some(packed) if vnni => unsafe { products_vnni(layer, packed, &x[..width], sums) },
            _ => products(layer, packed, &x[..width], sums),
        }
        finish(layer, sums, &mut out);
        if index != last {
            core::mem::swap(&mut x, &mut y);
        }
        width = rows;
    }
    width
}

/// Where a layer's requantised outputs go: a hidden layer's through the `tanh` table, as the
/// next layer's int8 codes; the output layer's as Q16 logits. Each slice
/// is as long as the layer has rows.
enum Out<'o> {
    Codes {
        table: &'o Table,
        codes: &'o mut [i8],
    },
    Logits(&'o mut [i32]),
}

/// The model's `tanh` table as `vpshufb` reads it: vector `k` holds entries `16 k` to
/// `16 k + 15` (codes `16 k - 128` onwards) in both 128-bit halves.
struct Table([__m256i; TANH_TABLE_LEN / 16]);

impl Table {
    /// `table`, laid out.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(table: &[u8; TANH_TABLE_LEN]) -> Self {
        let (sixteens, _) = table.as_chunks::<16>();
        Self(core::array::from_fn(|k| {
            // SAFETY: `sixteens[k]` is the 16 bytes read; no alignment is required.
            let half = unsafe { _mm_loadu_si128(sixteens[k].as_ptr().cast()) };
            _mm256_broadcastsi128_si256(half)
        }))
    }

    /// The entries of the 32 int8 codes `codes`, as the portable `table[(code + 128) as
    /// usize]`. Why not `vpgatherdd` 8 at a time: with this lookup, `Kernels::Avx2` one name
    /// at a time measured about 5 % faster on an AMD EPYC.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lookup(&self, codes: __m256i) -> __m256i {
        // `x` runs through each code's index minus `16 k`; adding 0x70 with unsigned
        // saturation leaves the top bit clear exactly where that is below 16, so `vpshufb`
        // takes entry `x` of vector `k` there and 0 everywhere else.
        let mut x = _mm256_xor_si256(codes, _mm256_set1_epi8(i8::MIN));
        let mut entries = _mm256_setzero_si256();
        for sixteen in &self.0 {
            let at = _mm256_adds_epu8(x, _mm256_set1_epi8(0x70));
            entries = _mm256_or_si256(entries, _mm256_shuffle_epi8(*sixteen, at));
            x = _mm256_sub_epi8(x, _mm256_set1_epi8(16));
        }
        entries
    }
}

/// The 32 int32 of `z` (rows in order, 8 per vector) as int8 with signed saturation, in
/// order: each clamped to `-128..=127`, as the portable code clamps before the lookup.
#[inline]
#[target_feature(enable = "avx2")]
fn narrow(z: [__m256i; 4]) -> __m256i {
    // Per 128-bit half `h`: 4 bytes of each of z[0] to z[3], rows `4 h` to `4 h + 3`; the
    // permutation puts each vector's 8 back together.
    let bytes = _mm256_packs_epi16(
        _mm256_packs_epi32(z[0], z[1]),
        _mm256_packs_epi32(z[2], z[3]),
    );
    _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Writes into `sums` (one vector per block of 8 rows) the sums of products of every row of
/// `layer` and the int8 inputs `x`, lane `r` of block `b` for row `8 b + r`; lanes past the
/// last row are left as they were. Reads the weights from `packed`, [`Packed::new`] of
/// `layer`'s, when given, and in place otherwise. Panics if `x` is not one input per column,
/// `packed` has another shape or `sums` is not one vector per block.
#[target_feature(enable = "avx2")]
fn products(layer: &Layer<'_>, packed: Option<&Packed>, x: &[i8], sums: &mut [__m256i]) {
    let matrix = &layer.weight;
    assert_eq!(x.len(), matrix.cols(), "one input per column");
    assert_eq!(
        sums.len(),
        matrix.rows().div_ceil(ROWS),
        "one sum per block"
    );
    match packed {
        Some(packed) => {
            let shape = (matrix.rows(), matrix.cols(), matrix.dtype());
            assert_eq!(packed.shape(), shape, "packed from the layer");
            from_packed(packed.data(), x, sums);
        }
        None => in_place(layer, x, sums),
    }
}

/// [`products`] from the packed weights `data`: per panel of blocks of 8 rows, each group of
/// 4 inputs (broadcast to every row) times each block's 4 columns, so every row's sum stays
/// in its own lane and needs no horizontal addition; the inputs past the last column are
/// zeros, as are the packed weights there.
#[inline]
#[target_feature(enable = "avx2")]
fn from_packed(data: &[u8], x: &[i8], sums: &mut [__m256i]) {
    let mut buffer = [MaybeUninit::<u8>::uninit(); MAX_WIDTH + GROUP];
    let groups = groups(x, 0, &mut buffer);
    let (pieces, last) = data.as_chunks::<CHUNK>();
    debug_assert!(last.is_empty());
    let panels = pieces.chunks(stride(PANEL) * groups.len());
    for (sums, pieces) in sums.chunks_mut(PANEL).zip(panels) {
        by_panel!(sums.len(), panel_avx2(pieces, groups, sums));
    }
}

/// The sums of products of the `N` blocks of one panel, `pieces` (as [`piece`] orders
/// them), and the `groups` of 4 inputs, into `sums`. Panics unless there are [`stride`]`(N)`
/// pieces per group and `N` sums.
#[inline]
#[target_feature(enable = "avx2")]
fn panel_avx2<const N: usize>(
    pieces: &[[u8; CHUNK]],
    groups: &[[u8; GROUP]],
    sums: &mut [__m256i],
) {
    let sums: &mut [__m256i; N] = sums.try_into().expect("N sums");
    let mut acc = [_mm256_setzero_si256(); N];
    for (w, xs) in by_group::<N>(pieces, groups.len()).zip(groups) {
        let xs = _mm256_set1_epi32(i32::from_le_bytes(*xs));
        let magnitudes = _mm256_abs_epi8(xs);
        for (acc, w) in acc.iter_mut().zip(w) {
            let pairs = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(load(w), xs));
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
        }
    }
    *sums = acc;
}

/// The inputs `x` as bytes XOR `flip`, padded to whole groups of 4 with `flip` (an input of
/// 0), written into `buffer`.
#[inline]
#[target_feature(enable = "avx2")]
fn groups<'b>(x: &[i8], flip: u8, buffer: &'b mut [MaybeUninit<u8>]) -> &'b [[u8; GROUP]] {
    let len = x.len().next_multiple_of(GROUP);
    for (byte, &v) in buffer.iter_mut().zip(x) {
        byte.write(v as u8 ^ flip);
    }
    for byte in &mut buffer[x.len()..len] {
        byte.write(flip);
    }
    // SAFETY: the loops above wrote the first `len` bytes.
    let (groups, _) = unsafe { buffer[..len].assume_init_ref() }.as_chunks::<GROUP>();
    groups
}

/// [`products`] from `packed` with AVX-VNNI: per block of 8 rows, as [`from_packed`], but each
/// 32 products in one `vpdpbusd`, which multiplies unsigned by signed bytes and adds each
/// lane's 4 products to its int32 without saturating.
///
/// Why it is the same: the unsigned operand is `x + 128` (0..=255, the sign bit flipped) and
/// the sum starts from `-128 * sum_j w[r, j]` ([`Rows::offsets`]), so each row gets
/// `-128 sum w + sum w (x + 128) = sum w x`, modulo 2^32 like the portable code's wrapping
/// sum. Nothing rounds: a lane's 4 products are each at most `255 * 128` in magnitude, so
/// their sum (`130,560` at most) is exact in the instruction's int32 before it wraps into the
/// lane, and the offset, at most `128 * 127 * 4096 < 2^31`, is exact in int32 too.
///
/// Panics if `x` is not one input per column, or `packed` has another shape.
#[target_feature(enable = "avx2,avxvnni")]
fn products_vnni(layer: &Layer<'_>, packed: &Packed, x: &[i8], sums: &mut [__m256i]) {
    let matrix = &layer.weight;
    assert_eq!(x.len(), matrix.cols(), "one input per column");
    assert_eq!(
        sums.len(),
        matrix.rows().div_ceil(ROWS),
        "one sum per block"
    );
    let shape = (matrix.rows(), matrix.cols(), matrix.dtype());
    assert_eq!(packed.shape(), shape, "packed from the layer");
    let mut buffer = [MaybeUninit::<u8>::uninit(); MAX_WIDTH + GROUP];
    let groups = groups(x, 0x80, &mut buffer);
    let (pieces, last) = packed.data().as_chunks::<CHUNK>();
    debug_assert!(last.is_empty());
    let panels = pieces.chunks(stride(PANEL) * groups.len());
    let offsets = &packed.rows_q8().offsets[..sums.len() * ROWS];
    let offsets = offsets.as_chunks::<ROWS>().0.chunks(PANEL);
    for ((sums, pieces), offsets) in sums.chunks_mut(PANEL).zip(panels).zip(offsets) {
        by_panel!(sums.len(), panel_vnni(pieces, offsets, groups, sums));
    }
}

/// [`panel_avx2`] with AVX-VNNI: the sums of products of the `N` blocks of one panel,
/// `pieces`, and the biased `groups` of 4 inputs, each block's sums started from its
/// `offsets` ([`products_vnni`]). Panics unless there are [`stride`]`(N)` pieces per group,
/// `N` blocks of offsets and `N` sums.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn panel_vnni<const N: usize>(
    pieces: &[[u8; CHUNK]],
    offsets: &[[i32; ROWS]],
    groups: &[[u8; GROUP]],
    sums: &mut [__m256i],
) {
    let offsets: &[[i32; ROWS]; N] = offsets.try_into().expect("N blocks of offsets");
    let sums: &mut [__m256i; N] = sums.try_into().expect("N sums");
    let mut acc = [_mm256_setzero_si256(); N];
    for (acc, offsets) in acc.iter_mut().zip(offsets) {
        // SAFETY: `offsets` is 8 int32, the 32 bytes read; no alignment is required.
        *acc = unsafe { _mm256_loadu_si256(offsets.as_ptr().cast()) };
    }
    for (w, xs) in by_group::<N>(pieces, groups.len()).zip(groups) {
        let xs = _mm256_set1_epi32(i32::from_le_bytes(*xs));
        for (acc, w) in acc.iter_mut().zip(w) {
            *acc = _mm256_dpbusd_avx_epi32(*acc, xs, load(w));
        }
    }
    *sums = acc;
}

/// [`products`] from the weights in place: per block of 8 rows, each row's products 32 at a
/// time in its own vector, added up across lanes at the end ([`reduce`]).
#[inline]
#[target_feature(enable = "avx2")]
fn in_place(layer: &Layer<'_>, x: &[i8], sums: &mut [__m256i]) {
    let matrix = &layer.weight;
    let (rows, cols) = (matrix.rows(), matrix.cols());
    let data = matrix.bytes();
    assert_eq!(data.len(), rows * cols, "one byte per weight");
    let (chunks, tail) = x.as_chunks::<CHUNK>();
    let whole = chunks.len() * CHUNK;
    let mut x_last = [0i8; CHUNK];
    x_last[..tail.len()].copy_from_slice(tail);
    let x_last = load(&x_last.map(|v| v as u8));
    // Where each row of a block starts, from the block's first row.
    let mut offsets = [0; ROWS];
    for (r, offset) in offsets.iter_mut().enumerate() {
        *offset = r * cols;
    }
    for (first, block) in (0..rows).step_by(ROWS).zip(sums) {
        let left = rows - first;
        if left < ROWS {
            // The last block: its rows past the last repeat it; only the real ones are set.
            for (r, offset) in offsets.iter_mut().enumerate() {
                *offset = r.min(left - 1) * cols;
            }
        }
        let base = first * cols;
        let mut sums = [_mm256_setzero_si256(); ROWS];
        for (i, xs) in chunks.iter().enumerate() {
            // SAFETY: `xs` is the 32 bytes read; no alignment is required.
            let xs = unsafe { _mm256_loadu_si256(xs.as_ptr().cast()) };
            for (sum, &offset) in sums.iter_mut().zip(&offsets) {
                // SAFETY: chunk `i` of the row that starts at `base + offset` ends at
                // `base + offset + (i + 1) * CHUNK <= base + offset + cols`, the row's end,
                // within the `rows * cols` bytes.
                let w = unsafe {
                    _mm256_loadu_si256(data.as_ptr().add(base + offset + i * CHUNK).cast())
                };
                *sum = multiply_add(*sum, w, xs);
            }
        }
        if !tail.is_empty() {
            // The last row of a block starts last: if its last chunk can be read forward, all
            // can; otherwise (at the end of the matrix) the rows' last bytes are copied.
            let at = base + whole;
            if at + offsets[ROWS - 1] + CHUNK <= data.len() {
                for (sum, &offset) in sums.iter_mut().zip(&offsets) {
                    // SAFETY: `at + offset + CHUNK <= data.len()`, checked above for the largest
                    // offset.
                    let w = unsafe { _mm256_loadu_si256(data.as_ptr().add(at + offset).cast()) };
                    *sum = multiply_add(*sum, w, x_last);
                }
            } else {
                for (sum, &offset) in sums.iter_mut().zip(&offsets) {
                    let w = padded(&data[at + offset..at + offset + tail.len()]);
                    *sum = multiply_add(*sum, load(&w), x_last);
                }
            }
        }
        *block = reduce(sums);
    }
}

/// Requantises the sums of products `sums` of `layer`'s rows (block `b`'s lane `r` for row
/// `8 b + r`) and writes them into `out`. One pass over all the blocks once their products are
/// done, so that each block's requantisation and table lookup overlap the next ones'.
#[inline]
#[target_feature(enable = "avx2")]
fn finish(layer: &Layer<'_>, sums: &[__m256i], out: &mut Out<'_>) {
    let [bias_shift, multiplier] = layer.requant.bytes();
    let requantized = sums.iter().enumerate().map(|(block, &sums)| {
        let first = block * ROWS;
        let words = load(&bytes_at(bias_shift, 4 * first));
        let acc = _mm256_add_epi32(sums, _mm256_srai_epi32::<{ SHIFT_BITS as i32 }>(words));
        let multipliers = multipliers(&bytes_at(multiplier, 2 * first));
        (first, requantize(acc, multipliers, shifts(words)))
    });
    match out {
        Out::Codes { table, codes } => {
            // 4 blocks, 32 codes, at a time; past the last block, zeros whose codes are not
            // written.
            let mut blocks = requantized.map(|(_, z)| z);
            for codes in codes.chunks_mut(4 * ROWS) {
                let mut z = [_mm256_setzero_si256(); 4];
                for (z, block) in z.iter_mut().zip(&mut blocks) {
                    *z = block;
                }
                let mut entries = [0i8; 4 * ROWS];
                // SAFETY: `entries` is the 32 bytes stored; no alignment is required.
                unsafe {
                    _mm256_storeu_si256(entries.as_mut_ptr().cast(), table.lookup(narrow(z)));
                }
                codes.copy_from_slice(&entries[..codes.len()]);
            }
        }
        Out::Logits(logits) => {
            for (first, z) in requantized {
                let mut logit = [0i32; ROWS];
                // SAFETY: `logit` is 8 i32, the 32 bytes stored; no alignment is required.
                unsafe { _mm256_storeu_si256(logit.as_mut_ptr().cast(), z) };
                put(logits, first, logit);
            }
        }
    }
}

/// `values` into `out` from `first` on, as many as fit (a block's rows past the layer's last
/// are not written).
#[inline(always)]
fn put<T: Copy>(out: &mut [T], first: usize, values: [T; ROWS]) {
    match out.get_mut(first..first + ROWS) {
        Some(whole) => whole.copy_from_slice(&values),
        None => {
            let out = &mut out[first..];
            let n = out.len();
            out.copy_from_slice(&values[..n]);
        }
    }
}

/// The `N` bytes of `bytes` from `at` on where there are that many, read in place; otherwise
/// those up to the end, then zeros ([`padded`]).
#[inline(always)]
fn bytes_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    match bytes.get(at..at + N).map(<[u8; N]>::try_from) {
        Some(Ok(whole)) => whole,
        _ => padded(&bytes[at..]),
    }
}

/// The fewer than `N` `bytes`, then zeros: a read at the end of a tensor, once per layer,
/// kept out of the loop (a call there would make the sums leave their registers).
#[cold]
#[inline(never)]
fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out[..bytes.len()].copy_from_slice(bytes);
    out
}

/// `sum` plus the products of the 32 weights `w` and inputs `x`, in 8 int32 lanes (see the
/// module documentation for why nothing saturates).
#[inline]
#[target_feature(enable = "avx2")]
fn multiply_add(sum: __m256i, w: __m256i, x: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w, x));
    _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// The 32 bytes of `bytes`, as one vector.
#[inline]
#[target_feature(enable = "avx2")]
fn load(bytes: &[u8; CHUNK]) -> __m256i {
    // SAFETY: `bytes` is the 32 bytes read; no alignment is required.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// The shifts of the 8 `bias_shift` words `words` (each one's low byte, sign-extended), clamped
/// to the range the loader admits ([`MIN_SHIFT`]`..=`[`MAX_SHIFT`]).
#[inline]
#[target_feature(enable = "avx2")]
fn shifts(words: __m256i) -> __m256i {
    const HIGH: i32 = 32 - SHIFT_BITS as i32;
    let wide = _mm256_srai_epi32::<HIGH>(_mm256_slli_epi32::<HIGH>(words));
    let wide = _mm256_max_epi32(wide, _mm256_set1_epi32(i32::from(MIN_SHIFT)));
    _mm256_min_epi32(wide, _mm256_set1_epi32(i32::from(MAX_SHIFT)))
}

/// The 8 int16 multipliers in `bytes`, widened to the int32 ones of
/// [`namegen_model::q8::requantize`] ([`namegen_model::q8::widen_multiplier`]).
#[inline]
#[target_feature(enable = "avx2")]
fn multipliers(bytes: &[u8; 2 * ROWS]) -> __m256i {
    // SAFETY: `bytes` is the 16 bytes read; no alignment is required.
    let halves: __m128i = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
    _mm256_slli_epi32::<{ MULTIPLIER_LOW_BITS as i32 }>(_mm256_cvtepu16_epi32(halves))
}

/// Row `r`'s sum of the 8 lanes of `s[r]` in lane `r`; any order gives the same wrapping sum.
#[inline]
#[target_feature(enable = "avx2")]
fn reduce(s: [__m256i; ROWS]) -> __m256i {
    // Per 128-bit half: rows 0..3, then 4..7, each the sum of that half's 4 lanes.
    let low = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    let high = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(low, high),
        _mm256_permute2x128_si256::<0x31>(low, high),
    )
}

/// [`namegen_model::q8::requantize`] of 8 lanes: `acc`, `multiplier` (positive) and `shift`
/// (in range), lane by lane.
///
/// The high multiplication's `(p + nudge) / 2^31`, truncated, with the nudge `2^30` for
/// `p >= 0` and `1 - 2^30` otherwise, is `floor((p + 2^30) / 2^31)` in both cases (for `p < 0`
/// the truncation of a negative quotient adds `2^31 - 1` before flooring), and that fits
/// int32 for a positive multiplier, so it is bits 31 to 62 of `p + 2^30`: no 64-bit
/// arithmetic shift (which AVX2 lacks) is needed. The division by `2^right` that rounds half
/// away from zero is the portable code's, in 32-bit lanes: its remainder and threshold are
/// non-negative and its quotient fits int32.
#[inline]
#[target_feature(enable = "avx2")]
fn requantize(acc: __m256i, multiplier: __m256i, shift: __m256i) -> __m256i {
    let zero = _mm256_setzero_si256();
    let left = _mm256_max_epi32(shift, zero);
    let right = _mm256_sub_epi32(zero, _mm256_min_epi32(shift, zero));
    // Within int32 for a model the loader admits; wraps like `wrapping_shl` otherwise.
    let a = _mm256_sllv_epi32(acc, left);
    let nudge = _mm256_set1_epi64x(1 << 30);
    // The even lanes' products, then the odd lanes' (moved down), each in 64 bits.
    let even = _mm256_add_epi64(_mm256_mul_epi32(a, multiplier), nudge);
    let odd = _mm256_mul_epi32(
        _mm256_srli_epi64::<32>(a),
        _mm256_srli_epi64::<32>(multiplier),
    );
    let odd = _mm256_add_epi64(odd, nudge);
    // Bits 31..62: shifted down into the low half of each even lane, up into the high half
    // of each odd one.
    let high = _mm256_blend_epi32::<0b1010_1010>(
        _mm256_srli_epi64::<31>(even),
        _mm256_slli_epi64::<1>(odd),
    );
    let mask = _mm256_sub_epi32(
        _mm256_sllv_epi32(_mm256_set1_epi32(1), right),
        _mm256_set1_epi32(1),
    );
    let remainder = _mm256_and_si256(high, mask);
    // `cmpgt` gives -1 where true: subtracting it adds 1.
    let negative = _mm256_cmpgt_epi32(zero, high);
    let threshold = _mm256_sub_epi32(_mm256_srli_epi32::<1>(mask), negative);
    let up = _mm256_cmpgt_epi32(remainder, threshold);
    _mm256_sub_epi32(_mm256_srav_epi32(high, right), up)
}

#[cfg(test)]
mod tests {
    use core::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_storeu_si256};
    use std::vec;
    use std::vec::Vec;

    use namegen_model::Rng;
    use namegen_model::q8::{MAX_SHIFT, MIN_SHIFT};

    use crate::Kernels;

    /// [`super::requantize`] of 8 lanes at once against the portable
    /// [`namegen_model::q8::requantize`] of each.
    fn check(cases: &[(i32, i32, i8)]) {
        for eight in cases.chunks(8) {
            let lanes = |f: fn(&(i32, i32, i8)) -> i32| -> [i32; 8] {
                core::array::from_fn(|i| eight.get(i).map_or(0, f))
            };
            let (acc, multiplier, shift) = (lanes(|c| c.0), lanes(|c| c.1), lanes(|c| c.2.into()));
            let mut got = [0i32; 8];
            // SAFETY: the caller checked that the CPU runs AVX2; every load and store is of
            // 8 int32 arrays, no alignment is required.
            unsafe {
                let load = |v: &[i32; 8]| -> __m256i { _mm256_loadu_si256(v.as_ptr().cast()) };
                let z = super::requantize(load(&acc), load(&multiplier), load(&shift));
                _mm256_storeu_si256(got.as_mut_ptr().cast(), z);
            }
            for (&(acc, multiplier, shift), got) in eight.iter().zip(got) {
                let want = namegen_model::q8::requantize(acc, multiplier, shift);
                assert_eq!(got, want, "{acc} {multiplier} {shift}");
            }
        }
    }

    /// Every rounding case of both steps, the extremes of int32, and random operands in the
    /// domain the loader guarantees (a positive multiplier, a shift in range, `acc` shifted
    /// left within int32): `(acc, multiplier, shift)`.
    pub(super) fn cases() -> Vec<(i32, i32, i8)> {
        let mut cases = vec![
            (i32::MAX, i32::MAX, 0),
            (i32::MIN, i32::MAX, 0),
            (i32::MIN, 1, 0),
            (i32::MIN + 1, 1, -31),
            (i32::MAX, 1 << 30, -31),
            (1, i32::MAX, 30),
        ];
        // Ties of the high multiplication (a product of 2^30 times an odd number) and of the
        // division by a power of two (multiplier 2^30 halves `acc` exactly).
        for acc in -64..=64 {
            for shift in [-3, -2, -1, 0, 1] {
                cases.push((acc, 1 << 30, shift));
                cases.push((acc, 3 << 29, shift));
            }
        }
        let mut rng = Rng::new(8);
        for _ in 0..200_000 {
            let shift =
                (rng.below((MAX_SHIFT - MIN_SHIFT + 1) as u32) as i32 + i32::from(MIN_SHIFT)) as i8;
            let left = shift.max(0) as u32;
            // Small enough that the left shift keeps it within int32.
            let acc = (rng.next_u32() as i32) >> (left + 1 + rng.below(31)).min(31);
            let multiplier = (rng.next_u32() >> 1).max(1) as i32;
            cases.push((acc, multiplier, shift));
        }
        cases
    }

    #[test]
    fn requantize_is_the_portable_one() {
        if !Kernels::detect().avx2() {
            return;
        }
        check(&cases());
    }
}
