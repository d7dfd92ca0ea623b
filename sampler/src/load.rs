//! Validating a folded `.safetensors` file in place.
//!
//! Two passes over the header, because its keys may come in any order and the metadata that
//! says which tensors to expect may come last: the first reads the JSON and records, in fixed
//! tables, every metadata value and tensor entry the format knows; the second checks them
//! against the config the metadata describes, then the data section against the tensors.
//! Nothing is copied; every size is checked before it is used, so no input can make it panic,
//! overflow or read out of bounds, on 32-bit targets too.

use namegen_model::config::MAX_HIDDEN_LAYERS;
use namegen_model::format::{self, FOLDED_FORMAT, FORMAT_VERSION, Shape, Storage, keys};
use namegen_model::q8::{MAX_SHIFT, MIN_SHIFT, TANH_TABLE_LEN, split_bias_shift};
use namegen_model::{Dtype, ModelConfig, TensorName};

use crate::error::JsonError;
use crate::error::LoadError;
use crate::json::{JsonStr, Reader};
use crate::symbols::Symbols;
use crate::tensor::{Matrix, Vector};
use crate::view::{Layer, ModelView, Requant};

/// Bytes of the little-endian header length that starts every safetensors file.
const LEN_PREFIX: usize = 8;

/// The `safetensors` crate's header limit; anything it refuses, this loader refuses too.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// One table slot per tensor a folded model can hold: the embedding, its scale and the
/// `tanh` table, then weight, scale, bias, `bias_shift` and multiplier of every possible layer.
const SLOTS: usize = 3 + PER_LAYER * (MAX_HIDDEN_LAYERS + 1);

/// Slots per layer: weight, scale, bias, `bias_shift`, multiplier.
const PER_LAYER: usize = 5;

/// Long enough for every tensor name and numeric metadata value the format defines; anything
/// longer is refused by name or value, so it never has to be decoded whole.
const NAME_BUF: usize = 32;
const NUMBER_BUF: usize = 64;

fn slot(name: TensorName) -> Option<usize> {
    let layer = |i: usize, k: usize| i.checked_mul(PER_LAYER)?.checked_add(3 + k);
    match name {
        TensorName::Embedding => Some(0),
        TensorName::EmbeddingScale => Some(1),
        TensorName::TanhTable => Some(2),
        TensorName::Weight(i) => layer(i, 0),
        TensorName::Scale(i) => layer(i, 1),
        TensorName::Bias(i) => layer(i, 2),
        TensorName::BiasShift(i) => layer(i, 3),
        TensorName::Multiplier(i) => layer(i, 4),
        _ => None,
    }
}

/// A list of unsigned integers from the header; only the first two are kept, because no
/// tensor of the format has more dimensions, but all are counted.
#[derive(Clone, Copy, Debug)]
struct Uints {
    values: [u64; 2],
    count: usize,
    offset: usize,
}

impl Uints {
    fn read(reader: &mut Reader<'_>) -> Result<Self, LoadError> {
        let mut list = reader.array()?;
        // The opening bracket, which `array` has just consumed.
        let offset = reader.offset().saturating_sub(1);
        let mut out = Self {
            values: [0; 2],
            count: 0,
            offset,
        };
        while reader.next_item(&mut list)? {
            let (value, _) = reader.uint()?;
            if let Some(slot) = out.values.get_mut(out.count) {
                *slot = value;
            }
            out.count = out.count.saturating_add(1);
        }
        Ok(out)
    }

    fn is_shape(&self, shape: &Shape) -> bool {
        let dims = shape.dims();
        self.count == dims.len()
            && dims
                .iter()
                .zip(self.values)
                .all(|(&want, got)| usize::try_from(got) == Ok(want))
    }
}

/// One tensor entry of the header, as read.
#[derive(Clone, Copy, Debug)]
struct Entry<'a> {
    key_offset: usize,
    dtype: JsonStr<'a>,
    shape: Uints,
    offsets: Uints,
}

impl<'a> Entry<'a> {
    fn read(reader: &mut Reader<'a>, key_offset: usize) -> Result<Self, LoadError> {
        let (mut dtype, mut shape, mut offsets) = (None, None, None);
        let mut fields = reader.object()?;
        while let Some(field) = reader.next_key(&mut fields)? {
            let duplicate = if field.is("dtype") {
                dtype.replace(reader.string()?).is_some()
            } else if field.is("shape") {
                shape.replace(Uints::read(reader)?).is_some()
            } else if field.is("data_offsets") {
                let pair = Uints::read(reader)?;
                if pair.count != 2 {
                    let error = JsonError::Expected("two data offsets");
                    let offset = pair.offset;
                    return Err(LoadError::Json { offset, error });
                }
                offsets.replace(pair).is_some()
            } else {
                let offset = field.offset();
                return Err(LoadError::UnknownField { offset });
            };
            if duplicate {
                let offset = field.offset();
                return Err(LoadError::DuplicateKey { offset });
            }
        }
        let missing = |field| LoadError::MissingField {
            offset: key_offset,
            field,
        };
        Ok(Self {
            key_offset,
            dtype: dtype.ok_or(missing("dtype"))?,
            shape: shape.ok_or(missing("shape"))?,
            offsets: offsets.ok_or(missing("data_offsets"))?,
        })
    }
}

/// The metadata values the loader reads; other keys are checked as JSON and ignored.
#[derive(Default)]
struct Metadata<'a> {
    format: Option<JsonStr<'a>>,
    version: Option<JsonStr<'a>>,
    dtype: Option<JsonStr<'a>>,
    vocab: Option<JsonStr<'a>>,
    block_size: Option<JsonStr<'a>>,
    embed_dim: Option<JsonStr<'a>>,
    hidden: Option<JsonStr<'a>>,
}

impl<'a> Metadata<'a> {
    fn read(reader: &mut Reader<'a>) -> Result<Self, LoadError> {
        let mut metadata = Self::default();
        let mut object = reader.object()?;
        while let Some(key) = reader.next_key(&mut object)? {
            let value = reader.string()?;
            let known = metadata.field(&key);
            if known.is_some_and(|slot| slot.replace(value).is_some()) {
                let offset = key.offset();
                return Err(LoadError::DuplicateKey { offset });
            }
        }
        Ok(metadata)
    }

    fn field(&mut self, key: &JsonStr<'_>) -> Option<&mut Option<JsonStr<'a>>> {
        [
            (keys::FORMAT, &mut self.format),
            (keys::FORMAT_VERSION, &mut self.version),
            (keys::DTYPE, &mut self.dtype),
            (keys::VOCAB, &mut self.vocab),
            (keys::BLOCK_SIZE, &mut self.block_size),
            (keys::EMBED_DIM, &mut self.embed_dim),
            (keys::HIDDEN, &mut self.hidden),
        ]
        .into_iter()
        .find(|(name, _)| key.is(name))
        .map(|(_, slot)| slot)
    }

    /// The dtype, vocabulary and config the metadata describe.
    fn model(&self) -> Result<(Dtype, Symbols<'a>, ModelConfig), LoadError> {
        let format = required(self.format, keys::FORMAT)?;
        if !format.is(FOLDED_FORMAT) {
            let offset = format.offset();
            return Err(LoadError::WrongFormat { offset });
        }
        let version = required(self.version, keys::FORMAT_VERSION)?;
        if !version.is(FORMAT_VERSION) {
            let offset = version.offset();
            return Err(LoadError::UnsupportedVersion { offset });
        }
        let dtype = required(self.dtype, keys::DTYPE)?;
        let dtype =
            Dtype::ALL
                .into_iter()
                .find(|d| dtype.is(d.name()))
                .ok_or(LoadError::UnknownDtype {
                    offset: dtype.offset(),
                })?;
        if !Matrix::is_built(dtype) {
            return Err(LoadError::DtypeNotBuilt { dtype });
        }
        let vocab = required(self.vocab, keys::VOCAB)?;
        let vocab = Symbols::from_json(vocab).map_err(|error| LoadError::Vocab {
            offset: vocab.offset(),
            error,
        })?;
        let block_size = number(self.block_size, keys::BLOCK_SIZE)?;
        let embed_dim = number(self.embed_dim, keys::EMBED_DIM)?;
        let hidden = number(self.hidden, keys::HIDDEN)?;
        let config = format::parse_config(&block_size, &embed_dim, &hidden, vocab.len())?;
        Ok((dtype, vocab, config))
    }
}

fn required<'a>(value: Option<JsonStr<'a>>, key: &'static str) -> Result<JsonStr<'a>, LoadError> {
    value.ok_or(LoadError::MissingMetadata { key })
}

fn number(
    value: Option<JsonStr<'_>>,
    key: &'static str,
) -> Result<heapless::String<NUMBER_BUF>, LoadError> {
    let value = required(value, key)?;
    let offset = value.offset();
    value
        .decode()
        .ok_or(LoadError::MetadataTooLong { key, offset })
}

/// Everything the first pass records.
struct Header<'a> {
    metadata: Option<Metadata<'a>>,
    tensors: [Option<(TensorName, Entry<'a>)>; SLOTS],
    /// The first tensor whose name the format does not define at all.
    unexpected: Option<(usize, Option<TensorName>)>,
}

impl<'a> Header<'a> {
    fn read(mut reader: Reader<'a>) -> Result<Self, LoadError> {
        let mut header = Self {
            metadata: None,
            tensors: [None; SLOTS],
            unexpected: None,
        };
        let mut top = reader.object()?;
        while let Some(key) = reader.next_key(&mut top)? {
            let offset = key.offset();
            if key.is("__metadata__") {
                if header
                    .metadata
                    .replace(Metadata::read(&mut reader)?)
                    .is_some()
                {
                    return Err(LoadError::DuplicateKey { offset });
                }
                continue;
            }
            let name = key
                .decode::<NAME_BUF>()
                .and_then(|name| TensorName::parse(&name));
            // Read before judging the name, so that JSON errors come first wherever they are.
            let entry = Entry::read(&mut reader, offset)?;
            let cell = name.and_then(slot).and_then(|i| header.tensors.get_mut(i));
            match (name, cell) {
                (Some(name), Some(cell)) => {
                    if cell.replace((name, entry)).is_some() {
                        return Err(LoadError::DuplicateKey { offset });
                    }
                }
                _ => {
                    header.unexpected.get_or_insert((offset, name));
                }
            }
        }
        reader.finish()?;
        Ok(header)
    }
}

/// Where a tensor's bytes are, once its entry has passed every check.
#[derive(Clone, Copy, Debug)]
struct Located<'a> {
    name: TensorName,
    bytes: &'a [u8],
    begin: usize,
    end: usize,
    /// File offset of the header's `data_offsets`, for errors.
    offsets_at: usize,
}

fn locate<'a>(
    tensor: TensorName,
    entry: Entry<'a>,
    config: &ModelConfig,
    dtype: Dtype,
    data: &'a [u8],
) -> Result<Located<'a>, LoadError> {
    let stored = tensor.storage(Some(dtype));
    if !entry.dtype.is(stored.safetensors_name()) {
        let offset = entry.dtype.offset();
        let expected = stored;
        return Err(LoadError::TensorDtype {
            tensor,
            expected,
            offset,
        });
    }
    let unexpected = LoadError::UnexpectedTensor {
        offset: entry.key_offset,
        name: Some(tensor),
    };
    let expected = tensor.shape(config).ok_or(unexpected)?;
    if !entry.shape.is_shape(&expected) {
        let offset = entry.shape.offset;
        return Err(LoadError::TensorShape {
            tensor,
            expected,
            offset,
        });
    }
    let offset = entry.offsets.offset;
    let [begin, end] = entry.offsets.values;
    if begin > end {
        return Err(LoadError::OffsetsReversed { tensor, offset });
    }
    let past_end = LoadError::OffsetsPastEnd {
        tensor,
        offset,
        end,
        data_len: data.len(),
    };
    let begin = usize::try_from(begin).map_err(|_| past_end)?;
    let end = usize::try_from(end).map_err(|_| past_end)?;
    let bytes = data.get(begin..end).ok_or(past_end)?;
    // Division rather than multiplication, so that no size can overflow.
    let size = stored.size();
    if !bytes.len().is_multiple_of(size) || bytes.len() / size != expected.elements() {
        let expected = expected.elements().saturating_mul(size);
        return Err(LoadError::TensorLength {
            tensor,
            expected,
            offset,
        });
    }
    Ok(Located {
        name: tensor,
        bytes,
        begin,
        end,
        offsets_at: offset,
    })
}

/// safetensors requires the tensors to tile the data section: sorted by offset, each starts
/// where the previous ends, and the last ends at the end of the file.
fn check_layout(
    found: &[Option<Located<'_>>],
    data_start: usize,
    data_len: usize,
) -> Result<(), LoadError> {
    let mut order = [(0, 0, TensorName::Embedding); SLOTS];
    let mut count = 0;
    for located in found.iter().flatten() {
        if let Some(slot) = order.get_mut(count) {
            *slot = (located.begin, located.end, located.name);
            count += 1;
        }
    }
    let order = order.get_mut(..count).unwrap_or_default();
    // By insertion rather than `sort_unstable`: a few dozen entries at most, and the library
    // sort is about 3 KB of code in the WASM module (over a tenth of its gzipped budget).
    for sorted in 1..order.len() {
        let mut i = sorted;
        while i > 0 && order[i - 1] > order[i] {
            order.swap(i - 1, i);
            i -= 1;
        }
    }
    let mut last: Option<(usize, TensorName)> = None;
    for &(begin, end, second) in order.iter() {
        let covered = last.map_or(0, |(end, _)| end);
        if let Some((_, first)) = last
            && begin < covered
        {
            return Err(LoadError::TensorsOverlap { first, second });
        }
        if begin > covered {
            return Err(uncovered(data_start, covered, begin));
        }
        last = Some((end, second));
    }
    let covered = last.map_or(0, |(end, _)| end);
    if covered < data_len {
        return Err(uncovered(data_start, covered, data_len));
    }
    Ok(())
}

fn uncovered(data_start: usize, begin: usize, end: usize) -> LoadError {
    LoadError::UncoveredData {
        begin: data_start.saturating_add(begin),
        end: data_start.saturating_add(end),
    }
}

/// The values the forward pass will trust: finite everywhere, scales and multipliers
/// positive, quantised weights and codes in the symmetric range, shifts in range. q8's only
/// int32 tensors are its `bias_shift` words and its only int16 ones its multipliers
/// ([`TensorName::storage`]).
fn check_values(tensor: TensorName, storage: Storage, bytes: &[u8]) -> Result<(), LoadError> {
    let is_scale = matches!(tensor, TensorName::Scale(_) | TensorName::EmbeddingScale);
    let bad = match storage {
        Storage::F32 => bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .enumerate()
            .find_map(|(index, v)| match v {
                v if !v.is_finite() => Some(LoadError::NonFinite { tensor, index }),
                v if is_scale && v <= 0.0 => Some(LoadError::ScaleNotPositive { tensor, index }),
                _ => None,
            }),
        Storage::F16 => bytes
            .as_chunks::<2>()
            .0
            .iter()
            .position(|b| !half::f16::from_le_bytes(*b).is_finite())
            .map(|index| LoadError::NonFinite { tensor, index }),
        Storage::I8 => bytes
            .iter()
            .position(|&b| i8::from_le_bytes([b]) == i8::MIN)
            .map(|index| LoadError::QuantOutOfRange { tensor, index }),
        Storage::I16 => bytes
            .as_chunks::<2>()
            .0
            .iter()
            .position(|b| i16::from_le_bytes(*b) <= 0)
            .map(|index| LoadError::MultiplierNotPositive { tensor, index }),
        // Any 24-bit bias: the overflow bound, checked last, covers its size.
        Storage::I32 => bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| split_bias_shift(i32::from_le_bytes(*b)).1)
            .position(|shift| !(MIN_SHIFT..=MAX_SHIFT).contains(&shift))
            .map(|index| LoadError::ShiftOutOfRange { tensor, index }),
    };
    bad.map_or(Ok(()), Err)
}

impl<'a> ModelView<'a> {
    /// Validates a whole folded model file and views it in place.
    ///
    /// Checks, in this order: the header length against the file, the header's JSON, the
    /// metadata (format, version, dtype, vocabulary, config), that exactly the tensors the
    /// config and dtype call for are present, each one's dtype, shape and offsets, that the
    /// tensors tile the data section without overlap or gap, that every value is finite,
    /// every scale positive and every i8 weight in `-127..=127`, and last that the values are
    /// small enough for f32: no context can take any value of the forward pass beyond
    /// [`crate::MAX_MAGNITUDE`], so an accepted model gives finite logits for every context
    /// and the sampler's draws and log-likelihoods never meet a NaN. For q8 the values are
    /// checked as `model/FORMAT.md` says (codes in `-127..=127`, multipliers positive, shifts
    /// in `-31..=30`), and last that no int8 input can overflow an int32 accumulator or give
    /// a logit beyond 2^24 ([`LoadError::IntegerOverflow`]). The first failure is
    /// returned. Never panics, allocates nothing, and accepts nothing the `safetensors`
    /// crate (0.8) refuses. Weights are not copied: the view reads them from `bytes`, at
    /// any alignment.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LoadError> {
        let len = bytes.len();
        let (prefix, rest) = bytes
            .split_first_chunk::<LEN_PREFIX>()
            .ok_or(LoadError::TooShort { len })?;
        let header_len = u64::from_le_bytes(*prefix);
        let too_large = LoadError::HeaderTooLarge { header_len };
        let json_len = usize::try_from(header_len)
            .ok()
            .filter(|_| header_len <= MAX_HEADER_LEN)
            .ok_or(too_large)?;
        let (json, data) = rest
            .split_at_checked(json_len)
            .ok_or(LoadError::HeaderPastEnd {
                header_len,
                file_len: len,
            })?;
        let data_start = LEN_PREFIX.saturating_add(json_len);
        if json.first() != Some(&b'{') {
            let found = json.first().copied();
            return Err(LoadError::HeaderStart { found });
        }

        let header = Header::read(Reader::new(json, LEN_PREFIX))?;
        let metadata = header.metadata.as_ref();
        let (dtype, vocab, config) = metadata.ok_or(LoadError::NoMetadata)?.model()?;

        if let Some((offset, name)) = header.unexpected {
            return Err(LoadError::UnexpectedTensor { offset, name });
        }
        let mut wanted = [false; SLOTS];
        for name in format::folded_tensors(&config, dtype) {
            if let Some(want) = slot(name).and_then(|i| wanted.get_mut(i)) {
                *want = true;
            }
        }
        for (cell, _) in header.tensors.iter().zip(wanted).filter(|(_, want)| !want) {
            if let Some((name, entry)) = cell {
                let offset = entry.key_offset;
                let name = Some(*name);
                return Err(LoadError::UnexpectedTensor { offset, name });
            }
        }

        let mut found: [Option<Located<'a>>; SLOTS] = [None; SLOTS];
        for name in format::folded_tensors(&config, dtype) {
            let index = slot(name).ok_or(LoadError::MissingTensor(name))?;
            let entry = header.tensors.get(index).copied().flatten();
            let (_, entry) = entry.ok_or(LoadError::MissingTensor(name))?;
            if let Some(cell) = found.get_mut(index) {
                *cell = Some(locate(name, entry, &config, dtype, data)?);
            }
        }
        check_layout(&found, data_start, data.len())?;
        for located in found.iter().flatten() {
            let name = located.name;
            check_values(name, name.storage(Some(dtype)), located.bytes)?;
        }

        let views = Views {
            found: &found,
            dtype,
        };
        let embedding = views.matrix(
            TensorName::Embedding,
            TensorName::EmbeddingScale,
            config.vocab_size(),
            config.embed_dim(),
        )?;
        let mut layers = [None; MAX_HIDDEN_LAYERS + 1];
        for (i, layer) in layers.iter_mut().enumerate() {
            if let Some((inputs, outputs)) = config.layer_dims(i) {
                let weight =
                    views.matrix(TensorName::Weight(i), TensorName::Scale(i), outputs, inputs)?;
                *layer = Some(if dtype == Dtype::Q8 {
                    let requant = views.requant(i, outputs)?;
                    let bias = Vector::default();
                    Layer {
                        weight,
                        bias,
                        requant,
                    }
                } else {
                    let bias = views.vector(TensorName::Bias(i))?;
                    let requant = Requant::default();
                    Layer {
                        weight,
                        bias,
                        requant,
                    }
                });
            }
        }
        let view = ModelView {
            config,
            vocab,
            dtype,
            embedding,
            layers,
            tanh_table: views.table()?,
            #[cfg(any(
                all(feature = "std", target_arch = "x86_64"),
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            packed: None,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            kernels: crate::Kernels::detect(),
        };
        #[cfg(feature = "q8")]
        if dtype == Dtype::Q8 {
            crate::q8::check(&view)?;
            return Ok(view);
        }
        crate::bound::check(&view)?;
        Ok(view)
    }
}

/// Builds the tensor views from the located, fully checked tensors.
struct Views<'f, 'a> {
    found: &'f [Option<Located<'a>>; SLOTS],
    dtype: Dtype,
}

impl<'a> Views<'_, 'a> {
    fn located(&self, name: TensorName) -> Result<Located<'a>, LoadError> {
        let located = slot(name)
            .and_then(|i| self.found.get(i))
            .copied()
            .flatten();
        located.ok_or(LoadError::MissingTensor(name))
    }

    fn vector(&self, name: TensorName) -> Result<Vector<'a>, LoadError> {
        let located = self.located(name)?;
        Vector::new(located.bytes).ok_or(LoadError::TensorLength {
            tensor: name,
            expected: located.bytes.len() / 4 * 4,
            offset: located.offsets_at,
        })
    }

    /// Layer `layer`'s q8 `bias_shift` words and multipliers, `rows` of each.
    fn requant(&self, layer: usize, rows: usize) -> Result<Requant<'a>, LoadError> {
        let bias_shift = self.located(TensorName::BiasShift(layer))?;
        let multiplier = self.located(TensorName::Multiplier(layer))?;
        Requant::new(rows, bias_shift.bytes, multiplier.bytes).ok_or(LoadError::TensorLength {
            tensor: TensorName::BiasShift(layer),
            expected: rows.saturating_mul(4),
            offset: bias_shift.offsets_at,
        })
    }

    /// The q8 `tanh` table; `None` for the float dtypes.
    fn table(&self) -> Result<Option<&'a [u8; TANH_TABLE_LEN]>, LoadError> {
        if self.dtype != Dtype::Q8 {
            return Ok(None);
        }
        let located = self.located(TensorName::TanhTable)?;
        let table = located.bytes.try_into().ok();
        table.map(Some).ok_or(LoadError::TensorLength {
            tensor: TensorName::TanhTable,
            expected: TANH_TABLE_LEN,
            offset: located.offsets_at,
        })
    }

    /// The matrix `name` with its row scales `scale` (only i8 has them). The lengths were
    /// checked when the tensors were located; the constructor checks them again.
    fn matrix(
        &self,
        name: TensorName,
        scale: TensorName,
        rows: usize,
        cols: usize,
    ) -> Result<Matrix<'a>, LoadError> {
        let located = self.located(name)?;
        let scales = match self.dtype {
            Dtype::I8 => self.vector(scale)?,
            Dtype::F32 | Dtype::F16 | Dtype::Q8 => Vector::default(),
        };
        Matrix::new(rows, cols, self.dtype, located.bytes, scales).ok_or(LoadError::TensorLength {
            tensor: name,
            expected: rows.saturating_mul(cols).saturating_mul(self.dtype.size()),
            offset: located.offsets_at,
        })
    }
}
