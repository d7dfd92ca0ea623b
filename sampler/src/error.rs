//! Why a model file was refused: one variant per check, each saying what is wrong and where.

use core::fmt;

use namegen_model::format::{MetadataError, Shape, Storage};
use namegen_model::vocab::VocabError;
use namegen_model::{Dtype, TensorName};

/// Why [`crate::ModelView::parse`] refused a file.
///
/// Offsets are byte offsets into the whole file (the 8-byte length prefix included), so they
/// can be looked up with any hex viewer; data-section positions are given the same way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LoadError {
    /// The file is shorter than the 8-byte header length.
    TooShort {
        /// Length of the file.
        len: usize,
    },
    /// The header length is above the 100 MB the `safetensors` crate accepts.
    HeaderTooLarge {
        /// The header length the file declares.
        header_len: u64,
    },
    /// The header runs past the end of the file.
    HeaderPastEnd {
        /// The header length the file declares.
        header_len: u64,
        /// Length of the file.
        file_len: usize,
    },
    /// The header does not start with `{`, as the safetensors format requires (older
    /// versions of the `safetensors` crate refuse such files, even with leading whitespace).
    HeaderStart {
        /// The header's first byte, if it has one.
        found: Option<u8>,
    },
    /// A string in the header is not valid UTF-8.
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The header is not JSON of the shape safetensors defines.
    Json {
        /// Offset of the offending byte (the file length when the header ends too early).
        offset: usize,
        /// What is wrong there.
        error: JsonError,
    },
    /// A key appears twice in the same object (a tensor, a tensor field or a metadata key
    /// the loader reads).
    DuplicateKey {
        /// Offset of the second occurrence.
        offset: usize,
    },
    /// A tensor entry has a field other than `dtype`, `shape` and `data_offsets`.
    UnknownField {
        /// Offset of the field's name.
        offset: usize,
    },
    /// A tensor entry lacks one of `dtype`, `shape` and `data_offsets`.
    MissingField {
        /// Offset of the entry.
        offset: usize,
        /// The missing field.
        field: &'static str,
    },
    /// The header has no `__metadata__`, where a folded model keeps its config.
    NoMetadata,
    /// A metadata key the folded format requires is absent.
    MissingMetadata {
        /// The key.
        key: &'static str,
    },
    /// `format` is not `namegen-folded` (an unfolded checkpoint, or another file entirely).
    WrongFormat {
        /// Offset of the value.
        offset: usize,
    },
    /// `format_version` is not one this loader reads.
    UnsupportedVersion {
        /// Offset of the value.
        offset: usize,
    },
    /// The metadata `dtype` is not `f32`, `f16`, `i8` or `q8`.
    UnknownDtype {
        /// Offset of the value.
        offset: usize,
    },
    /// This build of the sampler has no kernel for the file's dtype (its cargo feature is off).
    DtypeNotBuilt {
        /// The file's dtype.
        dtype: Dtype,
    },
    /// A numeric metadata value is too long to be a valid number (or list of them).
    MetadataTooLong {
        /// The key.
        key: &'static str,
        /// Offset of the value.
        offset: usize,
    },
    /// The numeric metadata do not describe a valid architecture.
    Config(MetadataError),
    /// The `vocab` metadata is not a valid vocabulary.
    Vocab {
        /// Offset of the value.
        offset: usize,
        /// What is wrong with it.
        error: VocabError,
    },
    /// A tensor the folded format does not define for this config and dtype.
    UnexpectedTensor {
        /// Offset of its name.
        offset: usize,
        /// The name, when it is one of the format's names at all.
        name: Option<TensorName>,
    },
    /// A tensor the folded format requires is absent.
    MissingTensor(TensorName),
    /// A tensor is stored in the wrong dtype.
    TensorDtype {
        /// The tensor.
        tensor: TensorName,
        /// The safetensors dtype the format and the metadata require.
        expected: Storage,
        /// Offset of the dtype in the header.
        offset: usize,
    },
    /// A tensor's shape does not match the config in the metadata.
    TensorShape {
        /// The tensor.
        tensor: TensorName,
        /// The shape the config requires.
        expected: Shape,
        /// Offset of the shape in the header.
        offset: usize,
    },
    /// A tensor's `data_offsets` end before they begin.
    OffsetsReversed {
        /// The tensor.
        tensor: TensorName,
        /// Offset of the offsets in the header.
        offset: usize,
    },
    /// A tensor's data runs past the end of the file (a truncated file, or wrong offsets).
    OffsetsPastEnd {
        /// The tensor.
        tensor: TensorName,
        /// Offset of the offsets in the header.
        offset: usize,
        /// Where the tensor's data ends, relative to the data section.
        end: u64,
        /// Length of the data section.
        data_len: usize,
    },
    /// A tensor's byte length is not its element count times its dtype's size.
    TensorLength {
        /// The tensor.
        tensor: TensorName,
        /// The byte length its shape and dtype require.
        expected: usize,
        /// Offset of the offsets in the header.
        offset: usize,
    },
    /// Two tensors share bytes.
    TensorsOverlap {
        /// The tensor that starts first.
        first: TensorName,
        /// The tensor that starts inside it.
        second: TensorName,
    },
    /// Bytes of the data section belong to no tensor; safetensors requires the tensors to
    /// cover the data section exactly, without gaps.
    UncoveredData {
        /// File offset of the first such byte.
        begin: usize,
        /// File offset just past the last one.
        end: usize,
    },
    /// A value is NaN or infinite.
    NonFinite {
        /// The tensor.
        tensor: TensorName,
        /// Index of the value in the tensor, row-major.
        index: usize,
    },
    /// A scale is zero or negative.
    ScaleNotPositive {
        /// The scale tensor.
        tensor: TensorName,
        /// The row.
        index: usize,
    },
    /// An i8 weight, or a q8 code (embedding, weight or `tanh` table), is -128, outside the
    /// symmetric range `-127..=127` the format stores.
    QuantOutOfRange {
        /// The tensor.
        tensor: TensorName,
        /// Index of the value in the tensor, row-major.
        index: usize,
    },
    /// A q8 multiplier is zero or negative.
    MultiplierNotPositive {
        /// The multiplier tensor.
        tensor: TensorName,
        /// The row.
        index: usize,
    },
    /// A q8 shift (the low byte of a `bias_shift` word) is outside `-31..=30`.
    ShiftOutOfRange {
        /// The `bias_shift` tensor.
        tensor: TensorName,
        /// The row.
        index: usize,
    },
    /// The values are finite but so large that f32 arithmetic could overflow for some
    /// context: a decoded embedding value, or a layer's output before `tanh` (the logits for
    /// the last layer), may exceed [`crate::MAX_MAGNITUDE`] in magnitude, which could make
    /// the logits infinite or NaN. Checked last, once every other check has passed.
    MayOverflow {
        /// The embedding; the bias of the layer when it alone is out of range; else the
        /// layer's weight (the layer's weights, and for the first layer the embedding, add up
        /// to too much).
        tensor: TensorName,
        /// The embedding's row (symbol) or the layer's output.
        row: usize,
    },
    /// q8: for some int8 input, a row's int32 accumulator, shifted left by the row's shift,
    /// could leave int32, or an output row's Q16 logit could exceed 2^24 in magnitude (the
    /// bounds of `model/FORMAT.md`). Checked last, once every other check has passed.
    IntegerOverflow {
        /// The layer's `bias_shift` when the row's left shift takes the accumulator past
        /// int32 (a row's weights and 24-bit bias alone cannot); the output layer's
        /// multiplier when the logit could exceed 2^24.
        tensor: TensorName,
        /// The layer's output.
        row: usize,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => {
                write!(
                    f,
                    "file of {len} bytes is too short for a safetensors header"
                )
            }
            Self::HeaderTooLarge { header_len } => {
                write!(f, "header length {header_len} is above the 100 MB limit")
            }
            Self::HeaderPastEnd {
                header_len,
                file_len,
            } => write!(
                f,
                "header of {header_len} bytes runs past the end of the {file_len}-byte file"
            ),
            Self::HeaderStart { found: None } => write!(f, "the header is empty"),
            Self::HeaderStart { found: Some(byte) } => {
                write!(f, "the header starts with byte {byte:#04x}, not '{{'")
            }
            Self::NotUtf8 { offset } => write!(f, "invalid UTF-8 in the header at byte {offset}"),
            Self::Json { offset, error } => write!(f, "header at byte {offset}: {error}"),
            Self::DuplicateKey { offset } => write!(f, "duplicate key at byte {offset}"),
            Self::UnknownField { offset } => {
                write!(f, "unknown field in a tensor entry at byte {offset}")
            }
            Self::MissingField { offset, field } => {
                write!(f, "tensor entry at byte {offset} has no {field:?}")
            }
            Self::NoMetadata => write!(f, "the header has no \"__metadata__\""),
            Self::MissingMetadata { key } => write!(f, "metadata {key:?} is missing"),
            Self::WrongFormat { offset } => write!(
                f,
                "metadata \"format\" at byte {offset} is not \"namegen-folded\""
            ),
            Self::UnsupportedVersion { offset } => write!(
                f,
                "metadata \"format_version\" at byte {offset} is not a version this loader reads"
            ),
            Self::UnknownDtype { offset } => write!(
                f,
                "metadata \"dtype\" at byte {offset} is not f32, f16, i8 or q8"
            ),
            Self::DtypeNotBuilt { dtype } => write!(
                f,
                "this sampler was built without the {dtype} kernel (cargo feature \"{dtype}\")"
            ),
            Self::MetadataTooLong { key, offset } => {
                write!(f, "metadata {key:?} at byte {offset} is too long")
            }
            Self::Config(e) => write!(f, "{e}"),
            Self::Vocab { offset, error } => {
                write!(f, "metadata \"vocab\" at byte {offset}: {error}")
            }
            Self::UnexpectedTensor { offset, name } => match name {
                Some(name) => write!(
                    f,
                    "tensor {name} at byte {offset} is not part of this folded model"
                ),
                None => write!(f, "tensor at byte {offset} is not part of a folded model"),
            },
            Self::MissingTensor(name) => write!(f, "tensor {name} is missing"),
            Self::TensorDtype {
                tensor,
                expected,
                offset,
            } => write!(
                f,
                "tensor {tensor}: dtype at byte {offset} is not {}",
                expected.safetensors_name()
            ),
            Self::TensorShape {
                tensor,
                expected,
                offset,
            } => write!(
                f,
                "tensor {tensor}: shape at byte {offset} is not {expected} as the metadata requires"
            ),
            Self::OffsetsReversed { tensor, offset } => {
                write!(
                    f,
                    "tensor {tensor}: data_offsets at byte {offset} end before they begin"
                )
            }
            Self::OffsetsPastEnd {
                tensor,
                offset,
                end,
                data_len,
            } => write!(
                f,
                "tensor {tensor}: data_offsets at byte {offset} end at {end}, past the \
                 {data_len}-byte data section"
            ),
            Self::TensorLength {
                tensor,
                expected,
                offset,
            } => write!(
                f,
                "tensor {tensor}: data_offsets at byte {offset} do not span {expected} bytes"
            ),
            Self::TensorsOverlap { first, second } => {
                write!(f, "tensors {first} and {second} overlap")
            }
            Self::UncoveredData { begin, end } => {
                write!(f, "bytes {begin}..{end} of the file belong to no tensor")
            }
            Self::NonFinite { tensor, index } => {
                write!(f, "tensor {tensor}: value {index} is not finite")
            }
            Self::ScaleNotPositive { tensor, index } => {
                write!(f, "tensor {tensor}: scale {index} is not positive")
            }
            Self::QuantOutOfRange { tensor, index } => {
                write!(
                    f,
                    "tensor {tensor}: value {index} is -128, outside -127..=127"
                )
            }
            Self::MultiplierNotPositive { tensor, index } => {
                write!(f, "tensor {tensor}: multiplier {index} is not positive")
            }
            Self::ShiftOutOfRange { tensor, index } => {
                write!(
                    f,
                    "tensor {tensor}: the shift of row {index} is outside -31..=30"
                )
            }
            // The limit written out rather than formatted from `MAX_MAGNITUDE`: formatting an
            // f64 links core's float printing, 7 KB gzipped in the WASM module. A test ties the
            // text to the constant.
            Self::IntegerOverflow { tensor, row } => write!(
                f,
                "tensor {tensor}: values too large for int32 arithmetic: row {row} can overflow \
                 its accumulator, or give a logit beyond 2^24, for some input"
            ),
            Self::MayOverflow { tensor, row } => write!(
                f,
                "tensor {tensor}: values too large for f32 arithmetic: row {row} can exceed \
                 1e37 in magnitude for some context, which could make the logits infinite or NaN"
            ),
        }
    }
}

impl core::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Vocab { error, .. } => Some(error),
            Self::Json { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<MetadataError> for LoadError {
    fn from(e: MetadataError) -> Self {
        Self::Config(e)
    }
}

/// What is wrong with the header's JSON, at the offset carried by [`LoadError::Json`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum JsonError {
    /// The header ends in the middle of a value.
    UnexpectedEnd,
    /// Something else stands where the schema needs this (for example `"a string"` or
    /// `"',' or '}'"`).
    Expected(&'static str),
    /// A backslash escape that JSON does not define, or a `\u` without four hex digits.
    InvalidEscape,
    /// A `\u` escape of half a UTF-16 surrogate pair without its other half.
    LoneSurrogate,
    /// A raw control character (below U+0020) inside a string.
    ControlCharacter,
    /// A number with a leading zero.
    LeadingZero,
    /// A fraction or an exponent where sizes and offsets must be whole numbers.
    NotAnInteger,
    /// An integer above `u64::MAX`.
    NumberTooLarge,
    /// Something other than whitespace follows the header object.
    TrailingCharacters,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd => f.write_str("the header ends in the middle of a value"),
            Self::Expected(what) => write!(f, "expected {what}"),
            Self::InvalidEscape => f.write_str("invalid string escape"),
            Self::LoneSurrogate => f.write_str("unpaired UTF-16 surrogate in a \\u escape"),
            Self::ControlCharacter => f.write_str("control character inside a string"),
            Self::LeadingZero => f.write_str("number with a leading zero"),
            Self::NotAnInteger => f.write_str("fraction or exponent in an integer"),
            Self::NumberTooLarge => f.write_str("integer too large"),
            Self::TrailingCharacters => f.write_str("characters after the header object"),
        }
    }
}

impl core::error::Error for JsonError {}
