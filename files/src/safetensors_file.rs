//! Writing safetensors bytes with a reproducible layout: the same tensors and metadata always
//! give the same file.
//!
//! Written here rather than by `safetensors::serialize`, whose metadata is a `HashMap`
//! serialised in a random order. The layout is plain safetensors: an 8-byte little-endian
//! header length, the JSON header (keys sorted, padded with spaces to a multiple of 8, as the
//! `safetensors` crate pads), then the tensors' bytes in the order given. Every file written
//! this way is read back by the `safetensors` crate in the tests.

use std::collections::BTreeMap;

/// One tensor to write.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorBytes {
    /// Its name in the header.
    pub name: String,
    /// The safetensors dtype name (`F32`, `F16`, `I8`).
    pub dtype: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its little-endian bytes.
    pub bytes: Vec<u8>,
}

/// The bytes of a safetensors file holding `tensors` (data in this order) and `metadata`.
pub fn encode(metadata: &BTreeMap<String, String>, tensors: &[TensorBytes]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".to_owned(), serde_json::json!(metadata));
    let mut offset = 0;
    for tensor in tensors {
        let end = offset + tensor.bytes.len();
        header.insert(
            tensor.name.clone(),
            serde_json::json!({
                "dtype": tensor.dtype,
                "shape": tensor.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut text = serde_json::Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend((text.len() as u64).to_le_bytes());
    bytes.extend(text.as_bytes());
    tensors.iter().for_each(|t| bytes.extend(&t.bytes));
    bytes
}
