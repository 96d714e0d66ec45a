//! Results: one [`Table`] per experiment, written as CSV and JSON (with the machine
//! description and the run's settings) and printed as an aligned summary on the terminal.

use anyhow::Context;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// Rows of one experiment under fixed column names.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Experiment name: file stem of its outputs.
    pub(crate) name: &'static str,
    /// Column names.
    pub(crate) columns: Vec<&'static str>,
    /// Cells, one `Vec` per row, as many as `columns`.
    pub(crate) rows: Vec<Vec<Value>>,
    /// Settings of the run (clients, counts, backend, …) for the JSON.
    pub(crate) settings: Value,
}

impl Table {
    /// An empty table.
    pub(crate) fn new(name: &'static str, columns: Vec<&'static str>, settings: Value) -> Self {
        Self {
            name,
            columns,
            rows: Vec::new(),
            settings,
        }
    }

    /// Appends a row; it must have one cell per column.
    pub(crate) fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width of {}", self.name);
        self.rows.push(row);
    }

    /// The cell of `column` in `row`.
    pub(crate) fn cell<'a>(&self, row: &'a [Value], column: &str) -> Option<&'a Value> {
        let i = self.columns.iter().position(|c| *c == column)?;
        row.get(i)
    }

    /// RFC 4180 CSV with a header line.
    pub(crate) fn to_csv(&self) -> String {
        let mut out = self.columns.join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(csv_cell).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// `{"experiment", "machine", "settings", "rows": [{column: value}]}`.
    pub(crate) fn to_json(&self, machine: &Value) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let m: Map<String, Value> = self
                    .columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| ((*c).to_owned(), v.clone()))
                    .collect();
                Value::Object(m)
            })
            .collect();
        json!({
            "experiment": self.name,
            "machine": machine,
            "settings": self.settings,
            "rows": rows,
        })
    }

    /// The summary printed on the terminal: aligned columns, numbers with 3 significant decimals.
    pub(crate) fn to_text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(text_cell).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(String::len)
                    .chain([c.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!("== {} ==\n", self.name);
        let line = |out: &mut String, row: &mut dyn Iterator<Item = &str>| {
            let parts: Vec<String> = row.zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
            let _ = writeln!(out, "{}", parts.join("  "));
        };
        line(&mut out, &mut self.columns.iter().copied());
        for r in &cells {
            line(&mut out, &mut r.iter().map(String::as_str));
        }
        out
    }

    /// Writes `<dir>/<name>.csv` and `<dir>/<name>.json`.
    pub(crate) fn write(&self, dir: &Path, machine: &Value) -> anyhow::Result<()> {
        let csv = dir.join(format!("{}.csv", self.name));
        std::fs::write(&csv, self.to_csv())
            .with_context(|| format!("writing {}", csv.display()))?;
        let js = dir.join(format!("{}.json", self.name));
        let text = serde_json::to_string_pretty(&self.to_json(machine))?;
        std::fs::write(&js, text).with_context(|| format!("writing {}", js.display()))?;
        Ok(())
    }
}

fn csv_cell(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .filter(|_| n.is_f64())
            .map_or_else(|| n.to_string(), |f| format!("{f:.4}")),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn text_cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.abs() >= 100.0 {
                format!("{f:.0}")
            } else {
                format!("{f:.3}")
            }
        }
        other => other.to_string(),
    }
}

/// A float cell, rounded to 4 decimals; non-finite values become null.
pub(crate) fn num(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 10_000.0).round() / 10_000.0)
    } else {
        Value::Null
    }
}

/// `a / b`, or null when `b` is zero.
pub(crate) fn ratio(a: f64, b: f64) -> Value {
    if b > 0.0 { num(a / b) } else { Value::Null }
}

/// The performance targets, read off the experiments' tables: metric, target, measured,
/// whether it is met (null when the run did not measure it).
pub(crate) fn headline(tables: &[Table]) -> Table {
    let mut h = Table::new(
        "headline",
        vec!["metric", "target", "measured", "met"],
        json!({"source": "issue 5, item 5"}),
    );
    // The targets are the Node.js path's: rows of other kinds are left out.
    let tables: Vec<Table> = tables.iter().map(node_rows).collect();
    let find = |name: &str| tables.iter().find(|t| t.name == name);
    let f = |t: &Table, r: &[Value], c: &str| t.cell(r, c).and_then(Value::as_f64);
    let mut add = |metric: &str, target: &str, measured: Option<f64>, ok: &dyn Fn(f64) -> bool| {
        h.push(vec![
            json!(metric),
            json!(target),
            measured.map_or(Value::Null, num),
            measured.map_or(Value::Null, |m| json!(if ok(m) { "yes" } else { "no" })),
        ]);
    };
    let conc = find("concurrency");
    let at_clients = |t: &Table, c: f64| -> Vec<Vec<Value>> {
        t.rows
            .iter()
            .filter(|r| f(t, r, "clients") == Some(c))
            .cloned()
            .collect()
    };
    // The best value of `column` over the capacities measured at `clients` clients.
    let best_at = |clients: f64, column: &str, best: fn(f64, f64) -> f64| {
        conc.and_then(|t| {
            at_clients(t, clients)
                .iter()
                .filter_map(|r| f(t, r, column))
                .reduce(best)
        })
    };
    let p50_c1 = best_at(1.0, "p50_ratio", f64::min);
    add(
        "warm p50 at 1 client / bare Node.js p50",
        "<= 1.5",
        p50_c1,
        &|m| m <= 1.5,
    );
    let thr_c16 = best_at(16.0, "throughput_ratio", f64::max);
    add(
        "throughput at 16 clients / bare Node.js (best capacity)",
        ">= 0.60",
        thr_c16,
        &|m| m >= 0.6,
    );
    let c64_of_peak = conc.and_then(|t| {
        let mut worst: Option<f64> = None;
        let mut caps: Vec<Value> = Vec::new();
        for r in &t.rows {
            if let Some(c) = t.cell(r, "capacity") {
                if !caps.contains(c) {
                    caps.push(c.clone());
                }
            }
        }
        for cap in caps {
            let rows: Vec<&Vec<Value>> = t
                .rows
                .iter()
                .filter(|r| t.cell(r, "capacity") == Some(&cap))
                .collect();
            let peak = rows
                .iter()
                .filter_map(|r| f(t, r, "throughput_rps"))
                .fold(0.0, f64::max);
            let at64 = rows
                .iter()
                .find(|r| f(t, r, "clients") == Some(64.0))
                .and_then(|r| f(t, r, "throughput_rps"));
            if let (Some(v), true) = (at64, peak > 0.0) {
                let share = v / peak;
                worst = Some(worst.map_or(share, |w: f64| w.min(share)));
            }
        }
        worst
    });
    add(
        "throughput at 64 clients / peak (worst capacity)",
        ">= 0.90",
        c64_of_peak,
        &|m| m >= 0.9,
    );
    let big_payload = find("payload").and_then(|t| {
        let rows: Vec<&Vec<Value>> = t
            .rows
            .iter()
            .filter(|r| f(t, r, "clients") == Some(1.0))
            .collect();
        let max = rows
            .iter()
            .filter_map(|r| f(t, r, "payload_bytes"))
            .fold(0.0, f64::max);
        (max >= 1_000_000.0)
            .then(|| rows.iter().find(|r| f(t, r, "payload_bytes") == Some(max)))
            .flatten()
            .and_then(|r| f(t, r, "p50_ratio"))
    });
    add(
        "~1 MB payload p50 / bare Node.js p50 (1 client)",
        "<= 1.0",
        big_payload,
        &|m| m <= 1.0,
    );
    let hop = |size: f64| {
        find("transfer").and_then(|t| {
            t.rows
                .iter()
                .find(|r| f(t, r, "payload_bytes") == Some(size))
                .and_then(|r| f(t, r, "hop_p50_ms"))
        })
    };
    add(
        "sequence hop p50 at 100 KB, ms",
        "<= 1",
        hop(102_400.0),
        &|m| m <= 1.0,
    );
    let hop_1m = find("transfer").and_then(|t| {
        t.rows
            .iter()
            .filter(|r| f(t, r, "payload_bytes").is_some_and(|b| b >= 1_000_000.0))
            .find_map(|r| f(t, r, "hop_p50_ms"))
    });
    add("sequence hop p50 at ~1 MB, ms", "<= 5", hop_1m, &|m| {
        m <= 5.0
    });
    let footprint =
        |key: &str| find("concurrency").and_then(|t| t.settings.get(key).and_then(Value::as_f64));
    add(
        "idle RSS of edgewhisk serve, MiB",
        "<= 15",
        footprint("server_idle_rss_mib"),
        &|m| m <= 15.0,
    );
    add(
        "private memory of an idle warm Node.js instance, MiB",
        "<= 10",
        footprint("warm_node_instance_private_mib"),
        &|m| m <= 10.0,
    );
    let cold = find("coldstart").and_then(|t| {
        t.rows
            .iter()
            .filter(|r| {
                t.cell(r, "kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.starts_with("nodejs"))
                    && t.cell(r, "stem_cell") == Some(&json!("yes"))
            })
            .filter_map(|r| f(t, r, "p50_ms"))
            .reduce(f64::min)
    });
    add(
        "cold start p50 of a new Node.js action with a stem cell, ms",
        "<= 10",
        cold,
        &|m| m <= 10.0,
    );
    h
}

/// `t` with only its Node.js rows (all of them when it has no `kind` column).
fn node_rows(t: &Table) -> Table {
    let mut out = t.clone();
    out.rows.retain(|r| {
        t.cell(r, "kind")
            .and_then(Value::as_str)
            .is_none_or(|k| k.starts_with("nodejs"))
    });
    out
}

/// Resident set of process `pid`, MiB (`VmRSS` in /proc/PID/status).
pub(crate) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(crate::load::as_f64(kib) / 1024.0)
}

/// Private dirty memory of process `pid`, MiB, from /proc/PID/smaps_rollup.
pub(crate) fn private_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kib: u64 = text
        .lines()
        // Dirty pages only: a lone instance also maps the node binary's text privately
        // (Private_Clean, ~30 MB), but that is page cache shared as soon as a second instance
        // runs, not what each instance adds.
        .filter(|l| l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    Some(crate::load::as_f64(kib) / 1024.0)
}

/// Every descendant of `pid` whose program is named `needle` (from the ppid field of
/// every /proc/N/stat).
pub(crate) fn descendants_named(pid: u32, needle: &str) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command: state, ppid, …
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((n, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut grew = true;
    while grew {
        grew = false;
        for &(n, ppid) in &parent_of {
            if tree.contains(&ppid) && !tree.contains(&n) {
                tree.push(n);
                grew = true;
            }
        }
    }
    tree.into_iter()
        .skip(1)
        .filter(|n| {
            // The program itself, not any argument: `runc run … <bundle named nodejs_…>` is not
            // a Node.js instance.
            let cmd = std::fs::read(format!("/proc/{n}/cmdline")).unwrap_or_default();
            let program = cmd.split(|b| *b == 0).next().unwrap_or_default();
            std::path::Path::new(&*String::from_utf8_lossy(program))
                .file_name()
                .is_some_and(|f| f == needle)
        })
        .collect()
}

/// Cores, memory, kernel, architecture and CPU model of this machine, from /proc and uname.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| {
            l.starts_with("model name") || l.starts_with("Model") || l.starts_with("Hardware")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let uname = nix::sys::utsname::uname().ok();
    let os = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname.as_ref().map(|u| f(u).to_string_lossy().into_owned())
    };
    json!({
        "cores": std::thread::available_parallelism().map(usize::from).ok(),
        "cpu_model": model,
        "memory_total_mib": mem_kib("MemTotal:").map(|k| k / 1024),
        "memory_available_mib": mem_kib("MemAvailable:").map(|k| k / 1024),
        "kernel": os(nix::sys::utsname::UtsName::release),
        "kernel_version": os(nix::sys::utsname::UtsName::version),
        "arch": os(nix::sys::utsname::UtsName::machine),
        "os": os(nix::sys::utsname::UtsName::sysname),
        "loadavg_at_start": loadavg,
        "edgewhisk_version": env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new("demo", vec!["name", "p50_ms"], json!({"n": 1}));
        t.push(vec![json!("a,b"), num(1.23456)]);
        t.push(vec![json!("plain"), Value::Null]);
        t
    }

    #[test]
    fn csv_quotes_cells_with_commas_and_keeps_one_line_per_row() {
        let csv = sample().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines, ["name,p50_ms", "\"a,b\",1.2346", "plain,"]);
    }

    #[test]
    fn json_rows_are_keyed_by_column_and_carry_the_machine() {
        let v = sample().to_json(&json!({"cores": 2}));
        assert_eq!(v["experiment"], "demo");
        assert_eq!(v["machine"]["cores"], 2);
        assert_eq!(v["rows"][0]["name"], "a,b");
        assert_eq!(v["rows"][1]["p50_ms"], Value::Null);
    }

    #[test]
    fn text_summary_aligns_columns() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
    }

    #[test]
    fn headline_reads_targets_off_the_tables() {
        let mut conc = Table::new(
            "concurrency",
            vec![
                "capacity",
                "clients",
                "throughput_rps",
                "p50_ratio",
                "throughput_ratio",
            ],
            Value::Null,
        );
        conc.push(vec![json!(1), json!(1), num(100.0), num(1.2), num(0.5)]);
        conc.push(vec![json!(1), json!(16), num(400.0), num(2.0), num(0.7)]);
        conc.push(vec![json!(1), json!(64), num(200.0), num(3.0), num(0.4)]);
        let h = headline(&[conc]);
        let row = |m: &str| {
            h.rows
                .iter()
                .find(|r| r[0].as_str().unwrap().starts_with(m))
                .unwrap()
        };
        assert_eq!(row("warm p50")[2], json!(1.2));
        assert_eq!(row("warm p50")[3], json!("yes"));
        assert_eq!(row("throughput at 16")[3], json!("yes"));
        assert_eq!(row("throughput at 64")[2], json!(0.5));
        assert_eq!(row("throughput at 64")[3], json!("no"));
        assert_eq!(row("sequence hop p50 at 100")[3], Value::Null);
    }

    #[test]
    fn headline_reads_only_the_node_rows_of_a_run_of_several_kinds() {
        let mut conc = Table::new(
            "concurrency",
            vec!["kind", "capacity", "clients", "p50_ratio"],
            Value::Null,
        );
        conc.push(vec![json!("wasm:wasi"), json!(1), json!(1), num(0.5)]);
        conc.push(vec![json!("nodejs:20"), json!(1), json!(1), num(1.4)]);
        conc.push(vec![json!("python:3"), json!(1), json!(1), num(0.9)]);
        let h = headline(&[conc]);
        assert_eq!(h.rows[0][2], json!(1.4), "{:?}", h.rows[0]);
    }

    #[test]
    fn memory_probes_read_this_process() {
        let me = std::process::id();
        assert!(rss_mib(me).unwrap() > 0.0);
        assert!(private_mib(me).unwrap() > 0.0);
        let child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        // Until the child has exec'd, its cmdline is still this test binary's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = descendants_named(me, "sleep");
        while !found.contains(&child.id()) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
            found = descendants_named(me, "sleep");
        }
        // Matched by its program, never by an argument.
        let by_argument = descendants_named(me, "5");
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(!by_argument.contains(&child.id()), "{by_argument:?}");
    }

    #[test]
    fn ratio_of_zero_denominator_is_null() {
        assert_eq!(ratio(1.0, 0.0), Value::Null);
        assert_eq!(ratio(3.0, 2.0), json!(1.5));
    }

    #[test]
    fn machine_description_has_cores_memory_kernel_and_arch() {
        let m = machine();
        assert!(m["cores"].as_u64().unwrap() >= 1);
        assert!(m["memory_total_mib"].as_u64().unwrap() > 0);
        assert!(!m["kernel"].as_str().unwrap().is_empty());
        assert_eq!(m["arch"].as_str().unwrap(), std::env::consts::ARCH);
    }
}
