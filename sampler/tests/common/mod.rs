//! Test helpers shared by the loader's tests: a writer of safetensors bytes that can also
//! write wrong ones, small random folded models, and the corpus of hand-made bad files.
#![allow(dead_code)] // each test binary uses its own part of the helpers

use namegen_model::format::{self, FOLDED_FORMAT, FORMAT_VERSION, Storage, keys};
use namegen_model::{Dtype, ModelConfig, Rng, TensorName, q8};
use namegen_sampler::{JsonError, LoadError, ModelView};

/// One tensor as it will be written: the header fields and the data bytes.
#[derive(Clone, Debug)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl TensorSpec {
    /// The values as stored, decoded here from the bytes (not by the sampler) into f64; i8
    /// without its scale.
    pub fn stored(&self) -> Vec<f64> {
        match self.dtype.as_str() {
            "F32" => self
                .data
                .chunks(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
                .collect(),
            "F16" => self
                .data
                .chunks(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64())
                .collect(),
            "I8" => self.data.iter().map(|&b| f64::from(b as i8)).collect(),
            "I32" => self
                .data
                .chunks(4)
                .map(|b| f64::from(i32::from_le_bytes(b.try_into().unwrap())))
                .collect(),
            other => panic!("{other}"),
        }
    }
}

/// A safetensors file before it is written. Offsets are computed from the tensors' order
/// unless given explicitly, so the same spec can be written right and wrong.
#[derive(Clone, Debug)]
pub struct FileSpec {
    pub metadata: Vec<(String, String)>,
    pub tensors: Vec<TensorSpec>,
}

/// The small config of the tests: block 3, embedding 4, two hidden layers of 8.
pub const BLOCK: usize = 3;
pub const EMBED: usize = 4;
pub const HIDDEN: [usize; 2] = [8, 8];
/// Five symbols, two of them outside ASCII, so that UTF-8 in the header is exercised.
pub const VOCAB: &str = ".azé😀";

pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl FileSpec {
    /// The spec of an existing safetensors file, as the `safetensors` crate reads it (not the
    /// sampler): metadata and tensors sorted by name, so that writing it back is deterministic.
    pub fn read(bytes: &[u8]) -> Self {
        let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
        let mut metadata: Vec<(String, String)> = metadata
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        metadata.sort();
        let mut tensors: Vec<TensorSpec> = st
            .tensors()
            .into_iter()
            .map(|(name, t)| TensorSpec {
                name,
                dtype: format!("{:?}", t.dtype()),
                shape: t.shape().iter().map(|&d| d as u64).collect(),
                data: t.data().to_vec(),
            })
            .collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Self { metadata, tensors }
    }

    /// A valid folded model of the test config with random values.
    pub fn folded(dtype: Dtype, seed: u64) -> Self {
        Self::folded_with(BLOCK, EMBED, &HIDDEN, VOCAB, dtype, seed)
    }

    /// A valid folded model of any config with random values.
    pub fn folded_with(
        block: usize,
        embed: usize,
        hidden: &[usize],
        vocab: &str,
        dtype: Dtype,
        seed: u64,
    ) -> Self {
        let config = ModelConfig::new(block, embed, hidden, vocab.chars().count()).unwrap();
        let hidden_list: Vec<String> = hidden.iter().map(usize::to_string).collect();
        let metadata = vec![
            (keys::FORMAT.into(), FOLDED_FORMAT.into()),
            (keys::FORMAT_VERSION.into(), FORMAT_VERSION.into()),
            (keys::BLOCK_SIZE.into(), block.to_string()),
            (keys::EMBED_DIM.into(), embed.to_string()),
            (keys::HIDDEN.into(), hidden_list.join(",")),
            (keys::VOCAB.into(), vocab.into()),
            (keys::DTYPE.into(), dtype.name().into()),
            (keys::WRITER.into(), "loader tests".into()),
        ];
        let mut rng = Rng::new(seed);
        let tensors = format::folded_tensors(&config, dtype)
            .map(|name| {
                let shape = name.shape(&config).unwrap();
                let stored = name.storage(Some(dtype));
                let n = shape.elements();
                let data = random_values(&mut rng, name, stored, n);
                TensorSpec {
                    name: name.to_string(),
                    dtype: stored.safetensors_name().into(),
                    shape: shape.dims().iter().map(|&d| d as u64).collect(),
                    data,
                }
            })
            .collect();
        Self { metadata, tensors }
    }

    pub fn set_meta(&mut self, key: &str, value: &str) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.into(),
            None => self.metadata.push((key.into(), value.into())),
        }
    }

    pub fn remove_meta(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    pub fn tensor_mut(&mut self, name: &str) -> &mut TensorSpec {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap()
    }

    pub fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    /// Offsets of the tensors laid out in order, with no gaps.
    pub fn offsets(&self) -> Vec<(u64, u64)> {
        let mut at = 0;
        self.tensors
            .iter()
            .map(|t| {
                let begin = at;
                at += t.data.len() as u64;
                (begin, at)
            })
            .collect()
    }

    /// The data section laid out in order.
    pub fn data(&self) -> Vec<u8> {
        self.tensors.iter().flat_map(|t| t.data.clone()).collect()
    }

    /// The header JSON with the default offsets.
    pub fn header(&self) -> String {
        self.header_with(&self.offsets())
    }

    /// The header JSON with the given offsets, metadata first as safetensors writes it.
    pub fn header_with(&self, offsets: &[(u64, u64)]) -> String {
        let mut parts = Vec::new();
        if !self.metadata.is_empty() {
            let entries: Vec<String> = self
                .metadata
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                .collect();
            parts.push(format!("\"__metadata__\":{{{}}}", entries.join(",")));
        }
        for (t, &(begin, end)) in self.tensors.iter().zip(offsets) {
            parts.push(format!(
                "{}:{}",
                json_string(&t.name),
                entry_json(&t.dtype, &t.shape, begin, end)
            ));
        }
        format!("{{{}}}", parts.join(","))
    }

    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        assemble(&self.header(), &self.data())
    }
}

pub fn entry_json(dtype: &str, shape: &[u64], begin: u64, end: u64) -> String {
    format!(
        "{{\"dtype\":{},\"shape\":{},\"data_offsets\":[{begin},{end}]}}",
        json_string(dtype),
        serde_json::to_string(shape).unwrap()
    )
}

/// Length prefix, header, data.
pub fn assemble(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// `n` random valid values of tensor `name` stored as `storage`. q8's stay far inside its
/// overflow bounds: biases below 2^12, shifts at most 0 (a right shift), so that with the
/// test configs' at most 12 inputs no accumulator nears 2^31 nor a logit 2^24; multipliers in
/// `2^14..2^15`, as a writer makes them.
fn random_values(rng: &mut Rng, name: TensorName, storage: Storage, n: usize) -> Vec<u8> {
    let scale = matches!(name, TensorName::Scale(_) | TensorName::EmbeddingScale);
    (0..n)
        .flat_map(|_| match (storage, name) {
            (Storage::F32, _) if scale => (0.01 + rng.next_f32()).to_le_bytes().to_vec(),
            (Storage::F32, _) => ((rng.normal() * 0.5) as f32).to_le_bytes().to_vec(),
            (Storage::F16, _) => half::f16::from_f64(rng.normal() * 0.5)
                .to_le_bytes()
                .to_vec(),
            (Storage::I8, _) => ((rng.below(255) as i32 - 127) as i8).to_le_bytes().to_vec(),
            (Storage::I16, _) => ((1 << 14) + rng.below(1 << 14) as i16)
                .to_le_bytes()
                .to_vec(),
            (Storage::I32, _) => {
                let bias = rng.below(1 << 13) as i32 - (1 << 12);
                let shift = rng.below(11) as i8 - 10;
                q8::bias_shift(bias, shift).unwrap().to_le_bytes().to_vec()
            }
        })
        .collect()
}

/// Every valid file the tests use: each dtype, a few seeds and configs, and a header written
/// with escapes, padding and out-of-order entries.
pub fn valid_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dtype in Dtype::ALL {
        for seed in 0..2 {
            let spec = FileSpec::folded(dtype, seed);
            files.push((format!("{dtype} seed {seed}"), spec.to_bytes()));
        }
        let wide = FileSpec::folded_with(2, 3, &[5, 6, 7], ".abcdefg", dtype, 9);
        files.push((format!("{dtype} three hidden layers"), wide.to_bytes()));
        let spec = FileSpec::folded(dtype, 3);
        // safetensors pads its header with spaces to a multiple of 8.
        let padded = format!("{}   ", spec.header());
        files.push((format!("{dtype} padded"), assemble(&padded, &spec.data())));
        // Keys and values escaped as another JSON writer might: \u escapes (a surrogate pair
        // for the emoji), \/ and unknown metadata with every escape.
        let escaped = spec
            .header()
            .replace("\"emb.weight\"", "\"emb\\u002eweight\"")
            .replace("é😀", "\\u00e9\\ud83D\\uDE00")
            .replace(
                "\"__metadata__\":{",
                "\"__metadata__\":{\"x\\/y\":\"\\\"\\\\\\b\\f\\n\\r\\t\",",
            );
        files.push((format!("{dtype} escaped"), assemble(&escaped, &spec.data())));
        // Header entries and data in another order than the writer's.
        let mut reordered = spec.clone();
        reordered.tensors.reverse();
        let offsets = reordered.offsets();
        let mut entries = reordered.clone();
        entries.tensors.rotate_left(1);
        let mut rotated = offsets.clone();
        rotated.rotate_left(1);
        let header = entries.header_with(&rotated);
        files.push((
            format!("{dtype} reordered"),
            assemble(&header, &reordered.data()),
        ));
    }
    files
}

type Offsets = Vec<(u64, u64)>;

/// One hand-made bad file and the error it must give.
pub struct BadFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub expected: Box<dyn Fn(&LoadError) -> bool>,
}

/// Adds a bad file to the corpus with the error pattern it must match.
macro_rules! case {
    ($files:ident, $name:expr, $bytes:expr, $($pattern:tt)+) => {
        add(&mut $files, $name.into(), $bytes, Box::new(move |e: &LoadError| {
            matches!(e, $($pattern)+)
        }))
    };
}

fn add(
    files: &mut Vec<BadFile>,
    name: String,
    bytes: Vec<u8>,
    expected: Box<dyn Fn(&LoadError) -> bool>,
) {
    files.push(BadFile {
        name,
        bytes,
        expected,
    });
}

/// The file with its header rewritten by `edit`.
fn edited(spec: &FileSpec, edit: impl Fn(String) -> String) -> Vec<u8> {
    let header = edit(spec.header());
    assert_ne!(header, spec.header(), "the edit must change the header");
    assemble(&header, &spec.data())
}

/// The file with the first `from` in its header replaced by `to`.
fn replaced(spec: &FileSpec, from: &str, to: &str) -> Vec<u8> {
    edited(spec, |h| h.replacen(from, to, 1))
}

/// The file with one metadata value set.
fn with_meta(spec: &FileSpec, key: &str, value: &str) -> Vec<u8> {
    let mut spec = spec.clone();
    spec.set_meta(key, value);
    spec.to_bytes()
}

/// The file with its offsets rewritten by `edit`.
fn with_offsets(spec: &FileSpec, edit: impl Fn(&mut Offsets)) -> Vec<u8> {
    let mut offsets = spec.offsets();
    edit(&mut offsets);
    assemble(&spec.header_with(&offsets), &spec.data())
}

/// The file with one tensor changed by `edit`.
fn with_tensor(spec: &FileSpec, name: &str, edit: impl Fn(&mut TensorSpec)) -> Vec<u8> {
    let mut spec = spec.clone();
    edit(spec.tensor_mut(name));
    spec.to_bytes()
}

/// The file with one more tensor.
fn with_extra(spec: &FileSpec, name: &str, dtype: &str, shape: &[u64], data: Vec<u8>) -> Vec<u8> {
    let mut spec = spec.clone();
    let (name, dtype, shape) = (name.into(), dtype.into(), shape.to_vec());
    spec.tensors.push(TensorSpec {
        name,
        dtype,
        shape,
        data,
    });
    spec.to_bytes()
}

/// The file with f32 value `index` of tensor `name` set to `value`.
fn with_f32(spec: &FileSpec, name: &str, index: usize, value: f32) -> Vec<u8> {
    let at = index * 4;
    with_tensor(spec, name, |t| {
        t.data[at..at + 4].copy_from_slice(&value.to_le_bytes())
    })
}

/// The corpus: one defect per file, each with the error it must produce. The test config's
/// tensors, in file order: `emb.weight` [5, 4] (80 bytes in f32), `layers.0.weight`
/// [8, 12], `layers.0.bias` [8], `layers.1.weight` [8, 8], `layers.1.bias` [8],
/// `layers.2.weight` [5, 8], `layers.2.bias` [5]; i8 adds a scale after each matrix.
#[rustfmt::skip] // a table: one case per statement reads best
pub fn bad_files() -> Vec<BadFile> {
    use JsonError as J;
    use LoadError as E;
    use TensorName as T;
    use namegen_model::config::ConfigError;
    use namegen_model::format::MetadataError;
    use namegen_model::vocab::VocabError;
    let f32_spec = FileSpec::folded(Dtype::F32, 1);
    let f16_spec = FileSpec::folded(Dtype::F16, 1);
    let i8_spec = FileSpec::folded(Dtype::I8, 1);
    let good = f32_spec.to_bytes();
    let header = f32_spec.header();
    let data = f32_spec.data();
    let data_start = 8 + header.len();
    let data_end = data_start + data.len();
    let mut files = Vec::new();

    // Framing, and truncation at every boundary.
    case!(files, "empty", vec![], E::TooShort { len: 0 });
    case!(files, "7 bytes", good[..7].to_vec(), E::TooShort { len: 7 });
    case!(files, "cut after the length", good[..8].to_vec(), E::HeaderPastEnd { file_len: 8, .. });
    case!(files, "cut inside the header", good[..data_start / 2].to_vec(), E::HeaderPastEnd { .. });
    case!(files, "cut after the header", good[..data_start].to_vec(),
        E::OffsetsPastEnd { tensor: T::Embedding, end: 80, data_len: 0, .. });
    case!(files, "cut inside the data", good[..good.len() - 1].to_vec(),
        E::OffsetsPastEnd { tensor: T::Bias(2), .. });
    let with_prefix = |len: u64| [&len.to_le_bytes(), &good[8..]].concat();
    case!(files, "header above 100 MB", with_prefix(100_000_001),
        E::HeaderTooLarge { header_len: 100_000_001 });
    case!(files, "header length u64::MAX", with_prefix(u64::MAX),
        E::HeaderTooLarge { header_len: u64::MAX });
    case!(files, "header length past the end", with_prefix(good.len() as u64),
        E::HeaderPastEnd { .. });
    case!(files, "header cut, length fixed", assemble(&header[..header.len() - 1], &data),
        E::Json { error: J::UnexpectedEnd, .. });
    case!(files, "empty header", assemble("", &[]), E::HeaderStart { found: None });
    case!(files, "header is an array", assemble("[]", &[]), E::HeaderStart { found: Some(b'[') });
    case!(files, "leading whitespace", edited(&f32_spec, |h| format!(" {h}")),
        E::HeaderStart { found: Some(b' ') });

    // JSON.
    case!(files, "trailing garbage", edited(&f32_spec, |h| format!("{h}x")),
        E::Json { error: J::TrailingCharacters, .. });
    case!(files, "two objects", edited(&f32_spec, |h| format!("{h} {{}}")),
        E::Json { error: J::TrailingCharacters, .. });
    case!(files, "trailing comma", edited(&f32_spec, |h| format!("{},}}", &h[..h.len() - 1])),
        E::Json { error: J::Expected("a string"), .. });
    case!(files, "missing colon", replaced(&f32_spec, "\"dtype\":", "\"dtype\" "),
        E::Json { error: J::Expected("':'"), .. });
    case!(files, "missing comma", replaced(&f32_spec, ",\"shape\"", " \"shape\""),
        E::Json { error: J::Expected("',' or '}'"), .. });
    case!(files, "unclosed array", replaced(&f32_spec, "],\"data_offsets\"", ",\"data_offsets\""),
        E::Json { error: J::Expected("an unsigned integer"), .. });
    case!(files, "invalid escape", replaced(&f32_spec, "loader tests", "loader\\x"),
        E::Json { error: J::InvalidEscape, .. });
    case!(files, "short \\u escape", replaced(&f32_spec, "loader tests", "\\u12"),
        E::Json { error: J::InvalidEscape, .. });
    case!(files, "lone high surrogate", replaced(&f32_spec, "loader tests", "\\ud800x"),
        E::Json { error: J::LoneSurrogate, .. });
    case!(files, "lone low surrogate", replaced(&f32_spec, "loader tests", "x\\udc00"),
        E::Json { error: J::LoneSurrogate, .. });
    case!(files, "control character", replaced(&f32_spec, "loader tests", "loader\ttests"),
        E::Json { error: J::ControlCharacter, .. });
    case!(files, "leading zero", replaced(&f32_spec, "[5,4]", "[05,4]"),
        E::Json { error: J::LeadingZero, .. });
    case!(files, "fraction", replaced(&f32_spec, "[5,4]", "[5.0,4]"),
        E::Json { error: J::NotAnInteger, .. });
    case!(files, "exponent", replaced(&f32_spec, "[5,4]", "[5,4E0]"),
        E::Json { error: J::NotAnInteger, .. });
    case!(files, "negative", replaced(&f32_spec, "[5,4]", "[-5,4]"),
        E::Json { error: J::Expected("an unsigned integer"), .. });
    case!(files, "number above u64", replaced(&f32_spec, "[5,4]", "[18446744073709551616,4]"),
        E::Json { error: J::NumberTooLarge, .. });
    case!(files, "three data offsets", replaced(&f32_spec, "[0,80]", "[0,80,80]"),
        E::Json { error: J::Expected("two data offsets"), .. });
    case!(files, "metadata value not a string", replaced(&f32_spec, "\"3\"", "3"),
        E::Json { error: J::Expected("a string"), .. });
    let null_metadata = edited(&f32_spec, |h| {
        let end = h.find('}').unwrap();
        format!("{{\"__metadata__\":null{}", &h[end + 1..])
    });
    case!(files, "metadata is null", null_metadata,
        E::Json { error: J::Expected("an object"), .. });
    case!(files, "tensor entry not an object",
        replaced(&f32_spec, "\"layers.2.bias\":{", "\"layers.2.bias\":[{"),
        E::Json { error: J::Expected("an object"), .. });
    let mut bad_utf8 = good.clone();
    let at = bad_utf8
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .unwrap();
    bad_utf8[at + 1] = 0xFF;
    case!(files, "invalid UTF-8 in a string", bad_utf8, E::NotUtf8 { offset } if *offset == at);

    // Keys and fields.
    let bias_again = format!(",\"layers.2.bias\":{}}}", entry_json("F32", &[5], 0, 20));
    case!(files, "duplicate tensor",
        edited(&f32_spec, |h| format!("{}{bias_again}", &h[..h.len() - 1])),
        E::DuplicateKey { .. });
    case!(files, "duplicate metadata key",
        replaced(&f32_spec, "\"block_size\":\"3\"", "\"block_size\":\"3\",\"block_size\":\"3\""),
        E::DuplicateKey { .. });
    case!(files, "duplicate __metadata__",
        replaced(&f32_spec, "{\"__metadata__\":{", "{\"__metadata__\":{},\"__metadata__\":{"),
        E::DuplicateKey { .. });
    case!(files, "duplicate field",
        replaced(&f32_spec, "\"dtype\":\"F32\"", "\"dtype\":\"F32\",\"dtype\":\"F32\""),
        E::DuplicateKey { .. });
    case!(files, "unknown field",
        replaced(&f32_spec, "\"dtype\":\"F32\"", "\"dtype\":\"F32\",\"x\":\"\""),
        E::UnknownField { .. });
    case!(files, "missing field", replaced(&f32_spec, ",\"shape\":[5,4]", ""),
        E::MissingField { field: "shape", .. });

    // Metadata.
    let mut no_metadata = f32_spec.clone();
    no_metadata.metadata.clear();
    case!(files, "no metadata", no_metadata.to_bytes(), E::NoMetadata);
    for key in [
        keys::FORMAT,
        keys::FORMAT_VERSION,
        keys::DTYPE,
        keys::VOCAB,
        keys::BLOCK_SIZE,
        keys::EMBED_DIM,
        keys::HIDDEN,
    ] {
        let mut spec = f32_spec.clone();
        spec.remove_meta(key);
        case!(files, format!("no {key}"), spec.to_bytes(),
            E::MissingMetadata { key: k } if *k == key);
    }
    case!(files, "unfolded format", with_meta(&f32_spec, keys::FORMAT, "namegen-unfolded"),
        E::WrongFormat { .. });
    case!(files, "version 2", with_meta(&f32_spec, keys::FORMAT_VERSION, "2"),
        E::UnsupportedVersion { .. });
    case!(files, "dtype bf16", with_meta(&f32_spec, keys::DTYPE, "bf16"), E::UnknownDtype { .. });
    case!(files, "block_size not a number", with_meta(&f32_spec, keys::BLOCK_SIZE, "three"),
        E::Config(MetadataError::NotANumber { key: "block_size" }));
    case!(files, "block_size too long", with_meta(&f32_spec, keys::BLOCK_SIZE, &"0".repeat(100)),
        E::MetadataTooLong { key: "block_size", .. });
    case!(files, "zero hidden width", with_meta(&f32_spec, keys::HIDDEN, "8,0"),
        E::Config(MetadataError::Config(ConfigError::HiddenWidth { layer: 1, width: 0 })));
    case!(files, "vocab without '.'", with_meta(&f32_spec, keys::VOCAB, "azé😀."),
        E::Vocab { error: VocabError::MissingTerminator, .. });
    case!(files, "vocab out of order", with_meta(&f32_spec, keys::VOCAB, ".zaé😀"),
        E::Vocab { error: VocabError::NotAscending { index: 2 }, .. });
    case!(files, "vocab with a control character", with_meta(&f32_spec, keys::VOCAB, ".\u{7f}azé"),
        E::Vocab { error: VocabError::ControlChar('\u{7f}'), .. });
    // Config that does not match the tensors.
    case!(files, "hidden widths disagree", with_meta(&f32_spec, keys::HIDDEN, "8,9"),
        E::TensorShape { tensor: T::Weight(1), .. });
    case!(files, "vocab one longer", with_meta(&f32_spec, keys::VOCAB, ".abzé😀"),
        E::TensorShape { tensor: T::Embedding, .. });
    case!(files, "embed_dim disagrees", with_meta(&f32_spec, keys::EMBED_DIM, "5"),
        E::TensorShape { tensor: T::Embedding, .. });
    case!(files, "dtype disagrees", with_meta(&f32_spec, keys::DTYPE, "f16"),
        E::TensorDtype { tensor: T::Embedding, expected: Storage::F16, .. });

    // Which tensors.
    case!(files, "extra tensor", with_extra(&f32_spec, "foo", "F32", &[1], vec![0; 4]),
        E::UnexpectedTensor { name: None, .. });
    case!(files, "extra layer", with_extra(&f32_spec, "layers.3.bias", "F32", &[5], vec![0; 20]),
        E::UnexpectedTensor { name: Some(T::Bias(3)), .. });
    case!(files, "scale in an f32 model",
        with_extra(&f32_spec, "emb.scale", "F32", &[5], 1f32.to_le_bytes().repeat(5)),
        E::UnexpectedTensor { name: Some(T::EmbeddingScale), .. });
    case!(files, "unfolded tensor",
        with_extra(&f32_spec, "layers.0.bn.gamma", "F32", &[8], vec![0; 32]),
        E::UnexpectedTensor { name: Some(T::BnGamma(0)), .. });
    let mut missing = f32_spec.clone();
    missing.remove_tensor("layers.1.bias");
    case!(files, "missing bias", missing.to_bytes(), E::MissingTensor(T::Bias(1)));
    let mut missing = i8_spec.clone();
    missing.remove_tensor("emb.scale");
    case!(files, "missing scale", missing.to_bytes(), E::MissingTensor(T::EmbeddingScale));

    // Each tensor's dtype, shape and offsets.
    case!(files, "weight F64",
        with_tensor(&f32_spec, "layers.0.weight", |t| t.dtype = "F64".into()),
        E::TensorDtype { tensor: T::Weight(0), expected: Storage::F32, .. });
    case!(files, "bias F16", with_tensor(&f16_spec, "layers.0.bias", |t| t.dtype = "F16".into()),
        E::TensorDtype { tensor: T::Bias(0), expected: Storage::F32, .. });
    case!(files, "unknown tensor dtype",
        with_tensor(&f32_spec, "layers.1.bias", |t| t.dtype = "XYZ".into()),
        E::TensorDtype { tensor: T::Bias(1), .. });
    case!(files, "transposed weight",
        with_tensor(&f32_spec, "layers.0.weight", |t| t.shape = vec![12, 8]),
        E::TensorShape { tensor: T::Weight(0), .. });
    case!(files, "rank 3 weight",
        with_tensor(&f32_spec, "layers.1.weight", |t| t.shape = vec![8, 8, 1]),
        E::TensorShape { tensor: T::Weight(1), .. });
    case!(files, "rank 0 bias", with_tensor(&f32_spec, "layers.0.bias", |t| t.shape = vec![]),
        E::TensorShape { tensor: T::Bias(0), .. });
    case!(files, "reversed offsets", with_offsets(&f32_spec, |o| o[0] = (80, 0)),
        E::OffsetsReversed { tensor: T::Embedding, .. });
    case!(files, "offsets past the end", with_offsets(&f32_spec, |o| o[0] = (2000, 2080)),
        E::OffsetsPastEnd { tensor: T::Embedding, end: 2080, .. });
    case!(files, "offsets beyond usize",
        with_offsets(&f32_spec, |o| o[1] = (u64::MAX - 384, u64::MAX)),
        E::OffsetsPastEnd { tensor: T::Weight(0), end: u64::MAX, .. });
    case!(files, "length not elements x size", with_offsets(&f32_spec, |o| o[0].1 -= 4),
        E::TensorLength { tensor: T::Embedding, expected: 80, .. });
    // The two biases of width 8 share bytes; the second one's are left uncovered.
    case!(files, "overlapping offsets", with_offsets(&f32_spec, |o| o[4] = o[2]),
        E::TensorsOverlap { first: T::Bias(0), second: T::Bias(1) });
    let mut gap = f32_spec.offsets();
    gap[1..].iter_mut().for_each(|o| *o = (o.0 + 4, o.1 + 4));
    let gap_header = f32_spec.header_with(&gap);
    let gap_start = 8 + gap_header.len();
    let mut gap_data = data.clone();
    gap_data.splice(80..80, [0; 4]);
    case!(files, "gap between tensors", assemble(&gap_header, &gap_data),
        E::UncoveredData { begin, end } if (*begin, *end) == (gap_start + 80, gap_start + 84));
    case!(files, "bytes after the last tensor", assemble(&header, &[&data[..], &[0; 3]].concat()),
        E::UncoveredData { begin, end } if (*begin, *end) == (data_end, data_end + 3));
    let mut late = f32_spec.offsets();
    late.iter_mut().for_each(|o| *o = (o.0 + 4, o.1 + 4));
    let late_header = f32_spec.header_with(&late);
    let late_start = 8 + late_header.len();
    case!(files, "data starts late", assemble(&late_header, &[&[0; 4], &data[..]].concat()),
        E::UncoveredData { begin, end } if (*begin, *end) == (late_start, late_start + 4));

    // Values.
    case!(files, "NaN weight", with_f32(&f32_spec, "layers.1.weight", 7, f32::NAN),
        E::NonFinite { tensor: T::Weight(1), index: 7 });
    case!(files, "infinite embedding", with_f32(&f32_spec, "emb.weight", 0, f32::NEG_INFINITY),
        E::NonFinite { tensor: T::Embedding, index: 0 });
    case!(files, "NaN bias", with_f32(&i8_spec, "layers.2.bias", 4, f32::NAN),
        E::NonFinite { tensor: T::Bias(2), index: 4 });
    case!(files, "infinite scale", with_f32(&i8_spec, "layers.0.scale", 3, f32::INFINITY),
        E::NonFinite { tensor: T::Scale(0), index: 3 });
    case!(files, "NaN scale", with_f32(&i8_spec, "emb.scale", 1, f32::NAN),
        E::NonFinite { tensor: T::EmbeddingScale, index: 1 });
    case!(files, "zero scale", with_f32(&i8_spec, "layers.1.scale", 2, 0.0),
        E::ScaleNotPositive { tensor: T::Scale(1), index: 2 });
    case!(files, "negative scale", with_f32(&i8_spec, "emb.scale", 4, -1.0),
        E::ScaleNotPositive { tensor: T::EmbeddingScale, index: 4 });
    let f16_inf = half::f16::INFINITY.to_le_bytes();
    case!(files, "infinite f16 weight",
        with_tensor(&f16_spec, "layers.0.weight", |t| t.data[10..12].copy_from_slice(&f16_inf)),
        E::NonFinite { tensor: T::Weight(0), index: 5 });
    let f16_nan = half::f16::NAN.to_le_bytes();
    case!(files, "NaN f16 embedding",
        with_tensor(&f16_spec, "emb.weight", |t| t.data[38..40].copy_from_slice(&f16_nan)),
        E::NonFinite { tensor: T::Embedding, index: 19 });
    case!(files, "i8 weight -128", with_tensor(&i8_spec, "layers.2.weight", |t| t.data[6] = 0x80),
        E::QuantOutOfRange { tensor: T::Weight(2), index: 6 });

    // Finite values too large for f32 arithmetic: the bound every value of the forward pass
    // must keep for every context (1e37). Value 19 of layers.1.weight is in row 19 / 8 = 2.
    case!(files, "3e38 hidden weight", with_f32(&f32_spec, "layers.1.weight", 19, 3e38),
        E::MayOverflow { tensor: T::Weight(1), row: 2 });
    case!(files, "3e38 embedding", with_f32(&f32_spec, "emb.weight", 9, 3e38),
        E::MayOverflow { tensor: T::Embedding, row: 2 });
    case!(files, "3e38 last bias", with_f32(&f32_spec, "layers.2.bias", 3, 3e38),
        E::MayOverflow { tensor: T::Bias(2), row: 3 });
    case!(files, "1e38 f16 bias", with_f32(&f16_spec, "layers.1.bias", 5, 1e38),
        E::MayOverflow { tensor: T::Bias(1), row: 5 });
    case!(files, "3e38 i8 scale", with_f32(&i8_spec, "layers.1.scale", 6, 3e38),
        E::MayOverflow { tensor: T::Weight(1), row: 6 });
    // q * 3e38 overflows to infinity when the forward pass decodes the row.
    case!(files, "3e38 i8 embedding scale", with_f32(&i8_spec, "emb.scale", 3, 3e38),
        E::MayOverflow { tensor: T::Embedding, row: 3 });

    // q8: its own tensors, dtypes and value rules (model/FORMAT.md, "The q8 dtype").
    let q8_spec = FileSpec::folded(Dtype::Q8, 1);
    let mut missing = q8_spec.clone();
    missing.remove_tensor("tanh.table");
    case!(files, "q8 without its table", missing.to_bytes(), E::MissingTensor(T::TanhTable));
    let mut missing = q8_spec.clone();
    missing.remove_tensor("layers.1.bias_shift");
    case!(files, "q8 without a bias_shift", missing.to_bytes(), E::MissingTensor(T::BiasShift(1)));
    // The per-row integers of a q8 file as three tensors, a bias, a 32-bit multiplier and a
    // shift, are not the format: refused by name.
    let mut split = q8_spec.clone();
    split.remove_tensor("layers.2.bias_shift");
    case!(files, "q8 with a shift tensor", with_extra(&split, "layers.2.shift", "I8", &[3], vec![0; 3]),
        E::UnexpectedTensor { name: None, .. });
    case!(files, "q8 with a bias tensor", with_extra(&split, "layers.2.bias", "I32", &[3], vec![0; 12]),
        E::UnexpectedTensor { name: Some(T::Bias(2)), .. });
    case!(files, "table in an f32 model", with_extra(&f32_spec, "tanh.table", "I8", &[256], vec![0; 256]),
        E::UnexpectedTensor { name: Some(T::TanhTable), .. });
    case!(files, "q8 bias_shift F32", with_tensor(&q8_spec, "layers.0.bias_shift", |t| t.dtype = "F32".into()),
        E::TensorDtype { tensor: T::BiasShift(0), expected: Storage::I32, .. });
    case!(files, "q8 multiplier I32",
        with_tensor(&q8_spec, "layers.2.multiplier", |t| { t.dtype = "I32".into(); t.data = vec![1; 20] }),
        E::TensorDtype { tensor: T::Multiplier(2), expected: Storage::I16, .. });
    case!(files, "q8 table of 255", with_tensor(&q8_spec, "tanh.table", |t| { t.shape = vec![255]; t.data.pop(); }),
        E::TensorShape { tensor: T::TanhTable, .. });
    case!(files, "q8 multipliers one short",
        with_tensor(&q8_spec, "layers.1.multiplier", |t| { t.shape = vec![7]; t.data.truncate(14) }),
        E::TensorShape { tensor: T::Multiplier(1), .. });
    case!(files, "q8 multipliers of 4 bytes",
        with_tensor(&q8_spec, "layers.1.multiplier", |t| t.data.extend([0; 16])),
        E::TensorLength { tensor: T::Multiplier(1), expected: 16, .. });
    case!(files, "q8 weight -128", with_tensor(&q8_spec, "layers.1.weight", |t| t.data[9] = 0x80),
        E::QuantOutOfRange { tensor: T::Weight(1), index: 9 });
    case!(files, "q8 embedding -128", with_tensor(&q8_spec, "emb.weight", |t| t.data[3] = 0x80),
        E::QuantOutOfRange { tensor: T::Embedding, index: 3 });
    case!(files, "q8 table -128", with_tensor(&q8_spec, "tanh.table", |t| t.data[0] = 0x80),
        E::QuantOutOfRange { tensor: T::TanhTable, index: 0 });
    case!(files, "q8 zero multiplier", with_tensor(&q8_spec, "layers.0.multiplier", |t| t.data[4..6].fill(0)),
        E::MultiplierNotPositive { tensor: T::Multiplier(0), index: 2 });
    case!(files, "q8 negative multiplier", with_tensor(&q8_spec, "layers.2.multiplier", |t| t.data[9] = 0x80),
        E::MultiplierNotPositive { tensor: T::Multiplier(2), index: 4 });
    // The shift is the low byte of each `bias_shift` word (little-endian: its first byte).
    case!(files, "q8 shift 31", with_tensor(&q8_spec, "layers.0.bias_shift", |t| t.data[20] = 31),
        E::ShiftOutOfRange { tensor: T::BiasShift(0), index: 5 });
    case!(files, "q8 shift -32", with_tensor(&q8_spec, "layers.1.bias_shift", |t| t.data[0] = -32i8 as u8),
        E::ShiftOutOfRange { tensor: T::BiasShift(1), index: 0 });
    case!(files, "q8 shift -128", with_tensor(&q8_spec, "layers.2.bias_shift", |t| t.data[8] = 0x80),
        E::ShiftOutOfRange { tensor: T::BiasShift(2), index: 2 });
    // A left shift by 30 takes any nonzero accumulator bound past 2^31.
    case!(files, "q8 left shift 30", with_tensor(&q8_spec, "layers.1.bias_shift", |t| t.data[8] = 30),
        E::IntegerOverflow { tensor: T::BiasShift(1), row: 2 });
    // The bias of the largest magnitude a word holds, -2^23, with 12 inputs of up to 127 * 128 (at most
    // 8,583,680 in all) fits int32 shifted left by 7 but not by 8.
    let word_at = |index: usize, bias: i32, shift: i8| move |t: &mut TensorSpec| {
        let word = q8::bias_shift(bias, shift).unwrap();
        t.data[4 * index..4 * index + 4].copy_from_slice(&word.to_le_bytes())
    };
    case!(files, "q8 bias -2^23 shifted by 8", with_tensor(&q8_spec, "layers.0.bias_shift", word_at(3, q8::MIN_BIAS, 8)),
        E::IntegerOverflow { tensor: T::BiasShift(0), row: 3 });
    // Output row 1 scaled up by 2^12: its accumulator bound (8 inputs, at most 134,144) still
    // fits int32 shifted, but the logit bound (half the shifted bound at least) passes 2^24.
    case!(files, "q8 logit beyond 2^24", with_tensor(&q8_spec, "layers.2.bias_shift", |t| t.data[4] = 12),
        E::IntegerOverflow { tensor: T::Multiplier(2), row: 1 });
    files
}

/// Every tensor a view holds, as `(name, safetensors dtype, shape, bytes)`, read back through
/// the public accessors, sorted by name.
pub fn view_tensors(view: &ModelView<'_>) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    let dtype = view.dtype();
    let mut matrix = |name: TensorName, scale: TensorName, m: &namegen_sampler::Matrix<'_>| {
        let bytes: Vec<u8> = (0..m.rows())
            .flat_map(|r| m.row_bytes(r).to_vec())
            .collect();
        out.push((
            name.to_string(),
            dtype.safetensors_name().to_string(),
            vec![m.rows(), m.cols()],
            bytes,
        ));
        if dtype == Dtype::I8 {
            let scales: Vec<u8> = (0..m.rows())
                .flat_map(|r| m.scale(r).to_le_bytes())
                .collect();
            out.push((scale.to_string(), "F32".into(), vec![m.rows()], scales));
        }
    };
    matrix(
        TensorName::Embedding,
        TensorName::EmbeddingScale,
        view.embedding(),
    );
    let mut biases = Vec::new();
    for (i, layer) in view.layers().enumerate() {
        matrix(TensorName::Weight(i), TensorName::Scale(i), &layer.weight);
        if dtype == Dtype::Q8 {
            // Encoded back from the accessors' decoded integers.
            let q = &layer.requant;
            let rows = q.rows();
            let bias_shift: Vec<u8> = (0..rows)
                .flat_map(|r| q8::bias_shift(q.bias(r), q.shift(r)).unwrap().to_le_bytes())
                .collect();
            let multiplier: Vec<u8> = (0..rows)
                .flat_map(|r| {
                    let stored = q.multiplier(r) >> q8::MULTIPLIER_LOW_BITS;
                    assert_eq!(q.multiplier(r), q8::widen_multiplier(stored as i16));
                    (stored as i16).to_le_bytes()
                })
                .collect();
            for (name, dtype, bytes) in [
                (TensorName::BiasShift(i), "I32", bias_shift),
                (TensorName::Multiplier(i), "I16", multiplier),
            ] {
                biases.push((name.to_string(), dtype.to_string(), vec![rows], bytes));
            }
            continue;
        }
        let bytes: Vec<u8> = layer.bias.iter().flat_map(f32::to_le_bytes).collect();
        biases.push((
            TensorName::Bias(i).to_string(),
            "F32".to_string(),
            vec![layer.bias.len()],
            bytes,
        ));
    }
    if let Some(table) = view.tanh_table() {
        let name = TensorName::TanhTable.to_string();
        biases.push((name, "I8".into(), vec![table.len()], table.to_vec()));
    }
    out.extend(biases);
    out.sort();
    out
}

/// The same as [`view_tensors`], from the `safetensors` crate.
pub fn reference_tensors(
    st: &safetensors::SafeTensors<'_>,
) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            (
                name,
                format!("{:?}", t.dtype()),
                t.shape().to_vec(),
                t.data().to_vec(),
            )
        })
        .collect();
    out.sort();
    out
}
