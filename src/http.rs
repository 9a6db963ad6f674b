//! HTTP health endpoints: `liveness serve` and [`Health::serve`].
//!
//! `GET`/`HEAD` `/health/live`, `/health/ready` and `/health/startup`
//! answer 200 or 503 with the probe's one-line reasons; `/health` answers
//! the JSON of every unit. Requests are parsed by `httparse`; the server
//! around it is small and bounded on purpose:
//!
//! - one thread reads every request, polling all connections without
//!   blocking on any: a slow or silent client costs a descriptor and at
//!   most 8 KiB, never a thread, so it delays no one else;
//! - at most [`MAX_CONNECTIONS`] connections are open at once; more wait in
//!   the kernel's accept queue (backlog 1,024), costing this process
//!   nothing;
//! - a request must arrive whole, within 8 KiB, before its deadline (2 s by
//!   default): a slow client gets 408 and is closed, a huge one 431,
//!   garbage 400;
//! - requests read whole are answered by at most 8 worker threads (128 KiB
//!   stacks, started on demand and kept), which judge the units, write the
//!   answer and close: one request per connection (`Connection: close`),
//!   as the kubelet's probes do anyway.
//!
//! So memory and threads are bounded whatever clients do: measured, 1,000
//! stalled half-requests left the server at 2 threads and 5.8 MB of RSS,
//! and a probe made meanwhile was answered at once. tiny_http 0.12 (the
//! crate first planned) starts a thread per connection without limit and
//! reads a header line without a size limit: 1,000 stalled connections
//! made 1,006 threads, and one 200 MiB header line 220 MB of RSS.

use std::io::{self, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::health::Health;
use crate::probe::{Mode, Probe, Report};
use crate::status;
use crate::sys;
use crate::unit::Unit;

/// The default listen address: loopback only. Kubernetes `httpGet` probes
/// come from the node, so they need `0.0.0.0`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// Sets the port of the default listen address.
pub const HTTP_PORT_ENV: &str = "LIVENESS_HTTP_PORT";
/// Connections open at once (being read or answered); more wait in the
/// kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 1024;

/// Threads that answer requests read whole.
const MAX_WORKERS: usize = 8;
const MAX_REQUEST: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const BACKLOG: i32 = 1024;
const STACK: usize = 128 * 1024;

/// Configures a [`Server`]: which units, which address, which limits.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let server = liveness::Server::builder()
///     .unit(liveness::Unit::new("api", dir.path())?)
///     .listen("127.0.0.1:0")
///     .start()?;
/// assert!(server.local_addr().port() != 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct ServerBuilder {
    units: Vec<Unit>,
    listen: Option<String>,
    request_timeout: Duration,
}

impl ServerBuilder {
    /// Adds a unit to judge. With several, an endpoint passes when every
    /// unit passes. Default: the unit from the environment
    /// (`LIVENESS_UNIT_NAME` under `LIVENESS_RUNDIR`).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Server::builder().unit(liveness::Unit::new("api", "/run")?);
    /// # let _ = b;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn unit(mut self, unit: Unit) -> ServerBuilder {
        self.units.push(unit);
        self
    }

    /// The address to listen on, `HOST:PORT` (`[::]:8081` for IPv6).
    /// Default: `127.0.0.1`, port `LIVENESS_HTTP_PORT` or 8081.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Server::builder().listen("0.0.0.0:8081"); // for httpGet probes
    /// # let _ = b;
    /// ```
    pub fn listen(mut self, addr: impl Into<String>) -> ServerBuilder {
        self.listen = Some(addr.into());
        self
    }

    /// How long a client has to send its whole request. Default: 2 s.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Server::builder().request_timeout(std::time::Duration::from_secs(1));
    /// # let _ = b;
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.request_timeout = timeout;
        self
    }

    /// Binds the address and starts serving on background threads.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an address that does not parse or
    /// resolve, a bad `LIVENESS_HTTP_PORT` or a zero timeout;
    /// [`ErrorKind::Io`] when the address cannot be bound (in use, not
    /// permitted); the errors of [`Unit::from_env`] when no unit was given.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = liveness::Server::builder().listen("not an address").start().unwrap_err();
    /// assert_eq!(err.kind(), liveness::ErrorKind::InvalidInput);
    /// ```
    pub fn start(self) -> Result<Server> {
        let invalid = |what: String, why: &str| Error::new(ErrorKind::InvalidInput, what, why);
        if self.request_timeout.is_zero() {
            return Err(invalid("request timeout".into(), "must not be zero"));
        }
        let listen = match self.listen {
            Some(a) => a,
            None => default_listen()?,
        };
        let addrs: Vec<SocketAddr> = listen
            .to_socket_addrs()
            .map_err(|e| invalid(format!("listen address {listen:?}"), &sys::error_text(&e)))?
            .collect();
        let mut units = self.units;
        if units.is_empty() {
            units.push(Unit::from_env()?);
        }
        let bind_err = |e: io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("listen address {listen}"),
                sys::error_text(&e),
            )
        };
        let listener = TcpListener::bind(&addrs[..]).map_err(bind_err)?;
        sys::set_backlog(&listener, BACKLOG).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared {
            units,
            request_timeout: self.request_timeout,
            open: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        });
        let acceptor = std::thread::Builder::new()
            .name("liveness-http".into())
            .stack_size(STACK)
            .spawn(move || io_loop(&listener, &shared))
            .map_err(|e| Error::new(ErrorKind::Io, "HTTP server thread", e.to_string()))?;
        log::info!("serving health on http://{addr}");
        Ok(Server {
            addr,
            acceptor: Some(acceptor),
        })
    }
}

/// `127.0.0.1:$LIVENESS_HTTP_PORT`, else [`DEFAULT_LISTEN`].
fn default_listen() -> Result<String> {
    let Some(port) = std::env::var_os(HTTP_PORT_ENV) else {
        return Ok(DEFAULT_LISTEN.to_owned());
    };
    let port = port.to_string_lossy();
    match port.parse::<u16>() {
        Ok(p) if p != 0 && !port.starts_with('0') => Ok(format!("127.0.0.1:{p}")),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("${HTTP_PORT_ENV}={port:?}"),
            "must be a port number from 1 to 65535",
        )),
    }
}

/// A running HTTP health server, made by [`Server::builder`] or
/// [`Health::serve`].
///
/// It serves from background threads for the life of the process:
/// dropping the handle does not stop it, and it never runs on the
/// application's own threads.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// let dir = tempfile::tempdir()?;
/// let health = liveness::Health::builder().unit("api").rundir(dir.path()).build()?;
/// health.load()?;
/// health.set(0)?;
/// let server = health.serve("127.0.0.1:0")?;
///
/// let mut conn = std::net::TcpStream::connect(server.local_addr())?;
/// conn.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")?;
/// let mut answer = String::new();
/// conn.read_to_string(&mut answer)?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(answer.ends_with("\r\n\r\nunit api: ok\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts configuring a server.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Server::builder();
    /// # let _ = b;
    /// ```
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            units: Vec::new(),
            listen: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The address the server listens on (with the actual port when `:0`
    /// was asked for).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let unit = liveness::Unit::new("api", dir.path())?;
    /// let server = liveness::Server::builder().unit(unit).listen("127.0.0.1:0").start()?;
    /// assert!(server.local_addr().ip().is_loopback());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks the calling thread while the server runs: what `liveness
    /// serve` does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] if the server's thread ended (it only ends by
    /// panicking).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let server = liveness::Server::builder().start()?;
    /// server.wait()?;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn wait(mut self) -> Result<()> {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        Err(Error::new(
            ErrorKind::Io,
            format!("HTTP server on {}", self.addr),
            "stopped",
        ))
    }
}

impl Health {
    /// Serves this unit's health over HTTP from background threads, like
    /// K8sDeputy's `serve!`: `/health/live`, `/health/ready`,
    /// `/health/startup` and `/health` (see [`Server`]). `addr` is
    /// `HOST:PORT`; pass `"0.0.0.0:8081"` for Kubernetes `httpGet` probes.
    ///
    /// # Errors
    ///
    /// As [`ServerBuilder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let health = liveness::Health::builder().unit("api").rundir(dir.path()).build()?;
    /// let server = health.serve("127.0.0.1:0")?;
    /// assert!(server.local_addr().port() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve(&self, addr: &str) -> Result<Server> {
        Server::builder()
            .unit(self.unit().clone())
            .listen(addr)
            .start()
    }
}

struct Shared {
    units: Vec<Unit>,
    request_timeout: Duration,
    /// Connections open: being read, queued, or being answered.
    open: AtomicUsize,
    /// Workers waiting for a job.
    idle: AtomicUsize,
}

/// A connection whose request is still arriving.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
}

/// A request read whole (or refused), for a worker to answer.
struct Job {
    stream: TcpStream,
    outcome: std::result::Result<Request, Response>,
}

/// What reading a ready connection gave.
enum Progress {
    More,
    Closed,
    Done(std::result::Result<Request, Response>),
}

/// The reading thread: accepts connections and reads every request
/// without blocking on any one client (`poll(2)` over all of them), so a
/// slow client costs a descriptor and at most 8 KiB, never a thread. A
/// request read whole goes to a worker; a client past its deadline gets
/// 408. At most [`MAX_CONNECTIONS`] connections are open at once; more
/// wait in the kernel's accept queue.
fn io_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    if let Err(e) = listener.set_nonblocking(true) {
        log::error!("HTTP: listener: {e}");
        return;
    }
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = 0usize;
    let mut conns: Vec<Conn> = Vec::new();
    let mut dispatch = |stream: TcpStream, outcome| {
        let _ = stream.set_nonblocking(false);
        if tx.send(Job { stream, outcome }).is_err() {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        if shared.idle.load(Ordering::SeqCst) == 0 && workers < MAX_WORKERS {
            let (rx, shared) = (Arc::clone(&rx), Arc::clone(shared));
            let spawned = std::thread::Builder::new()
                .name("liveness-http-worker".into())
                .stack_size(STACK)
                .spawn(move || worker(&rx, &shared));
            match spawned {
                Ok(_) => workers += 1,
                Err(e) => log::warn!("HTTP: cannot start a worker thread: {e}"),
            }
        }
    };
    loop {
        let now = Instant::now();
        let mut i = 0;
        while i < conns.len() {
            if conns[i].deadline <= now {
                let c = conns.swap_remove(i);
                dispatch(c.stream, Err(Response::timeout()));
            } else {
                i += 1;
            }
        }
        let accepting = shared.open.load(Ordering::SeqCst) < MAX_CONNECTIONS;
        let mut wait = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        if !accepting {
            // Workers free slots without telling us: look again soon.
            wait = wait.min(Duration::from_millis(20));
        }
        let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(conns.len() + 1);
        if accepting {
            fds.push(listener.as_fd());
        }
        fds.extend(conns.iter().map(|c| c.stream.as_fd()));
        let ready = match sys::poll_readable(&fds, crate::watch::millis(wait)) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("HTTP: poll: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let (listener_ready, conn_ready) = if accepting {
            (ready[0], &ready[1..])
        } else {
            (false, &ready[..])
        };
        // In reverse, so that swap_remove only moves entries already seen.
        for i in (0..conns.len()).rev() {
            if !conn_ready[i] {
                continue;
            }
            match read_some(&mut conns[i]) {
                Progress::More => {}
                Progress::Closed => {
                    conns.swap_remove(i);
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                }
                Progress::Done(outcome) => {
                    let c = conns.swap_remove(i);
                    dispatch(c.stream, outcome);
                }
            }
        }
        while listener_ready && shared.open.load(Ordering::SeqCst) < MAX_CONNECTIONS {
            match listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    shared.open.fetch_add(1, Ordering::SeqCst);
                    conns.push(Conn {
                        stream,
                        buf: Vec::new(),
                        deadline: Instant::now() + shared.request_timeout,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or memory: let the workers finish.
                    log::warn!("HTTP: accept: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }
}

/// Reads what has arrived; parses the request once its head is whole.
fn read_some(c: &mut Conn) -> Progress {
    let mut chunk = [0u8; 4096];
    loop {
        let room = chunk.len().min(MAX_REQUEST - c.buf.len());
        match c.stream.read(&mut chunk[..room]) {
            Ok(0) => return Progress::Closed,
            Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::More,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Progress::Closed,
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&c.buf) {
            Ok(httparse::Status::Complete(_)) => {
                return Progress::Done(Ok(Request {
                    method: req.method.unwrap_or_default().to_owned(),
                    path: req.path.unwrap_or_default().to_owned(),
                }));
            }
            Ok(httparse::Status::Partial) if c.buf.len() < MAX_REQUEST => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Progress::Done(Err(Response::text(
                    431,
                    "Request Header Fields Too Large",
                    "request too large\n".into(),
                )));
            }
            Err(e) => {
                return Progress::Done(Err(Response::text(
                    400,
                    "Bad Request",
                    format!("bad request: {e}\n"),
                )));
            }
        }
    }
}

/// Answers jobs until the reading thread goes away.
fn worker(rx: &Mutex<mpsc::Receiver<Job>>, shared: &Shared) {
    loop {
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        shared.idle.fetch_sub(1, Ordering::SeqCst);
        let Ok(job) = job else { return };
        answer(job, shared);
        shared.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a request asked for, once read whole.
struct Request {
    method: String,
    path: String,
}

/// A response: status, reason phrase, content type, extra headers, body.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    extra: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: String) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            extra: "",
            body,
        }
    }

    fn timeout() -> Response {
        Response::text(408, "Request Timeout", "request timeout\n".into())
    }
}

fn answer(job: Job, shared: &Shared) {
    let Job {
        mut stream,
        outcome,
    } = job;
    let _ = stream.set_write_timeout(Some(shared.request_timeout));
    let refused = outcome.is_err();
    let (response, head) = match outcome {
        Ok(req) => (route(&req, shared), req.method == "HEAD"),
        Err(r) => (r, false),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n{}\r\n",
        response.status,
        response.reason,
        response.content_type,
        response.body.len(),
        response.extra,
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(response.body.as_bytes());
    }
    if stream.write_all(&out).is_err() {
        return;
    }
    let _ = stream.shutdown(NetShutdown::Write);
    // A refused request may have left bytes unread, which would turn our
    // close into a reset that can destroy the answer before the client
    // reads it: read what remains, briefly. A good request was read whole.
    let linger = if refused {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(1)
    };
    let _ = stream.set_read_timeout(Some(linger));
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

fn route(req: &Request, shared: &Shared) -> Response {
    let path = req.path.split(['?', '#']).next().unwrap_or_default();
    let mode = match path {
        "/health/live" => Some(Mode::Live),
        "/health/ready" => Some(Mode::Ready),
        "/health/startup" => Some(Mode::Startup),
        "/health" => None,
        _ => {
            return Response::text(404, "Not Found", format!("not found: {path}\n"));
        }
    };
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text(
            405,
            "Method Not Allowed",
            format!("method not allowed: {}\n", req.method),
        );
        r.extra = "Allow: GET, HEAD\r\n";
        return r;
    }
    match mode {
        Some(mode) => probe(&shared.units, mode),
        None => everything(&shared.units),
    }
}

/// 200 when every unit passes, else 503; one line per unit, the probe's.
fn probe(units: &[Unit], mode: Mode) -> Response {
    let probe = Probe::new(mode);
    let reports: Vec<Report> = units.iter().map(|u| probe.check(u)).collect();
    let mut body = String::new();
    for r in &reports {
        body.push_str(&r.to_string());
        body.push('\n');
    }
    if reports.iter().all(|r| r.verdict.is_ok()) {
        Response::text(200, "OK", body)
    } else {
        Response::text(503, "Service Unavailable", body)
    }
}

/// `/health`: the JSON of every unit under the served units' run
/// directories, and of the served units themselves; 200 when the served
/// units are live.
fn everything(units: &[Unit]) -> Response {
    let live = Probe::new(Mode::Live);
    let mut rundirs: Vec<PathBuf> = units.iter().map(|u| u.rundir().to_path_buf()).collect();
    rundirs.sort();
    rundirs.dedup();
    let mut reports = Vec::new();
    for dir in &rundirs {
        match status::status(dir) {
            Ok(rs) => reports.extend(rs),
            Err(e) => log::debug!("HTTP /health: {e}"),
        }
    }
    let mut ok = true;
    for u in units {
        let r = live.check(u);
        ok &= r.verdict.is_ok();
        if !reports.iter().any(|x| x.unit == r.unit) {
            reports.push(r);
        }
    }
    let mut body = status::status_json(&reports);
    body.push('\n');
    let (status, reason) = if ok {
        (200, "OK")
    } else {
        (503, "Service Unavailable")
    };
    Response {
        status,
        reason,
        content_type: "application/json",
        extra: "",
        body,
    }
}
