//! Short training runs (a few hundred steps): the loss at step 0 and its fall, determinism,
//! bit-identical resume, the checkpoint round trip, and BatchNorm's two modes.

mod common;

use namegen_files::checkpoint::Checkpoint;
use namegen_host::network::{Batch, Mlp};
use namegen_host::trainer::{Backend, GradPath, Trainer};
use namegen_model::fold::BatchNorm;
use namegen_model::reference::{Unfolded, scratch_len};

fn run(trainer: &mut Trainer, steps: u64) -> Vec<f32> {
    (0..steps).map(|_| trainer.step(None).unwrap()).collect()
}

fn fresh(steps: u64, backend: Backend) -> Trainer {
    Trainer::new(
        common::small_dataset(2000),
        common::short_recipe(steps),
        backend,
        GradPath::ClosedForm,
    )
    .unwrap()
}

#[test]
fn loss_starts_near_ln_vocab_and_falls() {
    for backend in Backend::ALL {
        let mut trainer = fresh(400, backend);
        let vocab = trainer.config.vocab_size() as f64;
        let losses = run(&mut trainer, 400);
        assert!(
            (f64::from(losses[0]) - vocab.ln()).abs() < 0.05,
            "{}: step 0 loss {} vs ln {vocab} = {}",
            backend.name(),
            losses[0],
            vocab.ln()
        );
        let first: f32 = losses[..50].iter().sum::<f32>() / 50.0;
        let last: f32 = losses[350..].iter().sum::<f32>() / 50.0;
        assert!(last < first - 0.3, "{}: {first} -> {last}", backend.name());
    }
}

#[test]
fn the_full_dataset_starts_near_ln_27() {
    let dataset = namegen_files::dataset::Dataset::load(&common::names_path()).unwrap();
    let mut trainer = Trainer::new(
        dataset,
        common::short_recipe(1),
        Backend::Flex,
        GradPath::ClosedForm,
    )
    .unwrap();
    let loss = trainer.step(None).unwrap();
    assert!((f64::from(loss) - 27f64.ln()).abs() < 0.05, "{loss}");
}

#[test]
fn same_seed_same_bits() {
    for backend in Backend::ALL {
        let (mut a, mut b) = (fresh(200, backend), fresh(200, backend));
        let (la, lb) = (run(&mut a, 200), run(&mut b, 200));
        let bits = |l: &[f32]| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&la), bits(&lb), "{}", backend.name());
        assert_eq!(a.checkpoint(None), b.checkpoint(None), "{}", backend.name());
    }
    // A different seed gives a different run.
    let mut other = Trainer::new(
        common::small_dataset(2000),
        namegen_host::trainer::Recipe {
            seed: 7,
            ..common::short_recipe(10)
        },
        Backend::Flex,
        GradPath::ClosedForm,
    )
    .unwrap();
    let mut base = fresh(10, Backend::Flex);
    assert_ne!(run(&mut other, 10), run(&mut base, 10));
}

#[test]
fn resume_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.ckpt.safetensors");
    // 300 steps with the late learning rate from step 225, interrupted at 150.
    let mut straight = fresh(300, Backend::Flex);
    let straight_losses = run(&mut straight, 300);

    let mut first = fresh(300, Backend::Flex);
    let mut losses = run(&mut first, 150);
    std::fs::write(&path, first.checkpoint(None).to_bytes()).unwrap();
    drop(first);
    let checkpoint = Checkpoint::load(&path).unwrap();
    let mut resumed = Trainer::resume(
        common::small_dataset(2000),
        common::short_recipe(300),
        &checkpoint,
        "half",
        Backend::Flex,
        GradPath::ClosedForm,
    )
    .unwrap();
    assert_eq!(resumed.step, 150);
    losses.extend(run(&mut resumed, 150));
    assert!(resumed.finished());
    let bits = |l: &[f32]| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&losses), bits(&straight_losses));
    assert_eq!(resumed.checkpoint(None), straight.checkpoint(None));
}

#[test]
fn resume_refuses_another_recipe() {
    let mut trainer = fresh(20, Backend::Flex);
    run(&mut trainer, 10);
    let checkpoint = trainer.checkpoint(None);
    let other = namegen_host::trainer::Recipe {
        lr: 0.05,
        ..common::short_recipe(20)
    };
    let error = Trainer::resume(
        common::small_dataset(2000),
        other,
        &checkpoint,
        "ckpt",
        Backend::Flex,
        GradPath::ClosedForm,
    )
    .err()
    .expect("a different learning rate is refused");
    assert!(error.to_string().contains("lr"), "{error}");
}

#[test]
fn checkpoint_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.ckpt.safetensors");
    let mut trainer = fresh(50, Backend::Flex);
    run(&mut trainer, 50);
    let saved = trainer.checkpoint(Some(2.5));
    std::fs::write(&path, saved.to_bytes()).unwrap();
    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded, saved);
    assert_eq!(loaded.to_bytes(), std::fs::read(&path).unwrap());
    // The weights survive the trip through a burn module too.
    let model = Mlp::from_checkpoint(&loaded, trainer.device());
    let (embedding, layers) = model.to_values();
    assert_eq!(embedding, saved.embedding);
    assert_eq!(layers, saved.layers);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn corrupt_checkpoints_are_refused() {
    let mut trainer = fresh(5, Backend::Flex);
    run(&mut trainer, 5);
    let bytes = trainer.checkpoint(None).to_bytes();
    let path = std::path::Path::new("bad.safetensors");
    assert!(Checkpoint::from_bytes(path, &bytes[..bytes.len() - 4]).is_err());
    assert!(Checkpoint::from_bytes(path, b"not a checkpoint").is_err());
    let mut other = trainer.checkpoint(None);
    other.layers[0].running_var[0] = -1.0;
    let error = Checkpoint::from_bytes(path, &other.to_bytes()).unwrap_err();
    assert!(
        error.to_string().contains("layers.0.bn.running_var"),
        "{error}"
    );
}

#[test]
fn batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval() {
    let mut trainer = fresh(100, Backend::Flex);
    run(&mut trainer, 100);
    let config = trainer.config;
    let eps = trainer.recipe.eps;
    let train = &trainer.examples.train;
    let contexts = &train.contexts[..64 * 3];
    let batch = Batch::new(
        contexts,
        &train.targets[..64],
        config.vocab_size(),
        trainer.device(),
    );

    // Training mode: the last BatchNorm's output has, per logit, the batch mean beta.
    let forward = trainer
        .model
        .forward_train(batch.one_hot.clone(), &config, eps);
    let logits = namegen_host::network::values(&forward.logits);
    let beta = namegen_host::network::values(&trainer.model.blocks[5].beta.val());
    for (j, &b) in beta.iter().enumerate() {
        let mean: f32 = logits.chunks_exact(27).map(|row| row[j]).sum::<f32>() / 64.0;
        assert!(
            (mean - b).abs() < 1e-4,
            "logit {j}: batch mean {mean}, beta {b}"
        );
    }

    // Eval mode: each example's logits do not depend on the rest of the batch, and match
    // the contract's f64 reference forward pass with the running statistics.
    let stats = trainer.model.running_stats();
    let eval = |rows: usize| {
        let one_hot = namegen_host::network::one_hot(
            &contexts[..rows * 3],
            config.vocab_size(),
            trainer.device(),
        );
        namegen_host::network::values(
            &trainer
                .model
                .forward_eval(one_hot, &config, &stats, eps, None),
        )
    };
    let (all, one) = (eval(64), eval(1));
    for (a, b) in all[..27].iter().zip(&one) {
        assert!((a - b).abs() < 1e-5);
    }
    let checkpoint = trainer.checkpoint(None);
    let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let embedding = f64s(&checkpoint.embedding);
    let weights: Vec<Vec<f64>> = checkpoint.layers.iter().map(|l| f64s(&l.weight)).collect();
    let vectors: Vec<[Vec<f64>; 4]> = checkpoint
        .layers
        .iter()
        .map(|l| {
            [
                f64s(&l.gamma),
                f64s(&l.beta),
                f64s(&l.running_mean),
                f64s(&l.running_var),
            ]
        })
        .collect();
    let norms: Vec<BatchNorm> = vectors
        .iter()
        .map(|[gamma, beta, running_mean, running_var]| BatchNorm {
            gamma,
            beta,
            running_mean,
            running_var,
            eps,
        })
        .collect();
    let weight_refs: Vec<&[f64]> = weights.iter().map(Vec::as_slice).collect();
    let reference = Unfolded {
        config,
        embedding: &embedding,
        weights: &weight_refs,
        norms: &norms,
    };
    let mut scratch = vec![0.0; scratch_len(&config)];
    let mut logits = vec![0.0; config.vocab_size()];
    for row in 0..64 {
        reference
            .logits(&contexts[row * 3..row * 3 + 3], &mut scratch, &mut logits)
            .unwrap();
        for (a, b) in all[row * 27..row * 27 + 27].iter().zip(&logits) {
            assert!((f64::from(*a) - b).abs() < 1e-4, "row {row}: {a} vs {b}");
        }
    }

    // A training step moves the running statistics towards the batch statistics.
    let before = namegen_host::network::values(&trainer.model.blocks[0].running_mean.val());
    let batch_mean = namegen_host::network::values(&forward.means[0]);
    let mut model = trainer.model.clone();
    model.update_running_stats(&forward, 0.1);
    let after = namegen_host::network::values(&model.blocks[0].running_mean.val());
    for ((b, m), a) in before.iter().zip(&batch_mean).zip(&after) {
        assert!((0.9 * b + 0.1 * m - a).abs() < 1e-6);
    }
}

#[test]
fn evaluation_reports_both_statistics() {
    let mut trainer = fresh(300, Backend::Flex);
    run(&mut trainer, 300);
    let report = trainer.report().unwrap();
    assert_eq!(report.len(), 3);
    for part in &report {
        assert!(part.running.is_finite() && part.calibrated.is_finite());
        assert!(part.running < 3.0 && part.calibrated < 3.0, "{part:?}");
    }
}

/// The recipe's defaults, defined once by its flags, are makemore part 3's: 200k steps of
/// batch 32, lr 0.1 then 0.01 for the last quarter, context 3, embedding 10, five hidden
/// layers of 100, last gamma scaled by 0.1, BatchNorm momentum 0.1 and epsilon 1e-5.
#[test]
fn the_default_recipe_is_makemore_part_3() {
    let recipe = namegen_host::trainer::Recipe::default();
    assert_eq!((recipe.steps, recipe.batch_size), (200_000, 32));
    assert_eq!(
        (recipe.lr, recipe.lr_late, recipe.late_fraction),
        (0.1, 0.01, 0.25)
    );
    assert_eq!((recipe.block_size, recipe.embed_dim), (3, 10));
    assert_eq!(recipe.hidden, vec![100; 5]);
    assert_eq!((recipe.embed_std, recipe.weight_gain), (1.0, 1.0));
    assert_eq!(
        (recipe.gamma, recipe.beta, recipe.last_gamma_scale),
        (1.0, 0.0, 0.1)
    );
    assert_eq!((recipe.momentum, recipe.eps), (0.1, 1e-5));
    assert_eq!((recipe.seed, recipe.split_seed), (42, 42));
}
