//! Any layout and data through `ModelView::from_layout`, the device's header-less path: it
//! must never panic, whatever it accepts must be exactly the data it was given (tensor after
//! tensor), and a name drawn from it (weights unchecked, so NaN and infinities included) must
//! not panic either.
//!
//! Input: dtype, block_size, embed_dim, number of hidden layers and their widths (one byte
//! each), the vocabulary's length in bytes and the vocabulary, then the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use namegen_model::Dtype;
use namegen_sampler::{Layout, ModelView, Sampler, Settings};

/// Buffers of the sampler the fuzzer runs: wide enough for every width one byte can give.
const WIDTH: usize = 256;

fuzz_target!(|bytes: &[u8]| {
    let Some((layout_bytes, hidden, symbols, data)) = split(bytes) else {
        return;
    };
    let Ok(symbols) = core::str::from_utf8(symbols) else {
        return;
    };
    let layout = Layout {
        dtype: Dtype::ALL[usize::from(layout_bytes[0]) % Dtype::ALL.len()],
        symbols,
        block_size: usize::from(layout_bytes[1]),
        embed_dim: usize::from(layout_bytes[2]),
        hidden: &hidden,
    };
    let Ok(view) = ModelView::from_layout(&layout, data) else {
        return;
    };
    let viewed: Vec<u8> = view
        .tensors()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    assert_eq!(viewed, data, "the view is not the data it was given");
    let settings = Settings {
        max_len: 8,
        ..Settings::default()
    };
    if let Ok(mut sampler) = Sampler::<WIDTH, 64>::new(&view, settings) {
        let name = sampler.name_at(0);
        assert!(name.chars <= 8);
    }
});

/// The fixed fields, the hidden widths, the vocabulary and the data; `None` if too short.
fn split(bytes: &[u8]) -> Option<([u8; 3], Vec<usize>, &[u8], &[u8])> {
    let (fixed, rest) = bytes.split_first_chunk::<4>()?;
    let layers = usize::from(fixed[3] % 10);
    let (widths, rest) = rest.split_at_checked(layers)?;
    let (&len, rest) = rest.split_first()?;
    let (symbols, data) = rest.split_at_checked(usize::from(len))?;
    let hidden = widths.iter().map(|&w| usize::from(w)).collect();
    Some(([fixed[0], fixed[1], fixed[2]], hidden, symbols, data))
}
