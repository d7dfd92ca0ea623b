//! Without `std`, the batched generator gives the unbatched sampler's names, bit for bit: the
//! names the `std` build's batched generator is checked against in `sampler/tests`.

use namegen_sampler::{
    BatchOptions, DEFAULT_BATCH, DEFAULT_CACHE_BYTES, Kernels, ModelView, Sampler, Settings,
    generate_batched,
};

/// The shipped models, one per dtype.
const MODELS: [(&str, &[u8]); 4] = [
    ("f32", include_bytes!("../../../data/model-f32.safetensors")),
    ("f16", include_bytes!("../../../data/model-f16.safetensors")),
    ("i8", include_bytes!("../../../data/model-i8.safetensors")),
    ("q8", include_bytes!("../../../data/model-q8.safetensors")),
];

/// Enough names for many contexts to come from the cache.
const COUNT: usize = 300;

#[test]
fn batched_names_without_std_are_the_unbatched_names() {
    let settings = [
        Settings::default(),
        Settings {
            seed: 11,
            temperature: 0.8,
            top_k: 10,
            top_p: 0.9,
            prefix: "ma",
            max_len: 8,
            ..Settings::default()
        },
    ];
    for (dtype, bytes) in MODELS {
        let model = ModelView::parse(bytes).unwrap();
        // Without `std` nothing asks the CPU for AVX2: the portable code every device runs.
        assert_eq!(model.kernels(), Kernels::Portable);
        for settings in &settings {
            let mut sampler = Sampler::<100>::new(&model, *settings).unwrap();
            let one_by_one: Vec<_> = (0..COUNT as u64).map(|k| sampler.name_at(k)).collect();
            // The default cache, none, and one emptied every few steps; a full and a small batch.
            for (batch, cache_bytes) in [
                (DEFAULT_BATCH, DEFAULT_CACHE_BYTES),
                (DEFAULT_BATCH, 0),
                (16, 20_000),
            ] {
                let options = BatchOptions {
                    batch,
                    cache_bytes,
                    ..BatchOptions::new(COUNT)
                };
                let batched = generate_batched(&model, settings, &options).unwrap();
                assert_eq!(batched, one_by_one, "{dtype} {settings:?} {options:?}");
            }
        }
    }
}
