//! Runtime settings, fixed when the runtime starts.

use std::fmt;
use std::sync::Mutex;

use super::stack;

/// Settings applied before the runtime starts (it starts on first use).
///
/// ```
/// // Must run before anything starts the runtime; afterwards it is an error.
/// let _ = gort::Config::new().max_procs(2).apply();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Config {
    max_procs: Option<usize>,
    stack_size: Option<usize>,
    max_threads: Option<usize>,
}

/// Why [`Config::apply`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The runtime has already started; settings are fixed from then on.
    AlreadyStarted,
    /// `max_procs(0)`: at least one processor is needed.
    ZeroMaxProcs,
    /// `stack_size(n)` with `n` larger than the largest goroutine stack (1 TiB).
    StackSizeTooLarge(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::AlreadyStarted => {
                f.write_str("gort: the runtime has already started; apply Config before first use")
            }
            ConfigError::ZeroMaxProcs => f.write_str("gort: max_procs must be at least 1"),
            ConfigError::StackSizeTooLarge(n) => match stack::round_size(*n) {
                Err(e) => write!(f, "{e}"),
                Ok(_) => write!(f, "gort: stack size {n} cannot be honoured"),
            },
        }
    }
}

impl std::error::Error for ConfigError {}

static PENDING: Mutex<Config> = Mutex::new(Config {
    max_procs: None,
    stack_size: None,
    max_threads: None,
});

impl Config {
    /// No settings: `GORT_MAXPROCS` or the default number of processors (the CPUs this
    /// process may use, lowered to the cgroup CPU quota as Go 1.25 does), and the default
    /// stack size.
    pub fn new() -> Config {
        Config::default()
    }

    /// Number of processors (worker threads running goroutines at once). Overrides
    /// `GORT_MAXPROCS`.
    pub fn max_procs(mut self, n: usize) -> Config {
        self.max_procs = Some(n);
        self
    }

    /// Default usable stack size of goroutines, in bytes (rounded up to a power of two, at
    /// least 16 KiB, at most 1 TiB: `apply` rejects more). Overrides `GORT_STACK_SIZE`.
    /// Address space is reserved, memory is committed only when touched.
    pub fn stack_size(mut self, bytes: usize) -> Config {
        self.stack_size = Some(bytes);
        self
    }

    /// Limit on OS threads the runtime creates (default 10,000, or `GORT_MAX_THREADS`):
    /// goroutines blocked in system calls, locked with `lock_os_thread`, or blocked while
    /// unwinding a panic (std's panic state is per thread) each hold one. Exceeding it is
    /// fatal, as in Go (`fatal error: thread exhaustion`, with a line naming the threads held
    /// by unwinding goroutines when there are any).
    pub fn max_threads(mut self, n: usize) -> Config {
        self.max_threads = Some(n);
        self
    }

    /// Makes these settings the ones the runtime will start with.
    pub fn apply(self) -> Result<(), ConfigError> {
        if self.max_procs == Some(0) {
            return Err(ConfigError::ZeroMaxProcs);
        }
        if let Some(n) = self.stack_size {
            if stack::round_size(n).is_err() {
                return Err(ConfigError::StackSizeTooLarge(n));
            }
        }
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        if super::scheduler::try_get().is_some() {
            return Err(ConfigError::AlreadyStarted);
        }
        if self.max_procs.is_some() {
            pending.max_procs = self.max_procs;
        }
        if self.stack_size.is_some() {
            pending.stack_size = self.stack_size;
        }
        if self.max_threads.is_some() {
            pending.max_threads = self.max_threads;
        }
        Ok(())
    }
}

/// The settings in force at start.
pub(crate) struct Resolved {
    pub(crate) max_procs: usize,
    pub(crate) stack_size: usize,
    pub(crate) max_threads: usize,
}

/// Resolves settings: Config, then `GORT_MAXPROCS` / `GORT_STACK_SIZE` /
/// `GORT_MAX_THREADS`, then defaults.
///
/// # Panics
/// If `GORT_MAXPROCS` is set to something other than a positive integer, `GORT_STACK_SIZE`
/// to something other than a size gort can honour, or `GORT_STACK_GUARD` is malformed.
pub(crate) fn resolve() -> Resolved {
    let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let max_procs = pending.max_procs.unwrap_or_else(|| match env_max_procs() {
        Ok(Some(n)) => n,
        Ok(None) => super::cgroup::default_max_procs(),
        Err(e) => panic!("{e}"),
    });
    let max_threads = pending.max_threads.unwrap_or_else(|| {
        match std::env::var("GORT_MAX_THREADS").map(|v| v.trim().parse::<usize>()) {
            Err(_) => super::machine::DEFAULT_MAX_THREADS,
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => panic!("gort: GORT_MAX_THREADS must be a positive integer"),
        }
    });
    let stack_size = match pending.stack_size.map(Ok).or_else(env_stack_size) {
        None => stack::DEFAULT_STACK_SIZE,
        Some(Ok(n)) => stack::round_size(n).unwrap_or_else(|e| panic!("{e}")),
        Some(Err(e)) => panic!("{e}"),
    };
    stack::guard_mode(); // checks GORT_STACK_GUARD
    Resolved {
        max_procs,
        stack_size,
        // The Ms holding processors count too.
        max_threads: max_threads.max(max_procs),
    }
}

/// `GORT_MAXPROCS` parsed; an error message naming the variable if it is malformed.
pub(crate) fn env_max_procs() -> Result<Option<usize>, String> {
    match std::env::var("GORT_MAXPROCS") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!(
            "gort: GORT_MAXPROCS must be a positive integer, got {v:?}"
        )),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "gort: GORT_MAXPROCS must be a positive integer, got {v:?}"
            )),
        },
    }
}

/// `GORT_STACK_SIZE` parsed (bytes, or with a `k`, `m`, `g` or `t` suffix for KiB, MiB, GiB,
/// TiB),
/// checked against the largest stack; None if unset.
pub(crate) fn env_stack_size() -> Option<Result<usize, String>> {
    let v = std::env::var_os("GORT_STACK_SIZE")?;
    let bad = || {
        format!(
            "gort: GORT_STACK_SIZE must be a size in bytes, such as 262144, 256k or 2m, got {v:?}"
        )
    };
    let Some(s) = v.to_str() else {
        return Some(Err(bad()));
    };
    let s = s.trim().to_ascii_lowercase();
    let (digits, shift) = match s.strip_suffix(['k', 'm', 'g', 't']) {
        Some(d) if s.ends_with('k') => (d, 10),
        Some(d) if s.ends_with('m') => (d, 20),
        Some(d) if s.ends_with('g') => (d, 30),
        Some(d) => (d, 40),
        None => (s.as_str(), 0),
    };
    let n = match digits.trim().parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => return Some(Err(bad())),
    };
    Some(match n.checked_mul(1 << shift) {
        Some(bytes) => stack::round_size(bytes).map(|_| bytes).map_err(|e| {
            // The error already says "gort: ": name the setting after that prefix.
            let e = e.to_string();
            let why = e.strip_prefix("gort: ").unwrap_or(&e);
            format!("gort: GORT_STACK_SIZE={s}: {why}")
        }),
        None => Err(format!(
            "gort: GORT_STACK_SIZE={s}: {}",
            stack::round_size(usize::MAX).unwrap_err()
        )),
    })
}
