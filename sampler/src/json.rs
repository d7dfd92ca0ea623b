//! A small JSON reader for the safetensors header, without a heap.
//!
//! Why not `serde-json-core`: the header is a map whose keys are arbitrary tensor names in any
//! order, so it would need a fixed-capacity map sized for the worst case and would copy every
//! key and string into RAM; it unescapes strings only into a caller's scratch buffer, which
//! the vocabulary (up to 128 symbols, each up to a 12-byte surrogate-pair escape) would have to
//! be sized for; and its errors carry no position. The header's schema is fixed and three
//! levels deep (an object of objects whose values are strings, arrays of integers and
//! strings), so a cursor that the loader drives through that schema is smaller, reads strings
//! in place, decodes escapes on the fly, and reports every error at a byte offset.
//!
//! The reader accepts a subset of what `serde_json` accepts, never more: the same whitespace,
//! string escapes and UTF-8 rules, integers without sign, fraction or exponent.

use core::str::CharIndices;

use crate::error::{JsonError, LoadError};

/// A string of the header, still escaped, with where it starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonStr<'a> {
    raw: &'a str,
    offset: usize,
}

impl<'a> JsonStr<'a> {
    /// File offset of the opening quote.
    pub(crate) const fn offset(&self) -> usize {
        self.offset
    }

    /// The string as it stands in the header between its quotes, escapes and all: what
    /// [`next_unescaped`] reads.
    pub(crate) const fn raw(&self) -> &'a str {
        self.raw
    }

    /// The decoded characters. The reader validated every escape before handing the string
    /// out, so nothing is dropped here.
    pub(crate) fn chars(&self) -> impl Iterator<Item = char> + 'a {
        Unescape::new(self.raw).map_while(Result::ok)
    }

    /// Whether the decoded string is `text`.
    pub(crate) fn is(&self, text: &str) -> bool {
        self.chars().eq(text.chars())
    }

    /// The decoded string, when it fits in `N` bytes.
    pub(crate) fn decode<const N: usize>(&self) -> Option<heapless::String<N>> {
        let mut out = heapless::String::new();
        self.chars().try_for_each(|c| out.push(c)).ok()?;
        Some(out)
    }
}

/// The first character of `rest`, a [`JsonStr::raw`] or what is left of one, its escape
/// decoded, and `rest` moved past it; `None` at the end. Like [`JsonStr::chars`], whose
/// string the reader validated, it meets no bad escape.
pub(crate) fn next_unescaped(rest: &mut &str) -> Option<char> {
    let mut unescape = Unescape::new(rest);
    let ch = unescape.next()?.ok()?;
    *rest = unescape.chars.as_str();
    Some(ch)
}

/// Decodes a string's escapes; yields the error and its byte index in the raw string.
struct Unescape<'a> {
    chars: CharIndices<'a>,
}

type Decoded = Result<char, (usize, JsonError)>;

impl<'a> Unescape<'a> {
    fn new(raw: &'a str) -> Self {
        Self {
            chars: raw.char_indices(),
        }
    }

    fn escape(&mut self, at: usize) -> Decoded {
        let (_, kind) = self.chars.next().ok_or((at, JsonError::InvalidEscape))?;
        Ok(match kind {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => return self.unicode(at),
            _ => return Err((at, JsonError::InvalidEscape)),
        })
    }

    fn unicode(&mut self, at: usize) -> Decoded {
        let lone = (at, JsonError::LoneSurrogate);
        let code = match self.hex4(at)? {
            high @ 0xD800..=0xDBFF => {
                let backslash = self.chars.next().map(|(_, c)| c);
                let u = self.chars.next().map(|(_, c)| c);
                if (backslash, u) != (Some('\\'), Some('u')) {
                    return Err(lone);
                }
                let low = self.hex4(at)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(lone);
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone),
            code => code,
        };
        char::from_u32(code).ok_or(lone)
    }

    fn hex4(&mut self, at: usize) -> Result<u32, (usize, JsonError)> {
        (0..4).try_fold(0, |acc, _| {
            let digit = self.chars.next().and_then(|(_, c)| c.to_digit(16));
            digit
                .map(|d| acc * 16 + d)
                .ok_or((at, JsonError::InvalidEscape))
        })
    }
}

impl Iterator for Unescape<'_> {
    type Item = Decoded;

    fn next(&mut self) -> Option<Decoded> {
        let (at, c) = self.chars.next()?;
        Some(match c {
            '\\' => self.escape(at),
            c if c < '\u{20}' => Err((at, JsonError::ControlCharacter)),
            c => Ok(c),
        })
    }
}

/// A cursor over the header bytes that the loader steps through the safetensors schema.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// File offset of `bytes[0]`, so that errors point into the file.
    base: usize,
}

/// Where a list stands: before its first item or after one.
#[derive(Clone, Copy)]
pub(crate) struct List {
    started: bool,
    close: u8,
    expected: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`, which start at file offset `base`.
    pub(crate) const fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    /// File offset of the next unread byte.
    pub(crate) const fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Running out of header is reported as such, whatever was expected there.
    fn fail(&self, error: JsonError) -> LoadError {
        let offset = self.offset();
        if self.pos >= self.bytes.len() {
            LoadError::Json {
                offset,
                error: JsonError::UnexpectedEnd,
            }
        } else {
            LoadError::Json { offset, error }
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn peek(&mut self) -> Option<u8> {
        let blank = self
            .rest()
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        self.pos = self.pos.saturating_add(blank);
        self.rest().first().copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), LoadError> {
        if self.peek() != Some(byte) {
            return Err(self.fail(JsonError::Expected(what)));
        }
        self.pos = self.pos.saturating_add(1);
        Ok(())
    }

    /// Consumes `{` and returns the state of the object's entries.
    pub(crate) fn object(&mut self) -> Result<List, LoadError> {
        self.expect(b'{', "an object")?;
        Ok(List {
            started: false,
            close: b'}',
            expected: "',' or '}'",
        })
    }

    /// Consumes `[` and returns the state of the array's elements.
    pub(crate) fn array(&mut self) -> Result<List, LoadError> {
        self.expect(b'[', "an array")?;
        Ok(List {
            started: false,
            close: b']',
            expected: "',' or ']'",
        })
    }

    /// Moves to the next item of `list`: true when one follows, false (with the closing
    /// bracket consumed) at the end.
    pub(crate) fn next_item(&mut self, list: &mut List) -> Result<bool, LoadError> {
        let next = self.peek();
        if next == Some(list.close) {
            self.pos = self.pos.saturating_add(1);
            return Ok(false);
        }
        if list.started {
            self.expect(b',', list.expected)?;
        }
        list.started = true;
        Ok(true)
    }

    /// The next entry's key of an object, with its `:` consumed; `None` at the end.
    pub(crate) fn next_key(&mut self, object: &mut List) -> Result<Option<JsonStr<'a>>, LoadError> {
        if !self.next_item(object)? {
            return Ok(None);
        }
        let key = self.string()?;
        self.expect(b':', "':'")?;
        Ok(Some(key))
    }

    /// A string value, validated (UTF-8, escapes, no control characters) but not decoded.
    pub(crate) fn string(&mut self) -> Result<JsonStr<'a>, LoadError> {
        self.expect(b'"', "a string")?;
        let offset = self.offset().saturating_sub(1);
        let rest = self.rest();
        let mut escaped = false;
        let len = rest.iter().position(|&b| {
            let closes = !escaped && b == b'"';
            escaped = !escaped && b == b'\\';
            closes
        });
        let Some(len) = len else {
            self.pos = self.bytes.len();
            return Err(self.fail(JsonError::UnexpectedEnd));
        };
        let raw = rest.get(..len).unwrap_or_default();
        let start = self.offset();
        let raw = core::str::from_utf8(raw).map_err(|e| LoadError::NotUtf8 {
            offset: start.saturating_add(e.valid_up_to()),
        })?;
        if let Some(Err((at, error))) = Unescape::new(raw).find(Result::is_err) {
            let offset = start.saturating_add(at);
            return Err(LoadError::Json { offset, error });
        }
        self.pos = self.pos.saturating_add(len).saturating_add(1);
        Ok(JsonStr { raw, offset })
    }

    /// An unsigned integer with its file offset. Signs, fractions and exponents are refused:
    /// sizes and offsets are whole numbers.
    pub(crate) fn uint(&mut self) -> Result<(u64, usize), LoadError> {
        let first = self.peek();
        let offset = self.offset();
        if !first.is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.fail(JsonError::Expected("an unsigned integer")));
        }
        let digits = self.rest().iter().take_while(|b| b.is_ascii_digit());
        let mut value: u64 = 0;
        let mut count = 0usize;
        for &digit in digits {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or(LoadError::Json {
                    offset,
                    error: JsonError::NumberTooLarge,
                })?;
            count = count.saturating_add(1);
        }
        if first == Some(b'0') && count > 1 {
            return Err(LoadError::Json {
                offset,
                error: JsonError::LeadingZero,
            });
        }
        self.pos = self.pos.saturating_add(count);
        if matches!(self.rest().first(), Some(b'.' | b'e' | b'E')) {
            return Err(self.fail(JsonError::NotAnInteger));
        }
        Ok((value, offset))
    }

    /// Checks that only whitespace is left.
    pub(crate) fn finish(&mut self) -> Result<(), LoadError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.fail(JsonError::TrailingCharacters)),
        }
    }
}
