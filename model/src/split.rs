//! The deterministic train / validation / test split.
//!
//! Algorithm (the contract, so that other tools can reproduce it from the dumped files or
//! re-implement it): number the names `0..n` in file order (after the dataset reader has
//! dropped blank lines), shuffle those indices with [`Rng::new`]`(seed)` and
//! [`Rng::shuffle`], then the first `floor(0.8 n)` shuffled names are training, the next
//! `floor(0.9 n) - floor(0.8 n)` are validation, and the rest are test. These are makemore's
//! `n1 = int(0.8 * len(words))`, `n2 = int(0.9 * len(words))`.

use core::fmt;
use core::ops::Range;

use crate::rng::Rng;

/// The fewest names that give every part at least one name.
pub const MIN_NAMES: usize = 10;

/// The split seed of the default recipe, of `namegen split` and of the shipped model.
pub const DEFAULT_SEED: u64 = 42;

/// One of the three parts of the split.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Part {
    /// 80 %: what the model learns from.
    Train,
    /// 10 %: what training decisions are checked on.
    Val,
    /// 10 %: held out for the final figure.
    Test,
}

impl Part {
    /// All parts, in split order.
    pub const ALL: [Part; 3] = [Part::Train, Part::Val, Part::Test];

    /// `train`, `val` or `test`, as used in file names and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
        }
    }
}

/// There are fewer names than [`MIN_NAMES`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooFewNames {
    /// How many names there were.
    pub names: usize,
}

impl fmt::Display for TooFewNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} names are too few for an 80/10/10 split; at least {MIN_NAMES} are needed",
            self.names
        )
    }
}

impl core::error::Error for TooFewNames {}

/// Where each part lies in the shuffled order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SplitSizes {
    /// Positions of the training names in the shuffled order.
    pub train: Range<usize>,
    /// Positions of the validation names.
    pub val: Range<usize>,
    /// Positions of the test names.
    pub test: Range<usize>,
}

impl SplitSizes {
    /// The part sizes for `names` names.
    pub fn new(names: usize) -> Result<Self, TooFewNames> {
        if names < MIN_NAMES {
            return Err(TooFewNames { names });
        }
        let n1 = names * 8 / 10;
        let n2 = names * 9 / 10;
        Ok(Self {
            train: 0..n1,
            val: n1..n2,
            test: n2..names,
        })
    }

    /// The positions of one part.
    pub fn range(&self, part: Part) -> Range<usize> {
        match part {
            Part::Train => self.train.clone(),
            Part::Val => self.val.clone(),
            Part::Test => self.test.clone(),
        }
    }
}

/// Fills `order` with the shuffled name indices `0..order.len()` for `seed` and returns where
/// each part lies in it: `order[sizes.train]` are the training names' indices, and so on.
pub fn split(order: &mut [u32], seed: u64) -> Result<SplitSizes, TooFewNames> {
    let sizes = SplitSizes::new(order.len())?;
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i as u32;
    }
    Rng::new(seed).shuffle(order);
    Ok(sizes)
}
