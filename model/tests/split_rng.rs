//! The pinned PRNG and the split built on it.

use std::collections::HashSet;

use namegen_model::split::{MIN_NAMES, TooFewNames};
use namegen_model::{Part, Rng, SplitSizes, split};
use rand_core::{Rng as TraitRng, SeedableRng};

#[test]
fn pcg32_matches_the_reference_implementation() {
    // pcg32-demo from pcg-random.org: pcg32_srandom_r(&rng, 42u, 54u), first six outputs.
    let mut rng = Rng::with_stream(42, 54);
    let got: Vec<u32> = (0..6).map(|_| rng.next_u32()).collect();
    assert_eq!(
        got,
        [
            0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e
        ]
    );
}

#[test]
fn rand_core_traits_match_rands_own_pcg32() {
    // rand_pcg's `Pcg32::new(state, stream)` is `pcg32_srandom_r`, and it takes its words
    // through rand_core's conventions as ours does: every trait method must agree with it.
    let ours = Rng::with_stream(42, 54);
    let mut theirs = rand_pcg::Pcg32::new(42, 54);
    let mut traits = ours;
    for _ in 0..100 {
        assert_eq!(TraitRng::next_u32(&mut traits), theirs.next_u32());
        assert_eq!(TraitRng::next_u64(&mut traits), theirs.next_u64());
    }
    let (mut a, mut b) = ([0u8; 23], [0u8; 23]);
    traits.fill_bytes(&mut a);
    theirs.fill_bytes(&mut b);
    assert_eq!(a, b);
    // The trait's next_u32 is the generator's own.
    let mut plain = ours;
    let mut through_trait = ours;
    for _ in 0..100 {
        assert_eq!(plain.next_u32(), TraitRng::next_u32(&mut through_trait));
    }
}

#[test]
fn seedable_rng_names_the_same_streams() {
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&7u64.to_le_bytes());
    seed[8..].copy_from_slice(&3u64.to_le_bytes());
    assert_eq!(Rng::from_seed(seed), Rng::with_stream(7, 3));
    assert_eq!(Rng::seed_from_u64(42), Rng::new(42));
}

#[test]
fn state_round_trips() {
    let mut a = Rng::new(7);
    a.next_u32();
    let (state, inc) = a.to_parts();
    let mut b = Rng::from_parts(state, inc);
    assert_eq!(
        (0..10).map(|_| a.next_u32()).collect::<Vec<_>>(),
        (0..10).map(|_| b.next_u32()).collect::<Vec<_>>()
    );
}

#[test]
fn draws_have_the_documented_ranges_and_moments() {
    let mut rng = Rng::new(1);
    let n = 200_000;
    let (mut sum, mut sq) = (0.0, 0.0);
    for _ in 0..n {
        let z = rng.normal();
        sum += z;
        sq += z * z;
        let u = rng.next_f32();
        assert!((0.0..1.0).contains(&u));
        assert!(rng.below(7) < 7);
    }
    let mean = sum / n as f64;
    let var = sq / n as f64 - mean * mean;
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.02, "var {var}");
    let mut counts = [0usize; 5];
    for _ in 0..50_000 {
        counts[rng.below(5) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (9_500..10_500).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(rng.below(0), 0);
}

#[test]
fn split_is_deterministic_disjoint_and_complete() {
    let n = 32_033;
    let mut a = vec![0u32; n];
    let mut b = vec![0u32; n];
    let sizes = split(&mut a, 42).unwrap();
    assert_eq!(split(&mut b, 42).unwrap(), sizes);
    assert_eq!(a, b, "same seed, same order");
    // makemore: n1 = int(0.8 * 32033) = 25626, n2 = int(0.9 * 32033) = 28829.
    assert_eq!(
        (sizes.train.len(), sizes.val.len(), sizes.test.len()),
        (25_626, 3_203, 3_204)
    );
    let parts: Vec<HashSet<u32>> = Part::ALL
        .iter()
        .map(|&p| a[sizes.range(p)].iter().copied().collect())
        .collect();
    assert_eq!(parts.iter().map(HashSet::len).sum::<usize>(), n);
    assert!(
        parts[0].is_disjoint(&parts[1])
            && parts[0].is_disjoint(&parts[2])
            && parts[1].is_disjoint(&parts[2])
    );
    assert_eq!(
        parts.iter().flatten().copied().collect::<HashSet<_>>(),
        (0..n as u32).collect()
    );
    assert_ne!(
        a,
        (0..n as u32).collect::<Vec<_>>(),
        "the order is shuffled"
    );
    split(&mut b, 43).unwrap();
    assert_ne!(a, b, "another seed, another order");
}

#[test]
fn tiny_datasets() {
    assert_eq!(
        SplitSizes::new(MIN_NAMES - 1),
        Err(TooFewNames { names: 9 })
    );
    let sizes = SplitSizes::new(MIN_NAMES).unwrap();
    assert_eq!(
        (sizes.train.len(), sizes.val.len(), sizes.test.len()),
        (8, 1, 1)
    );
    assert!(
        split(&mut [0; 3], 1)
            .unwrap_err()
            .to_string()
            .contains("at least 10")
    );
}
