//! A model's symbols, borrowed from the bytes or the layout it came from instead of copied into
//! a [`Vocabulary`]'s fixed table.

use core::fmt::{self, Write};

use namegen_model::Vocabulary;
use namegen_model::vocab::{self, VocabError};

use crate::json::{self, JsonStr};

/// The symbols of a model, [`namegen_model::END`] first, as [`crate::ModelView::vocab`]
/// gives them: borrowed, already validated, and answering exactly as the [`Vocabulary`] of
/// the same symbols does (the same length, indices, characters and [`VocabError`]s).
///
/// It holds either the stored form (a [`crate::Layout`]'s `symbols`: `Vocabulary`'s `Display`
/// form) or the file header's `vocab` string still JSON-escaped, as [`crate::ModelView::parse`]
/// found it, whose escapes it decodes on the fly. Either way it takes a few bytes where a
/// `Vocabulary` holds a table of 128 `char`s, so a view in flash or on a device's stack stays
/// small; in exchange, encoding a character, or decoding one of symbols beyond plain ASCII,
/// scans the symbols (at most [`namegen_model::MAX_VOCAB`]), which next to a forward pass
/// costs little.
#[derive(Clone, Copy)]
pub struct Symbols<'a> {
    /// The stored form, or the header's escaped string.
    text: &'a str,
    /// Reads the next symbol off the front of `text`: [`next_stored`] or
    /// [`json::next_unescaped`]. A function rather than a flag, so that a build which never
    /// parses a header (a firmware whose view the compiler made from a layout) links no JSON
    /// decoder.
    next: fn(&mut &str) -> Option<char>,
    /// At most `MAX_VOCAB`.
    len: u8,
}

impl<'a> Symbols<'a> {
    /// Borrows `stored`, the stored form (`END` then strictly ascending, distinct,
    /// non-control symbols), once [`Vocabulary::from_symbols`] accepts it; its error otherwise.
    /// A `const fn`, so that a view in flash can hold its symbols.
    pub const fn from_stored(stored: &'a str) -> Result<Self, VocabError> {
        match Vocabulary::from_symbols(stored) {
            Ok(vocab) => Ok(Self {
                text: stored,
                next: next_stored,
                len: vocab.len() as u8,
            }),
            Err(e) => Err(e),
        }
    }

    /// Borrows the header's `vocab` string, escaped, once [`Vocabulary::from_chars`] accepts
    /// its characters; its error otherwise.
    pub(crate) fn from_json(vocab: JsonStr<'a>) -> Result<Self, VocabError> {
        let len = Vocabulary::from_chars(vocab.chars())?.len();
        Ok(Self {
            text: vocab.raw(),
            next: json::next_unescaped,
            len: len as u8,
        })
    }

    /// How many symbols, `END` included.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Always false: `END` is always present. Provided for API symmetry.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The symbols in index order, `END` first.
    pub fn chars(&self) -> impl Iterator<Item = char> + use<'a> {
        let (mut rest, next) = (self.text, self.next);
        core::iter::from_fn(move || next(&mut rest))
    }

    /// The index of `ch` (`END`'s is 0); an error naming the character when it is not one
    /// of the symbols.
    pub fn encode(&self, ch: char) -> Result<u8, VocabError> {
        match self.chars().position(|symbol| symbol == ch) {
            // Below `len`, which fits in a u8.
            Some(index) => Ok(index as u8),
            None => Err(VocabError::UnknownChar(ch)),
        }
    }

    /// Encodes the characters of `name` into `out` and returns how many were written.
    /// `END` inside a name is an error, as is a name longer than `out`.
    pub fn encode_name(&self, name: &str, out: &mut [u8]) -> Result<usize, VocabError> {
        vocab::encode_name_with(name, out, |ch| self.encode(ch))
    }

    /// The symbol at `index`.
    pub fn decode(&self, index: u8) -> Result<char, VocabError> {
        let at = usize::from(index);
        // One byte per symbol, each written as itself: an escape or a symbol outside ASCII
        // takes more bytes than it gives symbols. The sampler decodes every character it
        // draws, so the usual vocabulary skips the scan.
        let symbol = if self.text.len() == self.len() {
            self.text.as_bytes().get(at).map(|&b| char::from(b))
        } else {
            self.chars().nth(at)
        };
        symbol.ok_or(VocabError::UnknownIndex(index))
    }

    /// The same symbols in an owned [`Vocabulary`], for a host that keeps them past the bytes
    /// they were read from. Never panics: they were validated as one when borrowed.
    pub fn to_vocabulary(&self) -> Vocabulary {
        Vocabulary::from_chars(self.chars()).expect("validated as a vocabulary when borrowed")
    }
}

/// The first character of `rest`, in the stored form, and `rest` moved past it; `None` at the
/// end.
fn next_stored(rest: &mut &str) -> Option<char> {
    let mut chars = rest.chars();
    let ch = chars.next();
    *rest = chars.as_str();
    ch
}

/// The same symbols in the same order, whichever form each holds.
impl PartialEq for Symbols<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.chars().eq(other.chars())
    }
}

impl Eq for Symbols<'_> {}

/// The symbols as a Rust string, whichever form holds them.
impl fmt::Debug for Symbols<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Symbols(\"")?;
        for c in self.chars() {
            write!(f, "{}", c.escape_debug())?;
        }
        f.write_str("\")")
    }
}

/// Writes the symbols in index order, `END` first: the stored form, which
/// [`Symbols::from_stored`] and [`Vocabulary::from_symbols`] accept.
impl fmt::Display for Symbols<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chars().try_for_each(|c| f.write_char(c))
    }
}
