//! The one way the host program writes a file, and the check of every output before any long
//! work starts.
//!
//! A command first lists what it reads and writes in [`Outputs`]; planning an output refuses,
//! before anything is computed:
//! - an output that is the same file as an input of the command (device and inode, whatever
//!   the paths say: hard links, `..`, symbolic links to the input) or as another output;
//! - an output that is a symbolic link (a link is never written through, nor replaced), a
//!   directory, a path ending in `/`, or anything but a regular file (`/dev/null` included);
//! - an output whose directory is missing or not writable (a read-only file system), or,
//!   through [`Outputs::require_space`], without room for what the command will write.
//!
//! [`Outputs::write`] repeats those checks (the tree may change during hours of training),
//! writes a temporary file `.NAME.PID.namegen-tmp` beside the output, syncs it and renames it
//! over the output, so that a reader, a crash or a signal never sees half a file and the old
//! file stays whole when the write fails (a full disk included). The new file keeps the mode
//! of the file it replaces, or is created 0666 less the umask. A run killed outright (SIGKILL,
//! power loss) can leave its temporary behind; planning the same output again removes every
//! such temporary whose process is gone.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Suffix of the temporary files [`Outputs::write`] renames into place.
const TEMP_SUFFIX: &str = ".namegen-tmp";

/// Why an output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output is an input of the same command.
    #[error("{path}: refusing to overwrite {input}, an input of this command (the same file)")]
    SameAsInput {
        /// The output.
        path: PathBuf,
        /// The input it would replace.
        input: PathBuf,
    },
    /// Two outputs of the command are the same file.
    #[error("{path}: this command would write it twice (also as {other})")]
    Duplicate {
        /// The output.
        path: PathBuf,
        /// The other output at the same place.
        other: PathBuf,
    },
    /// The output is a symbolic link.
    #[error(
        "{path}: is a symbolic link; namegen does not write through links (remove it, or give \
         the path it points to)"
    )]
    Symlink {
        /// The output.
        path: PathBuf,
    },
    /// The output names a directory, or something else that is not a regular file.
    #[error("{path}: {what}; give the path of a file")]
    NotAFile {
        /// The output.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The output's directory does not exist or is not a directory.
    #[error("{path}: the directory {dir} {what}")]
    NoDirectory {
        /// The output.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// `does not exist` or `is not a directory`.
        what: &'static str,
    },
    /// A file cannot be created in the output's directory.
    #[error("{path}: cannot write in {dir}: {source}")]
    NotWritable {
        /// The output.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The output's file system has less room than the command will write.
    #[error("{path}: {needed} bytes are needed and only {free} are free on its file system")]
    NoSpace {
        /// The output.
        path: PathBuf,
        /// Bytes the command will write there.
        needed: u64,
        /// Bytes free for this user.
        free: u64,
    },
    /// Writing failed; the file that was there (if any) is unchanged.
    #[error("{path}: not written ({source}); any earlier file there is unchanged")]
    Io {
        /// The output.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Where an output goes, once checked.
struct Target {
    dir: PathBuf,
    name: String,
    /// The permission bits of the regular file it replaces.
    mode: Option<u32>,
}

/// The files one command reads and writes, checked together before the work starts; see the
/// module documentation for what is refused.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Each input with its device and inode.
    inputs: Vec<(PathBuf, (u64, u64))>,
    /// Each planned output with its canonical location (directory resolved, file name kept).
    outputs: Vec<(PathBuf, PathBuf)>,
}

impl Outputs {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an input: no output may be the same file. A missing or unreadable input is
    /// left for its reader to report. Inputs are recorded before the outputs are planned.
    pub fn input(&mut self, path: &Path) {
        if let Ok(meta) = std::fs::metadata(path) {
            self.inputs
                .push((path.to_owned(), (meta.dev(), meta.ino())));
        }
    }

    /// Creates `dir` and its parents if missing, for outputs planned inside it.
    pub fn directory(&self, dir: &Path) -> Result<(), OutputError> {
        std::fs::create_dir_all(dir).map_err(|source| OutputError::NotWritable {
            path: dir.to_owned(),
            dir: dir.to_owned(),
            source,
        })
    }

    /// Plans the output `path`: checks it as the module documentation says, tries creating
    /// a file in its directory, and removes the temporaries of earlier runs that were killed.
    pub fn output(&mut self, path: &Path) -> Result<(), OutputError> {
        let target = self.check(path)?;
        let canonical = std::fs::canonicalize(&target.dir)
            .map_err(|source| OutputError::NotWritable {
                path: path.to_owned(),
                dir: target.dir.clone(),
                source,
            })?
            .join(&target.name);
        if let Some((other, _)) = self.outputs.iter().find(|(_, c)| *c == canonical) {
            return Err(OutputError::Duplicate {
                path: path.to_owned(),
                other: other.clone(),
            });
        }
        remove_stale_temporaries(&target);
        let probe = target.dir.join(temp_name(&target.name));
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe);
        match created {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            // Our own temporary of this name can only be left over by a dead process whose
            // PID this one reuses.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(source) => {
                return Err(OutputError::NotWritable {
                    path: path.to_owned(),
                    dir: target.dir,
                    source,
                });
            }
        }
        self.outputs.push((path.to_owned(), canonical));
        Ok(())
    }

    /// Checks that the file system holding `path` (a planned output, or a directory) has at
    /// least `bytes` free, so that hours of work do not end on a full disk.
    pub fn require_space(&self, path: &Path, bytes: u64) -> Result<(), OutputError> {
        let dir = if path.is_dir() { path } else { parent(path) };
        let stats = rustix::fs::statvfs(dir).map_err(|e| OutputError::NotWritable {
            path: path.to_owned(),
            dir: dir.to_owned(),
            source: e.into(),
        })?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < bytes {
            return Err(OutputError::NoSpace {
                path: path.to_owned(),
                needed: bytes,
                free,
            });
        }
        Ok(())
    }

    /// Writes `bytes` to `path` atomically, after checking it again; on failure the file that
    /// was at `path` is unchanged and no temporary is left.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
        debug_assert!(
            self.outputs.iter().any(|(planned, _)| planned == path),
            "{} is written without being planned",
            path.display()
        );
        let target = self.check(path)?;
        let temp = target.dir.join(temp_name(&target.name));
        let written = write_then_rename(&temp, path, target.mode, bytes);
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map_err(|source| OutputError::Io {
            path: path.to_owned(),
            source,
        })?;
        // The rename is durable once the directory is synced; a failure here loses nothing.
        if let Ok(dir) = File::open(&target.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Everything about `path` that can be told without writing.
    fn check(&self, path: &Path) -> Result<Target, OutputError> {
        let not_a_file = |what| OutputError::NotAFile {
            path: path.to_owned(),
            what,
        };
        let name = match path.file_name() {
            Some(name) if !path.as_os_str().as_encoded_bytes().ends_with(b"/") => name,
            _ => return Err(not_a_file("names a directory")),
        };
        let dir = parent(path).to_owned();
        let no_directory = |what| OutputError::NoDirectory {
            path: path.to_owned(),
            dir: dir.clone(),
            what,
        };
        match std::fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(no_directory("is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(no_directory("is not a directory"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(no_directory("does not exist"));
            }
            Err(source) => {
                return Err(OutputError::NotWritable {
                    path: path.to_owned(),
                    dir,
                    source,
                });
            }
        }
        let mode = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(OutputError::Symlink {
                    path: path.to_owned(),
                });
            }
            Ok(meta) if meta.is_dir() => return Err(not_a_file("is a directory")),
            Ok(meta) if !meta.is_file() => return Err(not_a_file("is not a regular file")),
            Ok(meta) => {
                let id = (meta.dev(), meta.ino());
                if let Some((input, _)) = self.inputs.iter().find(|(_, i)| *i == id) {
                    return Err(OutputError::SameAsInput {
                        path: path.to_owned(),
                        input: input.clone(),
                    });
                }
                Some(meta.permissions().mode() & 0o7777)
            }
            Err(_) => None,
        };
        Ok(Target {
            dir,
            name: name.to_string_lossy().into_owned(),
            mode,
        })
    }
}

/// The directory of `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// This process's temporary for the output named `name`.
fn temp_name(name: &str) -> String {
    format!(".{name}.{}{TEMP_SUFFIX}", std::process::id())
}

/// Writes `bytes` to the fresh file `temp` with `mode` (or the umask's), syncs it, and
/// renames it over `path`.
fn write_then_rename(
    temp: &Path,
    path: &Path,
    mode: Option<u32>,
    bytes: &[u8],
) -> std::io::Result<()> {
    // A temporary of ours can only be a dead process's whose PID this one reuses.
    let _ = std::fs::remove_file(temp);
    // Created with 0666 the umask applies, as for any new file; the mode of a replaced file is
    // set afterwards so that the umask does not narrow it.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(temp)?;
    if let Some(mode) = mode {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(temp, path)
}

/// Removes the temporaries of `target` left by processes that no longer run.
fn remove_stale_temporaries(target: &Target) {
    let Ok(entries) = std::fs::read_dir(&target.dir) else {
        return;
    };
    let prefix = format!(".{}.", target.name);
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix)?.strip_suffix(TEMP_SUFFIX))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !running(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (one we may not signal exists too).
fn running(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}
