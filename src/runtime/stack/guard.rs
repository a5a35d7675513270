//! Guard pages: how the page below each stack is made to fault.
//!
//! Two ways, chosen once per process:
//!
//! | mode       | how                                   | kernel mappings per stack | kernels   |
//! |------------|---------------------------------------|---------------------------|-----------|
//! | `madvise`  | `madvise(MADV_GUARD_INSTALL)`: guard  | none (markers live in the | Linux     |
//! |            | markers in the page tables            | page tables of the arena) | >= 6.13   |
//! | `mprotect` | `mprotect(PROT_NONE)` on the guard    | two (the guard splits the | all       |
//! |            |                                       | arena's mapping)          |           |
//!
//! `GORT_STACK_GUARD` picks one (`madvise`, `mprotect`, or `auto`, the default: `madvise` if
//! the kernel has it). The probe installs a marker in a scratch mapping once; a kernel without
//! the feature answers `EINVAL`. Forcing `mprotect` keeps the fallback path tested on new
//! kernels.
//!
//! Both kinds of guard survive `MADV_DONTNEED` (trimming releases the pages of a stack, never
//! its guard: markers are kept by the kernel on purpose, and a `PROT_NONE` range has no pages
//! to release), and both go away with `munmap` of the arena. A touch of either raises SIGSEGV
//! (`SEGV_MAPERR` for a marker, `SEGV_ACCERR` for `PROT_NONE`) with the faulting address in
//! the guard, which is all the overflow handler (signal.rs) looks at.
//!
//! With `mprotect`, guards are capped at half of what `vm.max_map_count` leaves after the
//! mappings in use when the first guard is made, `MAPPINGS_RESERVED` (4,096 mappings left to
//! the allocator's heaps, libraries and new threads) and `MAPPINGS_PER_THREAD` for each
//! runtime thread alive (`mprotect_budget`), so that the stack allocation fails with the
//! error naming the limit before anything else in the program runs out of mappings. A
//! stack given back keeps its guard and is handed out again before any new slot
//! (arena.rs), so spawning works again as soon as goroutines end.
//!
//! A batch of new stacks (a processor's cache refill) gets its guards, and then its top
//! pages, with one `process_madvise` call each: any advice on the calling process is taken
//! since Linux 6.13; the process is named by `PIDFD_SELF` (6.14), else by a pidfd opened and
//! closed around the call. Where neither works, one `madvise` per range.
//!
//! # Safety
//! `install` and `populate` change only the ranges they are given; their caller owns those
//! ranges (slots of an arena it has taken out of the free lists, see arena.rs).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// `madvise` advice that installs guard markers (Linux 6.13, not yet in every libc crate).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// How guards are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuardMode {
    /// Page-table guard markers (`MADV_GUARD_INSTALL`): no kernel mapping per stack.
    Madvise,
    /// `mprotect(PROT_NONE)`: two kernel mappings per stack (counted by `vm.max_map_count`).
    Mprotect,
}

impl GuardMode {
    /// The name used by `GORT_STACK_GUARD`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GuardMode::Madvise => "madvise",
            GuardMode::Mprotect => "mprotect",
        }
    }
}

static MODE: OnceLock<Result<GuardMode, String>> = OnceLock::new();

/// The guard mode of this process: `GORT_STACK_GUARD`, else the probe's answer.
///
/// # Panics
/// If `GORT_STACK_GUARD` is malformed, or asks for `madvise` on a kernel without it (checked
/// when the runtime starts, so the panic comes from the first use of the runtime).
pub(crate) fn mode() -> GuardMode {
    match MODE.get_or_init(resolve) {
        Ok(m) => *m,
        Err(e) => panic!("{e}"),
    }
}

/// `GORT_STACK_GUARD` checked against the kernel.
fn resolve() -> Result<GuardMode, String> {
    let setting = std::env::var("GORT_STACK_GUARD").unwrap_or_default();
    match setting.trim() {
        "" | "auto" => Ok(if kernel_has_guard_markers() {
            GuardMode::Madvise
        } else {
            GuardMode::Mprotect
        }),
        "mprotect" => Ok(GuardMode::Mprotect),
        "madvise" if kernel_has_guard_markers() => Ok(GuardMode::Madvise),
        "madvise" => Err("gort: GORT_STACK_GUARD=madvise, but this kernel has no \
                          MADV_GUARD_INSTALL (Linux 6.13 or later); use auto or mprotect"
            .into()),
        other => Err(format!(
            "gort: GORT_STACK_GUARD must be auto, madvise or mprotect, got {other:?}"
        )),
    }
}

/// A fresh private anonymous mapping of two pages for a start-up probe (the caller unmaps
/// it), or None when the kernel refuses one.
fn scratch_two_pages() -> Option<*mut libc::c_void> {
    // SAFETY: a new private anonymous mapping that nothing else knows about.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * super::page_size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p)
}

/// True if `madvise(MADV_GUARD_INSTALL)` works here (probed in a scratch mapping).
pub(crate) fn kernel_has_guard_markers() -> bool {
    let page = super::page_size();
    let Some(p) = scratch_two_pages() else {
        return false;
    };
    // SAFETY: the first page of the scratch mapping above.
    let ok = unsafe { libc::madvise(p, page, MADV_GUARD_INSTALL) } == 0;
    // SAFETY: unmapping the scratch mapping, used by nobody else.
    unsafe { libc::munmap(p, 2 * page) };
    ok
}

/// Makes each range fault when touched. On failure, returns how many ranges (from the
/// first) got their guard, and the error of the next one.
///
/// Guard markers for a batch of stacks are installed with one `process_madvise` call where
/// the kernel takes it (any advice on the calling process: Linux 6.13, like the markers
/// themselves), else one `madvise` per range.
///
/// # Safety
/// Each range is page aligned, inside an arena mapping, and owned by the caller: no live
/// data is in it (installing a marker discards any page there).
pub(crate) unsafe fn install(ranges: &[libc::iovec]) -> Result<(), (usize, io::Error)> {
    match mode() {
        // SAFETY: the caller owns the ranges (function contract).
        GuardMode::Madvise => unsafe { advise_all(ranges, MADV_GUARD_INSTALL) },
        GuardMode::Mprotect => {
            for (i, r) in ranges.iter().enumerate() {
                if MPROTECT_GUARDS.fetch_add(1, Ordering::Relaxed) >= mprotect_budget() {
                    MPROTECT_GUARDS.fetch_sub(1, Ordering::Relaxed);
                    BUDGET_SPENT.store(true, Ordering::Relaxed);
                    return Err((i, io::Error::from_raw_os_error(libc::ENOMEM)));
                }
                // SAFETY: as above.
                if unsafe { libc::mprotect(r.iov_base, r.iov_len, libc::PROT_NONE) } != 0 {
                    MPROTECT_GUARDS.fetch_sub(1, Ordering::Relaxed);
                    return Err((i, io::Error::last_os_error()));
                }
            }
            Ok(())
        }
    }
}

/// Kernel mappings left to the rest of the program when guards are made by `mprotect`:
/// allocator arenas, libraries, the program's own threads and mappings, new runtime threads.
/// Without this reserve the last stack would take the last mapping and the next thread or
/// heap growth would fail (and `malloc` failing aborts the process).
pub(crate) const MAPPINGS_RESERVED: usize = 4096;

/// Kernel mappings each runtime thread (M) holds, reserved on top of `MAPPINGS_RESERVED`
/// while it lives: its stack and guard, std's alternate signal stack and guard, ours
/// (signal.rs), and one to spare (measured: 4.1 per plain std thread, 5 per M).
pub(crate) const MAPPINGS_PER_THREAD: usize = 6;

/// Guards made by `mprotect` that exist (each splits its arena's mapping: two more mappings).
static MPROTECT_GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Set when a guard could not be made for want of budget; cleared when guards go away with
/// their arena or a runtime thread ends (the budget grows). While it is set, processors
/// give stacks back to the pools at once instead of caching them (cache.rs), so that a
/// stack freed on one processor can be had anywhere.
static BUDGET_SPENT: AtomicBool = AtomicBool::new(false);

/// True while the `mprotect` guard budget is spent (`BUDGET_SPENT`).
#[inline]
pub(crate) fn budget_spent() -> bool {
    BUDGET_SPENT.load(Ordering::Relaxed)
}

/// Runtime threads alive (counted by signal.rs when each installs its signal stack).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// A runtime thread started (`true`) or is ending (`false`): its mappings are reserved
/// while it lives.
pub(crate) fn count_thread(started: bool) {
    if started {
        THREADS.fetch_add(1, Ordering::Relaxed);
    } else {
        THREADS.fetch_sub(1, Ordering::Relaxed);
        BUDGET_SPENT.store(false, Ordering::Relaxed);
    }
}

/// How many `mprotect` guards may exist now: half of what `vm.max_map_count` leaves after
/// the mappings the process had when it made its first guard, the reserve, and the
/// reserve of each runtime thread alive. Checked at each guard install, so that runtime
/// threads started for goroutines blocked in system calls keep their mappings; threads
/// started after the stacks took their share use the fixed reserve.
pub(crate) fn mprotect_budget() -> usize {
    let (limit, left) = limit_and_left();
    limit.saturating_sub(left) / 2
}

/// `vm.max_map_count`, and the mappings kept out of the guards' budget now (those in use
/// at the first guard, the reserve, the runtime threads' share).
pub(crate) fn limit_and_left() -> (usize, usize) {
    static BASE: OnceLock<(usize, usize)> = OnceLock::new();
    let (limit, base) = *BASE.get_or_init(|| (max_map_count(), mappings_in_use()));
    let threads = THREADS.load(Ordering::Relaxed);
    (
        limit,
        base + MAPPINGS_RESERVED + MAPPINGS_PER_THREAD * threads,
    )
}

/// Kernel mappings of this process now (lines of `/proc/self/maps`; 0 if unreadable).
fn mappings_in_use() -> usize {
    std::fs::read("/proc/self/maps")
        .map(|m| m.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

/// `vm.max_map_count` (Linux's default, 65530, if unreadable).
pub(crate) fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530)
}

/// `n` guards went away with their arena's mapping.
pub(crate) fn forget(n: usize) {
    if mode() == GuardMode::Mprotect {
        MPROTECT_GUARDS.fetch_sub(n, Ordering::Relaxed);
        BUDGET_SPENT.store(false, Ordering::Relaxed);
    }
}

/// Commits the pages of each range now (`MADV_POPULATE_WRITE`): a batch of new stacks about
/// to be used gets its top pages in one system call rather than one page fault each (about
/// 15% cheaper per page here). Best effort: a page not populated is faulted in when touched.
///
/// # Safety
/// As for `install`: the caller owns the ranges, which hold no live data.
pub(crate) unsafe fn populate(ranges: &[libc::iovec]) {
    if ranges.len() > 1 && batch_advice() {
        // SAFETY: the caller owns the ranges (function contract); populating only commits
        // zero pages where none are.
        let _ = unsafe { advise_all(ranges, libc::MADV_POPULATE_WRITE) };
    }
}

/// Applies `advice` to every range: one `process_madvise` if the kernel takes it, else (or
/// for what it did not do) one `madvise` per range.
///
/// # Safety
/// The advice must be valid for ranges the caller owns.
unsafe fn advise_all(
    ranges: &[libc::iovec],
    advice: libc::c_int,
) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    if ranges.len() > 1 && batch_advice() {
        let total: usize = ranges.iter().map(|r| r.iov_len).sum();
        // SAFETY: `ranges` is a valid iovec array (at most UIO_MAXIOV long: callers pass
        // cache batches), advised on this process only.
        let n = unsafe { process_madvise(ranges, advice) };
        if n >= 0 && n as usize == total {
            return Ok(());
        }
        // Partly done (or not at all): count the whole ranges done, redo the rest one by one
        // (advising a range twice is harmless for both advices used here).
        let mut left = n.max(0) as usize;
        while done < ranges.len() && left >= ranges[done].iov_len {
            left -= ranges[done].iov_len;
            done += 1;
        }
    }
    for (i, r) in ranges.iter().enumerate().skip(done) {
        // SAFETY: the caller owns the range.
        if unsafe { libc::madvise(r.iov_base, r.iov_len, advice) } != 0 {
            return Err((i, io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// `PIDFD_SELF_THREAD_GROUP` (Linux 6.14): this process, without a descriptor.
const PIDFD_SELF: libc::c_int = -10001;

/// How `process_madvise` names this process, probed once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `PIDFD_SELF`: no descriptor needed.
    SelfFd,
    /// A pidfd opened for the call and closed after it (older kernels; no descriptor is kept,
    /// so a program counting its descriptors sees none appear, and a forked child names
    /// itself).
    Opened,
    /// `process_madvise` does not take these advices here: one `madvise` per range.
    None,
}

/// `process_madvise(2)` on this process; returns bytes advised or -1.
///
/// # Safety
/// As for `advise_all`.
unsafe fn process_madvise(ranges: &[libc::iovec], advice: libc::c_int) -> isize {
    // SAFETY: the caller's contract; the descriptor names this process.
    let call = |fd: libc::c_int| unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            fd,
            ranges.as_ptr(),
            ranges.len(),
            advice,
            0,
        ) as isize
    };
    match target() {
        Target::SelfFd => call(PIDFD_SELF),
        Target::Opened => {
            // SAFETY: pidfd_open(2) of our own pid; returns a new descriptor or -1.
            let fd =
                unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as libc::c_int;
            if fd < 0 {
                return -1;
            }
            let n = call(fd);
            // SAFETY: closing the descriptor opened above, used by nobody else.
            unsafe { libc::close(fd) };
            n
        }
        Target::None => -1,
    }
}

/// True if `process_madvise` on this process takes any advice (Linux 6.13).
fn batch_advice() -> bool {
    target() != Target::None
}

/// Probes once how (and whether) `process_madvise` can advise this process, by populating a
/// scratch mapping.
fn target() -> Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let page = super::page_size();
        let Some(p) = scratch_two_pages() else {
            return Target::None;
        };
        let iov = [
            libc::iovec {
                iov_base: p,
                iov_len: page,
            },
            libc::iovec {
                // SAFETY: the second page of the scratch mapping.
                iov_base: unsafe { p.cast::<u8>().add(page) }.cast(),
                iov_len: page,
            },
        ];
        let works = |fd: libc::c_int| {
            // SAFETY: populating the scratch mapping of this process.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    fd,
                    iov.as_ptr(),
                    2usize,
                    libc::MADV_POPULATE_WRITE,
                    0,
                )
            };
            n == 2 * page as i64
        };
        let target = if works(PIDFD_SELF) {
            Target::SelfFd
        } else {
            // SAFETY: pidfd_open(2) of our own pid; returns a new descriptor or -1.
            let fd =
                unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as libc::c_int;
            let ok = fd >= 0 && works(fd);
            if fd >= 0 {
                // SAFETY: closing the descriptor opened above.
                unsafe { libc::close(fd) };
            }
            if ok {
                Target::Opened
            } else {
                Target::None
            }
        };
        // SAFETY: unmapping the scratch mapping.
        unsafe { libc::munmap(p, 2 * page) };
        target
    })
}
