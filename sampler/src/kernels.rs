//! The choice of the code that computes the layers and the draw, made once per process.

/// Which code computes a model's layers (one name at a time and batched) and the draw's
/// weights. Every choice gives the same bits: the same names, logits, log-likelihoods and
/// scores. Only the speed differs; the tests run every model with each choice and compare.
///
/// A [`crate::ModelView`] carries its choice: [`ModelView::parse`](crate::ModelView::parse)
/// and [`ModelView::from_layout`](crate::ModelView::from_layout) take [`Kernels::detect`],
/// and [`ModelView::with_kernels`](crate::ModelView::with_kernels) picks another (for tests
/// and benchmarks).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// Plain Rust, the code every target runs (Cortex-M, WASM, any host).
    Portable,
    /// Kernels written with AVX2 and F16C intrinsics, 8 values per instruction, in the same
    /// order of operations as the portable code: x86_64 hosts with the `std` feature whose CPU
    /// has both.
    Avx2,
    /// [`Kernels::Avx2`], with the q8 integer network's products by AVX-VNNI's `vpdpbusd`
    /// (32 int8 products into 8 int32 sums per instruction) where the weights are packed
    /// (`ModelView::pack_weights`); the float dtypes run the AVX2 code unchanged. x86_64
    /// hosts with the `std` feature whose CPU has AVX2, F16C and AVX-VNNI.
    Avx2Vnni,
    /// [`Kernels::Avx2`], with the q8 integer network on AVX-512 where the weights are packed:
    /// 64 int8 products per `vpdpbusd`, 16 rows requantised per instruction and the `tanh`
    /// table looked up 64 codes at a time (`vpermi2b`), and the q8 draw's weights 8 at a time
    /// (packed or not); the float dtypes, and q8 weights in place, run the AVX2 code
    /// unchanged. x86_64 hosts with the `std` feature whose CPU has AVX2, F16C and AVX-512 F,
    /// BW, VNNI and VBMI.
    Avx512Vnni,
    /// Kernels written with WASM SIMD128 intrinsics, 4 values per instruction, in the same
    /// order of operations as the portable code: wasm32 builds compiled with the `simd128`
    /// target feature, which run nothing else (an engine without SIMD refuses the module).
    Simd128,
}

impl Kernels {
    /// The fastest kernels this CPU runs: [`Kernels::Avx512Vnni`] on an x86_64 host (`std`
    /// feature) whose CPU has its instruction sets, else [`Kernels::Avx2Vnni`] on one with
    /// AVX2, F16C and AVX-VNNI, [`Kernels::Avx2`] on one with AVX2 and F16C only,
    /// [`Kernels::Simd128`] in a wasm32 build with `simd128`, [`Kernels::Portable`] everywhere
    /// else. The CPU is asked once per process; later calls return the same answer.
    pub fn detect() -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            static DETECTED: std::sync::OnceLock<Kernels> = std::sync::OnceLock::new();
            *DETECTED.get_or_init(|| {
                [Self::Avx512Vnni, Self::Avx2Vnni, Self::Avx2]
                    .into_iter()
                    .find(|kernels| kernels.cpu_has())
                    .unwrap_or(Self::Portable)
            })
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Self::Simd128;
        #[cfg(not(any(
            all(feature = "std", target_arch = "x86_64"),
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        Self::Portable
    }

    /// Whether this CPU runs these kernels: [`Kernels::Portable`] always, the others when
    /// [`Kernels::detect`] found their instruction sets.
    pub fn runs_here(self) -> bool {
        match self {
            Self::Portable => true,
            Self::Simd128 => Self::detect() == Self::Simd128,
            _ => Self::detect().avx2() && self.cpu_has(),
        }
    }

    /// Whether these kernels are [`Kernels::Avx2`] or build on it: the code for AVX2 and F16C
    /// runs wherever it is true.
    pub(crate) fn avx2(self) -> bool {
        matches!(self, Self::Avx2 | Self::Avx2Vnni | Self::Avx512Vnni)
    }

    /// Whether this CPU has the x86_64 instruction sets these kernels use (false for
    /// [`Kernels::Portable`] and [`Kernels::Simd128`], which need none of them).
    fn cpu_has(self) -> bool {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            use std::is_x86_feature_detected as has;
            // The AVX2 kernels decode f16 with F16C, so they need both.
            let avx2 = has!("avx2") && has!("f16c");
            match self {
                Self::Avx2 => avx2,
                Self::Avx2Vnni => avx2 && has!("avxvnni"),
                Self::Avx512Vnni => {
                    let bits = has!("avx512f") && has!("avx512bw");
                    avx2 && bits && has!("avx512vnni") && has!("avx512vbmi")
                }
                Self::Portable | Self::Simd128 => false,
            }
        }
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        false
    }
}
