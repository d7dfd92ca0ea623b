//! The network as a burn module: makemore part 3's embedding, Linear (no bias) -> BatchNorm1d
//! -> Tanh blocks, and a last Linear -> BatchNorm1d to the logits.
//!
//! Tensors live on whatever burn device the caller picks (flex or ndarray, with or without
//! autodiff), so the same code serves the trainer, the evaluator and the autodiff gradient
//! check. Two choices here are made for speed and are exact or nearly so:
//! - Linear weights are held `[in, out]` (the transpose of the file's `[out, in]`), so the
//!   forward pass is `x.matmul(w)` with no transposed operand.
//! - The embedding lookup is a matmul of one-hot rows with the table: exact (each output is
//!   one product with 1.0 plus zeros) and a single dense op whose backward is one matmul too.
//!
//! BatchNorm follows PyTorch's `BatchNorm1d`: training normalises with the biased batch
//! variance, the running variance is updated with the unbiased one (`n / (n - 1)`), and eval
//! mode uses the running statistics.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use namegen_model::ModelConfig;

use namegen_files::checkpoint::{Checkpoint, LayerWeights};

/// One Linear layer and the BatchNorm after it.
#[derive(Module, Debug)]
pub struct Block {
    /// `[in, out]`: the transpose of the file's `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// `[1, out]`, BatchNorm scale.
    pub gamma: Param<Tensor<2>>,
    /// `[1, out]`, BatchNorm shift.
    pub beta: Param<Tensor<2>>,
    /// `[1, out]`, not trained: updated from batch statistics.
    pub running_mean: Param<Tensor<2>>,
    /// `[1, out]`, not trained: updated from batch statistics.
    pub running_var: Param<Tensor<2>>,
}

/// The whole network.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[vocab, embed_dim]`.
    pub embedding: Param<Tensor<2>>,
    /// One block per Linear layer, the output layer last.
    pub blocks: Vec<Block>,
}

/// BatchNorm statistics of one layer: `[1, out]` mean and variance.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Per-feature mean.
    pub mean: Tensor<2>,
    /// Per-feature variance (what is added to eps under the square root).
    pub var: Tensor<2>,
}

/// What the closed-form backward pass needs from one layer of a training forward pass.
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// The layer's input `[batch, in]`.
    pub input: Tensor<2>,
    /// The Linear output minus its batch mean, `[batch, out]`.
    pub centered: Tensor<2>,
    /// `1 / sqrt(biased batch variance + eps)`, `[1, out]`.
    pub inv_std: Tensor<2>,
    /// The layer's output after tanh (`None` for the output layer).
    pub activation: Option<Tensor<2>>,
}

/// The result of a training-mode forward pass.
#[derive(Debug, Clone)]
pub struct TrainForward {
    /// `[batch, vocab]` logits.
    pub logits: Tensor<2>,
    /// Per-layer values for the backward pass and the diagnostics.
    pub layers: Vec<LayerCache>,
    /// Per-layer batch mean `[1, out]`.
    pub means: Vec<Tensor<2>>,
    /// Per-layer unbiased batch variance `[1, out]`, for the running statistics.
    pub unbiased_vars: Vec<Tensor<2>>,
}

/// `tanh(x)` computed as `2 / (1 + exp(-2x)) - 1` from burn's `exp`.
///
/// Both CPU backends implement `tanh` with the scalar `tanhf` of the C library, which is five
/// times slower than `exp` here and took half of every training step; this form is within
/// 2e-7 of it (measured) and saturates correctly (`exp` overflowing to infinity gives -1).
pub fn tanh(x: Tensor<2>) -> Tensor<2> {
    x.mul_scalar(-2.0)
        .exp()
        .add_scalar(1.0)
        .recip()
        .mul_scalar(2.0)
        .sub_scalar(1.0)
}

/// A batch of examples as the network takes them.
#[derive(Debug, Clone)]
pub struct Batch {
    /// One-hot context rows `[n * block_size, vocab]` (see [`one_hot`]).
    pub one_hot: Tensor<2>,
    /// One-hot targets `[n, vocab]`.
    pub targets: Tensor<2>,
}

impl Batch {
    /// The batch of `contexts` (`n * block_size` symbols, row-major) and `targets` (`n`).
    pub fn new(contexts: &[u8], targets: &[u8], vocab: usize, device: &Device) -> Self {
        Self {
            one_hot: one_hot(contexts, vocab, device),
            targets: one_hot(targets, vocab, device),
        }
    }
}

/// One-hot rows `[contexts.len(), vocab]` for symbol indices, the input of [`Mlp::embed`].
pub fn one_hot(symbols: &[u8], vocab: usize, device: &Device) -> Tensor<2> {
    let mut values = vec![0f32; symbols.len() * vocab];
    for (row, &symbol) in symbols.iter().enumerate() {
        values[row * vocab + usize::from(symbol)] = 1.0;
    }
    Tensor::from_data(TensorData::new(values, [symbols.len(), vocab]), device)
}

fn matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Reads a tensor back as f32 values in row-major order.
pub fn values(tensor: &Tensor<2>) -> Vec<f32> {
    // Every tensor here is created as f32, so the conversion cannot fail.
    tensor.to_data().try_to_vec().unwrap_or_default()
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

fn param(tensor: Tensor<2>, trained: bool) -> Param<Tensor<2>> {
    Param::from_tensor(tensor).set_require_grad(trained)
}

impl Mlp {
    /// Builds the network from checkpoint values on `device`.
    pub fn from_checkpoint(checkpoint: &Checkpoint, device: &Device) -> Self {
        let config = &checkpoint.config;
        let embedding = matrix(
            checkpoint.embedding.clone(),
            config.vocab_size(),
            config.embed_dim(),
            device,
        );
        let blocks = checkpoint
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let (inputs, outputs) = config.layer_dims(i).unwrap_or((0, 0));
                let row = |v: &Vec<f32>| matrix(v.clone(), 1, outputs, device);
                Block {
                    weight: param(
                        matrix(
                            transpose(&layer.weight, outputs, inputs),
                            inputs,
                            outputs,
                            device,
                        ),
                        true,
                    ),
                    gamma: param(row(&layer.gamma), true),
                    beta: param(row(&layer.beta), true),
                    running_mean: param(row(&layer.running_mean), false),
                    running_var: param(row(&layer.running_var), false),
                }
            })
            .collect();
        Self {
            embedding: param(embedding, true),
            blocks,
        }
    }

    /// The values in the checkpoint's layout: the embedding and one [`LayerWeights`] per layer.
    pub fn to_values(&self) -> (Vec<f32>, Vec<LayerWeights>) {
        let layers = self
            .blocks
            .iter()
            .map(|block| {
                let [inputs, outputs] = block.weight.val().dims();
                LayerWeights {
                    weight: transpose(&values(&block.weight.val()), inputs, outputs),
                    gamma: values(&block.gamma.val()),
                    beta: values(&block.beta.val()),
                    running_mean: values(&block.running_mean.val()),
                    running_var: values(&block.running_var.val()),
                }
            })
            .collect();
        (values(&self.embedding.val()), layers)
    }

    /// Concatenated embeddings `[n, block_size * embed_dim]` from one-hot context rows
    /// `[n * block_size, vocab]` (see [`one_hot`]).
    pub fn embed(&self, one_hot: Tensor<2>, config: &ModelConfig) -> Tensor<2> {
        let [rows, _] = one_hot.dims();
        let n = rows / config.block_size();
        one_hot
            .matmul(self.embedding.val())
            .reshape([n, config.input_width()])
    }

    /// Training mode: BatchNorm with batch statistics. Returns the logits and what the
    /// backward pass and the running-statistics update need.
    pub fn forward_train(
        &self,
        one_hot: Tensor<2>,
        config: &ModelConfig,
        eps: f64,
    ) -> TrainForward {
        let mut x = self.embed(one_hot, config);
        let [batch, _] = x.dims();
        let bessel = batch as f64 / (batch as f64 - 1.0).max(1.0);
        let last = self.blocks.len() - 1;
        let mut layers = Vec::with_capacity(self.blocks.len());
        let (mut means, mut unbiased_vars) = (Vec::new(), Vec::new());
        for (i, block) in self.blocks.iter().enumerate() {
            let h = x.clone().matmul(block.weight.val());
            let mean = h.clone().mean_dim(0);
            let centered = h.sub(mean.clone());
            let var = centered.clone().square().mean_dim(0);
            let inv_std = var.clone().add_scalar(eps).sqrt().recip();
            let scale = inv_std.clone().mul(block.gamma.val());
            let y = centered.clone().mul(scale).add(block.beta.val());
            means.push(mean);
            unbiased_vars.push(var.mul_scalar(bessel));
            let activation = (i < last).then(|| tanh(y.clone()));
            layers.push(LayerCache {
                input: x,
                centered,
                inv_std,
                activation: activation.clone(),
            });
            x = activation.unwrap_or(y);
        }
        TrainForward {
            logits: x,
            layers,
            means,
            unbiased_vars,
        }
    }

    /// The running statistics of every layer.
    pub fn running_stats(&self) -> Vec<Stats> {
        self.blocks
            .iter()
            .map(|block| Stats {
                mean: block.running_mean.val(),
                var: block.running_var.val(),
            })
            .collect()
    }

    /// Eval mode: every BatchNorm uses `stats` (the running statistics, or calibrated ones).
    /// Returns the logits, or with `stop_at = Some(i)` the pre-BatchNorm output of layer `i`.
    pub fn forward_eval(
        &self,
        one_hot: Tensor<2>,
        config: &ModelConfig,
        stats: &[Stats],
        eps: f64,
        stop_at: Option<usize>,
    ) -> Tensor<2> {
        let mut x = self.embed(one_hot, config);
        let last = self.blocks.len() - 1;
        for (i, (block, stats)) in self.blocks.iter().zip(stats).enumerate() {
            let h = x.matmul(block.weight.val());
            if stop_at == Some(i) {
                return h;
            }
            let scale = stats
                .var
                .clone()
                .add_scalar(eps)
                .sqrt()
                .recip()
                .mul(block.gamma.val());
            let y = h.sub(stats.mean.clone()).mul(scale).add(block.beta.val());
            x = if i < last { tanh(y) } else { y };
        }
        x
    }

    /// Moves every running statistic towards the batch statistics of `forward` by
    /// `momentum` (PyTorch's convention: `new = (1 - momentum) * old + momentum * batch`).
    pub fn update_running_stats(&mut self, forward: &TrainForward, momentum: f64) {
        let ema = |param: &mut Param<Tensor<2>>, batch: &Tensor<2>| {
            let value = param
                .val()
                .mul_scalar(1.0 - momentum)
                .add(batch.clone().inner().mul_scalar(momentum));
            *param = Param::initialized(param.id, value);
        };
        for (block, (mean, var)) in self
            .blocks
            .iter_mut()
            .zip(forward.means.iter().zip(&forward.unbiased_vars))
        {
            ema(&mut block.running_mean, mean);
            ema(&mut block.running_var, var);
        }
    }
}
