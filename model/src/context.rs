//! Context windowing: the examples a name gives, and the rolling context a sampler keeps.
//!
//! A name of `n` symbols gives `n + 1` examples: the context before each symbol (padded on
//! the left with [`END_INDEX`]) paired with that symbol, and finally the context after the
//! last symbol paired with [`END_INDEX`]. For "emma" and block size 3:
//! `... -> e`, `..e -> m`, `.em -> m`, `emm -> a`, `mma -> .`.

use crate::config::MAX_BLOCK_SIZE;
use crate::vocab::END_INDEX;

/// The last `block_size` symbol indices, oldest first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Context {
    ids: [u8; MAX_BLOCK_SIZE],
    len: usize,
}

impl Context {
    /// The context at the start of a name: `block_size` times [`END_INDEX`].
    ///
    /// `block_size` is clamped to 1..=[`MAX_BLOCK_SIZE`]; a validated config never needs it.
    pub fn start(block_size: usize) -> Self {
        Self {
            ids: [END_INDEX; MAX_BLOCK_SIZE],
            len: block_size.clamp(1, MAX_BLOCK_SIZE),
        }
    }

    /// Drops the oldest symbol and appends `id`.
    pub fn push(&mut self, id: u8) {
        // A loop of single moves, not `rotate_left`/`copy_within`: for a shift of a few bytes
        // those link a general `memmove` (1.6 KB on a Cortex-M), as much code as a device's
        // whole sampling step.
        let ids = &mut self.ids[..self.len];
        for i in 1..ids.len() {
            ids[i - 1] = ids[i];
        }
        if let Some(last) = ids.last_mut() {
            *last = id;
        }
    }

    /// The symbol indices, oldest first; always `block_size` of them.
    pub fn ids(&self) -> &[u8] {
        &self.ids[..self.len]
    }
}

/// The training examples of one encoded name; see the module docs.
pub fn windows(name: &[u8], block_size: usize) -> Windows<'_> {
    Windows {
        name,
        next: 0,
        context: Context::start(block_size),
    }
}

/// Iterator returned by [`windows`]: `(context, target)` pairs, `name.len() + 1` of them.
#[derive(Clone, Debug)]
pub struct Windows<'a> {
    name: &'a [u8],
    next: usize,
    context: Context,
}

impl Iterator for Windows<'_> {
    type Item = (Context, u8);

    fn next(&mut self) -> Option<Self::Item> {
        let target = match self.next.cmp(&self.name.len()) {
            core::cmp::Ordering::Less => self.name[self.next],
            core::cmp::Ordering::Equal => END_INDEX,
            core::cmp::Ordering::Greater => return None,
        };
        let example = (self.context, target);
        self.context.push(target);
        self.next += 1;
        Some(example)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.name.len() + 1).saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Windows<'_> {}
