//! `picket`: the command line. Parsing and printing only; the work is in the library.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use picket::alert::{self, Format, Notifier, Router};
use picket::clock::Clock;
use picket::config::{Config, ConfigError};
use picket::model::{RecordKind, Severity};
use picket::pipeline::BatchReport;
use picket::source::decode::Limits;
use picket::source::{RawRecord, replay};
use picket::{app, demo};

/// mimalloc: every record is a JSON tree of small allocations made and freed once, which the
/// system allocator serves markedly slower (see `benches/replay.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes to standard output; a closed pipe (`picket rules list | head`) ends the program
/// quietly instead of panicking.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(2);
    }
}

macro_rules! outln {
    ($($arg:tt)*) => {
        out(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Cloud identity and control-plane threat detection and response.
#[derive(Parser)]
#[command(name = "picket", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay log files through detection, in event-time order across all inputs. Never acts.
    Replay(ReplayArgs),
    /// Check a configuration file; every problem is reported with file, line and key path.
    Validate {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Work with Sigma rules: run their test cases, list them, lint them.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// The response ledger: list actions, undo one, reset the blast-radius latch.
    Respond {
        #[command(subcommand)]
        command: RespondCommand,
    },
    /// Poll the configured sources, detect, respond and notify; resumes from stored cursors.
    Run(RunArgs),
    /// Show each source's lag, throughput, errors and health from the state store.
    Status(LedgerArgs),
    /// Replay the bundled multi-cloud account-takeover story with embedded defaults.
    Demo {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Run every rule's `<stem>.cases.json`; non-zero exit on any failure.
    Test {
        /// Rule folders (default: ./detections).
        dirs: Vec<PathBuf>,
    },
    /// List id, level, logsource, title and ATT&CK of every rule.
    List {
        /// Rule folders (default: ./detections).
        dirs: Vec<PathBuf>,
    },
    /// Check schema, modifiers, fields and cases; ends with `loaded: N, rejected: M`.
    Lint {
        /// Rule folders (default: ./detections).
        dirs: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct LedgerArgs {
    /// Configuration file (default: the embedded defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// SQLite state file holding the ledger (default: the config's `[state]`).
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RespondCommand {
    /// List recorded and planned actions, oldest first.
    List(LedgerArgs),
    /// Reverse an applied action by its ledger id.
    Undo {
        /// The ledger id (shown in alerts and `picket respond list`).
        id: String,
        #[command(flatten)]
        args: LedgerArgs,
    },
    /// Re-open the blast-radius latch so picket may act again.
    Reset(LedgerArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Configuration file (default: the embedded defaults, which configure no source).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// SQLite state file (default: the config's `[state]`).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Read every source until caught up, then exit.
    #[arg(long)]
    once: bool,
    /// Plan responses without acting, whatever `[respond] mode` says.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutFormat {
    /// Human-readable, terminal-safe.
    Table,
    /// OCSF Detection Findings, one JSON object per line.
    Ocsf,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Configuration file (default: the embedded defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// SQLite state file to use and keep (default: fresh in-memory state).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
    /// Write findings here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Print throughput, events by kind, rejected records and peak memory to stderr.
    #[arg(long)]
    stats: bool,
    /// Treat every record as this kind instead of recognising each by its shape.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<RecordKind>,
    /// Extra Sigma rule folders.
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// Records per pipeline batch (what is held in memory at once).
    #[arg(long, default_value_t = picket::pipeline::REPLAY_BATCH_RECORDS)]
    batch: usize,
    /// Records of one file sorted by event time together: a file is read in windows of
    /// this many records, each sorted before it is replayed. Smaller windows replay faster
    /// (the reader hands records on sooner, and they are still in the CPU cache when
    /// detected) but fix less disorder; 1 replays each file in its own order.
    #[arg(long, default_value_t = picket::source::replay::REORDER_WINDOW, value_parser = clap::value_parser!(u32).range(1..))]
    reorder_window: u32,
    /// Events per state transaction: detector state is written once per this many events
    /// (several batches), so a larger value writes less; findings are emitted after their
    /// transaction.
    #[arg(long, default_value_t = picket::pipeline::REPLAY_COMMIT_EVENTS)]
    commit_every: usize,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD); for `s3://` inputs, also
    /// the first day listed (default there: 24 hours before --until).
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only events at or before this time (RFC 3339 or YYYY-MM-DD, the end of that day);
    /// for `s3://` inputs, also the last day listed (default: now).
    #[arg(long, value_parser = parse_until)]
    until: Option<DateTime<Utc>>,
    /// Files, folders (recursive) of .json, .jsonl, .ndjson, .gz; or `s3://bucket/prefix` of a
    /// CloudTrail trail bucket (feature aws), listed by its date layout for the days of
    /// --since..--until only.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// RFC 3339, or a date (its first instant).
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!("`{s}` is neither RFC 3339 (2026-11-28T09:00:00Z) nor a date (2026-11-28)")
        })
}

/// Like [`parse_time`], but a date means its last instant.
fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    let t = parse_time(s)?;
    if DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(t);
    }
    Ok(t + chrono::Duration::days(1) - chrono::Duration::nanoseconds(1))
}

/// A folder removed when dropped (downloaded S3 objects of a replay).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Downloads the CloudTrail objects of the `s3://` inputs for the days of the range into a
/// temporary folder; the merge then reads them like local files.
#[cfg(feature = "aws")]
async fn fetch_s3_inputs(
    config: &Config,
    urls: &[String],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<TempDir> {
    use picket::source::aws_s3;
    let dir = TempDir(std::env::temp_dir().join(format!(
        "picket-replay-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )));
    std::fs::create_dir_all(&dir.0).with_context(|| format!("creating {}", dir.0.display()))?;
    let clients = app::clients(config).await?;
    let sdk = clients
        .aws
        .as_ref()
        .context("s3:// inputs need the [aws] client settings")?;
    let s3 = picket::cloud::aws::s3_client(sdk);
    for (n, url) in urls.iter().enumerate() {
        let (bucket, prefix) = aws_s3::parse_s3_url(url)
            .with_context(|| format!("`{url}` is not s3://bucket/prefix"))?;
        let objects = aws_s3::list_trail(&s3, &bucket, &prefix, since, until).await?;
        eprintln!(
            "{}: {} object(s) from {} to {}",
            alert::escape::terminal(url),
            objects.len(),
            since.to_rfc3339(),
            until.to_rfc3339()
        );
        let sub = dir.0.join(n.to_string());
        std::fs::create_dir_all(&sub)?;
        aws_s3::download(&s3, &objects, &sub, 8).await?;
    }
    Ok(dir)
}

#[cfg(not(feature = "aws"))]
async fn fetch_s3_inputs(
    _: &Config,
    _: &[String],
    _: DateTime<Utc>,
    _: DateTime<Utc>,
) -> Result<TempDir> {
    bail!("s3:// inputs need the `aws` feature")
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    RecordKind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = RecordKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{s}`; one of: {}", all.join(", "))
    })
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Replay(args) => replay_cmd(args).await,
            Command::Validate { config } => validate_cmd(&config),
            Command::Demo { format } => demo_cmd(format).await,
            Command::Rules(cmd) => rules_cmd(cmd),
            Command::Respond { command } => respond_cmd(command).await,
            Command::Run(args) => run_cmd(args).await,
            Command::Status(args) => status_cmd(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PICKET_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn print_config_errors(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("{}", alert::escape::terminal(&e.to_string()));
    }
    eprintln!("{} problem(s)", errors.len());
}

fn validate_cmd(path: &Path) -> Result<ExitCode> {
    match Config::load(path) {
        Ok(c) => {
            outln!(
                "{}: ok ({} sources, {} notifiers, {} playbooks, respond mode {:?})",
                path.display(),
                c.raw.sources.len(),
                c.raw.notify.len(),
                c.raw.respond.playbook.len(),
                c.raw.respond.mode
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_config_errors(&errors);
            Ok(ExitCode::from(1))
        }
    }
}

fn rule_dirs(dirs: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if !dirs.is_empty() {
        return Ok(dirs);
    }
    let default = PathBuf::from("detections");
    if default.is_dir() {
        Ok(vec![default])
    } else {
        bail!("no rule folder given and ./detections does not exist")
    }
}

fn rules_cmd(cmd: RulesCmd) -> Result<ExitCode> {
    use picket::detect::pack;
    use picket::detect::sigma::author;
    let term = alert::escape::terminal;
    match cmd {
        RulesCmd::Test { dirs } => {
            let (set, rejected) = pack::load_dirs(&rule_dirs(dirs)?);
            for r in &rejected {
                outln!(
                    "REJECTED {}: {}",
                    term(&r.path.display().to_string()),
                    term(&r.reason)
                );
            }
            let results = author::test_cases(&set);
            let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
            for r in &failed {
                outln!("{}", term(&r.to_string()));
            }
            outln!(
                "{} passed, {} failed",
                results.len() - failed.len(),
                failed.len() + rejected.len()
            );
            Ok(if failed.is_empty() && rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        RulesCmd::List { dirs } => {
            let (set, rejected) = pack::load_dirs(&rule_dirs(dirs)?);
            for r in author::list(&set) {
                outln!("{}", term(&r.to_string()));
            }
            if !rejected.is_empty() {
                eprintln!(
                    "{} rule(s) not loaded; see `picket rules lint`",
                    rejected.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCmd::Lint { dirs } => {
            let (set, rejected) = pack::load_dirs(&rule_dirs(dirs)?);
            let report = author::lint_set(&set, rejected);
            out(&term_lines(&report.to_string()));
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Escapes each line for the terminal, keeping the line breaks.
fn term_lines(text: &str) -> String {
    text.lines()
        .map(|l| alert::escape::terminal(l) + "\n")
        .collect()
}

fn load_config(path: Option<&Path>) -> Result<Option<Config>> {
    let loaded = match path {
        Some(p) => Config::load(p),
        None => {
            let cwd = std::env::current_dir().context("current folder")?;
            Config::embedded(&cwd)
        }
    };
    match loaded {
        Ok(c) => Ok(Some(c)),
        Err(errors) => {
            print_config_errors(&errors);
            Ok(None)
        }
    }
}

fn output(format: OutFormat, path: Option<&Path>) -> Result<Box<dyn Notifier>> {
    Ok(match (format, path) {
        (OutFormat::Table, None) => Box::new(alert::stdout::Stdout::new(Format::Table)),
        (OutFormat::Ocsf, None) => Box::new(alert::stdout::Stdout::new(Format::Ocsf)),
        (_, Some(p)) => Box::new(
            alert::jsonl::Jsonl::open(p).with_context(|| format!("output {}", p.display()))?,
        ),
    })
}

/// Totals over a replay, for `--stats`.
#[derive(Default)]
struct Totals {
    records: usize,
    events: usize,
    rejected: usize,
    findings: usize,
    duplicates: usize,
    by_kind: std::collections::BTreeMap<RecordKind, usize>,
    by_severity: std::collections::BTreeMap<Severity, usize>,
}

impl Totals {
    fn add(&mut self, r: &BatchReport) {
        self.records += r.records;
        self.events += r.events;
        self.rejected += r.rejected.len();
        self.findings += r.findings.len();
        self.duplicates += r.duplicate_findings;
        for (k, n) in &r.by_kind {
            *self.by_kind.entry(*k).or_default() += n;
        }
        for f in &r.findings {
            *self.by_severity.entry(f.severity).or_default() += 1;
        }
    }
}

const MAX_REPORTED_REJECTS: usize = 20;

async fn replay_cmd(args: ReplayArgs) -> Result<ExitCode> {
    let Some(config) = load_config(args.config.as_deref())? else {
        return Ok(ExitCode::from(1));
    };
    let started = Instant::now();
    let state = app::replay_state(args.state.as_deref())?;
    let router = Router::new(vec![(
        Severity::Informational,
        output(args.format, args.output.as_deref())?,
    )]);
    let mut pipeline = app::pipeline(
        &config,
        &args.rules,
        state,
        router,
        Arc::new(Clock::event_time()),
    )?;

    let (s3_urls, mut paths): (Vec<PathBuf>, Vec<PathBuf>) = args
        .paths
        .iter()
        .cloned()
        .partition(|p| p.to_str().is_some_and(|s| s.starts_with("s3://")));
    let _downloaded = if s3_urls.is_empty() {
        None
    } else {
        let until = args.until.unwrap_or_else(Utc::now);
        let since = args.since.unwrap_or(until - chrono::Duration::hours(24));
        let urls: Vec<String> = s3_urls.iter().map(|p| p.display().to_string()).collect();
        let dir = fetch_s3_inputs(&config, &urls, since, until).await?;
        paths.push(dir.0.clone());
        Some(dir)
    };
    let mut out_of_range = 0usize;

    let limits = Limits::default();
    let (spans, index_errors) = replay::index(&paths, args.kind, limits);
    let total: u64 = spans.iter().map(|s| s.records).sum();
    let mut decode_errors = 0usize;
    for e in &index_errors {
        decode_errors += 1;
        eprintln!("error: {}", alert::escape::terminal(&e.to_string()));
    }
    if spans.is_empty() && !index_errors.is_empty() {
        bail!("no readable input");
    }
    let merge = replay::Merge::new(spans, args.kind, limits, args.reorder_window as usize);
    let progress = std::io::stderr().is_terminal() && (total > 50_000 || total == 0);
    let mut totals = Totals::default();
    // Reading and parsing run on a thread of their own, a couple of batches ahead of the
    // pipeline: on two cores a replay takes little more than the longer of the two.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(2);
    let range = TimeRange {
        since: args.since,
        until: args.until,
        kind: args.kind,
    };
    let batch_size = args.batch.max(1);
    let reader = std::thread::Builder::new()
        .name("replay-reader".into())
        .spawn(move || read_ahead(merge, range, batch_size, &tx))
        .context("starting the reader thread")?;
    let reported = Cell::new(0usize);
    let mut read = 0u64;
    // The next batch of records from the reader (its decode errors reported); `None` at the
    // end. A blocking receive: the detection it feeds runs inside a state transaction, which
    // is synchronous, and the reader is a thread of its own.
    let mut next_batch = || -> Option<Vec<RawRecord>> {
        loop {
            let chunk = rx.recv().ok()?;
            out_of_range += chunk.out_of_range;
            for e in &chunk.errors {
                decode_errors += 1;
                if reported.get() < MAX_REPORTED_REJECTS {
                    eprintln!("rejected: {}", alert::escape::terminal(&e.to_string()));
                    reported.set(reported.get() + 1);
                }
            }
            if chunk.records.is_empty() {
                continue;
            }
            read += chunk.records.len() as u64;
            if progress {
                eprint!(
                    "\r{}",
                    progress_bar(read, total, started.elapsed().as_secs_f64())
                );
            }
            return Some(chunk.records);
        }
    };
    while let Some(report) = pipeline
        .process_stream(&mut next_batch, args.commit_every)
        .await?
    {
        for r in &report.rejected {
            if reported.get() < MAX_REPORTED_REJECTS {
                eprintln!(
                    "rejected: {}: {}",
                    alert::escape::terminal(&r.origin.to_string()),
                    r.error
                );
                reported.set(reported.get() + 1);
            }
        }
        totals.add(&report);
    }
    if progress {
        eprintln!();
    }
    // The channel is closed: the reader has finished (or panicked, which is a bug).
    let peak_open_files = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    let reported = reported.get();
    let rejected = totals.rejected + decode_errors;
    if reported < rejected {
        eprintln!(
            "... {} more rejected record(s) not shown",
            rejected - reported
        );
    }
    if args.stats {
        let secs = started.elapsed().as_secs_f64();
        eprintln!("records:    {}", totals.records);
        if out_of_range > 0 {
            eprintln!("  outside --since/--until: {out_of_range} (not processed)");
        }
        eprintln!("events:     {}", totals.events);
        for (k, n) in &totals.by_kind {
            eprintln!("  {:<22} {n}", k.as_str());
        }
        eprintln!(
            "rejected:   {rejected} ({decode_errors} undecodable, {} unnormalizable)",
            totals.rejected
        );
        eprintln!(
            "findings:   {} new, {} duplicate",
            totals.findings, totals.duplicates
        );
        for (s, n) in &totals.by_severity {
            eprintln!("  {:<22} {n}", s.as_str());
        }
        eprintln!("elapsed:    {secs:.3} s");
        eprintln!("events/s:   {:.0}", totals.events as f64 / secs.max(1e-9));
        if let Some(cpu) = cpu_seconds() {
            eprintln!(
                "cpu:        {cpu:.3} s, {:.0} events per cpu-second",
                totals.events as f64 / cpu.max(1e-9)
            );
        }
        eprintln!("open files: {peak_open_files} at most");
        if let Some(kb) = peak_rss_kb() {
            eprintln!("peak rss:   {:.1} MiB", kb as f64 / 1024.0);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of progress: bar, percentage, counts and rate. Hand-written: one line does not
/// justify a terminal-UI dependency.
fn progress_bar(done: u64, total: u64, secs: f64) -> String {
    const WIDTH: usize = 30;
    let rate = done as f64 / secs.max(1e-9);
    if total == 0 {
        // A single input file is not indexed: its size in records is unknown.
        return format!("{done} records, {rate:.0} records/s ");
    }
    let frac = (done as f64 / total as f64).min(1.0);
    let filled = (frac * WIDTH as f64) as usize;
    format!(
        "[{}{}] {:>3.0}% {done}/{total} records, {rate:.0} records/s ",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        frac * 100.0,
    )
}

/// What `--since`, `--until` and `--kind` keep of the input.
#[derive(Clone, Copy)]
struct TimeRange {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    kind: Option<RecordKind>,
}

impl TimeRange {
    /// Records without a readable time are kept (the pipeline rejects them with a reason).
    fn keeps(&self, r: &RawRecord) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let kind = r
            .kind
            .or(self.kind)
            .or_else(|| picket::normalize::detect_kind_in(r.value.fields()));
        match kind.and_then(|k| picket::source::decode::record_time(k, r.value.fields())) {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u),
            None => true,
        }
    }
}

/// A batch read ahead for the pipeline, with what was dropped on the way.
#[derive(Default)]
struct Chunk {
    records: Vec<RawRecord>,
    errors: Vec<picket::source::decode::DecodeError>,
    out_of_range: usize,
}

/// The reader thread of `replay`: fills chunks of `batch` records from the merge until the
/// input ends or the pipeline is gone; returns the most files open at once.
fn read_ahead(
    mut merge: replay::Merge,
    range: TimeRange,
    batch: usize,
    tx: &std::sync::mpsc::SyncSender<Chunk>,
) -> usize {
    let mut done = false;
    while !done {
        let mut chunk = Chunk {
            records: Vec::with_capacity(batch),
            ..Chunk::default()
        };
        while chunk.records.len() < batch {
            match merge.next() {
                Some(Ok(r)) if !range.keeps(&r) => chunk.out_of_range += 1,
                Some(Ok(r)) => chunk.records.push(r),
                Some(Err(e)) => chunk.errors.push(e),
                None => {
                    done = true;
                    break;
                }
            }
        }
        if tx.send(chunk).is_err() {
            break;
        }
    }
    merge.peak_open_files()
}

/// CPU time this process has run, user and system, every thread counted (the reader thread
/// too, also once it has ended): throughput per core that does not depend on what else the
/// machine is doing.
fn cpu_seconds() -> Option<f64> {
    // SAFETY: `getrusage` fills the zeroed struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then_some(usage)
    }?;
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn demo_cmd(format: OutFormat) -> Result<ExitCode> {
    let text = demo::run(match format {
        OutFormat::Table => Format::Table,
        OutFormat::Ocsf => Format::Ocsf,
    })
    .await?;
    out(&text);
    Ok(ExitCode::SUCCESS)
}

/// The state store of `run`, `status` and `respond`: `--state FILE`, else the config's `[state]`
/// (DynamoDB state needs the AWS client settings; the other backends need no cloud).
async fn run_state(
    config: &Config,
    path: Option<&Path>,
) -> Result<Arc<dyn picket::state::StateStore>> {
    if let Some(p) = path {
        return Ok(app::replay_state(Some(p))?);
    }
    let clients = match config.raw.state {
        picket::state::StateConfig::Dynamodb { .. } => app::clients(config).await?,
        _ => picket::cloud::Clients::default(),
    };
    app::state(config, &clients).context("the [state] store of the configuration")
}

/// Turns true on the first SIGINT or SIGTERM; a second one exits at once. The signals are
/// watched from a thread of their own, so the flag is set even while a batch keeps the main
/// thread busy.
fn shutdown_signal() -> Result<tokio::sync::watch::Receiver<bool>> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("picket-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (mut term, mut int) = match (
                        signal(SignalKind::terminate()),
                        signal(SignalKind::interrupt()),
                    ) {
                        (Ok(t), Ok(i)) => (t, i),
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    tracing::info!("shutting down after the current batch");
                    let _ = tx.send(true);
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    std::process::exit(130);
                }
                #[cfg(not(unix))]
                {
                    let _ = ready_tx.send(Ok(()));
                    if tokio::signal::ctrl_c().await.is_ok() {
                        let _ = tx.send(true);
                    }
                }
            });
        })
        .context("starting the signal thread")?;
    ready_rx
        .recv()
        .context("the signal thread ended")?
        .context("installing signal handlers")?;
    Ok(rx)
}

async fn run_cmd(args: RunArgs) -> Result<ExitCode> {
    let shutdown = shutdown_signal()?;
    let Some(config) = load_config(args.config.as_deref())? else {
        return Ok(ExitCode::from(1));
    };
    if config.raw.sources.is_empty() {
        bail!("{}: no [[sources]] to poll", config.file.display());
    }
    let state = run_state(&config, args.state.as_deref()).await?;
    let clients = app::clients(&config).await?;
    let router = app::router(&config, &clients, &state)?;
    let responder = app::responder(&config, &clients, state.clone(), args.dry_run)?;
    let pipeline = app::pipeline(&config, &[], state.clone(), router, Arc::new(Clock::System))?
        .with_responder(responder);
    let sources = app::sources(&config, &clients, &state)?;
    let mut runner = picket::run::Runner::new(pipeline, sources, shutdown)?;
    let summary = runner
        .run(picket::run::RunOptions { once: args.once })
        .await?;
    tracing::info!(
        batches = summary.batches,
        records = summary.records,
        findings = summary.findings,
        interrupted = summary.interrupted,
        "run ended"
    );
    if !summary.failed_sources.is_empty() {
        for s in &summary.failed_sources {
            eprintln!("source failed: {}", alert::escape::terminal(s));
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration in seconds as `3d4h`, `5h12m`, `42s`.
fn human_secs(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{sign}{d}d{h}h")
    } else if h > 0 {
        format!("{sign}{h}h{m}m")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

async fn status_cmd(args: LedgerArgs) -> Result<ExitCode> {
    let Some(config) = load_config(args.config.as_deref())? else {
        return Ok(ExitCode::from(2));
    };
    let state = run_state(&config, args.state.as_deref()).await?;
    let now = chrono::Utc::now();
    let statuses = picket::run::statuses(state.as_ref())?;
    if statuses.is_empty() {
        outln!("no source has run yet (state: {})", state.name());
        return Ok(ExitCode::SUCCESS);
    }
    let stamp = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "-".into())
    };
    outln!(
        "{:<40} {:<9} {:>8} {:<20} {:>10} {:>9} {:>7} {:<20}",
        "SOURCE",
        "HEALTH",
        "LAG",
        "NEWEST EVENT",
        "EVENTS",
        "EVENTS/S",
        "ERRORS",
        "LAST POLL"
    );
    for s in statuses {
        let health = if s.unhealthy {
            "UNHEALTHY"
        } else if s.consecutive_failures > 0 {
            "failing"
        } else {
            "ok"
        };
        outln!(
            "{:<40} {:<9} {:>8} {:<20} {:>10} {:>9.1} {:>7} {:<20}",
            alert::escape::terminal(&s.source),
            health,
            s.lag_at(now).map(human_secs).unwrap_or_else(|| "-".into()),
            stamp(s.newest_event),
            s.events_total,
            s.events_per_sec,
            s.errors_total,
            stamp(s.last_poll)
        );
        if let Some(e) = s
            .last_error
            .as_deref()
            .filter(|_| s.consecutive_failures > 0)
        {
            outln!("  last error: {}", alert::escape::terminal(e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn respond_cmd(command: RespondCommand) -> Result<ExitCode> {
    let args = match &command {
        RespondCommand::List(a)
        | RespondCommand::Reset(a)
        | RespondCommand::Undo { args: a, .. } => a,
    };
    let Some(config) = load_config(args.config.as_deref())? else {
        return Ok(ExitCode::from(2));
    };
    // The ledger lives in the state store `picket run` uses: `--state`, else `[state]`.
    let state = run_state(&config, args.state.as_deref()).await?;
    let now = chrono::Utc::now();
    let ledger = picket::respond::Ledger::new(state.clone());
    use picket::respond::Status;
    match command {
        RespondCommand::List(_) => {
            if let Some(why) = ledger.latch(now)? {
                println!("LATCHED (alert-only): {}", alert::escape::terminal(&why));
            }
            for e in ledger.list(10_000, now)? {
                println!(
                    "{}  {}  {:<10} {:<32} {}  finding {}",
                    e.id,
                    e.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    e.status.as_str(),
                    e.action,
                    alert::escape::terminal(&e.target.label()),
                    e.finding
                );
            }
        }
        RespondCommand::Reset(_) => {
            if ledger.reset(now)? {
                println!("blast-radius latch reset: picket may act again");
            } else {
                println!("the latch was not closed");
            }
        }
        RespondCommand::Undo { id, .. } => {
            // Check the entry before building cloud clients: a wrong id needs no cloud.
            match ledger.get(&id, now)? {
                None => bail!("no ledger entry {id}"),
                Some((e, _))
                    if !matches!(
                        e.status,
                        Status::Applied | Status::Verified | Status::Unverified
                    ) =>
                {
                    bail!(
                        "ledger entry {id} is {}, nothing to undo",
                        e.status.as_str()
                    )
                }
                Some(_) => {}
            }
            let clients = app::clients(&config).await?;
            let responder = app::responder(&config, &clients, state, false)?;
            let e = responder.undo(&id).await?;
            println!(
                "undone: {} on {}",
                e.action,
                alert::escape::terminal(&e.target.label())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU time of the calling thread, from the kernel's per-thread accounting.
    fn thread_cpu_seconds() -> f64 {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        text.split_whitespace()
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1e9
    }

    #[test]
    fn cpu_time_counts_threads_that_have_ended() {
        let before = cpu_seconds().unwrap();
        let worker = std::thread::spawn(|| {
            let mut x = 0u64;
            for i in 0..50_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            std::hint::black_box(x);
            thread_cpu_seconds()
        });
        let worked = worker.join().unwrap();
        assert!(worked > 0.0);
        // The ended thread's time is in the process's; rusage's microseconds round down.
        assert!(
            cpu_seconds().unwrap() - before >= worked - 0.01,
            "process {} s, thread {worked} s",
            cpu_seconds().unwrap() - before
        );
    }
}
