//! Runs the children, alternating implementations, and prints the tables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `println!` into a String.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

use crate::workloads::{Unit, Workload, ALL, AREAS, IMPLS};

/// Command-line options.
pub struct Options {
    /// Rounds per workload; a cell is the median.
    pub reps: usize,
    /// Print markdown tables (for README.md) instead of text tables.
    pub markdown: bool,
    /// Also write the markdown tables to this file.
    pub markdown_out: Option<String>,
    /// Print every sample as it arrives.
    pub verbose: bool,
    /// Workload names or areas to run; empty = all.
    pub filter: Vec<String>,
    /// Implementations to run.
    pub impls: Vec<String>,
    /// A child that runs longer than this is killed and its cell says "timeout".
    pub timeout_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reps: 5,
            markdown: false,
            markdown_out: None,
            verbose: false,
            filter: Vec::new(),
            impls: IMPLS.iter().map(|(k, _)| k.to_string()).collect(),
            timeout_secs: 60,
        }
    }
}

/// What one child run gave.
#[derive(Clone, Debug)]
enum Sample {
    Value(f64, String),
    /// This implementation has no such workload (or the gort feature is off).
    NotApplicable(String),
    Failed(String),
}

/// One cell: the samples of an (workload, implementation) pair.
#[derive(Default)]
struct Cell {
    values: Vec<f64>,
    notes: Vec<String>,
    na: Option<String>,
    failures: Vec<String>,
}

impl Cell {
    fn median(&self) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        let mut v = self.values.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }

    /// The note of the sample nearest the median (notes like "entered 2/1000" vary little).
    fn note(&self) -> Option<String> {
        let m = self.median()?;
        let i = self
            .values
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - m).abs().partial_cmp(&(b.1 - m).abs()).unwrap())?
            .0;
        self.notes.get(i).filter(|s| !s.is_empty()).cloned()
    }
}

pub struct Runner {
    opts: Options,
    go: Result<PathBuf, String>,
    exe: PathBuf,
}

impl Runner {
    pub fn new(opts: Options) -> Runner {
        let exe = std::env::current_exe().expect("current_exe");
        let go = if opts.impls.iter().any(|i| i == "go") {
            build_go(&exe)
        } else {
            Err("not selected".into())
        };
        Runner { opts, go, exe }
    }

    pub fn run(&self) {
        let selected: Vec<&Workload> = ALL
            .iter()
            .filter(|w| {
                self.opts.filter.is_empty()
                    || self.opts.filter.iter().any(|f| f == w.name || f == w.area)
            })
            .collect();
        let impls: Vec<&str> = IMPLS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| self.opts.impls.iter().any(|i| i == k))
            .collect();
        eprintln!(
            "gort-peers: {} workload(s) x {} implementation(s) x {} round(s); {} CPUs; go: {}; \
             gort features: {}",
            selected.len(),
            impls.len(),
            self.opts.reps,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            match &self.go {
                Ok(p) => p.display().to_string(),
                Err(e) => e.clone(),
            },
            crate::child::features().join(",")
        );
        eprintln!("load average at start: {}", loadavg());
        let mut cells: HashMap<(&str, &str), Cell> = HashMap::new();
        for w in &selected {
            let started = Instant::now();
            for rep in 0..self.opts.reps {
                for k in 0..impls.len() {
                    let imp = impls[(k + rep) % impls.len()];
                    let cell = cells.entry((w.name, imp)).or_default();
                    if cell.na.is_some() {
                        continue;
                    }
                    let s = self.sample(w, imp);
                    if self.opts.verbose {
                        eprintln!("  {} {} #{}: {:?}", w.name, imp, rep, s);
                    }
                    match s {
                        Sample::Value(v, note) => {
                            cell.values.push(v);
                            cell.notes.push(note);
                        }
                        Sample::NotApplicable(why) => cell.na = Some(why),
                        Sample::Failed(why) => cell.failures.push(why),
                    }
                }
            }
            eprintln!(
                "  {:<18} done in {:.1} s",
                w.name,
                started.elapsed().as_secs_f64()
            );
        }
        let text = self.render(false, &selected, &impls, &cells);
        let md = self.render(true, &selected, &impls, &cells);
        print!("{}", if self.opts.markdown { &md } else { &text });
        if let Some(path) = &self.opts.markdown_out {
            match std::fs::write(path, &md) {
                Ok(()) => eprintln!("markdown tables written to {path}"),
                Err(e) => eprintln!("cannot write {path}: {e}"),
            }
        }
    }

    /// The tables, notes and footer, as text or markdown.
    fn render(
        &self,
        markdown: bool,
        selected: &[&Workload],
        impls: &[&str],
        cells: &HashMap<(&str, &str), Cell>,
    ) -> String {
        let mut out = String::new();
        let out = &mut out;
        for (area, heading) in AREAS {
            let rows: Vec<&&Workload> = selected.iter().filter(|w| w.area == *area).collect();
            if rows.is_empty() {
                continue;
            }
            if markdown {
                print_markdown(out, heading, &rows, impls, cells);
            } else {
                print_text(out, heading, &rows, impls, cells);
            }
        }
        let mut notes = Vec::new();
        let mut off: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
        for w in selected {
            // Implementations that share a note ("N = 30000") are named together.
            let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
            for imp in impls {
                if let Some(n) = cells.get(&(w.name, *imp)).and_then(Cell::note) {
                    match groups.iter_mut().find(|(g, _)| *g == n) {
                        Some((_, who)) => who.push(imp),
                        None => groups.push((n, vec![imp])),
                    }
                }
            }
            for (n, who) in groups {
                notes.push(format!("{} / {}: {}", w.name, who.join(", "), n));
            }
            for imp in impls {
                let Some(c) = cells.get(&(w.name, *imp)) else {
                    continue;
                };
                if let Some(why) = &c.na {
                    if *imp == "gort" && why.starts_with("gort feature") {
                        off.entry(why.clone()).or_default().push(w.name);
                    } else if !why.is_empty()
                        && !why.starts_with("go: ")
                        && why != "unknown workload"
                    {
                        notes.push(format!("{} / {}: not run ({})", w.name, imp, why));
                    }
                }
                if let Some(f) = c.failures.first() {
                    notes.push(format!(
                        "{} / {}: {} of {} runs failed: {}",
                        w.name,
                        imp,
                        c.failures.len(),
                        self.opts.reps,
                        f
                    ));
                }
            }
        }
        for (why, rows) in off {
            notes.insert(0, format!("gort not run ({why}): {}", rows.join(", ")));
        }
        if let Err(e) = &self.go {
            notes.insert(0, format!("go: {e}"));
        }
        if !notes.is_empty() {
            if markdown {
                outln!(out, "\nNotes:\n");
                for n in notes {
                    outln!(out, "- {n}");
                }
            } else {
                outln!(out, "\nnotes:");
                for n in notes {
                    outln!(out, "  {n}");
                }
            }
        }
        outln!(
            out,
            "\nload average (1/5/15 min) at the end: {}; {} CPUs.",
            loadavg(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        outln!(
            out,
            "{} rounds per cell, median; ratio = peer / gort in the row's unit; implementations \
             alternate between rounds; one child process per measurement; ✓/✗: gort's target \
             met or not.",
            self.opts.reps
        );
        out.clone()
    }

    fn sample(&self, w: &Workload, imp: &str) -> Sample {
        let mut cmd = if imp == "go" {
            match &self.go {
                Ok(p) => {
                    let mut c = Command::new(p);
                    c.arg(w.name);
                    c
                }
                Err(e) => return Sample::NotApplicable(format!("go: {e}")),
            }
        } else {
            let mut c = Command::new(&self.exe);
            c.args(["--child", w.name, imp]);
            c
        };
        if let Some(p) = w.procs {
            cmd.env("GORT_MAXPROCS", p.to_string())
                .env("GOMAXPROCS", p.to_string())
                .env("PEERS_PROCS", p.to_string());
        } else {
            cmd.env_remove("GORT_MAXPROCS")
                .env_remove("GOMAXPROCS")
                .env_remove("PEERS_PROCS");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_child(cmd, Duration::from_secs(self.opts.timeout_secs))
    }
}

/// Runs one child; parses `VALUE [note]`, `n/a [why]`.
fn run_child(mut cmd: Command, timeout: Duration) -> Sample {
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Sample::Failed(format!("spawn: {e}")),
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Sample::Failed(format!("timeout after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Sample::Failed(format!("wait: {e}")),
        }
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Sample::Failed(format!("output: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
    if head == "n/a" {
        return Sample::NotApplicable(rest.trim().to_owned());
    }
    match head.parse::<f64>() {
        Ok(v) if out.status.success() => Sample::Value(v, rest.trim().to_owned()),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .chars()
                .take(160)
                .collect::<String>();
            Sample::Failed(format!("{} {}", out.status, first))
        }
    }
}

/// Builds `go/` into `peers-go` beside this executable; Err says why not.
fn build_go(exe: &std::path::Path) -> Result<PathBuf, String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("go");
    let out = exe.with_file_name("peers-go");
    let go = match Command::new("go").arg("version").output() {
        Ok(o) if o.status.success() => o,
        _ => return Err("not found".into()),
    };
    let _ = go;
    let st = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("go build: {e}"))?;
    if !st.status.success() {
        return Err(format!(
            "go build failed: {}",
            String::from_utf8_lossy(&st.stderr).trim()
        ));
    }
    Ok(out)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Ns => {
            if v >= 100_000.0 {
                format!("{:.0} us", v / 1000.0)
            } else if v >= 10_000.0 {
                format!("{:.1} us", v / 1000.0)
            } else if v >= 100.0 {
                format!("{v:.0} ns")
            } else {
                format!("{v:.1} ns")
            }
        }
        Unit::PerSec => {
            if v >= 1e6 {
                format!("{:.2} M/s", v / 1e6)
            } else {
                format!("{:.0} k/s", v / 1e3)
            }
        }
        Unit::KiB => format!("{v:.1} KiB"),
        Unit::Ratio => format!("{v:.2}"),
        Unit::Count => format!("{v:.0}"),
        Unit::Ms => {
            if v >= 100.0 {
                format!("{v:.0} ms")
            } else {
                format!("{v:.1} ms")
            }
        }
        Unit::MiB => format!("{v:.0} MiB"),
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

/// The text of each cell in a row: gort's value, the peers' values with ratio to gort.
fn row_cells(w: &Workload, impls: &[&str], cells: &HashMap<(&str, &str), Cell>) -> Vec<String> {
    let gort = cells.get(&(w.name, "gort")).and_then(Cell::median);
    impls
        .iter()
        .map(|imp| {
            let Some(c) = cells.get(&(w.name, *imp)) else {
                return "-".into();
            };
            if let Some(why) = &c.na {
                if let Some(go) = why.strip_prefix("go: ") {
                    return format!("go: {}", if go == "not found" { go } else { "failed" });
                }
                return "-".into();
            }
            match c.median() {
                None if !c.failures.is_empty() => "failed".into(),
                None => "-".into(),
                Some(v) => {
                    let mut s = fmt_value(w.unit, v);
                    if w.unit == Unit::Count {
                        // "k/N in read(2) after T ms, ..." -> "(k/N in, T ms)"
                        if let Some(n) = c.note() {
                            let words: Vec<&str> = n.split(' ').collect();
                            if let (Some(k), Some(ms)) = (words.first(), words.get(4)) {
                                let ms: f64 = ms.parse().unwrap_or(0.0);
                                let took = if ms >= 1000.0 {
                                    format!("{:.1} s", ms / 1000.0)
                                } else {
                                    format!("{ms:.0} ms")
                                };
                                s.push_str(&format!(" ({k} in, {took})"));
                            }
                        }
                    }
                    if *imp == "gort" {
                        match target_met(w, cells) {
                            Some(true) => s.push_str(" ✓"),
                            Some(false) => s.push_str(" ✗"),
                            None => {}
                        }
                    }
                    if *imp != "gort"
                        && matches!(
                            w.unit,
                            Unit::Ns | Unit::PerSec | Unit::KiB | Unit::Ms | Unit::MiB
                        )
                    {
                        if let Some(g) = gort.filter(|g| *g > 0.0) {
                            s.push_str(&format!(" ({})", fmt_ratio(v / g)));
                        }
                    }
                    s
                }
            }
        })
        .collect()
}

/// Whether gort's median meets the row's target: clauses like `<= 300`, `>= 26M`, `<= Go`,
/// `>= Go, >= tokio`, `<= 0.5x Go`; None when the target is not of that form or a value is
/// missing.
fn target_met(w: &Workload, cells: &HashMap<(&str, &str), Cell>) -> Option<bool> {
    let mut gort = cells.get(&(w.name, "gort"))?.median()?;
    if w.unit == Unit::Ratio {
        // Judge the value as shown (two decimals): 0.8996 shows as 0.90 and meets ">= 0.9".
        gort = (gort * 100.0).round() / 100.0;
    }
    if w.target.is_empty() {
        return None;
    }
    let mut met = true;
    for clause in w.target.split(", ") {
        let (op, rhs) = clause.split_once(' ')?;
        let rhs = rhs.trim();
        // `0.5x Go`: a multiple of a peer's value.
        let (factor, rhs) = match rhs.split_once("x ") {
            Some((f, peer)) => (f.parse::<f64>().ok()?, peer),
            None => (1.0, rhs),
        };
        let bound = match IMPLS.iter().find(|(_, label)| *label == rhs) {
            Some((k, _)) => factor * cells.get(&(w.name, *k))?.median()?,
            None => {
                let (num, mul) = match rhs.strip_suffix('M') {
                    Some(n) => (n, 1e6),
                    None => (rhs, 1.0),
                };
                num.parse::<f64>().ok()? * mul
            }
        };
        met &= match op {
            "<=" => gort <= bound,
            ">=" => gort >= bound,
            _ => return None,
        };
    }
    Some(met)
}

fn headers(impls: &[&str]) -> Vec<String> {
    let mut h = vec!["workload".to_string(), "unit".to_string()];
    for imp in impls {
        let label = IMPLS
            .iter()
            .find(|(k, _)| k == imp)
            .map_or(*imp, |(_, l)| *l);
        h.push(label.to_string());
    }
    h.push("gort target".into());
    h
}

fn print_text(
    out: &mut String,
    heading: &str,
    rows: &[&&Workload],
    impls: &[&str],
    cells: &HashMap<(&str, &str), Cell>,
) {
    let mut table = vec![headers(impls)];
    for w in rows {
        let mut r = vec![w.name.to_string(), w.unit.label().to_string()];
        r.extend(row_cells(w, impls, cells));
        r.push(w.target.to_string());
        table.push(r);
    }
    let ncol = table[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    outln!(out, "\n{heading}");
    for (i, r) in table.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{:<w$}", s, w = widths[c]))
            .collect();
        outln!(out, "  {}", line.join("  ").trim_end());
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (ncol - 1);
            outln!(out, "  {}", "-".repeat(total));
        }
    }
}

fn print_markdown(
    out: &mut String,
    heading: &str,
    rows: &[&&Workload],
    impls: &[&str],
    cells: &HashMap<(&str, &str), Cell>,
) {
    outln!(out, "\n#### {heading}\n");
    let h = headers(impls);
    outln!(out, "| {} |", h.join(" | "));
    let align: Vec<&str> = h
        .iter()
        .enumerate()
        .map(|(i, _)| if i < 2 { "---" } else { "---:" })
        .collect();
    outln!(out, "|{}|", align.join("|"));
    for w in rows {
        let mut r = vec![format!("`{}`", w.name), w.unit.label().to_string()];
        r.extend(row_cells(w, impls, cells));
        r.push(w.target.to_string());
        outln!(out, "| {} |", r.join(" | "));
    }
}
