//! `namegen pipeline`: the whole job in one command: train, write the split, export the
//! folded model in every dtype, verify each against the unfolded model, and sample names.
//! Each step is the ordinary subcommand, printed as the command line that runs it alone.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};

use super::CommandError;
use crate::cli::{BackendArg, Cli, run as run_command};

/// Flags of `namegen pipeline`.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The names file.
    #[arg(long, default_value = "data/names.txt")]
    pub data: PathBuf,
    /// Where everything is written: checkpoint, plots, split, folded models and their cards.
    #[arg(long, default_value = "out")]
    pub out_dir: PathBuf,
    /// SGD steps.
    #[arg(long, default_value_t = 200_000)]
    pub steps: u64,
    /// Training seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// burn backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Flex)]
    pub backend: BackendArg,
    /// How many names to sample at the end.
    #[arg(short = 'n', long = "count", default_value_t = 20)]
    pub count: usize,
}

/// Runs every step; stops at the first that fails (a broken verification bound included).
pub fn run(args: &PipelineArgs) -> Result<ExitCode, CommandError> {
    let out = |name: &str| args.out_dir.join(name).display().to_string();
    let data = args.data.display().to_string();
    let backend = match args.backend {
        BackendArg::Flex => "flex",
        BackendArg::Ndarray => "ndarray",
    };
    let checkpoint = out("model.ckpt.safetensors");
    let (steps, seed, count) = (
        args.steps.to_string(),
        args.seed.to_string(),
        args.count.to_string(),
    );
    let mut commands: Vec<Vec<String>> = vec![
        words(&[
            "train",
            "--data",
            &data,
            "--steps",
            &steps,
            "--seed",
            &seed,
            "--backend",
            backend,
            "--out",
            &checkpoint,
            "--plots",
            &out("plots"),
        ]),
        words(&[
            "split",
            "--data",
            &data,
            "--seed",
            "42",
            "--out-dir",
            &out("split"),
        ]),
    ];
    for dtype in ["f32", "f16", "i8"] {
        let model = out(&format!("model-{dtype}.safetensors"));
        commands.push(words(&[
            "export",
            "--from",
            &checkpoint,
            "--out",
            &model,
            "--dtype",
            dtype,
        ]));
        commands.push(words(&[
            "verify",
            "--unfolded",
            &checkpoint,
            "--model",
            &model,
            "--data",
            &data,
            "--backend",
            backend,
            "--card",
        ]));
    }
    commands.push(words(&[
        "sample",
        "--model",
        &out("model-f32.safetensors"),
        "-n",
        &count,
    ]));

    std::fs::create_dir_all(&args.out_dir).map_err(|source| CommandError::Read {
        path: args.out_dir.clone(),
        source,
    })?;
    for command in commands {
        eprintln!("\n$ namegen {}", command.join(" "));
        let cli = Cli::parse_from(std::iter::once("namegen".to_string()).chain(command));
        let code = run_command(cli)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}
