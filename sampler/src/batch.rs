//! Many names in flight at once, for throughput on the host: each layer's weight row is
//! decoded once and multiplied with every name's activations. The arithmetic per name is
//! exactly the unbatched one ([`crate::tensor::dot_f32`] has the order of
//! [`crate::Matrix::row_dot`]), so the names are the same as [`crate::Sampler`]'s.

use std::vec;
use std::vec::Vec;

use crate::sample::{DEFAULT_NAME_BYTES, InFlight, Name, SampleError, Settings, validate};
use crate::tensor::dot_f32;
use crate::view::ModelView;

/// Names `first..first + count` of `settings`, computed `batch` at a time; the same names,
/// in the same order, as [`crate::Sampler::name_at`] gives one by one.
pub fn generate_batched(
    model: &ModelView<'_>,
    settings: &Settings<'_>,
    first: u64,
    count: usize,
    batch: usize,
) -> Result<Vec<Name<DEFAULT_NAME_BYTES>>, SampleError> {
    validate(model, settings, DEFAULT_NAME_BYTES)?;
    let mut names = Vec::with_capacity(count);
    let mut engine = Engine::new(model);
    let batch = batch.max(1);
    let mut start = first;
    while names.len() < count {
        let n = batch.min(count - names.len());
        names.extend(engine.run(settings, start, n));
        start += n as u64;
    }
    Ok(names)
}

/// Activations for a batch and a decoded weight row.
struct Engine<'m, 'a> {
    model: &'m ModelView<'a>,
    x: Vec<f32>,
    y: Vec<f32>,
    row: Vec<f32>,
    width: usize,
}

impl<'m, 'a> Engine<'m, 'a> {
    fn new(model: &'m ModelView<'a>) -> Self {
        let width = model.config().max_width();
        Self {
            model,
            x: Vec::new(),
            y: Vec::new(),
            row: vec![0.0; width],
            width,
        }
    }

    fn run(
        &mut self,
        settings: &Settings<'_>,
        first: u64,
        n: usize,
    ) -> Vec<Name<DEFAULT_NAME_BYTES>> {
        let mut names: Vec<InFlight<'_, DEFAULT_NAME_BYTES>> = (0..n as u64)
            .map(|k| InFlight::new(self.model, settings, first + k))
            .collect();
        self.x = vec![0.0; n * self.width];
        self.y = vec![0.0; n * self.width];
        let vocab_size = self.model.config().vocab_size();
        loop {
            let active: Vec<usize> = (0..n).filter(|&i| names[i].context().is_some()).collect();
            if active.is_empty() {
                return names.into_iter().map(InFlight::finish).collect();
            }
            let contexts: Vec<&[u8]> = active.iter().filter_map(|&i| names[i].context()).collect();
            let width = self.width;
            let logits = self.logits(&contexts).to_vec();
            for (&i, z) in active.iter().zip(logits.chunks_exact(width)) {
                names[i].advance(&z[..vocab_size], self.model, settings);
            }
        }
    }

    /// Logits for every context, `width` apart, in `self.x`.
    fn logits(&mut self, contexts: &[&[u8]]) -> &[f32] {
        let config = self.model.config();
        let (dim, width) = (config.embed_dim(), self.width);
        for (b, context) in contexts.iter().enumerate() {
            let x = &mut self.x[b * width..];
            for (slot, &symbol) in x.chunks_exact_mut(dim).zip(context.iter()) {
                self.model.embedding().row_into(usize::from(symbol), slot);
            }
        }
        let mut inputs = config.input_width();
        let last = config.n_layers() - 1;
        for (index, layer) in self.model.layers().enumerate() {
            let weight = &layer.weight;
            for r in 0..weight.rows() {
                weight.row_raw_into(r, &mut self.row[..inputs]);
                let (scale, bias) = (weight.scale(r), layer.bias.get(r));
                let i8 = weight.dtype() == namegen_model::Dtype::I8;
                for b in 0..contexts.len() {
                    let x = &self.x[b * width..b * width + inputs];
                    let dot = dot_f32(&self.row[..inputs], x);
                    let value = if i8 { dot * scale } else { dot } + bias;
                    self.y[b * width + r] = if index == last {
                        value
                    } else {
                        libm::tanhf(value)
                    };
                }
            }
            core::mem::swap(&mut self.x, &mut self.y);
            inputs = weight.rows();
        }
        &self.x[..contexts.len() * width]
    }
}
