//! HTTP harness shared by `tests/http.rs` and `tests/adversarial/http.rs`:
//! a `liveness serve` child, its peak threads and RSS, kubelet-shaped
//! probes with a patience, and hostile clients that keep attacking until
//! stopped. Included with `#[path]`; it uses the crate's `common` module.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{Proc, Rundir, bin};

/// A running `liveness serve` and the address it printed.
pub struct Served {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Served {
    /// `liveness serve --rundir R ARGS` on `127.0.0.1:0` unless `ARGS` has
    /// `--listen` or `env` sets the port.
    pub fn start(rundir: &Rundir, args: &[&str]) -> Served {
        Served::start_env(rundir, args, &[])
    }

    pub fn start_env(rundir: &Rundir, args: &[&str], env: &[(&str, &str)]) -> Served {
        Served::start_under(rundir, &[], args, env)
    }

    /// As [`Served::start_env`], run by `wrapper` (a program that execs
    /// its arguments, such as `prlimit --nofile=200:200`) when not empty.
    pub fn start_under(
        rundir: &Rundir,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Served {
        let binary = bin();
        let mut all: Vec<&str> = wrapper.iter().skip(1).copied().collect();
        if !wrapper.is_empty() {
            all.push(binary.to_str().unwrap());
        }
        all.extend_from_slice(&["serve", "--rundir", rundir.path().to_str().unwrap()]);
        all.extend_from_slice(args);
        if !args.contains(&"--listen") && env.is_empty() {
            all.extend_from_slice(&["--listen", "127.0.0.1:0"]);
        }
        let program = wrapper.first().map_or(binary.as_os_str(), |w| w.as_ref());
        let mut cmd = rundir.command("default-unit", program, &all);
        cmd.env_remove("LIVENESS_HTTP_PORT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn(&mut cmd);
        let line = proc.next_line();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .parse()
            .unwrap();
        Served { proc, addr }
    }

    pub fn threads(&self) -> usize {
        proc_status(self.proc.pid(), "Threads:")
    }
}

/// Raises this process's open-file limit to its hard limit (hostile
/// clients need one descriptor each, and a server spawned afterwards
/// inherits it); returns the limit.
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// How many descriptors a process has open.
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A number from `/proc/PID/status` (`Threads:`, `VmRSS:` in kB); 0 when
/// unreadable.
pub fn proc_status(pid: i32, key: &str) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// The peak thread count and RSS of a process, sampled every 2 ms on a
/// thread of its own until [`Peak::finish`].
pub struct Peak {
    done: Arc<AtomicBool>,
    sampler: JoinHandle<(usize, usize)>,
}

impl Peak {
    pub fn start(pid: i32) -> Peak {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let sampler = std::thread::spawn(move || {
            let (mut threads, mut rss) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                threads = threads.max(proc_status(pid, "Threads:"));
                rss = rss.max(proc_status(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(2));
            }
            (threads, rss)
        });
        Peak { done, sampler }
    }

    /// (peak threads, peak RSS in kB).
    pub fn finish(self) -> (usize, usize) {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap()
    }
}

/// One probe as the kubelet makes it: connect, `GET PATH`, read the answer
/// to its end, all within `patience`. Returns the status and how long it
/// took, or why there was no answer in time.
pub fn probe_once(
    addr: SocketAddr,
    path: &str,
    patience: Duration,
) -> Result<(u16, Duration), String> {
    let start = Instant::now();
    let deadline = start + patience;
    let mut conn =
        TcpStream::connect_timeout(&addr, patience).map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    conn.set_write_timeout(Some(patience)).unwrap();
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer within {patience:?}"));
        }
        conn.set_read_timeout(Some(left)).unwrap();
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("no answer within {patience:?}"));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    Ok((status, took))
}

/// What a run of probes saw.
#[derive(Debug, Default)]
pub struct Probes {
    pub answered: usize,
    pub slowest: Duration,
    /// Statuses other than 200, and probes not answered in time.
    pub failures: Vec<String>,
}

/// Probes `/health/live` one after the other, 20 ms apart, on a thread
/// of its own until [`Prober::finish`].
pub struct Prober {
    done: Arc<AtomicBool>,
    thread: JoinHandle<Probes>,
}

impl Prober {
    pub fn start(addr: SocketAddr, patience: Duration) -> Prober {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let mut seen = Probes::default();
            loop {
                match probe_once(addr, "/health/live", patience) {
                    Ok((200, took)) => {
                        seen.answered += 1;
                        seen.slowest = seen.slowest.max(took);
                    }
                    Ok((status, took)) => {
                        seen.slowest = seen.slowest.max(took);
                        seen.failures.push(format!("status {status}"));
                    }
                    Err(e) => {
                        seen.slowest = seen.slowest.max(patience);
                        seen.failures.push(e);
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break seen;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Prober { done, thread }
    }

    /// Stops after the probe under way (there is always one at least);
    /// what every probe saw.
    pub fn finish(self) -> Probes {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// What a hostile client does. Most do it over and over: when the server
/// closes on them, they connect again.
#[derive(Debug, Clone, Copy)]
pub enum Hostile {
    /// Connects and sends nothing, ever; never closes, never reads, never
    /// connects again.
    Idle,
    /// Connects and sends nothing; connects again as soon as the server
    /// closes (a flood of idle connections).
    IdleReconnecting,
    /// Sends a request head one byte per period and never finishes it,
    /// whatever the server answers, until a write fails.
    Slowloris(Duration),
    /// Sends garbage (a 400), then one byte per period whatever the server
    /// answers, until a write fails.
    GarbageThenDribble(Duration),
    /// Asks for `/health` with a tiny receive buffer and never reads the
    /// answer: the server's writes meet a full window.
    NeverReads,
    /// Sends a header of 128 KiB (far over 8 KiB) as fast as the server
    /// takes it, then reads the answer.
    Oversized,
    /// Sends this many requests for this path in one write, then reads
    /// the one answer.
    Asks(&'static str, usize),
}

/// What the hostile clients did: connections made, answers they read
/// (status lines, counted by status), and the server closing on them.
#[derive(Debug, Default, Clone)]
pub struct AttackStats {
    pub connects: usize,
    pub connect_errors: usize,
    pub closed_by_server: usize,
    pub answers: std::collections::BTreeMap<u16, usize>,
    /// Answers with more than one status line (pipelining must give one).
    pub extra_answers: usize,
    /// Connections reset by the server (or another read error).
    pub resets: usize,
}

/// `n` hostile clients run by one thread until [`Attack::stop`].
pub struct Attack {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicUsize>,
    stats: Arc<Mutex<AttackStats>>,
    thread: Option<JoinHandle<()>>,
}

struct Client {
    stream: TcpStream,
    /// The server has sent its answer and closed its side.
    eof: bool,
    /// Bytes of the request sent so far (see [`request`]).
    sent: usize,
    answer: Vec<u8>,
}

impl Attack {
    pub fn start(addr: SocketAddr, kind: Hostile, n: usize) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(Mutex::new(AttackStats::default()));
        let thread = {
            let (stop, connected, stats) = (
                Arc::clone(&stop),
                Arc::clone(&connected),
                Arc::clone(&stats),
            );
            std::thread::spawn(move || attack(addr, kind, n, &stop, &connected, &stats))
        };
        Attack {
            stop,
            connected,
            stats,
            thread: Some(thread),
        }
    }

    /// Waits until every client has connected once; false after `patience`.
    pub fn established(&self, n: usize, patience: Duration) -> bool {
        crate::common::wait_until(patience, || self.connected.load(Ordering::Relaxed) >= n)
    }

    pub fn stop(mut self) -> AttackStats {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.stats.lock().unwrap().clone()
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn connect(addr: SocketAddr, kind: Hostile) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, setsockopt, socket};
    let stream = if matches!(kind, Hostile::NeverReads) {
        // The smallest receive buffer, set before connecting so that the
        // window offered is small from the start.
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        setsockopt(&fd, nix::sys::socket::sockopt::RcvBuf, &1)?;
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 only")
        };
        nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(v4))?;
        TcpStream::from(fd)
    } else {
        TcpStream::connect_timeout(&addr, Duration::from_secs(1))?
    };
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// What a client sends: a head, then filler bytes up to a total length.
fn request(kind: Hostile) -> (Vec<u8>, u8, usize) {
    match kind {
        Hostile::Idle | Hostile::IdleReconnecting => (Vec::new(), 0, 0),
        Hostile::Slowloris(_) => (
            b"GET /health/live HTTP/1.1\r\nHost: slow\r\nX-Slow: ".to_vec(),
            b'a',
            1 << 20,
        ),
        Hostile::GarbageThenDribble(_) => (b"garbage garbage\r\n\r\n".to_vec(), b'x', 1 << 20),
        Hostile::NeverReads => {
            let head = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
            let len = head.len();
            (head, 0, len)
        }
        Hostile::Oversized => (
            b"GET /health/live HTTP/1.1\r\nX-Big: ".to_vec(),
            b'a',
            128 << 10,
        ),
        Hostile::Asks(path, count) => {
            let one = format!("GET {path} HTTP/1.1\r\nHost: p\r\n\r\n");
            let all = one.repeat(count).into_bytes();
            let len = all.len();
            (all, 0, len)
        }
    }
}

/// Bytes a client sends at once: everything for most, none for the idle,
/// the garbage line for the dribbler.
fn burst(kind: Hostile) -> usize {
    match kind {
        Hostile::Idle | Hostile::IdleReconnecting => 0,
        Hostile::Slowloris(_) => 1,
        Hostile::GarbageThenDribble(_) => b"garbage garbage\r\n\r\n".len(),
        Hostile::NeverReads | Hostile::Oversized | Hostile::Asks(..) => usize::MAX,
    }
}

fn attack(
    addr: SocketAddr,
    kind: Hostile,
    n: usize,
    stop: &AtomicBool,
    connected: &AtomicUsize,
    stats: &Mutex<AttackStats>,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let period = match kind {
        Hostile::Slowloris(p) | Hostile::GarbageThenDribble(p) => Some(p),
        _ => None,
    };
    let what = request(kind);
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    let mut next_tick = Instant::now() + period.unwrap_or(Duration::from_secs(3600));
    let mut ever = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // Connect the missing, and send what goes at once.
        for slot in &mut clients {
            if slot.is_some() || stop.load(Ordering::Relaxed) {
                continue;
            }
            if ever >= n && matches!(kind, Hostile::NeverReads | Hostile::Idle) {
                continue;
            }
            match connect(addr, kind) {
                Ok(stream) => {
                    ever += 1;
                    connected.store(ever, Ordering::Relaxed);
                    stats.lock().unwrap().connects += 1;
                    let mut c = Client {
                        stream,
                        eof: false,
                        sent: 0,
                        answer: Vec::new(),
                    };
                    if send(&mut c, &what, burst(kind)) {
                        *slot = Some(c);
                    } else {
                        stats.lock().unwrap().closed_by_server += 1;
                    }
                }
                Err(_) => {
                    // A full accept queue: try again next round rather
                    // than spend a second per client.
                    stats.lock().unwrap().connect_errors += 1;
                    break;
                }
            }
        }
        // Wait for the server (answers, closes) or the next period.
        let live: Vec<usize> = (0..n).filter(|i| clients[*i].is_some()).collect();
        let mut fds: Vec<PollFd<'_>> = live
            .iter()
            .map(|i| {
                let c = clients[*i].as_ref().unwrap();
                let mut events = PollFlags::empty();
                if !c.eof && !matches!(kind, Hostile::NeverReads | Hostile::Idle) {
                    events |= PollFlags::POLLIN;
                }
                if matches!(kind, Hostile::Oversized) && c.sent < what.2 {
                    events |= PollFlags::POLLOUT;
                }
                PollFd::new(c.stream.as_fd(), events)
            })
            .collect();
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::ZERO),
        );
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        for (k, i) in live.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            let c = clients[*i].as_mut().unwrap();
            let open = match (kind, drain(c, stats)) {
                (_, Drained::Open) => {
                    !matches!(kind, Hostile::Oversized) || send(c, &what, usize::MAX)
                }
                // The answer and the server's FIN do not stop these: only
                // a failed write or a reset does.
                (Hostile::Slowloris(_) | Hostile::GarbageThenDribble(_), Drained::Eof) => {
                    c.eof = true;
                    true
                }
                _ => false,
            };
            if !open {
                clients[*i] = None;
                stats.lock().unwrap().closed_by_server += 1;
            }
        }
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + period.unwrap_or(Duration::from_secs(3600));
            for slot in &mut clients {
                if let Some(c) = slot
                    && !send(c, &what, 1)
                {
                    *slot = None;
                    stats.lock().unwrap().closed_by_server += 1;
                }
            }
        }
    }
}

/// Sends up to `max` more bytes of the client's request without blocking.
/// False when the server has closed the connection.
fn send(c: &mut Client, (head, filler, total): &(Vec<u8>, u8, usize), max: usize) -> bool {
    let end = (*total).min(c.sent.saturating_add(max));
    let mut chunk = Vec::new();
    while c.sent < end {
        let upto = end.min(c.sent + 64 * 1024);
        chunk.clear();
        chunk.extend((c.sent..upto).map(|k| head.get(k).copied().unwrap_or(*filler)));
        match c.stream.write(&chunk) {
            Ok(0) => return false,
            Ok(k) => c.sent += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// How reading a client's connection ended.
enum Drained {
    /// Nothing more to read for now.
    Open,
    /// The server closed its side (after its answer, if any).
    Eof,
    /// Reset or another error.
    Broken,
}

/// Reads what the server sent; counts the answer once the server closes.
fn drain(c: &mut Client, stats: &Mutex<AttackStats>) -> Drained {
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => break Drained::Eof,
            Ok(k) => {
                if c.answer.len() < 64 * 1024 {
                    c.answer.extend_from_slice(&chunk[..k]);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Drained::Open,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break Drained::Broken,
        }
    };
    let text = String::from_utf8_lossy(&c.answer);
    let mut st = stats.lock().unwrap();
    st.resets += usize::from(matches!(end, Drained::Broken));
    let mut lines = text.match_indices("HTTP/1.1 ");
    if let Some((at, _)) = lines.next()
        && let Some(code) = text.get(at + 9..at + 12).and_then(|s| s.parse().ok())
    {
        *st.answers.entry(code).or_insert(0) += 1;
    }
    st.extra_answers += lines.count();
    c.answer.clear();
    end
}
