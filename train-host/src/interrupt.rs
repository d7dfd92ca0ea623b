//! SIGINT, SIGTERM and SIGHUP, handled the same way in every phase of every command: the
//! first one is recorded and the command stops at its next check ([`check`]), after saving
//! what there is to save (the trainer's checkpoint); the binary then says what was saved and
//! exits with 128 + the signal's number. A second signal ends the program at once, as if no
//! handler were installed (for a save that hangs on a dead network disk, say).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals handled.
const SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The first signal received (0: none), and whether one was received, as the handlers see it.
struct Received {
    signal: Arc<AtomicUsize>,
    any: Arc<AtomicBool>,
}

fn received() -> &'static Received {
    static RECEIVED: OnceLock<Received> = OnceLock::new();
    RECEIVED.get_or_init(|| Received {
        signal: Arc::new(AtomicUsize::new(0)),
        any: Arc::new(AtomicBool::new(false)),
    })
}

/// A signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// Its number.
    pub signal: i32,
}

impl Interrupted {
    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self.signal {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }

    /// The conventional exit status of a program stopped by this signal: 128 + its number.
    pub fn exit_status(self) -> u8 {
        128u8.saturating_add(self.signal as u8)
    }
}

/// Installs the handlers; called once, first thing in `main`. Returns the operating system's
/// error if a handler cannot be installed (the signals then keep their default action).
pub fn install() -> std::io::Result<()> {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return Ok(());
    }
    let received = received();
    for signal in SIGNALS {
        // Registered first, so it sees the flag as it was before this signal: only a second
        // signal takes the default action.
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&received.any))?;
        signal_hook::flag::register_usize(signal, Arc::clone(&received.signal), signal as usize)?;
        signal_hook::flag::register(signal, Arc::clone(&received.any))?;
    }
    *installed = true;
    Ok(())
}

/// The signal received so far, if any: long work calls this between steps and stops with it.
pub fn check() -> Result<(), Interrupted> {
    match received().signal.load(Ordering::SeqCst) {
        0 => Ok(()),
        signal => Err(Interrupted {
            signal: signal as i32,
        }),
    }
}
