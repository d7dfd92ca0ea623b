//! The closed-form backward pass against burn's autodiff, on both backends: every gradient
//! within 1e-5.

mod common;

use namegen_host::backward;
use namegen_host::network::{Batch, values};
use namegen_host::trainer::{Backend, GradPath, Trainer};

#[test]
fn closed_form_gradients_match_autodiff() {
    for backend in Backend::ALL {
        let mut trainer = Trainer::new(
            common::small_dataset(2000),
            common::short_recipe(50),
            backend,
            GradPath::ClosedForm,
        )
        .unwrap();
        // Train a little so that the parameters are no longer at their symmetric start.
        for _ in 0..50 {
            trainer.step(None).unwrap();
        }
        let config = trainer.config;
        let eps = trainer.recipe.eps;
        let train = &trainer.examples.train;
        let batch = Batch::new(
            &train.contexts[..32 * 3],
            &train.targets[..32],
            config.vocab_size(),
            trainer.device(),
        );
        let forward = trainer
            .model
            .forward_train(batch.one_hot.clone(), &config, eps);
        let (loss, probs) = backward::cross_entropy(forward.logits.clone(), batch.targets.clone());
        let manual =
            backward::closed_form(&trainer.model, &forward, probs, &batch, &config, 1.0, false);
        let (auto_loss, _, auto) = backward::autodiff(&trainer.model, &batch, &config, eps, 1.0);
        assert!((loss.into_scalar::<f32>() - auto_loss).abs() < 1e-6);

        let check = |name: &str, a: &burn::Tensor<2>, b: &burn::Tensor<2>| {
            let (a, b) = (values(a), values(b));
            assert_eq!(a.len(), b.len(), "{name}");
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 1e-5,
                "{}: {name} differs by {worst}",
                backend.name()
            );
        };
        check("embedding", &manual.embedding, &auto.embedding);
        for (i, (m, a)) in manual.blocks.iter().zip(&auto.blocks).enumerate() {
            check(&format!("layer {i} weight"), &m.weight, &a.weight);
            check(&format!("layer {i} gamma"), &m.gamma, &a.gamma);
            check(&format!("layer {i} beta"), &m.beta, &a.beta);
        }
    }
}
