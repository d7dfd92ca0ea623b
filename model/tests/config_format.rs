//! The architecture config and the file-format names.

use namegen_model::config::{ConfigError, WidthList};
use namegen_model::format::{
    self, MetadataError, Storage, folded_tensors, parse_config, unfolded_tensors,
};
use namegen_model::{Dtype, ModelConfig, TensorName};

#[test]
fn default_is_makemore_part_3() {
    let c = ModelConfig::default();
    assert_eq!(
        (c.block_size(), c.embed_dim(), c.hidden(), c.vocab_size()),
        (3, 10, &[100; 5][..], 27)
    );
    assert_eq!(c.n_layers(), 6);
    assert_eq!(c.layer_dims(0), Some((30, 100)));
    assert_eq!(c.layer_dims(5), Some((100, 27)));
    assert_eq!(c.layer_dims(6), None);
    // makemore part 3 reports 47,024 parameters (embedding, weights, BatchNorm gamma/beta).
    assert_eq!(c.unfolded_parameters(), 47_024);
    assert_eq!(
        c.folded_parameters(),
        270 + 3000 + 4 * 10_000 + 2700 + 5 * 100 + 27
    );
    assert_eq!(c.max_width(), 100);
}

#[test]
fn invalid_configs_are_rejected() {
    assert_eq!(
        ModelConfig::new(0, 10, &[100], 27),
        Err(ConfigError::BlockSize(0))
    );
    assert_eq!(
        ModelConfig::new(17, 10, &[100], 27),
        Err(ConfigError::BlockSize(17))
    );
    assert_eq!(
        ModelConfig::new(3, 0, &[100], 27),
        Err(ConfigError::EmbedDim(0))
    );
    assert_eq!(
        ModelConfig::new(3, 10, &[], 27),
        Err(ConfigError::HiddenLayers(0))
    );
    assert_eq!(
        ModelConfig::new(3, 10, &[100; 9], 27),
        Err(ConfigError::HiddenLayers(9))
    );
    assert_eq!(
        ModelConfig::new(3, 10, &[100, 0], 27),
        Err(ConfigError::HiddenWidth { layer: 1, width: 0 })
    );
    assert_eq!(
        ModelConfig::new(3, 10, &[100], 1),
        Err(ConfigError::VocabSize(1))
    );
    assert_eq!(
        ModelConfig::new(3, 10, &[100], 129),
        Err(ConfigError::VocabSize(129))
    );
}

#[test]
fn metadata_round_trips() {
    let c = ModelConfig::new(4, 8, &[64, 32], 40).unwrap();
    let hidden = WidthList(c.hidden()).to_string();
    assert_eq!(hidden, "64,32");
    assert_eq!(parse_config("4", "8", &hidden, 40), Ok(c));
    assert_eq!(
        parse_config("4", "+8", &hidden, 40),
        Err(MetadataError::NotANumber { key: "embed_dim" })
    );
    assert_eq!(
        parse_config("4", "8", "64,,32", 40),
        Err(MetadataError::NotANumber { key: "hidden" })
    );
    assert_eq!(
        parse_config("", "8", "64", 40),
        Err(MetadataError::NotANumber { key: "block_size" })
    );
    assert_eq!(
        parse_config("4", "8", "1,1,1,1,1,1,1,1,1", 40),
        Err(MetadataError::Config(ConfigError::HiddenLayers(9)))
    );
}

#[test]
fn tensor_names_round_trip_and_reject_strangers() {
    let c = ModelConfig::default();
    let names: Vec<String> = unfolded_tensors(&c).map(|n| n.to_string()).collect();
    assert_eq!(names.len(), 1 + 6 * 5);
    assert_eq!(
        names[..3],
        ["emb.weight", "layers.0.weight", "layers.0.bn.gamma"]
    );
    for dtype in Dtype::ALL {
        let folded: Vec<TensorName> = folded_tensors(&c, dtype).collect();
        let (emb, per_layer) = match dtype {
            Dtype::I8 => (2, 3),
            // The table after the embedding; biases with shifts and multipliers after each
            // weight.
            Dtype::Q8 => (2, 3),
            Dtype::F32 | Dtype::F16 => (1, 2),
        };
        assert_eq!(folded.len(), emb + 6 * per_layer);
        for name in folded
            .iter()
            .chain(unfolded_tensors(&c).collect::<Vec<_>>().iter())
        {
            assert_eq!(TensorName::parse(&name.to_string()), Some(*name));
        }
    }
    for bad in [
        "layers.01.weight",
        "layers.9.weight",
        "layers.-1.bias",
        "layers.+1.bias",
        "layers.1.bn",
        // Not a tensor of any dtype: q8 stores its shifts in `bias_shift`.
        "layers.1.shift",
        "emb",
        "layers..weight",
        "",
    ] {
        assert_eq!(TensorName::parse(bad), None, "{bad}");
    }
    assert_eq!(TensorName::Weight(0).shape(&c).unwrap().dims(), &[100, 30]);
    assert_eq!(TensorName::Weight(5).shape(&c).unwrap().dims(), &[27, 100]);
    assert_eq!(TensorName::Bias(6).shape(&c), None);
    assert_eq!(TensorName::Weight(2).dtype(Some(Dtype::I8)), Dtype::I8);
    assert_eq!(TensorName::Scale(2).dtype(Some(Dtype::I8)), Dtype::F32);
    assert_eq!(TensorName::Weight(2).dtype(None), Dtype::F32);
    assert_eq!(Dtype::from_name("f16"), Some(Dtype::F16));
    assert_eq!(Dtype::from_safetensors_name("I8"), Some(Dtype::I8));
    // q8: its own names, shapes and storage.
    assert_eq!(Dtype::from_name("q8"), Some(Dtype::Q8));
    assert!(!Dtype::FLOAT.contains(&Dtype::Q8));
    let q8: Vec<String> = folded_tensors(&c, Dtype::Q8)
        .take(6)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        q8,
        [
            "emb.weight",
            "tanh.table",
            "layers.0.weight",
            "layers.0.bias_shift",
            "layers.0.multiplier",
            "layers.1.weight"
        ]
    );
    assert_eq!(TensorName::TanhTable.shape(&c).unwrap().dims(), &[256]);
    assert_eq!(TensorName::BiasShift(5).shape(&c).unwrap().dims(), &[27]);
    assert_eq!(TensorName::Multiplier(5).shape(&c).unwrap().dims(), &[27]);
    let storage = |name: TensorName| name.storage(Some(Dtype::Q8));
    assert_eq!(storage(TensorName::Embedding), Storage::I8);
    assert_eq!(storage(TensorName::Weight(1)), Storage::I8);
    assert_eq!(storage(TensorName::BiasShift(1)), Storage::I32);
    assert_eq!(storage(TensorName::Multiplier(1)), Storage::I16);
    assert_eq!(Storage::I16.safetensors_name(), "I16");
    assert_eq!(Storage::I16.size(), 2);
    assert_eq!(storage(TensorName::TanhTable), Storage::I8);
    assert_eq!(TensorName::Bias(1).storage(Some(Dtype::I8)), Storage::F32);
    assert_eq!(
        TensorName::Weight(1).storage(Some(Dtype::F16)),
        Storage::F16
    );
}

#[test]
fn i8_quantisation_is_symmetric_and_round_trips_within_half_a_step() {
    let row = [0.5, -1.27, 0.0, 0.004_9, -0.005_1];
    let scale = format::i8_row_scale(&row);
    assert_eq!(scale, (1.27f64 / 127.0) as f32);
    let q: Vec<i8> = row.iter().map(|&v| format::quantize_i8(v, scale)).collect();
    assert_eq!(q, [50, -127, 0, 0, -1]);
    for (&v, &q) in row.iter().zip(&q) {
        assert!((f64::from(q) * f64::from(scale) - v).abs() <= f64::from(scale) / 2.0);
    }
    // An all-zero row would have scale 0, which the loader refuses: it gets 1.
    assert_eq!(format::i8_row_scale(&[0.0, -0.0]), 1.0);
    // Values past the row's own range (a caller's bug) saturate at the symmetric bounds.
    assert_eq!(format::quantize_i8(1e9, 1.0), 127);
    assert_eq!(format::quantize_i8(-1e9, 1.0), -127);
}
