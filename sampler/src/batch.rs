//! Many names in flight at once, for throughput on the host.
//!
//! Up to `batch` names advance together, in groups of [`GROUP`]: each step embeds every
//! name's context, then each layer multiplies every group with
//! [`crate::Matrix::matmul_group`], whose vector registers run across the names of a group
//! (activations are kept transposed, `[width][GROUP]`), so each weight is read once per group
//! and no name needs a horizontal sum. A name that ends leaves its slot and the next name
//! takes it, so the batch stays full. The arithmetic for each name is exactly the unbatched
//! one (same dot-product order, same `tanh`, same draw from the same per-name stream), so the
//! names are bit for bit those of [`crate::Sampler::name_at`], whatever the batch size.

use std::vec;
use std::vec::Vec;

use namegen_model::MAX_VOCAB;

use crate::sample::{DEFAULT_NAME_BYTES, InFlight, Name, SampleError, Settings, validate};
use crate::tensor::GROUP;
use crate::view::ModelView;

/// Names `first..first + count` of `settings`, up to `batch` of them in flight at a time
/// (rounded up to a multiple of [`GROUP`]); the same names, in the same order, as
/// [`crate::Sampler::name_at`] gives one by one. Each [`Name`] carries its text, its
/// log-likelihood under the model and whether it was cut at `max_len`: what a command-line
/// program prints.
///
/// The buffers are sized by the model (no width limit), so only the settings can be wrong.
pub fn generate_batched(
    model: &ModelView<'_>,
    settings: &Settings<'_>,
    first: u64,
    count: usize,
    batch: usize,
) -> Result<Vec<Name<DEFAULT_NAME_BYTES>>, SampleError> {
    validate(model, settings, DEFAULT_NAME_BYTES)?;
    let config = model.config();
    let (width, dim, vocab) = (config.max_width(), config.embed_dim(), config.vocab_size());
    let groups = batch.clamp(1, count.max(1)).div_ceil(GROUP);
    let mut done: Vec<Option<Name<DEFAULT_NAME_BYTES>>> = vec![None; count];
    let mut slots: Vec<Option<(usize, InFlight<'_, DEFAULT_NAME_BYTES>)>> =
        (0..groups * GROUP).map(|_| None).collect();
    let (mut x, mut y) = (
        vec![[0.0f32; GROUP]; groups * width],
        vec![[0.0f32; GROUP]; groups * width],
    );
    let mut row = vec![0.0f32; dim];
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
        for (s, slot) in slots.iter().enumerate() {
            let Some(context) = slot.as_ref().and_then(|(_, name)| name.context()) else {
                continue;
            };
            let (group, b) = (s / GROUP, s % GROUP);
            let xt = &mut x[group * width..];
            for (position, &symbol) in context.iter().enumerate() {
                model.embedding().row_into(usize::from(symbol), &mut row);
                for (k, &value) in row.iter().enumerate() {
                    xt[position * dim + k][b] = value;
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: `layers_avx512` requires only that the CPU supports AVX-512F, which was
            // detected at run time just above.
            unsafe { layers_avx512(model, width, &mut x, &mut y) };
        } else if std::is_x86_feature_detected!("avx2") {
            // SAFETY: `layers_avx2` requires only that the CPU supports AVX2, which was
            // detected at run time just above.
            unsafe { layers_avx2(model, width, &mut x, &mut y) };
        } else {
            layers(model, width, &mut x, &mut y);
        }
        #[cfg(not(target_arch = "x86_64"))]
        layers(model, width, &mut x, &mut y);
        for (s, slot) in slots.iter_mut().enumerate() {
            let Some((index, name)) = slot else {
                continue;
            };
            let (group, b) = (s / GROUP, s % GROUP);
            let mut logits = [0.0f32; MAX_VOCAB];
            for (z, xt) in logits.iter_mut().zip(&x[group * width..][..vocab]) {
                *z = xt[b];
            }
            name.advance(&logits[..vocab], model, settings);
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

/// [`layers`] compiled for AVX2: the same values, faster; see
/// [`crate::forward::apply_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn layers_avx2(
    model: &ModelView<'_>,
    width: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
) {
    layers(model, width, x, y);
}

/// [`layers`] compiled for AVX-512: one 16-wide register holds a whole group; the same
/// values as the portable code (see [`crate::forward::apply_avx2`] for why).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn layers_avx512(
    model: &ModelView<'_>,
    width: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
) {
    layers(model, width, x, y);
}

/// Runs every layer on every group of embedded contexts in `x` (groups `width` apart,
/// transposed); the logits end in `x`. Slots without a name compute on stale values, which
/// nobody reads.
#[inline(always)]
fn layers(
    model: &ModelView<'_>,
    width: usize,
    x: &mut Vec<[f32; GROUP]>,
    y: &mut Vec<[f32; GROUP]>,
) {
    let mut inputs = model.config().input_width();
    let last = model.config().n_layers() - 1;
    for (index, layer) in model.layers().enumerate() {
        let rows = layer.weight.rows();
        for (xt, yt) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
            let out = &mut yt[..rows];
            layer.weight.matmul_group(&xt[..inputs], out);
            for (values, bias) in out.iter_mut().zip(layer.bias.iter()) {
                for value in values.iter_mut() {
                    *value += bias;
                    if index != last {
                        *value = crate::math::tanh(*value);
                    }
                }
            }
        }
        core::mem::swap(x, y);
        inputs = rows;
    }
}
