//! `namegen pipeline`: the whole job in one command: train, write the split, export the
//! folded model in every dtype, verify each against the unfolded model, and sample names.
//! Each step calls the ordinary subcommand's function with typed flags, and is printed first
//! as the command line that runs it alone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use namegen_files::output::Outputs;
use namegen_model::{Dtype, Part};
use namegen_sampler::Settings;

use super::CommandError;
use super::export::ExportArgs;
use super::sample::SampleArgs;
use super::split::SplitArgs;
use super::train::TrainArgs;
use super::verify::VerifyArgs;
use crate::trainer::{Backend, Recipe};

/// Flags of `namegen pipeline`.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The names file.
    #[arg(long, default_value = super::DEFAULT_DATA)]
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
    #[arg(short = 'n', long = "count", default_value_t = super::sample::DEFAULT_COUNT)]
    pub count: usize,
}

/// The dtypes the pipeline exports, each verified: every dtype, q8 included.
const DTYPES: [Dtype; Dtype::EVERY.len()] = Dtype::EVERY;

/// Where the pipeline's steps write, under `--out-dir`: named once for the steps and the plan.
struct Layout {
    checkpoint: PathBuf,
    plots: PathBuf,
    split: PathBuf,
    /// One folded model per entry of [`DTYPES`].
    models: [PathBuf; DTYPES.len()],
}

impl Layout {
    fn new(out: &Path) -> Self {
        Self {
            checkpoint: out.join("model.ckpt.safetensors"),
            plots: out.join("plots"),
            split: out.join("split"),
            models: DTYPES.map(|dtype| out.join(format!("model-{}.safetensors", dtype.name()))),
        }
    }
}

/// One step of the pipeline: a subcommand with its typed flags, run by calling the
/// command's own function.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `namegen train`.
    Train(Box<TrainArgs>),
    /// `namegen split`.
    Split(SplitArgs),
    /// `namegen export`.
    Export(ExportArgs),
    /// `namegen verify`.
    Verify(VerifyArgs),
    /// `namegen sample`.
    Sample(SampleArgs),
}

impl Step {
    /// The command line (after `namegen`) that runs this step alone, printed before it runs
    /// so that a user can repeat any one step; it parses back to this step (a test checks).
    pub fn argv(&self) -> Vec<String> {
        let path = |path: &Path| path.display().to_string();
        let mut words: Vec<String> = match self {
            Step::Train(a) => vec![
                "train".into(),
                "--data".into(),
                path(&a.data),
                "--steps".into(),
                a.recipe.steps.to_string(),
                "--seed".into(),
                a.recipe.seed.to_string(),
                "--backend".into(),
                a.backend.name().into(),
                "--out".into(),
                path(&a.out),
            ],
            Step::Split(a) => vec![
                "split".into(),
                "--data".into(),
                path(&a.data),
                "--seed".into(),
                a.seed.to_string(),
                "--out-dir".into(),
                path(&a.out_dir),
            ],
            Step::Export(a) => vec![
                "export".into(),
                "--from".into(),
                path(&a.from),
                "--out".into(),
                path(&a.out),
                "--dtype".into(),
                a.dtype.name().into(),
            ],
            Step::Verify(a) => vec![
                "verify".into(),
                "--unfolded".into(),
                path(&a.unfolded),
                "--model".into(),
                path(&a.model),
                "--data".into(),
                path(&a.data),
                "--backend".into(),
                a.backend.name().into(),
            ],
            Step::Sample(a) => vec![
                "sample".into(),
                "--model".into(),
                path(&a.model),
                "-n".into(),
                a.count.to_string(),
            ],
        };
        match self {
            Step::Train(a) => {
                if let Some(plots) = &a.plots {
                    words.extend(["--plots".into(), path(plots)]);
                }
            }
            Step::Verify(a) if a.card => words.push("--card".into()),
            Step::Sample(a) => {
                if let Some(seed) = a.seed {
                    words.extend(["--seed".into(), seed.to_string()]);
                }
            }
            _ => {}
        }
        words
    }

    /// Runs the step.
    fn run(&self) -> Result<ExitCode, CommandError> {
        match self {
            Step::Train(a) => super::train::run(a),
            Step::Split(a) => super::split::run(a),
            Step::Export(a) => super::export::run(a),
            Step::Verify(a) => super::verify::run(a),
            Step::Sample(a) => super::sample::run(a),
        }
    }
}

/// The steps `args` asks for, in the order they run.
pub fn steps(args: &PipelineArgs) -> Vec<Step> {
    let layout = Layout::new(&args.out_dir);
    let mut train: TrainArgs = crate::flags::defaults();
    train.data = args.data.clone();
    train.recipe.steps = args.steps;
    train.recipe.seed = args.seed;
    train.backend = args.backend;
    train.out = layout.checkpoint.clone();
    train.plots = Some(layout.plots.clone());
    let mut split: SplitArgs = crate::flags::defaults();
    split.data = args.data.clone();
    split.out_dir = layout.split.clone();

    let mut steps = vec![Step::Train(Box::new(train)), Step::Split(split)];
    for (dtype, model) in DTYPES.into_iter().zip(&layout.models) {
        steps.push(Step::Export(ExportArgs {
            from: layout.checkpoint.clone(),
            out: model.clone(),
            dtype,
        }));
        steps.push(Step::Verify(VerifyArgs {
            unfolded: layout.checkpoint.clone(),
            model: model.clone(),
            data: args.data.clone(),
            backend: args.backend,
            card: true,
            json: false,
        }));
    }
    let mut sample = SampleArgs::new(layout.models[0].clone());
    sample.count = args.count;
    // The sampler's default seed, written out: the pipeline prints the same names every run.
    sample.seed = Some(Settings::default().seed);
    steps.push(Step::Sample(sample));
    steps
}

/// Runs every step; stops at the first that fails (a broken verification bound included).
pub fn run(args: &PipelineArgs) -> Result<ExitCode, CommandError> {
    plan(args, &Layout::new(&args.out_dir))?;
    for step in steps(args) {
        crate::interrupt::check()?;
        let line: Vec<String> = step.argv().iter().map(|w| shell_word(w)).collect();
        crate::note!("\n$ namegen {}", line.join(" "));
        let code = step.run()?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `word` as a POSIX shell reads it back: quoted when it holds anything but plain characters.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=,+:@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
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
