//! `namegen pipeline`: the whole job in one command: train, write the split, export the
//! folded model in every dtype, verify each against the unfolded model, and sample names.
//! Each step is the ordinary subcommand, printed as the command line that runs it alone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser};

use namegen_files::output::Outputs;
use namegen_model::Part;

use super::CommandError;
use crate::cli::{Cli, run as run_command};
use crate::trainer::{Backend, Recipe};

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
    #[arg(long, default_value_t = Recipe::default().steps)]
    pub steps: u64,
    /// Training seed.
    #[arg(long, default_value_t = Recipe::default().seed)]
    pub seed: u64,
    /// burn backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// How many names to sample at the end.
    #[arg(short = 'n', long = "count", default_value_t = 20)]
    pub count: usize,
}

/// The dtypes the pipeline exports, each verified.
const DTYPES: [&str; 3] = ["f32", "f16", "i8"];

/// Where the pipeline's steps write, under `--out-dir`: named once for the steps and the plan.
struct Layout {
    checkpoint: PathBuf,
    plots: PathBuf,
    split: PathBuf,
    /// One folded model per entry of [`DTYPES`].
    models: [PathBuf; 3],
}

impl Layout {
    fn new(out: &Path) -> Self {
        Self {
            checkpoint: out.join("model.ckpt.safetensors"),
            plots: out.join("plots"),
            split: out.join("split"),
            models: DTYPES.map(|dtype| out.join(format!("model-{dtype}.safetensors"))),
        }
    }
}

/// Runs every step; stops at the first that fails (a broken verification bound included).
pub fn run(args: &PipelineArgs) -> Result<ExitCode, CommandError> {
    let layout = Layout::new(&args.out_dir);
    plan(args, &layout)?;
    let text = |path: &Path| path.display().to_string();
    let (data, checkpoint) = (text(&args.data), text(&layout.checkpoint));
    let backend = args.backend.name();
    let (steps, seed, count, split_seed) = (
        args.steps.to_string(),
        args.seed.to_string(),
        args.count.to_string(),
        namegen_model::split::DEFAULT_SEED.to_string(),
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
            &text(&layout.plots),
        ]),
        words(&[
            "split",
            "--data",
            &data,
            "--seed",
            &split_seed,
            "--out-dir",
            &text(&layout.split),
        ]),
    ];
    for (dtype, model) in DTYPES.iter().zip(&layout.models) {
        let model = text(model);
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
        &text(&layout.models[0]),
        "-n",
        &count,
    ]));

    for command in commands {
        crate::interrupt::check()?;
        crate::note!("\n$ namegen {}", command.join(" "));
        let cli = Cli::parse_from(std::iter::once("namegen".to_string()).chain(command));
        let code = run_command(cli)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every file the steps will write before the first one starts, so that a bad output
/// location (or an output that is the names file) is found before training, not after.
fn plan(args: &PipelineArgs, layout: &Layout) -> Result<(), CommandError> {
    let mut outputs = Outputs::new();
    outputs.input(&args.data);
    for dir in [&args.out_dir, &layout.plots, &layout.split] {
        outputs.directory(dir)?;
    }
    let mut files = vec![layout.checkpoint.clone()];
    files.push(layout.plots.join(super::train::DIAGNOSTICS_FILE));
    files.extend(
        crate::plots::FILES
            .iter()
            .map(|name| layout.plots.join(name)),
    );
    files.extend(
        Part::ALL
            .iter()
            .map(|p| layout.split.join(format!("{}.txt", p.name()))),
    );
    for model in &layout.models {
        files.push(crate::card::path_for(model));
        files.push(model.clone());
    }
    for file in &files {
        outputs.output(file)?;
    }
    Ok(())
}

/// The arguments of one step, as owned strings.
fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}
