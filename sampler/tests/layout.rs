//! `ModelView::from_layout`: the view a build script's layout and data give is the view
//! `ModelView::parse` gives for the file, and a layout that does not match its data is refused.

mod common;

use namegen_model::config::ConfigError;
use namegen_model::format::folded_tensors;
use namegen_model::vocab::VocabError;
use namegen_model::{Dtype, TensorName};
use namegen_sampler::{DefaultSampler, Layout, LayoutError, ModelView, Settings};

/// What the firmware's build script makes of a file: its symbols, hidden widths and tensors.
struct Split {
    dtype: Dtype,
    symbols: String,
    block_size: usize,
    embed_dim: usize,
    hidden: Vec<usize>,
    data: Vec<u8>,
}

impl Split {
    fn of(view: &ModelView<'_>) -> Self {
        Self {
            dtype: view.dtype(),
            symbols: view.vocab().to_string(),
            block_size: view.config().block_size(),
            embed_dim: view.config().embed_dim(),
            hidden: view.config().hidden().to_vec(),
            data: view
                .tensors()
                .flat_map(|(_, bytes)| bytes.to_vec())
                .collect(),
        }
    }

    fn layout(&self) -> Layout<'_> {
        Layout {
            dtype: self.dtype,
            symbols: &self.symbols,
            block_size: self.block_size,
            embed_dim: self.embed_dim,
            hidden: &self.hidden,
        }
    }
}

fn shipped_and_valid_files() -> Vec<(String, Vec<u8>)> {
    let mut files = common::valid_files();
    for dtype in Dtype::FLOAT {
        let path = format!(
            "{}/../data/model-{dtype}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        files.push((path.clone(), std::fs::read(&path).expect("a shipped model")));
    }
    files
}

#[test]
fn the_layout_and_the_tensors_give_the_parsed_view_back() {
    for (name, bytes) in shipped_and_valid_files() {
        let parsed = ModelView::parse(&bytes).expect(&name);
        let tensors: Vec<TensorName> = parsed.tensors().map(|(t, _)| t).collect();
        let expected: Vec<TensorName> = folded_tensors(parsed.config(), parsed.dtype()).collect();
        assert_eq!(
            tensors, expected,
            "{name}: tensors() must follow folded_tensors"
        );

        let split = Split::of(&parsed);
        let rebuilt = ModelView::from_layout(&split.layout(), &split.data).expect(&name);
        assert_eq!(rebuilt.config(), parsed.config(), "{name}");
        assert_eq!(rebuilt.vocab(), parsed.vocab(), "{name}");
        assert_eq!(rebuilt.dtype(), parsed.dtype(), "{name}");
        assert_eq!(
            common::view_tensors(&rebuilt),
            common::view_tensors(&parsed),
            "{name}"
        );
        // The views read the data in place, each tensor where the previous one ended.
        let mut at = split.data.as_ptr();
        for (tensor, bytes) in rebuilt.tensors() {
            assert_eq!(bytes.as_ptr(), at, "{name}: {tensor}");
            at = at.wrapping_add(bytes.len());
        }
        assert_eq!(at, split.data.as_ptr_range().end, "{name}");

        let settings = Settings {
            seed: 5,
            ..Settings::default()
        };
        let names = |view: &ModelView<'_>| -> Vec<String> {
            let sampler = DefaultSampler::new(view, settings).expect("valid settings");
            sampler
                .take(20)
                .map(|n| n.text.as_str().to_owned())
                .collect()
        };
        assert_eq!(names(&rebuilt), names(&parsed), "{name}");
    }
}

#[test]
fn a_layout_that_does_not_match_its_data_is_refused() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/model-i8.safetensors"
    ))
    .expect("the shipped i8 model");
    let split = Split::of(&ModelView::parse(&bytes).expect("the shipped model loads"));
    let layout = split.layout();
    let expected = split.data.len();
    let refused = |layout: &Layout<'_>, data: &[u8]| {
        ModelView::from_layout(layout, data).expect_err("must be refused")
    };

    let short = &split.data[..expected - 1];
    assert_eq!(
        refused(&layout, short),
        LayoutError::DataLength {
            expected,
            found: expected - 1
        }
    );
    let mut long = split.data.clone();
    long.push(0);
    assert_eq!(
        refused(&layout, &long),
        LayoutError::DataLength {
            expected,
            found: expected + 1
        }
    );
    // The same bytes read as another dtype or another shape do not add up.
    for other in [
        Layout {
            dtype: Dtype::F16,
            ..layout
        },
        Layout {
            embed_dim: 11,
            ..layout
        },
        Layout {
            hidden: &[100, 100, 100, 100],
            ..layout
        },
        Layout {
            symbols: ".abcdefghijklmnopqrstuvwxy",
            ..layout
        },
    ] {
        assert!(
            matches!(
                refused(&other, &split.data),
                LayoutError::DataLength { found, .. } if found == expected
            ),
            "{other:?}"
        );
    }
    let config = Layout {
        block_size: 0,
        ..layout
    };
    assert_eq!(
        refused(&config, &split.data),
        LayoutError::Config(ConfigError::BlockSize(0))
    );
    let vocab = Layout {
        symbols: "abc",
        ..layout
    };
    assert_eq!(
        refused(&vocab, &split.data),
        LayoutError::Vocab(VocabError::MissingTerminator)
    );
    let unsorted = Layout {
        symbols: ".ba",
        ..layout
    };
    assert_eq!(
        refused(&unsorted, &split.data),
        LayoutError::Vocab(VocabError::NotAscending { index: 2 })
    );
}

/// A layout small enough to write out, one symbol of each UTF-8 length: its f32 data
/// (embedding 5 x 1, a 2 -> 3 layer, a 3 -> 5 layer, each with its bias) are zeros.
const TINY: Layout<'static> = Layout {
    dtype: Dtype::F32,
    symbols: ".aé€😀",
    block_size: 2,
    embed_dim: 1,
    hidden: &[3],
};
static TINY_DATA: [u8; 4 * (5 + 2 * 3 + 3 + 3 * 5 + 5)] = [0; 4 * (5 + 2 * 3 + 3 + 3 * 5 + 5)];

/// What a firmware does with its model: the view computed by the compiler, into a static.
/// (A firmware matches the `Result` directly; with `std` on x86_64 a view has a destructor, for
/// its optional packed weights, which a static's initializer may not run even on a path that
/// never takes it, so here the view is copied out and the `Result` forgotten.)
static TINY_VIEW: ModelView<'static> = {
    let result = ModelView::from_layout_portable(&TINY, &TINY_DATA);
    let view = match &result {
        // SAFETY: the `Result` is forgotten below, so the view copied out has one owner.
        Ok(view) => unsafe { core::ptr::read(view) },
        Err(_) => panic!("the tiny layout matches its data"),
    };
    core::mem::forget(result);
    view
};

#[test]
fn the_compiler_computes_the_view_a_layout_gives_at_run_time() {
    let run_time = ModelView::from_layout(&TINY, &TINY_DATA).expect("the tiny layout");
    assert_eq!(TINY_VIEW.config(), run_time.config());
    assert_eq!(TINY_VIEW.vocab(), run_time.vocab());
    assert_eq!(TINY_VIEW.vocab().to_string(), TINY.symbols);
    assert_eq!(TINY_VIEW.dtype(), run_time.dtype());
    assert_eq!(
        common::view_tensors(&TINY_VIEW),
        common::view_tensors(&run_time)
    );
    assert_eq!(
        TINY_VIEW.kernels(),
        namegen_sampler::Kernels::Portable,
        "a compile-time view computes with the portable kernels"
    );
}
