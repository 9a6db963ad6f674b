//! `cargo bench`: what the probes, writes and the supervisor cost, as ratios
//! against a baseline measured in the same run.
//!
//! ```text
//! cargo bench --bench bench -- [--runs N] [--quiet-only] [--only SECTION]...
//! ```
//!
//! Sections: `probe`, `write`, `scale`, `supervisor`, `reaction`.
//! Every section runs twice, on the quiet machine and with one busy process
//! per CPU, unless `--quiet-only`. Commands are interleaved: each round runs
//! every command once, in a fresh random order (so no command always
//! follows the same one and inherits its warm caches), and each figure is
//! the median with its
//! 10th–90th percentile spread; a ratio is the median of the per-round ratios
//! against the baseline of the same round. Each figure that has a target is
//! printed against it (`met` or `MISSED`). The probe's floor is a static C
//! program that does nothing, which the bench compiles with `cc -O2
//! -static` when a C compiler is present (and says so when not). Nothing is
//! written into the repository.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark reports failure by panicking

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use liveness::{Health, Mode, Probe, Unit};

fn main() {
    if let Some(role) = std::env::args()
        .nth(1)
        .filter(|a| a.starts_with("--child-"))
    {
        child(&role);
    }
    let opts = Opts::parse();
    let loads: &[bool] = if opts.quiet_only {
        &[false]
    } else {
        &[false, true]
    };
    println!(
        "liveness benchmarks: {} CPUs, {} runs per figure",
        cpus(),
        opts.runs
    );
    let noop = StaticNoop::build();
    for &loaded in loads {
        let _load = loaded.then(Load::start);
        let machine = if loaded {
            "loaded machine (one busy process per CPU)"
        } else {
            "quiet machine"
        };
        if opts.wants("probe") {
            probe_cost(&opts, machine, &noop);
        }
        if opts.wants("write") {
            write_cost(&opts, machine);
        }
        if opts.wants("scale") {
            scale(&opts, machine);
        }
        if opts.wants("supervisor") {
            supervisor_cost(&opts, machine);
        }
        if opts.wants("reaction") {
            reactions(&opts, machine);
        }
    }
}

struct Opts {
    runs: usize,
    quiet_only: bool,
    only: Vec<String>,
}

impl Opts {
    fn parse() -> Opts {
        let mut o = Opts {
            runs: 200,
            quiet_only: false,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--runs" => o.runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
                "--quiet-only" => o.quiet_only = true,
                "--only" => o.only.push(args.next().expect("--only SECTION")),
                // cargo bench passes --bench; ignore what we do not know.
                _ => {}
            }
        }
        assert!(o.runs >= 20, "at least 20 runs per figure");
        o
    }

    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One busy-spinning process per CPU, for as long as it lives: other work on
/// the node. Processes, not threads of the bench: spinning threads in the
/// process that spawns and waits for the commands would slow the
/// measurement itself, not the commands measured.
struct Load {
    spinners: Vec<std::process::Child>,
}

impl Load {
    fn start() -> Load {
        let spinners = (0..cpus())
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .arg("--child-spin")
                    .stdin(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Load { spinners }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for s in &mut self.spinners {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

/// What one run of a command cost.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    maxrss_kib: u64,
}

/// Runs `argv` once, as the kubelet's runtime would: fork, exec, wait.
fn run_once(argv: &[String], env: &[(&str, &OsStr)]) -> Sample {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only through the two valid pointers given; the
    // child is ours and not waited for by anyone else (`child` is dropped
    // without waiting).
    let r = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4");
    drop(child);
    let tv = |t: nix::libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss as u64,
    }
}

/// `int main(void){return 0;}` built with `cc -O2 -static`: the cheapest
/// program the kubelet could run, the probe's floor.
struct StaticNoop {
    _dir: Option<tempfile::TempDir>,
    path: Option<PathBuf>,
}

impl StaticNoop {
    fn build() -> StaticNoop {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("noop.c");
        let bin = dir.path().join("noop");
        std::fs::write(&src, "int main(void){return 0;}\n").unwrap();
        let built = Command::new("cc")
            .args(["-O2", "-static", "-o"])
            .arg(&bin)
            .arg(&src)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if built {
            println!("static C no-op: built with cc -O2 -static");
            StaticNoop {
                _dir: Some(dir),
                path: Some(bin),
            }
        } else {
            println!(
                "static C no-op: NOT built (no C compiler, or no static libc: cc -O2 -static \
                 failed); the probe is compared with /bin/true only"
            );
            StaticNoop {
                _dir: None,
                path: None,
            }
        }
    }
}

/// Prints one figure against its target: `met` when `value <= target`.
fn against(what: &str, value: f64, target: f64, unit: &str) {
    let verdict = if value <= target { "met" } else { "MISSED" };
    let show = |v: f64| {
        if unit == "x" {
            format!("{v:.2}x")
        } else {
            format!("{v:.1} {unit}")
        }
    };
    println!(
        "  {what}: {} (target <= {}): {verdict}",
        show(value),
        show(target)
    );
}

/// Median and the 10th/90th percentiles of `xs`.
fn spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

/// A command to compare, with its display name.
struct Cmd {
    name: String,
    argv: Vec<String>,
}

fn cmd(name: &str, argv: &[&str]) -> Cmd {
    Cmd {
        name: name.to_owned(),
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Wall times of interleaved runs: `walls[command][round]`, seconds.
struct Walls(Vec<Vec<f64>>);

impl Walls {
    /// Median of the per-round ratios of command `i` to command `base`.
    fn ratio(&self, i: usize, base: usize) -> f64 {
        let per_round = self.0[i].iter().zip(&self.0[base]).map(|(a, b)| a / b);
        spread(per_round.collect()).0
    }

    /// Median wall time of command `i`, in milliseconds.
    fn median_ms(&self, i: usize) -> f64 {
        spread(self.0[i].clone()).0 * 1e3
    }
}

/// Runs `cmds` interleaved, `runs` rounds, and prints one table; the first
/// command is the baseline of its ratio column. Returns every wall time.
fn compare(title: &str, cmds: &[Cmd], env: &[(&str, &OsStr)], runs: usize) -> Walls {
    // A command that fails is not the cost being measured.
    for c in cmds {
        let st = Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{} must succeed before it is timed", c.name);
    }
    for c in cmds {
        for _ in 0..5 {
            run_once(&c.argv, env); // warm the page cache
        }
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::with_capacity(runs); cmds.len()];
    // Each round runs every command once, in a fresh random order: a
    // command that always ran right after another one (a rotation) would
    // inherit its warm caches — the same binary run twice in a row is
    // measurably faster — and the ratios would depend on the table's order.
    let mut order: Vec<usize> = (0..cmds.len()).collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..runs {
        for k in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(k, (seed % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            samples[i].push(run_once(&cmds[i].argv, env));
        }
    }
    println!("\n{title}");
    println!(
        "  {:<34} {:>22} {:>16} {:>10} {:>9} {:>6}",
        "command", "wall: median (p10-p90)", "ratio (p10-p90)", "cpu", "peak RSS", "procs"
    );
    let base = &samples[0];
    let mut uncounted = false;
    for (c, s) in cmds.iter().zip(&samples) {
        let (wall, w10, w90) = spread(s.iter().map(|x| x.wall.as_secs_f64() * 1e6).collect());
        let per_round: Vec<f64> = s
            .iter()
            .zip(base)
            .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64())
            .collect();
        let (ratio, r10, r90) = spread(per_round);
        let (cpu, _, _) = spread(s.iter().map(|x| x.cpu.as_secs_f64() * 1e6).collect());
        let (rss, _, _) = spread(s.iter().map(|x| x.maxrss_kib as f64).collect());
        let procs = processes(&c.argv, env);
        uncounted |= procs.is_none();
        println!(
            "  {:<34} {:>7.0} µs ({:>4.0}-{:<4.0}) {:>5.2}x ({:.2}-{:.2}) {:>7.0} µs {:>6.0} KiB {:>6}",
            c.name,
            wall,
            w10,
            w90,
            ratio,
            r10,
            r90,
            cpu,
            rss,
            procs.map_or("?".into(), |n| n.to_string()),
        );
    }
    if uncounted {
        // Say why, as the supervisor section does for a missing tini.
        match which("strace") {
            None => println!(
                "  (procs ?: strace is not installed; it counts the processes each command \
                 creates: apt-get install strace)"
            ),
            Some(_) => println!(
                "  (procs ?: strace could not trace the command here; ptrace may be forbidden)"
            ),
        }
    }
    Walls(
        samples
            .iter()
            .map(|s| s.iter().map(|x| x.wall.as_secs_f64()).collect())
            .collect(),
    )
}

/// How many processes `argv` creates, itself included, counted by `strace
/// -f` (threads are not processes). `None` without strace.
fn processes(argv: &[String], env: &[(&str, &OsStr)]) -> Option<usize> {
    let out = std::env::temp_dir().join(format!("liveness-bench-strace-{}", std::process::id()));
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o"])
        .arg(&out)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.status().ok()?;
    let log = std::fs::read_to_string(&out).ok()?;
    let _ = std::fs::remove_file(&out);
    let forks = log
        .lines()
        .filter(|l| {
            // "<pid> <call>(...": strace pads short pids with spaces.
            let l = l.split_once(' ').map_or(*l, |(_, rest)| rest).trim_start();
            (l.starts_with("clone") || l.starts_with("fork") || l.starts_with("vfork"))
                && !l.contains("CLONE_THREAD")
                && !l.contains("= -1")
        })
        .count();
    Some(1 + forks)
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_liveness"))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/health.sh")
}

/// A scratch directory on a tmpfs, as `/run` is in production: `/dev/shm`
/// when there is one (on this kind of machine `/tmp` is on disk).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let b = tempfile::Builder::new()
        .prefix("liveness-bench-")
        .tempdir_in(shm);
    b.or_else(|_| tempfile::tempdir()).unwrap()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// A unit owned by a live process (a `sleep`), healthy, ready, beating.
struct Fixture {
    dir: tempfile::TempDir,
    owner: std::process::Child,
}

impl Fixture {
    fn new(units: usize) -> Fixture {
        let dir = scratch();
        let owner = Command::new("sleep").arg("100000").spawn().unwrap();
        let pid = owner.id().to_string();
        for i in 0..units {
            let unit = format!("unit-{i}");
            for args in [
                &["load", "--pid", &pid, "--heartbeat", "3600"][..],
                &["set", "0"],
                &["ready"],
            ] {
                let st = Command::new(bin())
                    .args(args)
                    .env("LIVENESS_RUNDIR", dir.path())
                    .env("LIVENESS_UNIT_NAME", &unit)
                    .status()
                    .unwrap();
                assert!(st.success(), "{args:?}");
            }
        }
        Fixture { dir, owner }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.owner.kill();
        let _ = self.owner.wait();
    }
}

fn probe_cost(opts: &Opts, machine: &str, noop: &StaticNoop) {
    let f = Fixture::new(1);
    // The original module's probe reads its own variables.
    let env: [(&str, &OsStr); 4] = [
        ("LIVENESS_RUNDIR", f.dir.path().as_os_str()),
        ("LIVENESS_UNIT_NAME", OsStr::new("unit-0")),
        ("CIC_RUNDIR", f.dir.path().as_os_str()),
        ("CIC_UNIT", OsStr::new("unit-0")),
    ];
    let bin = bin();
    let bin = bin.to_str().unwrap();
    let script = script();
    let script = script.to_str().unwrap();
    // Baselines for health.sh: what dash costs doing nothing, and the probe
    // it replaces (the original module's health.sh, under bash).
    let empty = f.dir.path().join("empty.sh");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/original-health.sh");
    let original = original.to_str().unwrap();
    let mut cmds = Vec::new();
    if let Some(p) = &noop.path {
        cmds.push(cmd("static C no-op (cc -static)", &[p.to_str().unwrap()]));
    }
    let truth = cmds.len();
    cmds.extend([
        cmd("/bin/true", &["/bin/true"]),
        cmd("liveness probe", &[bin, "probe"]),
        cmd("liveness probe --ready", &[bin, "probe", "--ready"]),
        cmd("dash health.sh --ready", &["dash", script, "--ready"]),
        cmd("dash health.sh (live)", &["dash", script]),
        cmd("dash, empty script", &["dash", empty]),
        cmd("bash original-health.sh", &["bash", original]),
        cmd("bash health.sh --ready", &["bash", script, "--ready"]),
    ]);
    if have("busybox") {
        cmds.push(cmd(
            "busybox sh health.sh --ready",
            &["busybox", "sh", script, "--ready"],
        ));
    }
    let walls = compare(
        &format!("Probe cost, {machine}: healthy ready unit"),
        &cmds,
        &env,
        opts.runs,
    );
    let [probe, ready, dash, dash_live, _empty, original] = std::array::from_fn(|k| truth + 1 + k);
    if noop.path.is_some() {
        for (name, i) in [("liveness probe", probe), ("liveness probe --ready", ready)] {
            against(
                &format!("{name} / static C no-op"),
                walls.ratio(i, 0),
                1.05,
                "x",
            );
        }
    } else {
        println!("  (no static C no-op: the probe's target cannot be checked)");
    }
    for (name, i) in [("--ready", dash), ("live", dash_live)] {
        against(
            &format!("dash health.sh {name} / /bin/true"),
            walls.ratio(i, truth),
            1.3,
            "x",
        );
    }
    // "At least 1.3x faster than the original": its cost over ours, per
    // round; printed as ours over the original against 1/1.3.
    for (name, i) in [("--ready", dash), ("live", dash_live)] {
        against(
            &format!("dash health.sh {name} / bash original-health.sh"),
            walls.ratio(i, original),
            1.0 / 1.3,
            "x",
        );
    }
}

/// Write cost, in process: `set()` with a changed value against a bare
/// "write a temporary file + rename" in the same directory; then `set()`
/// and `ready()` with an unchanged value and `beat()` in a hot loop.
fn write_cost(opts: &Opts, machine: &str) {
    let dir = scratch();
    let h = Health::builder()
        .unit("w")
        .rundir(dir.path())
        .heartbeat(Duration::from_secs(30))
        .build()
        .unwrap();
    h.load().unwrap();
    let unit_dir = dir.path().join("w");
    const BATCH: u32 = 200;
    let bare = |n: u32| {
        let tmp = unit_dir.join(".bare.tmp");
        let dst = unit_dir.join("bare");
        for i in 0..n {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).unwrap();
            f.write_all(if i % 2 == 0 { b"0\n" } else { b"1\n" })
                .unwrap();
            drop(f);
            std::fs::rename(&tmp, &dst).unwrap();
        }
    };
    let set = |n: u32| {
        for i in 0..n {
            h.set(i % 2).unwrap();
        }
    };
    bare(BATCH);
    set(BATCH);
    let (mut b, mut s, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..opts.runs {
        let time = |f: &dyn Fn(u32)| {
            let t = Instant::now();
            f(BATCH);
            t.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH)
        };
        let (x, y) = if round % 2 == 0 {
            let x = time(&bare);
            (x, time(&set))
        } else {
            let y = time(&set);
            (time(&bare), y)
        };
        b.push(x);
        s.push(y);
        ratio.push(y / x);
    }
    let (bm, b10, b90) = spread(b);
    let (sm, s10, s90) = spread(s);
    let (rm, r10, r90) = spread(ratio);
    println!("\nWrite cost, {machine}");
    println!(
        "  {:<38} {:>8.0} ns/op ({:.0}-{:.0})",
        "bare write temp + rename", bm, b10, b90
    );
    println!(
        "  {:<38} {:>8.0} ns/op ({:.0}-{:.0})   {:.2}x ({:.2}-{:.2})",
        "set() with a changed value", sm, s10, s90, rm, r10, r90
    );
    against("set() with a changed value / bare write", rm, 1.3, "x");

    h.set(0).unwrap();
    h.ready().unwrap();
    let hot = |n: u32, f: &dyn Fn()| {
        let mut xs = Vec::new();
        for _ in 0..opts.runs {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            xs.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(n));
        }
        spread(xs)
    };
    // An unchanged value is proven on disk by a stat, not assumed: `set(0)`
    // stats `error` (with error 0 proven, no reader shows a message);
    // `set_with_message(3, ..)` stats `error` and `message`. The baselines
    // are bare `fstatat`s of a file that is there and of one that is not:
    // what those system calls cost on this machine.
    let dir_fd = std::fs::File::open(&unit_dir).unwrap();
    let bare_stat = |name: &str| {
        let _ = nix::sys::stat::fstatat(&dir_fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
    };
    let (hm, h10, h90) = hot(20_000, &|| bare_stat("error"));
    let (mm, m10, m90) = hot(20_000, &|| bare_stat("message"));
    let (um, u10, u90) = hot(20_000, &|| h.set(0).unwrap());
    h.set_with_message(3, "unchanged").unwrap();
    let (wm, w10, w90) = hot(20_000, &|| h.set_with_message(3, "unchanged").unwrap());
    h.set(0).unwrap();
    let (rm, r10, r90) = hot(20_000, &|| h.ready().unwrap());
    let (bm, b10, b90) = hot(1_000_000, &|| h.beat().unwrap());
    println!(
        "  {:<38} {:>8.1} ns/call ({:.1}-{:.1})",
        "bare fstatat, file there", hm, h10, h90
    );
    println!(
        "  {:<38} {:>8.1} ns/call ({:.1}-{:.1})",
        "bare fstatat, file absent", mm, m10, m90
    );
    println!(
        "  {:<38} {:>8.1} ns/call ({:.1}-{:.1})   {:.2}x hit",
        "set(0) with an unchanged value",
        um,
        u10,
        u90,
        um / hm,
    );
    println!(
        "  {:<38} {:>8.1} ns/call ({:.1}-{:.1})   {:.2}x hit+hit",
        "set_with_message(3, ..) unchanged",
        wm,
        w10,
        w90,
        wm / (2.0 * hm)
    );
    println!(
        "  {:<38} {:>8.1} ns/call ({:.1}-{:.1})   {:.2}x hit",
        "ready() when already ready",
        rm,
        r10,
        r90,
        rm / hm,
    );
    println!(
        "  {:<38} {:>8.1} ns/call ({:.1}-{:.1})",
        "beat() in a hot loop", bm, b10, b90
    );
    against("set(0) with an unchanged value", um, 1000.0, "ns");
    against("ready() when already ready", rm, 1000.0, "ns");
    against("beat() in a hot loop", bm, 50.0, "ns");
}

/// `liveness status` and `liveness probe` over 1,000 units in one run
/// directory, against `/bin/true` and against one unit alone.
fn scale(opts: &Opts, machine: &str) {
    let f = Fixture::new(1000);
    let env: [(&str, &OsStr); 2] = [
        ("LIVENESS_RUNDIR", f.dir.path().as_os_str()),
        ("LIVENESS_UNIT_NAME", OsStr::new("unit-500")),
    ];
    let bin = bin();
    let bin = bin.to_str().unwrap();
    let cmds = [
        cmd("/bin/true", &["/bin/true"]),
        cmd("liveness probe (1 of 1,000 units)", &[bin, "probe"]),
        cmd("liveness status (1,000 units)", &[bin, "status"]),
    ];
    let walls = compare(
        &format!("Scale, {machine}: 1,000 units in one run directory"),
        &cmds,
        &env,
        opts.runs.min(50),
    );
    against(
        "liveness status (1,000 units)",
        walls.median_ms(2),
        50.0,
        "ms",
    );
    let unit = Unit::new("unit-500", f.dir.path()).unwrap();
    let t = Instant::now();
    let n = 1000;
    for _ in 0..n {
        std::hint::black_box(Probe::new(Mode::Ready).check(&unit));
    }
    println!(
        "  in-process Probe::check among 1,000 units: {:.1} µs per check",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

/// A scratch directory on the machine's disk: `/var/tmp` (kept on disk by
/// convention, unlike `/tmp` on some systems), else the system temporary
/// directory. What a Kubernetes `emptyDir` without `medium: Memory` is.
fn disk_scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("liveness-bench-")
        .tempdir_in("/var/tmp")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

/// The file system type of `path`, by `statfs(2)` magic number.
fn fs_type(path: &Path) -> String {
    use nix::sys::statfs::{EXT4_SUPER_MAGIC, TMPFS_MAGIC, statfs};
    match statfs(path) {
        Ok(st) if st.filesystem_type() == TMPFS_MAGIC => "tmpfs".into(),
        Ok(st) if st.filesystem_type() == EXT4_SUPER_MAGIC => "ext2/3/4".into(),
        Ok(st) => format!("file system magic {:#x}", st.filesystem_type().0),
        Err(e) => format!("unknown ({e})"),
    }
}

/// `liveness run -- true` against `true` alone and against `tini -s -- true`
/// (Debian package `tini`; `-s`: a subreaper, as `liveness run` is), with
/// the run directory on a tmpfs (`/dev/shm`) and on the machine's disk.
fn supervisor_cost(opts: &Opts, machine: &str) {
    let tini = which("tini");
    if tini.is_none() {
        println!("\n(tini is not installed: apt-get install tini; no tini column)");
    }
    for (dir, target) in [(scratch(), 1.15), (disk_scratch(), 1.3)] {
        let env: [(&str, &OsStr); 2] = [
            ("LIVENESS_RUNDIR", dir.path().as_os_str()),
            ("LIVENESS_UNIT_NAME", OsStr::new("sup")),
        ];
        let bin = bin();
        let bin = bin.to_str().unwrap();
        let truth = which("true").expect("true");
        let truth = truth.as_str();
        let mut cmds = vec![
            cmd("true", &[truth]),
            cmd("liveness run -- true", &[bin, "run", "--", truth]),
        ];
        if let Some(tini) = &tini {
            cmds.push(cmd("tini -s -- true", &[tini, "-s", "--", truth]));
        }
        let fs = fs_type(dir.path());
        let walls = compare(
            &format!(
                "Supervisor cost, {machine}, run directory {} ({fs})",
                dir.path().display(),
            ),
            &cmds,
            &env,
            opts.runs,
        );
        if tini.is_some() {
            against(
                &format!("liveness run / tini, {fs}"),
                walls.ratio(1, 2),
                target,
                "x",
            );
        } else {
            println!("  (no tini: the supervisor's target cannot be checked)");
        }
    }
}

fn which(program: &str) -> Option<String> {
    // Not `command -v`: for `true` it names the shell builtin.
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .and_then(|p| p.to_str().map(str::to_owned))
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process.
fn mono_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// The bench binary re-executed as a supervised child:
/// `--child-signal` prints `ready`, then the monotonic time at which SIGTERM
/// arrives; `--child-start` prints the monotonic time at which it started.
fn child(role: &str) -> ! {
    use nix::sys::signal::{SigSet, Signal};
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match role {
        "--child-spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "--child-start" => {
            let _ = writeln!(out, "{}", mono_ns());
            std::process::exit(0);
        }
        "--child-signal" => {
            let mut set = SigSet::empty();
            set.add(Signal::SIGTERM);
            set.thread_block().unwrap();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
            let _ = set.wait().unwrap();
            let _ = writeln!(out, "{}", mono_ns());
            let _ = out.flush();
            std::process::exit(0);
        }
        _ => panic!("unknown child role {role}"),
    }
}

/// Runs `liveness run` with `args` around a child of this bench in `role`,
/// with stdout piped.
fn supervised(rundir: &Path, unit: &str, args: &[&str], role: &str) -> std::process::Child {
    Command::new(bin())
        .arg("run")
        .args(["--unit", unit, "--rundir"])
        .arg(rundir)
        .args(args)
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .arg(role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn line(
    child: &mut std::process::Child,
    reader: &mut Option<std::io::BufReader<std::process::ChildStdout>>,
) -> String {
    use std::io::BufRead;
    let r = reader.get_or_insert_with(|| std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s.trim_end().to_owned()
}

/// Reaction times, medians in ms: SIGTERM to `liveness run` → the child has
/// it; a death dependency's tombstone → the child has SIGTERM; a birth
/// dependency becomes ready → the child starts.
fn reactions(opts: &Opts, machine: &str) {
    let runs = opts.runs.min(50);
    let mut term = Vec::new();
    let mut death = Vec::new();
    let mut birth = Vec::new();
    let mut spawn = Vec::new();
    for _ in 0..runs {
        // SIGTERM forwarded.
        let dir = scratch();
        let mut sup = supervised(dir.path(), "t", &[], "--child-signal");
        let mut rd = None;
        assert_eq!(line(&mut sup, &mut rd), "ready");
        let t0 = mono_ns();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sup.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let t1: u64 = line(&mut sup, &mut rd).parse().unwrap();
        sup.wait().unwrap();
        term.push((t1 - t0) as f64 / 1e6);

        // A death dependency's tombstone.
        let mut dep = Command::new(bin())
            .args(["run", "--unit", "dep", "--rundir"])
            .arg(dir.path())
            .args(["--", "sh", "-c", "read line"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut sup = supervised(dir.path(), "w", &["--death-deps", "dep"], "--child-signal");
        let mut rd = None;
        assert_eq!(line(&mut sup, &mut rd), "ready");
        let tomb = dir.path().join("dep/tombstone");
        let t0 = mono_ns();
        drop(dep.stdin.take()); // dep's child reads EOF and exits
        let t1: u64 = line(&mut sup, &mut rd).parse().unwrap();
        sup.wait().unwrap();
        dep.wait().unwrap();
        assert!(tomb.exists());
        death.push((t1 - t0) as f64 / 1e6);

        // A birth dependency becomes ready.
        let h = Health::builder()
            .unit("base")
            .rundir(dir.path())
            .build()
            .unwrap();
        h.load().unwrap();
        h.set(0).unwrap();
        let mut sup = supervised(dir.path(), "b", &["--birth-deps", "base"], "--child-start");
        // Let the supervisor reach its wait (the unit exists once it runs).
        while !dir.path().join("b/lock").exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        let t0 = mono_ns();
        h.ready().unwrap();
        let mut rd = None;
        let t1: u64 = line(&mut sup, &mut rd).parse().unwrap();
        sup.wait().unwrap();
        birth.push((t1 - t0) as f64 / 1e6);

        // The floor under the last figure: starting the same child directly.
        let t0 = mono_ns();
        let mut direct = Command::new(std::env::current_exe().unwrap())
            .arg("--child-start")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut rd = None;
        let t1: u64 = line(&mut direct, &mut rd).parse().unwrap();
        direct.wait().unwrap();
        spawn.push((t1 - t0) as f64 / 1e6);
    }
    println!("\nReaction times, {machine}: median ms (p10-p90) over {runs} runs");
    let mut medians = Vec::new();
    for (name, xs) in [
        ("SIGTERM to liveness run -> child has it", term),
        ("death dep exits -> child has SIGTERM", death),
        ("birth dep ready -> child starts", birth),
        ("(floor: the bench starts the same child)", spawn),
    ] {
        let (m, lo, hi) = spread(xs);
        println!("  {name:<44} {m:>7.2} ms ({lo:.2}-{hi:.2})");
        medians.push((name, m));
    }
    for (name, m) in &medians[..3] {
        against(name, *m, 20.0, "ms");
    }
}
