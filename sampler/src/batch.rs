//! Many names in flight at once, for throughput on the host.
//!
//! Up to `batch` names advance together. Each step looks every name's context up in a cache
//! of logits and their temperature-1 softmax weights (the `expf` every draw starts from); the
//! contexts not found there (each only once, however many names share it) are
//! embedded into groups of [`GROUP`], then each layer multiplies every group with
//! [`crate::Matrix::matmul_group`], whose vector registers run across the contexts of a group
//! (activations are kept transposed, `[width][GROUP]`), so each weight is read once per group
//! and no context needs a horizontal sum. On x86_64 hosts with AVX2 the weights are first
//! decoded to f32 and the product runs in the AVX2 group kernel of `crate::avx`: the same
//! bits, 7 to 32 % faster without the cache than the portable kernel on an AVX2 machine, and 6
//! to 19 % faster than the portable kernel compiled for AVX-512 on an AVX-512 one. A name that
//! ends leaves its slot and the next name takes it, so the batch stays full.
//!
//! The cache is exact: the logits are a pure function of the context (`block_size` symbols),
//! and the arithmetic for each context is exactly the unbatched one (same dot-product order,
//! same `tanh`), whichever lane or step computes it. Each name then draws from its own stream,
//! so the names are bit for bit those of [`crate::Sampler::name_at`], whatever the batch size
//! and the cache size. Every name starts from the same all-`.` context and common prefixes
//! repeat, so the more names one call generates, the more of their contexts are found: the
//! default 27-symbol, 3-symbol-context model has only 19,683 contexts in all.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::vec;
use std::vec::Vec;

use namegen_model::Dtype;
use namegen_model::config::MAX_BLOCK_SIZE;

use crate::sample::{DEFAULT_NAME_BYTES, InFlight, Name, SampleError, Settings, Step, validate};

use crate::tensor::{GROUP, Matrix, Vector};
use crate::view::{Layer, ModelView};

/// What [`generate_batched`] keeps per context, in bytes: 8 MiB, every context of the default
/// model (19,683 of 27 logits and 27 weights in f32: 4.3 MB) or 8,160 contexts of a
/// 128-symbol one. The index adds about 32 bytes per context.
pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;

/// A good `batch` for [`generate_batched`] (any value gives the same names): with 256 names in
/// flight each step has enough contexts the cache has not seen to fill the groups of
/// 16 the kernel multiplies at once (for 4,096 names of the default model, 64 in flight run twice the kernel work).
pub const DEFAULT_BATCH: usize = 256;

/// Names `first..first + count` of `settings`, up to `batch` of them in flight at a time
/// (rounded up to a multiple of 16, the kernel's group); the same names, in the same order, as
/// [`crate::Sampler::name_at`] gives one by one. Each [`Name`] carries its text, its
/// log-likelihood under the model and whether it was cut at `max_len`: what a command-line
/// program prints.
///
/// Logits are memoised per context for the duration of the call, up to
/// [`DEFAULT_CACHE_BYTES`]; see [`generate_batched_with_cache`].
///
/// The buffers are sized by the model (no width limit), so only the settings can be wrong.
pub fn generate_batched(
    model: &ModelView<'_>,
    settings: &Settings<'_>,
    first: u64,
    count: usize,
    batch: usize,
) -> Result<Vec<Name<DEFAULT_NAME_BYTES>>, SampleError> {
    generate_batched_with_cache(model, settings, first, count, batch, DEFAULT_CACHE_BYTES)
}

/// [`generate_batched`] with the cache holding at most `cache_bytes` (`8 * vocab_size + 4`
/// bytes per context: the logits, their temperature-1 weights and the largest logit, plus
/// about 32 bytes of index); when a step would
/// overflow it, the cache is emptied and refills. With `cache_bytes` 0 nothing is memoised
/// and every name's every step runs the model: the compute-only speed, for benchmarks. The
/// names are the same whatever `cache_bytes` is.
pub fn generate_batched_with_cache(
    model: &ModelView<'_>,
    settings: &Settings<'_>,
    first: u64,
    count: usize,
    batch: usize,
    cache_bytes: usize,
) -> Result<Vec<Name<DEFAULT_NAME_BYTES>>, SampleError> {
    validate(model, settings, DEFAULT_NAME_BYTES)?;
    let config = model.config();
    let (width, dim, vocab) = (config.max_width(), config.embed_dim(), config.vocab_size());
    let capacity = cache_bytes / (8 * vocab + 4);
    let slot_count = batch.clamp(1, count.max(1)).next_multiple_of(GROUP);
    let mut done: Vec<Option<Name<DEFAULT_NAME_BYTES>>> = vec![None; count];
    let mut slots: Vec<Option<(usize, InFlight<'_, DEFAULT_NAME_BYTES>)>> =
        (0..slot_count).map(|_| None).collect();
    let (mut x, mut y) = (
        vec![[0.0f32; GROUP]; slot_count / GROUP * width],
        vec![[0.0f32; GROUP]; slot_count / GROUP * width],
    );
    let mut row = vec![0.0f32; dim];
    let decoded = avx2_weights(model);
    let widened: Vec<Vec<u8>> = model
        .layers()
        .map(|layer| match decoded {
            Some(_) => Vec::new(),
            None => widen(&layer.weight),
        })
        .collect();
    let net: Vec<Layer<'_>> = model
        .layers()
        .zip(&widened)
        .map(|(layer, bytes)| {
            let (rows, cols) = (layer.weight.rows(), layer.weight.cols());
            Matrix::new(rows, cols, Dtype::F32, bytes, Vector::default())
                .map_or(*layer, |weight| Layer { weight, ..*layer })
        })
        .collect();
    // Per context, found by its symbols packed into a key: `vocab` logits, their `vocab`
    // temperature-1 weights and the largest logit (a [`Step`] each).
    let mut logits: Vec<f32> = Vec::new();
    let mut weights: Vec<f32> = Vec::new();
    let mut maxes: Vec<f32> = Vec::new();
    let mut known: HashMap<u128, usize> = HashMap::new();
    // Per slot, where its logits are in `logits`; per computed context, where they go.
    let mut sources = vec![0usize; slot_count];
    let mut computed: Vec<usize> = Vec::with_capacity(slot_count);
    let mut next = 0;
    loop {
        for slot in slots.iter_mut().filter(|s| s.is_none()) {
            if next == count {
                break;
            }
            *slot = Some((next, InFlight::new(model, settings, first + next as u64)));
            next += 1;
        }
        if slots.iter().all(Option::is_none) {
            break;
        }
        if logits.len() / vocab + slot_count > capacity {
            logits.clear();
            weights.clear();
            maxes.clear();
            known.clear();
        }
        computed.clear();
        for (slot, found) in slots.iter().zip(&mut sources) {
            let Some(context) = slot.as_ref().and_then(|(_, name)| name.context()) else {
                continue;
            };
            *found = logits.len() / vocab;
            if capacity > 0 {
                match known.entry(key(context)) {
                    Entry::Occupied(entry) => {
                        *found = *entry.get();
                        continue;
                    }
                    Entry::Vacant(entry) => {
                        entry.insert(*found);
                    }
                }
            }
            logits.resize(logits.len() + vocab, 0.0);
            weights.resize(weights.len() + vocab, 0.0);
            maxes.push(0.0);
            let lane = computed.len();
            computed.push(*found);
            let (xt, b) = (&mut x[lane / GROUP * width..], lane % GROUP);
            for (position, &symbol) in context.iter().enumerate() {
                model.embedding().row_into(usize::from(symbol), &mut row);
                for (k, &value) in row.iter().enumerate() {
                    xt[position * dim + k][b] = value;
                }
            }
        }
        let groups = computed.len().div_ceil(GROUP);
        #[cfg(target_arch = "x86_64")]
        if let Some(decoded) = &decoded {
            // SAFETY: `layers_avx2` requires only that the CPU supports AVX2, which
            // `avx2_weights` detected at run time before it decoded the weights.
            unsafe { layers_avx2(&net, decoded, width, groups, &mut x, &mut y) };
        } else {
            layers(&net, width, groups, &mut x, &mut y, portable_group);
        }
        #[cfg(not(target_arch = "x86_64"))]
        layers(&net, width, groups, &mut x, &mut y, portable_group);
        for (lane, &at) in computed.iter().enumerate() {
            let xt = &x[lane / GROUP * width..][..vocab];
            let z = &mut logits[at * vocab..][..vocab];
            for (z, xt) in z.iter_mut().zip(xt) {
                *z = xt[lane % GROUP];
            }
            maxes[at] = Step::new(z, &mut weights[at * vocab..][..vocab]).max;
        }
        for (slot, &at) in slots.iter_mut().zip(&sources) {
            let Some((index, name)) = slot else {
                continue;
            };
            let step = Step {
                z: &logits[at * vocab..][..vocab],
                plain: &weights[at * vocab..][..vocab],
                max: maxes[at],
            };
            name.advance_with(&step, model, settings);
            if name.context().is_none() {
                let index = *index;
                if let Some((_, name)) = slot.take() {
                    done[index] = Some(name.finish());
                }
            }
        }
    }
    Ok(done.into_iter().flatten().collect())
}

/// Every layer's weights decoded as stored ([`Matrix::row_raw_into`], row after row), for
/// [`crate::avx::matmul_group`], on x86_64 hosts with AVX2 (AVX-512 ones included; the module
/// doc gives why); `None` elsewhere.
fn avx2_weights(model: &ModelView<'_>) -> Option<Vec<Vec<f32>>> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        return Some(model.layers().map(|layer| decode(&layer.weight)).collect());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = model;
    None
}

/// An f16 matrix's values as f32 bytes, for the portable group kernel, which multiplies f32
/// weights about half again as fast as it widens f16 ones; empty for other dtypes (a wrong
/// length for [`Matrix::new`], which keeps the matrix as stored). Widening is exact, so the
/// products are the same bits.
fn widen(matrix: &Matrix<'_>) -> Vec<u8> {
    if matrix.dtype() != Dtype::F16 {
        return Vec::new();
    }
    decode(matrix)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// `matrix`'s values as stored (the i8 scales not applied), row after row.
fn decode(matrix: &Matrix<'_>) -> Vec<f32> {
    let mut values = vec![0.0f32; matrix.rows() * matrix.cols()];
    for (r, row) in values.chunks_exact_mut(matrix.cols().max(1)).enumerate() {
        matrix.row_raw_into(r, row);
    }
    values
}

/// A context's symbols (at most [`MAX_BLOCK_SIZE`], all of one length within a call) as a
/// hash key.
fn key(context: &[u8]) -> u128 {
    let mut bytes = [0u8; MAX_BLOCK_SIZE];
    bytes[..context.len()].copy_from_slice(context);
    u128::from_le_bytes(bytes)
}

/// [`layers`] with the group kernel of [`crate::avx`] (and its bias and `tanh`), on the
/// weights `decoded` as [`avx2_weights`] gives them: the same bits as the portable code
/// (see [`crate::avx::matmul_group`]); the tests compare the batched names with the
/// unbatched ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn layers_avx2(
    net: &[Layer<'_>],
    decoded: &[Vec<f32>],
    width: usize,
    groups: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
) {
    layers(
        net,
        width,
        groups,
        x,
        y,
        |index, layer, xt, out, activate| {
            crate::avx::matmul_group(&decoded[index], &layer.weight, xt, out);
            crate::avx::finish_group(out, &layer.bias, activate);
        },
    );
}

/// Runs the layers `net` on the first `groups` groups of embedded contexts in `x` (groups `width`
/// apart, transposed), `group(index, layer, inputs, outputs, activate)` computing one layer of
/// one group (`activate`: every layer but the last); the logits end in `x`. Lanes without a
/// context compute on stale values, which nobody reads.
#[inline(always)]
fn layers(
    net: &[Layer<'_>],
    width: usize,
    groups: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
    mut group: impl FnMut(usize, &Layer<'_>, &[[f32; GROUP]], &mut [[f32; GROUP]], bool),
) {
    let mut inputs = net.first().map_or(0, |layer| layer.weight.cols());
    let last = net.len().saturating_sub(1);
    for (index, layer) in net.iter().enumerate() {
        let rows = layer.weight.rows();
        let (xs, ys) = (x.chunks_exact(width), y.chunks_exact_mut(width));
        for (xt, yt) in xs.zip(ys).take(groups) {
            group(index, layer, &xt[..inputs], &mut yt[..rows], index != last);
        }
        core::mem::swap(x, y);
        inputs = rows;
    }
}

/// One layer of one group with the portable kernel: `out = W x + b`, then `tanh` if
/// `activate`; its parameters are those of [`layers`]' `group`.
#[inline(always)]
fn portable_group(
    _index: usize,
    layer: &Layer<'_>,
    xt: &[[f32; GROUP]],
    out: &mut [[f32; GROUP]],
    activate: bool,
) {
    layer.weight.matmul_group(xt, out);
    for (values, bias) in out.iter_mut().zip(layer.bias.iter()) {
        for value in values.iter_mut() {
            *value += bias;
            if activate {
                *value = crate::math::tanh(*value);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use namegen_model::Rng;

    use super::{GROUP, ModelView, decode, layers, layers_avx2, portable_group};

    /// The portable path is the one every host without AVX2 runs; the names test compares the
    /// AVX2 path with the unbatched sampler, so this ties the portable one to it: the logits
    /// after all the layers, on the shipped models and three groups of random inputs.
    #[test]
    fn portable_layers_are_the_avx2_layers_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let models: [&[u8]; 3] = [
            include_bytes!("../../data/model-f32.safetensors"),
            include_bytes!("../../data/model-f16.safetensors"),
            include_bytes!("../../data/model-i8.safetensors"),
        ];
        let mut rng = Rng::new(47);
        for bytes in models {
            let model = ModelView::parse(bytes).unwrap();
            let net: Vec<_> = model.layers().copied().collect();
            let decoded: Vec<Vec<f32>> = net.iter().map(|layer| decode(&layer.weight)).collect();
            let (width, groups) = (model.config().max_width(), 3);
            let x: Vec<[f32; GROUP]> = (0..groups * width)
                .map(|_| core::array::from_fn(|_| rng.next_f32() * 2.0 - 1.0))
                .collect();
            let (mut want, mut want_y) = (x.clone(), vec![[0.0f32; GROUP]; x.len()]);
            layers(&net, width, groups, &mut want, &mut want_y, portable_group);
            let (mut got, mut got_y) = (x.clone(), vec![[f32::NAN; GROUP]; x.len()]);
            // SAFETY: AVX2 was detected above.
            unsafe { layers_avx2(&net, &decoded, width, groups, &mut got, &mut got_y) };
            let vocab = model.config().vocab_size();
            for (g, (got, want)) in got.chunks(width).zip(want.chunks(width)).enumerate() {
                for (v, (got, want)) in got[..vocab].iter().zip(&want[..vocab]).enumerate() {
                    let (got, want) = (got.map(f32::to_bits), want.map(f32::to_bits));
                    assert_eq!(got, want, "{} group {g} logit {v}", model.dtype());
                }
            }
        }
    }
}
