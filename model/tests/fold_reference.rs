//! The fold is exact in f64: folded and unfolded reference passes say the same thing.

use namegen_model::fold::{BatchNorm, FoldError, fold};
use namegen_model::reference::{Folded, ForwardError, Unfolded, cross_entropy, scratch_len};
use namegen_model::{Context, ModelConfig, Rng};

/// One owned f64 vector per layer.
type Matrices = Vec<Vec<f64>>;

/// An unfolded model's numbers, owned.
struct Weights {
    config: ModelConfig,
    embedding: Vec<f64>,
    weights: Vec<Vec<f64>>,
    gamma: Vec<Vec<f64>>,
    beta: Vec<Vec<f64>>,
    mean: Vec<Vec<f64>>,
    var: Vec<Vec<f64>>,
    eps: f64,
}

impl Weights {
    fn random(
        config: ModelConfig,
        rng: &mut Rng,
        gamma: impl Fn(&mut Rng) -> f64,
        var: impl Fn(&mut Rng) -> f64,
    ) -> Self {
        let dims: Vec<_> = (0..config.n_layers())
            .map(|i| config.layer_dims(i).unwrap())
            .collect();
        let mut vec =
            |n: usize, f: &dyn Fn(&mut Rng) -> f64| (0..n).map(|_| f(rng)).collect::<Vec<_>>();
        let embedding = vec(config.vocab_size() * config.embed_dim(), &|r| r.normal());
        let weights = dims
            .iter()
            .map(|(i, o)| vec(i * o, &|r| r.normal() / (*i as f64).sqrt()))
            .collect();
        let gamma = dims.iter().map(|(_, o)| vec(*o, &gamma)).collect();
        let beta = dims.iter().map(|(_, o)| vec(*o, &|r| r.normal())).collect();
        let mean = dims
            .iter()
            .map(|(_, o)| vec(*o, &|r| 3.0 * r.normal()))
            .collect();
        let var = dims.iter().map(|(_, o)| vec(*o, &var)).collect();
        Self {
            config,
            embedding,
            weights,
            gamma,
            beta,
            mean,
            var,
            eps: 1e-5,
        }
    }

    fn norms(&self) -> Vec<BatchNorm<'_>> {
        (0..self.weights.len())
            .map(|i| BatchNorm {
                gamma: &self.gamma[i],
                beta: &self.beta[i],
                running_mean: &self.mean[i],
                running_var: &self.var[i],
                eps: self.eps,
            })
            .collect()
    }

    /// The folded weights and biases, one of each per layer.
    fn folded(&self) -> Result<(Matrices, Matrices), FoldError> {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for (w, bn) in self.weights.iter().zip(self.norms()) {
            let mut fw = vec![0.0; w.len()];
            let mut fb = vec![0.0; bn.gamma.len()];
            fold(w, &bn, &mut fw, &mut fb)?;
            weights.push(fw);
            biases.push(fb);
        }
        Ok((weights, biases))
    }
}

/// Every context of `block` symbols over `vocab` symbols.
fn all_contexts(block: usize, vocab: usize) -> Vec<Vec<u8>> {
    let mut out = vec![vec![]];
    for _ in 0..block {
        out = out
            .into_iter()
            .flat_map(|c| (0..vocab as u8).map(move |s| [c.clone(), vec![s]].concat()))
            .collect();
    }
    out
}

fn max_disagreement(w: &Weights) -> f64 {
    let norms = w.norms();
    let weight_refs: Vec<&[f64]> = w.weights.iter().map(Vec::as_slice).collect();
    let unfolded = Unfolded {
        config: w.config,
        embedding: &w.embedding,
        weights: &weight_refs,
        norms: &norms,
    };
    let (fw, fb) = w.folded().expect("fold");
    let fw_refs: Vec<&[f64]> = fw.iter().map(Vec::as_slice).collect();
    let fb_refs: Vec<&[f64]> = fb.iter().map(Vec::as_slice).collect();
    let folded = Folded {
        config: w.config,
        embedding: &w.embedding,
        weights: &fw_refs,
        biases: &fb_refs,
    };
    let vocab = w.config.vocab_size();
    let mut scratch = vec![0.0; scratch_len(&w.config)];
    let (mut a, mut b) = (vec![0.0; vocab], vec![0.0; vocab]);
    let mut worst: f64 = 0.0;
    for context in all_contexts(w.config.block_size(), vocab) {
        unfolded.logits(&context, &mut scratch, &mut a).unwrap();
        folded.logits(&context, &mut scratch, &mut b).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(x.is_finite() && y.is_finite());
            worst = worst.max((x - y).abs() / x.abs().max(1.0));
        }
    }
    worst
}

#[test]
fn hand_computed_two_layer_model() {
    // block 1, embedding width 1, one hidden unit, two symbols; eps 1 keeps the square roots whole.
    let config = ModelConfig::new(1, 1, &[1], 2).unwrap();
    let w = Weights {
        config,
        embedding: vec![0.5, -1.0],
        weights: vec![vec![2.0], vec![1.0, -2.0]],
        gamma: vec![vec![3.0], vec![1.0, 2.0]],
        beta: vec![vec![0.5], vec![0.0, 1.0]],
        mean: vec![vec![1.0], vec![0.0, 0.0]],
        var: vec![vec![3.0], vec![0.0, 3.0]],
        eps: 1.0,
    };
    // Symbol 0: x = 0.5, W x = 1, BN: 3 (1 - 1) / 2 + 0.5 = 0.5, tanh(0.5) = t.
    // Output: [t, -2t] -> BN: [t / 1 + 0, 2 (-2t) / 2 + 1] = [t, 1 - 2t].
    let t = 0.5f64.tanh();
    let expected = [t, 1.0 - 2.0 * t];
    let (fw, fb) = w.folded().unwrap();
    // s0 = 3 / 2, W0' = 3, b0' = 0.5 - 1.5 = -1; s1 = [1, 1], b1' = [0, 1].
    assert_eq!(fw, vec![vec![3.0], vec![1.0, -2.0]]);
    assert_eq!(fb, vec![vec![-1.0], vec![0.0, 1.0]]);

    let norms = w.norms();
    let wr: Vec<&[f64]> = w.weights.iter().map(Vec::as_slice).collect();
    let unfolded = Unfolded {
        config,
        embedding: &w.embedding,
        weights: &wr,
        norms: &norms,
    };
    let fwr: Vec<&[f64]> = fw.iter().map(Vec::as_slice).collect();
    let fbr: Vec<&[f64]> = fb.iter().map(Vec::as_slice).collect();
    let folded = Folded {
        config,
        embedding: &w.embedding,
        weights: &fwr,
        biases: &fbr,
    };
    let mut scratch = vec![0.0; scratch_len(&config)];
    let mut logits = [0.0; 2];
    unfolded.logits(&[0], &mut scratch, &mut logits).unwrap();
    assert!(
        (logits[0] - expected[0]).abs() < 1e-15 && (logits[1] - expected[1]).abs() < 1e-15,
        "{logits:?}"
    );
    folded.logits(&[0], &mut scratch, &mut logits).unwrap();
    assert!(
        (logits[0] - expected[0]).abs() < 1e-15 && (logits[1] - expected[1]).abs() < 1e-15,
        "{logits:?}"
    );

    // Cross-entropy of target 1: log(e^a + e^b) - b.
    let ce = cross_entropy(&logits, 1);
    let direct = (logits[0].exp() + logits[1].exp()).ln() - logits[1];
    assert!((ce - direct).abs() < 1e-15);
}

#[test]
fn folded_matches_unfolded_on_random_weights() {
    let mut rng = Rng::new(1);
    let config = ModelConfig::new(2, 4, &[16, 12, 8], 9).unwrap();
    for _ in 0..5 {
        let w = Weights::random(
            config,
            &mut rng,
            |r| 1.0 + 0.1 * r.normal(),
            |r| 0.5 + r.next_f64(),
        );
        assert!(max_disagreement(&w) < 1e-9);
    }
}

#[test]
fn folded_matches_unfolded_with_extreme_gammas_and_tiny_variances() {
    let mut rng = Rng::new(2);
    let config = ModelConfig::new(2, 3, &[10, 10], 7).unwrap();
    let extreme = [1e-6, -1e-3, 1e3, -250.0, 0.0];
    let w = Weights::random(
        config,
        &mut rng,
        |r| extreme[r.below(extreme.len() as u32) as usize],
        |r| [0.0, 1e-12, 1e-9, 1e4][r.below(4) as usize],
    );
    assert!(max_disagreement(&w) < 1e-9);
}

#[test]
fn default_config_agrees_on_sampled_contexts() {
    let mut rng = Rng::new(3);
    let config = ModelConfig::default();
    let w = Weights::random(
        config,
        &mut rng,
        |r| 1.0 + r.normal(),
        |r| r.next_f64() * 2.0,
    );
    let norms = w.norms();
    let wr: Vec<&[f64]> = w.weights.iter().map(Vec::as_slice).collect();
    let unfolded = Unfolded {
        config,
        embedding: &w.embedding,
        weights: &wr,
        norms: &norms,
    };
    let (fw, fb) = w.folded().unwrap();
    let fwr: Vec<&[f64]> = fw.iter().map(Vec::as_slice).collect();
    let fbr: Vec<&[f64]> = fb.iter().map(Vec::as_slice).collect();
    let folded = Folded {
        config,
        embedding: &w.embedding,
        weights: &fwr,
        biases: &fbr,
    };
    let mut scratch = vec![0.0; scratch_len(&config)];
    let (mut a, mut b) = ([0.0; 27], [0.0; 27]);
    let mut context = Context::start(3);
    for _ in 0..500 {
        unfolded
            .logits(context.ids(), &mut scratch, &mut a)
            .unwrap();
        folded.logits(context.ids(), &mut scratch, &mut b).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9 * x.abs().max(1.0));
        }
        context.push(rng.below(27) as u8);
    }
}

#[test]
fn fold_rejects_negative_variance_and_non_finite_values() {
    let w = [1.0, 2.0];
    let mut fw = [0.0; 2];
    let mut fb = [0.0; 1];
    let bn = |var: f64, gamma: f64| {
        move |fw: &mut [f64], fb: &mut [f64]| {
            let (g, b, m, v) = ([gamma], [0.0], [0.0], [var]);
            fold(
                &w,
                &BatchNorm {
                    gamma: &g,
                    beta: &b,
                    running_mean: &m,
                    running_var: &v,
                    eps: 1e-5,
                },
                fw,
                fb,
            )
        }
    };
    assert_eq!(
        bn(-1.0, 1.0)(&mut fw, &mut fb),
        Err(FoldError::NegativeVariance { row: 0 })
    );
    assert_eq!(
        bn(f64::NAN, 1.0)(&mut fw, &mut fb),
        Err(FoldError::NonFinite { row: 0 })
    );
    assert_eq!(
        bn(1.0, f64::INFINITY)(&mut fw, &mut fb),
        Err(FoldError::NonFinite { row: 0 })
    );
    assert_eq!(bn(1.0, 1e300)(&mut fw, &mut fb).err(), None);
    // gamma 1e308 over sqrt(1e-5) overflows to infinity.
    assert_eq!(
        bn(0.0, 1e308)(&mut fw, &mut fb),
        Err(FoldError::NonFinite { row: 0 })
    );
    let mut short = [0.0; 1];
    assert_eq!(bn(1.0, 1.0)(&mut short, &mut fb), Err(FoldError::Shape));
}

#[test]
fn forward_rejects_bad_context_and_shapes() {
    let config = ModelConfig::new(2, 1, &[1], 3).unwrap();
    let embedding = [0.0; 3];
    let (w0, w1) = ([0.0; 2], [0.0; 3]);
    let (b0, b1) = ([0.0; 1], [0.0; 3]);
    let weights: [&[f64]; 2] = [&w0, &w1];
    let biases: [&[f64]; 2] = [&b0, &b1];
    let folded = Folded {
        config,
        embedding: &embedding,
        weights: &weights,
        biases: &biases,
    };
    let mut scratch = vec![0.0; scratch_len(&config)];
    let mut logits = [0.0; 3];
    assert_eq!(
        folded.logits(&[0, 3], &mut scratch, &mut logits),
        Err(ForwardError::Context)
    );
    assert_eq!(
        folded.logits(&[0], &mut scratch, &mut logits),
        Err(ForwardError::Context)
    );
    assert_eq!(
        folded.logits(&[0, 1], &mut scratch[..1], &mut logits),
        Err(ForwardError::Scratch)
    );
    assert_eq!(
        folded.logits(&[0, 1], &mut scratch, &mut logits[..2]),
        Err(ForwardError::Shape)
    );
    let short: [&[f64]; 2] = [&w0, &w1[..2]];
    let bad = Folded {
        weights: &short,
        ..folded
    };
    assert_eq!(
        bad.logits(&[0, 1], &mut scratch, &mut logits),
        Err(ForwardError::Shape)
    );
    assert_eq!(folded.logits(&[0, 1], &mut scratch, &mut logits), Ok(()));
}
