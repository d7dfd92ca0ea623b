//! The symbol table: which characters a model knows and the index of each.
//!
//! Index 0 is always [`END`] (`'.'`), which both pads the start of a context and ends a name.
//! The other symbols are the distinct characters of the training names in ascending code-point
//! order, so the same names always give the same vocabulary, whatever order they come in.

use core::fmt;

/// The symbol at index 0: start padding and end of name.
pub const END: char = '.';

/// The index of [`END`].
pub const END_INDEX: u8 = 0;

/// The largest vocabulary a model may have, [`END`] included. Indices fit in a `u8`, and a
/// device's logit buffer of this many `f32`s stays at 512 bytes.
pub const MAX_VOCAB: usize = 128;

/// Why a vocabulary could not be built, or a character or index could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum VocabError {
    /// The character is not in the vocabulary.
    UnknownChar(char),
    /// The index is not below the vocabulary size.
    UnknownIndex(u8),
    /// A name contains [`END`], which would end it early.
    TerminatorInName,
    /// A control character (a line break, a tab, ...) cannot be part of a name.
    ControlChar(char),
    /// Adding the character would exceed [`MAX_VOCAB`] symbols.
    TooLarge {
        /// The character that did not fit.
        ch: char,
    },
    /// A name has more characters than the buffer it is encoded into.
    NameTooLong {
        /// The most characters that fit.
        max: usize,
    },
    /// A serialised symbol list does not start with [`END`].
    MissingTerminator,
    /// A serialised symbol list is not strictly ascending after [`END`] (a repeat or a
    /// misordering) at this symbol index.
    NotAscending {
        /// Index of the offending symbol.
        index: usize,
    },
}

impl fmt::Display for VocabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownChar(c) => write!(f, "character {c:?} is not in the model's vocabulary"),
            Self::UnknownIndex(i) => write!(f, "symbol index {i} is not in the vocabulary"),
            Self::TerminatorInName => {
                write!(
                    f,
                    "names may not contain '{END}': it is the end-of-name symbol"
                )
            }
            Self::ControlChar(c) => write!(f, "control character {c:?} cannot be part of a name"),
            Self::TooLarge { ch } => write!(
                f,
                "character {ch:?} would make the vocabulary larger than {MAX_VOCAB} symbols"
            ),
            Self::NameTooLong { max } => write!(f, "name is longer than {max} characters"),
            Self::MissingTerminator => write!(f, "vocabulary must start with '{END}'"),
            Self::NotAscending { index } => write!(
                f,
                "vocabulary symbol {index} is repeated or out of ascending order"
            ),
        }
    }
}

impl core::error::Error for VocabError {}

/// An ordered set of at most [`MAX_VOCAB`] symbols, [`END`] first.
///
/// Fixed-size, so it lives on a device's stack without a heap.
#[derive(Clone, PartialEq, Eq)]
pub struct Vocabulary {
    symbols: [char; MAX_VOCAB],
    len: usize,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vocabulary({:?})", self.symbols())
    }
}

/// Writes the symbols in index order, [`END`] first: the form stored in model files and
/// accepted by [`Vocabulary::from_symbols`].
impl fmt::Display for Vocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.symbols()
            .iter()
            .try_for_each(|c| fmt::Write::write_char(f, *c))
    }
}

impl Vocabulary {
    /// A vocabulary holding only [`END`].
    pub const fn new() -> Self {
        let mut symbols = [END; MAX_VOCAB];
        symbols[0] = END;
        Self { symbols, len: 1 }
    }

    /// The vocabulary of a list of names: [`END`] plus their distinct characters, ascending.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, VocabError> {
        let mut vocab = Self::new();
        for name in names {
            vocab.add_name(name)?;
        }
        Ok(vocab)
    }

    /// Parses the stored form (see the `Display` impl): [`END`] then strictly ascending,
    /// distinct, non-control symbols. A `const fn`, so that a firmware can hold the vocabulary
    /// of its model, and the view built from it, in flash.
    pub const fn from_symbols(symbols: &str) -> Result<Self, VocabError> {
        let mut rest = symbols.as_bytes();
        let mut vocab = Self::new();
        let mut first = true;
        while let Some((ch, tail)) = next_char(rest) {
            rest = tail;
            if first {
                if ch != END {
                    return Err(VocabError::MissingTerminator);
                }
                first = false;
            } else if let Err(e) = vocab.append(ch) {
                return Err(e);
            }
        }
        if first {
            return Err(VocabError::MissingTerminator);
        }
        Ok(vocab)
    }

    /// Like [`Vocabulary::from_symbols`], for symbols that arrive one by one (for example
    /// decoded from an escaped JSON string without a buffer).
    pub fn from_chars(mut chars: impl Iterator<Item = char>) -> Result<Self, VocabError> {
        if chars.next() != Some(END) {
            return Err(VocabError::MissingTerminator);
        }
        let mut vocab = Self::new();
        for ch in chars {
            vocab.append(ch)?;
        }
        Ok(vocab)
    }

    /// Appends the stored form's next symbol: a valid symbol above the last one.
    const fn append(&mut self, ch: char) -> Result<(), VocabError> {
        if let Err(e) = check_symbol(ch) {
            return Err(e);
        }
        let index = self.len;
        if index > 1 && self.symbols[index - 1] as u32 >= ch as u32 {
            return Err(VocabError::NotAscending { index });
        }
        self.push(ch)
    }

    /// Adds every character of `name`, keeping the symbols sorted and distinct.
    pub fn add_name(&mut self, name: &str) -> Result<(), VocabError> {
        name.chars().try_for_each(|ch| self.insert(ch))
    }

    /// Adds one character, keeping the symbols sorted and distinct.
    pub fn insert(&mut self, ch: char) -> Result<(), VocabError> {
        check_symbol(ch)?;
        let letters = &self.symbols[1..self.len];
        let Err(at) = letters.binary_search(&ch) else {
            return Ok(());
        };
        self.push(ch)?;
        self.symbols[1 + at..self.len].rotate_right(1);
        Ok(())
    }

    const fn push(&mut self, ch: char) -> Result<(), VocabError> {
        if self.len == MAX_VOCAB {
            return Err(VocabError::TooLarge { ch });
        }
        self.symbols[self.len] = ch;
        self.len += 1;
        Ok(())
    }

    /// How many symbols, [`END`] included.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: [`END`] is always present. Provided for API symmetry.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The symbols in index order.
    pub fn symbols(&self) -> &[char] {
        &self.symbols[..self.len]
    }

    /// The index of `ch`; an error naming the character when it is not in the vocabulary.
    pub fn encode(&self, ch: char) -> Result<u8, VocabError> {
        if ch == END {
            return Ok(END_INDEX);
        }
        match self.symbols[1..self.len].binary_search(&ch) {
            Ok(at) => Ok(at as u8 + 1),
            Err(_) => Err(VocabError::UnknownChar(ch)),
        }
    }

    /// Encodes the characters of `name` into `out` and returns how many were written.
    /// [`END`] inside a name is an error, as is a name longer than `out`.
    pub fn encode_name(&self, name: &str, out: &mut [u8]) -> Result<usize, VocabError> {
        encode_name_with(name, out, |ch| self.encode(ch))
    }

    /// The symbol at `index`.
    pub fn decode(&self, index: u8) -> Result<char, VocabError> {
        self.symbols()
            .get(usize::from(index))
            .copied()
            .ok_or(VocabError::UnknownIndex(index))
    }
}

/// Encodes the characters of `name` into `out` with `encode` (a symbol table's index of a
/// character) and returns how many were written: [`Vocabulary::encode_name`]'s rule, for any
/// table of the same symbols (the sampler's view reads them from the model's bytes). [`END`]
/// inside a name is an error, as is a name longer than `out`; otherwise the first error of
/// `encode`, in the name's order.
pub fn encode_name_with(
    name: &str,
    out: &mut [u8],
    mut encode: impl FnMut(char) -> Result<u8, VocabError>,
) -> Result<usize, VocabError> {
    let (mut len, max) = (0, out.len());
    for ch in name.chars() {
        if ch == END {
            return Err(VocabError::TerminatorInName);
        }
        let slot = out.get_mut(len).ok_or(VocabError::NameTooLong { max })?;
        *slot = encode(ch)?;
        len += 1;
    }
    Ok(len)
}

const fn check_symbol(ch: char) -> Result<(), VocabError> {
    if ch == END {
        Err(VocabError::TerminatorInName)
    } else if is_control(ch) {
        Err(VocabError::ControlChar(ch))
    } else {
        Ok(())
    }
}

/// `char::is_control` (Unicode's general category Cc, which is exactly these two ranges), as a
/// `const fn`.
const fn is_control(ch: char) -> bool {
    matches!(ch, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The first character of `bytes`, which hold valid UTF-8 (they come from a `&str`), and the
/// bytes after it; `None` when empty. `str::chars` as a `const fn`.
const fn next_char(bytes: &[u8]) -> Option<(char, &[u8])> {
    let [lead, rest @ ..] = bytes else {
        return None;
    };
    // The lead byte says how many continuation bytes follow, each giving 6 bits.
    let (len, bits) = match *lead {
        0x00..=0x7f => (0, *lead as u32),
        0xc0..=0xdf => (1, (*lead & 0x1f) as u32),
        0xe0..=0xef => (2, (*lead & 0x0f) as u32),
        _ => (3, (*lead & 0x07) as u32),
    };
    let Some((continuation, rest)) = rest.split_at_checked(len) else {
        return None;
    };
    let mut value = bits;
    let mut i = 0;
    while i < len {
        value = (value << 6) | (continuation[i] & 0x3f) as u32;
        i += 1;
    }
    match char::from_u32(value) {
        Some(ch) => Some((ch, rest)),
        None => None,
    }
}
