//! Gradients of the mean cross-entropy loss with respect to every trained parameter, two ways:
//!
//! - [`closed_form`]: the hand-written backward pass of Karpathy's "backprop ninja" exercise,
//!   in plain burn tensor ops with no autodiff tape. Cross-entropy: `dlogits = (softmax -
//!   onehot) / n`. BatchNorm (training mode, `xhat = (h - mean) * inv_std`):
//!   `dh = gamma * inv_std / n * (n * dy - sum(dy) - xhat * sum(dy * xhat))`. This is what the
//!   trainer runs: about twice as fast as recording and replaying burn's autodiff graph.
//! - [`autodiff`]: the same loss differentiated by burn's autodiff backend, kept as the
//!   reference that `tests/gradients.rs` checks the closed form against (to 1e-5), and
//!   selectable in the trainer and the benchmark (`--grad autodiff`).
//!
//! Both return gradients multiplied by `scale`: the trainer passes the learning rate, which
//! folds SGD's `lr * grad` into the backward pass and saves one op per parameter per step.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use namegen_model::ModelConfig;

use crate::network::{Batch, Block, LayerCache, Mlp, TrainForward};

/// Gradients of one block's trained parameters, shaped like them.
#[derive(Debug, Clone)]
pub struct BlockGradients {
    /// `[in, out]`.
    pub weight: Tensor<2>,
    /// `[1, out]`.
    pub gamma: Tensor<2>,
    /// `[1, out]`.
    pub beta: Tensor<2>,
}

/// Gradients of every trained parameter, times the `scale` they were computed with.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// `[vocab, embed_dim]`.
    pub embedding: Tensor<2>,
    /// One per block.
    pub blocks: Vec<BlockGradients>,
    /// The gradient at each tanh output `[batch, out]` (closed form only, and only when
    /// asked for): what the diagnostics report as the activation gradient.
    pub activation_grads: Vec<Tensor<2>>,
}

/// The mean cross-entropy of `logits` against one-hot `targets`, and the softmax
/// probabilities the closed-form backward pass starts from.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
    let [batch, _] = logits.dims();
    let log_probs = log_softmax(logits, 1);
    let loss = log_probs
        .clone()
        .mul(targets)
        .sum()
        .neg()
        .div_scalar(batch as f64);
    (loss, log_probs.exp())
}

/// The closed-form backward pass; see the module docs. `probs` and `targets` are
/// `[batch, vocab]`, `batch` is what the forward pass ran on.
pub fn closed_form(
    model: &Mlp,
    forward: &TrainForward,
    probs: Tensor<2>,
    batch: &Batch,
    config: &ModelConfig,
    scale: f64,
    keep_activation_grads: bool,
) -> Gradients {
    let [rows, _] = probs.dims();
    let n = rows as f64;
    let mut dy = probs.sub(batch.targets.clone()).mul_scalar(scale / n);
    let mut blocks = Vec::with_capacity(model.blocks.len());
    let mut activation_grads = Vec::new();
    for (block, cache) in model.blocks.iter().zip(&forward.layers).rev() {
        if let Some(t) = &cache.activation {
            if keep_activation_grads {
                activation_grads.push(dy.clone());
            }
            // d tanh(y) / dy = 1 - tanh(y)^2.
            dy = dy.clone().sub(dy.mul(t.clone().square()));
        }
        let xhat = cache.centered.clone().mul(cache.inv_std.clone());
        let dgamma = dy.clone().mul(xhat.clone()).sum_dim(0);
        let dbeta = dy.clone().sum_dim(0);
        // dh = gamma * inv_std / n * (n * dy - dbeta - xhat * dgamma).
        let coefficient = block.gamma.val().mul(cache.inv_std.clone()).div_scalar(n);
        let dh = dy
            .mul_scalar(n)
            .sub(dbeta.clone())
            .sub(xhat.mul(dgamma.clone()))
            .mul(coefficient);
        let dweight = cache.input.clone().transpose().matmul(dh.clone());
        dy = dh.matmul(block.weight.val().transpose());
        blocks.push(BlockGradients {
            weight: dweight,
            gamma: dgamma,
            beta: dbeta,
        });
    }
    blocks.reverse();
    activation_grads.reverse();
    let [symbols, _] = batch.one_hot.dims();
    let dembed = dy.reshape([symbols, config.embed_dim()]);
    Gradients {
        embedding: batch.one_hot.clone().transpose().matmul(dembed),
        blocks,
        activation_grads,
    }
}

/// An autodiff copy of `model` whose trained parameters are tracked leaves.
fn tracked(model: &Mlp) -> Mlp {
    let leaf = |p: &Param<Tensor<2>>| Param::from_tensor(p.val().autodiff().require_grad());
    let constant = |p: &Param<Tensor<2>>| Param::from_tensor(p.val()).set_require_grad(false);
    Mlp {
        embedding: leaf(&model.embedding),
        blocks: model
            .blocks
            .iter()
            .map(|b| Block {
                weight: leaf(&b.weight),
                gamma: leaf(&b.gamma),
                beta: leaf(&b.beta),
                running_mean: constant(&b.running_mean),
                running_var: constant(&b.running_var),
            })
            .collect(),
    }
}

/// The loss, the forward pass (on plain tensors, for the running statistics) and the
/// gradients of `model` computed by burn's autodiff.
pub fn autodiff(
    model: &Mlp,
    batch: &Batch,
    config: &ModelConfig,
    eps: f64,
    scale: f64,
) -> (f32, TrainForward, Gradients) {
    let leaves = tracked(model);
    let forward = leaves.forward_train(batch.one_hot.clone().autodiff(), config, eps);
    let (loss, _) = cross_entropy(forward.logits.clone(), batch.targets.clone().autodiff());
    let grads = loss.backward();
    let grad = |p: &Param<Tensor<2>>| {
        p.val()
            .grad(&grads)
            .unwrap_or_else(|| p.val().inner().zeros_like())
            .mul_scalar(scale)
    };
    let gradients = Gradients {
        embedding: grad(&leaves.embedding),
        blocks: leaves
            .blocks
            .iter()
            .map(|b| BlockGradients {
                weight: grad(&b.weight),
                gamma: grad(&b.gamma),
                beta: grad(&b.beta),
            })
            .collect(),
        activation_grads: Vec::new(),
    };
    // The rest of the step (running statistics, diagnostics) works on plain tensors.
    let plain = |tensors: &[Tensor<2>]| tensors.iter().map(|t| t.clone().inner()).collect();
    let forward = TrainForward {
        logits: forward.logits.clone().inner(),
        layers: forward
            .layers
            .iter()
            .map(|layer| LayerCache {
                input: layer.input.clone().inner(),
                centered: layer.centered.clone().inner(),
                inv_std: layer.inv_std.clone().inner(),
                activation: layer.activation.clone().map(Tensor::inner),
            })
            .collect(),
        means: plain(&forward.means),
        unbiased_vars: plain(&forward.unbiased_vars),
    };
    (loss.inner().into_scalar(), forward, gradients)
}

impl Mlp {
    /// One SGD step: every trained parameter minus its (already learning-rate-scaled)
    /// gradient.
    pub fn apply(&mut self, gradients: &Gradients) {
        step(&mut self.embedding, &gradients.embedding);
        for (block, g) in self.blocks.iter_mut().zip(&gradients.blocks) {
            step(&mut block.weight, &g.weight);
            step(&mut block.gamma, &g.gamma);
            step(&mut block.beta, &g.beta);
        }
    }
}

/// `param -= gradient`, keeping the parameter's identity.
fn step(param: &mut Param<Tensor<2>>, gradient: &Tensor<2>) {
    let value = param.val().sub(gradient.clone());
    *param = Param::initialized(param.id, value);
}
