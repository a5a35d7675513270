//! Container-aware default for the number of processors: the cgroup CPU quota.
//!
//! When `GORT_MAXPROCS` is not set (and no `Config::max_procs`), the default is Go 1.25's:
//! the minimum of
//!
//! 1. the CPUs this process may run on (`sched_getaffinity`), and
//! 2. the cgroup's CPU bandwidth limit, `quota / period`, rounded up, and raised to 2 if it
//!    is below 2 (Go's rule: a container limited to half a CPU still gets two processors, so
//!    that one goroutine blocked in a long computation cannot starve all the others; the
//!    kernel's quota throttles the process either way).
//!
//! So the result is never below 1 and never above the CPU count. Where the limit comes from:
//!
//! ```text
//!  /proc/self/cgroup     "0::/kubepods/pod1"         (v2)   or  "4:cpu,cpuacct:/docker/ab" (v1)
//!  /proc/self/mountinfo  "... /  /sys/fs/cgroup rw - cgroup2 ..."   or  "... - cgroup ... rw,cpu,cpuacct"
//!  limit file            <mount point>/<cgroup path relative to the mount's root>/
//!                          v2: cpu.max           "150000 100000" (quota period) or "max 100000"
//!                          v1: cpu.cfs_quota_us  "150000" (-1: none), cpu.cfs_period_us "100000"
//! ```
//!
//! A v1 hierarchy with the `cpu` controller takes precedence over the v2 one (as in Go). Only
//! the process's own (leaf) cgroup is read, as Go does; container runtimes hide the parents.
//! Anything missing or malformed means "no limit". The reader takes the filesystem root as
//! a parameter so that tests can hand it a fake tree (`GORT_CGROUP_ROOT` does the same for a
//! whole process: a testing hook, not a setting).

use std::path::{Path, PathBuf};

/// The cgroup version a limit file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The default number of processors for this process (see the module comment).
pub(crate) fn default_max_procs() -> usize {
    let root =
        std::env::var_os("GORT_CGROUP_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    procs_for(cpu_count(), cpu_limit(&root))
}

/// Go 1.25's rule: `min(ncpu, max(2, ceil(limit)))`, and at least 1.
pub(crate) fn procs_for(ncpu: usize, limit: Option<f64>) -> usize {
    let ncpu = ncpu.max(1);
    match limit {
        Some(l) if l.is_finite() && l > 0.0 => {
            let l = (l.ceil() as usize).max(2);
            ncpu.min(l)
        }
        _ => ncpu,
    }
}

/// CPUs this process may run on (its affinity mask), falling back to the online count.
fn cpu_count() -> usize {
    // SAFETY: `set` is a plain bitmask the kernel fills in; we pass its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n as usize;
            }
        }
    }
    num_cpus::get().max(1)
}

/// The CPU bandwidth limit (in CPUs, e.g. 1.5) of this process's cgroup under the filesystem
/// root `root`, or None if there is none (or it cannot be read).
pub(crate) fn cpu_limit(root: &Path) -> Option<f64> {
    let cgroups = std::fs::read_to_string(under(root, "/proc/self/cgroup")).ok()?;
    let (version, path) = cgroup_path(&cgroups)?;
    let mountinfo = std::fs::read_to_string(under(root, "/proc/self/mountinfo")).ok()?;
    let (mount_root, mount_point) = mount(&mountinfo, version)?;
    // The cgroup path is relative to the hierarchy's root; the mount may show a subtree of it.
    let rel = if mount_root == "/" {
        path.as_str()
    } else {
        path.strip_prefix(mount_root.as_str()).unwrap_or("/")
    };
    let dir = under(&under(root, &mount_point), rel);
    match version {
        Version::V2 => parse_cpu_max(&std::fs::read_to_string(dir.join("cpu.max")).ok()?),
        Version::V1 => {
            let quota: i64 = read_number(&dir.join("cpu.cfs_quota_us"))?;
            let period: i64 = read_number(&dir.join("cpu.cfs_period_us"))?;
            (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
        }
    }
}

/// `root` joined with an absolute path `p` (as if `root` were `/`).
fn under(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn read_number(p: &Path) -> Option<i64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// From /proc/self/cgroup: the hierarchy holding the CPU controller and our path in it.
fn cgroup_path(text: &str) -> Option<(Version, String)> {
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "cpu") {
            return Some((Version::V1, path.to_string()));
        }
    }
    v2.map(|p| (Version::V2, p))
}

/// From /proc/self/mountinfo: (root of the mount within the hierarchy, mount point) of the
/// hierarchy of `version` (v1: a `cgroup` mount whose super options include `cpu`).
fn mount(text: &str, version: Version) -> Option<(String, String)> {
    for line in text.lines() {
        // "36 35 98:0 /root /mnt/point opts [optional...] - fstype source superopts"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let mut rest = right.split(' ');
        let (Some(fstype), _source, Some(super_opts)) = (rest.next(), rest.next(), rest.next())
        else {
            continue;
        };
        if fields.len() < 5 {
            continue;
        }
        let wanted = match version {
            Version::V2 => fstype == "cgroup2",
            Version::V1 => fstype == "cgroup" && super_opts.split(',').any(|o| o == "cpu"),
        };
        if wanted {
            return Some((unescape(fields[3]), unescape(fields[4])));
        }
    }
    None
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011` tab, `\012` newline, `\134`
/// backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// cgroup v2 `cpu.max`: `"<quota> <period>"`, quota `max` meaning no limit.
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next()?.parse().ok()?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    (quota > 0.0).then(|| quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake filesystem root in a fresh temp directory, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let dir =
                std::env::temp_dir().join(format!("gort-cgroup-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Tree(dir)
        }

        fn file(&self, path: &str, text: &str) -> &Tree {
            let p = under(&self.0, path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
            self
        }

        fn limit(&self) -> Option<f64> {
            cpu_limit(&self.0)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const V2_MOUNT: &str = "25 30 0:23 / /proc rw - proc proc rw\n\
        31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn v2_quota() {
        let t = Tree::new("v2");
        t.file("/proc/self/cgroup", "0::/kubepods/pod1\n")
            .file("/proc/self/mountinfo", V2_MOUNT)
            .file("/sys/fs/cgroup/kubepods/pod1/cpu.max", "150000 100000\n");
        assert_eq!(t.limit(), Some(1.5));
        assert_eq!(procs_for(8, t.limit()), 2);
        t.file("/sys/fs/cgroup/kubepods/pod1/cpu.max", "320000 100000\n");
        assert_eq!(procs_for(8, t.limit()), 4); // 3.2 rounds up
        assert_eq!(procs_for(3, t.limit()), 3); // never above the CPU count
        t.file("/sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
        assert_eq!(t.limit(), None);
        assert_eq!(procs_for(8, t.limit()), 8);
    }

    #[test]
    fn v2_small_quota_is_two_but_never_above_cpus() {
        let t = Tree::new("v2small");
        t.file("/proc/self/cgroup", "0::/\n")
            .file("/proc/self/mountinfo", V2_MOUNT)
            .file("/sys/fs/cgroup/cpu.max", "50000 100000\n");
        assert_eq!(t.limit(), Some(0.5));
        assert_eq!(procs_for(8, t.limit()), 2);
        assert_eq!(procs_for(1, t.limit()), 1);
        assert_eq!(procs_for(0, t.limit()), 1);
    }

    #[test]
    fn v1_quota_wins_over_v2_and_respects_mount_root() {
        let t = Tree::new("v1");
        t.file(
            "/proc/self/cgroup",
            "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
        )
        .file(
            "/proc/self/mountinfo",
            "31 23 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             32 23 0:29 /docker/abc /sys/fs/cgroup/cpu\\040acct rw,relatime master:9 - cgroup cgroup rw,cpu,cpuacct\n",
        )
        .file("/sys/fs/cgroup/cpu acct/cpu.cfs_quota_us", "250000\n")
        .file("/sys/fs/cgroup/cpu acct/cpu.cfs_period_us", "100000\n")
        .file("/sys/fs/cgroup/unified/cpu.max", "100000 100000\n");
        assert_eq!(t.limit(), Some(2.5));
        assert_eq!(procs_for(16, t.limit()), 3);
        t.file("/sys/fs/cgroup/cpu acct/cpu.cfs_quota_us", "-1\n");
        assert_eq!(t.limit(), None);
    }

    #[test]
    fn v1_cpuacct_alone_is_not_cpu() {
        let t = Tree::new("v1acct");
        t.file("/proc/self/cgroup", "2:cpuacct:/\n0::/g\n")
            .file("/proc/self/mountinfo", V2_MOUNT)
            .file("/sys/fs/cgroup/g/cpu.max", "200000 100000");
        assert_eq!(t.limit(), Some(2.0));
    }

    #[test]
    fn missing_or_malformed_means_no_limit() {
        let t = Tree::new("none");
        assert_eq!(t.limit(), None);
        t.file("/proc/self/cgroup", "0::/\n");
        assert_eq!(t.limit(), None); // no mountinfo
        t.file("/proc/self/mountinfo", V2_MOUNT);
        assert_eq!(t.limit(), None); // no cpu.max
        t.file("/sys/fs/cgroup/cpu.max", "lots\n");
        assert_eq!(t.limit(), None);
        t.file("/sys/fs/cgroup/cpu.max", "100000 0\n");
        assert_eq!(t.limit(), None);
        assert_eq!(procs_for(4, Some(f64::NAN)), 4);
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn this_machine_reads_without_error() {
        let n = default_max_procs();
        assert!(n >= 1 && n <= cpu_count());
    }
}
