//! HTTP health endpoints: `liveness serve` and [`Health::serve`].
//!
//! `GET`/`HEAD` `/health/live`, `/health/ready` and `/health/startup`
//! answer 200 or 503 with the probe's one-line reasons; `/health` answers
//! the JSON of every unit. Requests are parsed by `httparse`; the server
//! around it is small and bounded on purpose, so that no client, however
//! slow, idle, numerous or malformed, can delay a well-formed probe:
//!
//! - one I/O thread owns every connection from accept to close and never
//!   blocks on one (`poll(2)` over all of them): it reads requests, writes
//!   answers, lingers after them and closes; a client costs a descriptor
//!   and at most 8 KiB (its request) or its answer, never a thread;
//! - every connection has a deadline whatever it does: the whole request
//!   head, within 8 KiB, within the request timeout (2 s by default) of
//!   the connection, or 408 (a huge one 431, garbage 400); the answer
//!   written within the timeout; at most 1 s or 256 KiB read and discarded
//!   after it;
//! - at most 8 worker threads (128 KiB stacks, started on demand and kept)
//!   judge the units, and only that: they never touch a socket, so a
//!   client that does not read cannot hold one; at most 4 of them judge
//!   `/health` (every unit) at once, so probes always find a worker; a
//!   verdict not reached within the timeout is answered 503;
//! - at most [`Server::MAX_CONNECTIONS`] connections are held at once; when the
//!   table is full, a new connection evicts the oldest one that is not
//!   being judged (lingering first, then unfinished requests, then
//!   answers not being read), so idle or slow clients can never lock a
//!   probe out;
//! - the soft open-file limit is raised (up to the hard limit) so that the
//!   table fits with 128 descriptors to spare; running out of descriptors
//!   anyway evicts too, or answers 503 on a reserve descriptor, and never
//!   spins; one request per connection (`Connection: close`), as the
//!   kubelet's probes do anyway.
//!
//! This module is the API and the routes; `transport.rs` is the bounded
//! server, which asks the routes for answers through a `Handler` and never
//! names them. The design, with the attacks it was measured against, is in
//! `doc/http.md`. tiny_http 0.12 (the crate first planned) starts a
//! thread per connection without limit and reads a header line without a
//! size limit: 1,000 stalled connections made 1,006 threads, and one
//! 200 MiB header line 220 MB of RSS.

mod transport;

use transport::{Handler, Request, Response};

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::health::Health;
use crate::os::net;
use crate::probe::status;
use crate::probe::{Mode, Probe, Report};
use crate::state::unit::Unit;
use crate::vocab::{env, text};

const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The kernel's accept queue (capped by `net.core.somaxconn`): deep, so
/// that a burst of connections is queued rather than dropped (a dropped
/// SYN is retried only after a second).
const BACKLOG: i32 = 4096;

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

    /// How long a client has to send its whole request head (from its
    /// connection), and how long its answer may take to judge and to be
    /// written. Default: 2 s.
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
            .map_err(|e| invalid(format!("listen address {listen:?}"), &text::error_text(&e)))?
            .collect();
        let mut units = self.units;
        if units.is_empty() {
            units.push(Unit::from_env()?);
        }
        let bind_err = |e: io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("listen address {listen}"),
                text::error_text(&e),
            )
        };
        let listener = TcpListener::bind(&addrs[..]).map_err(bind_err)?;
        net::set_backlog(&listener, BACKLOG).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let max = Server::MAX_CONNECTIONS;
        let want = (max + transport::FD_HEADROOM) as u64;
        let soft = net::raise_open_files(want)
            .map_err(|e| Error::new(ErrorKind::Io, "open-file limit", text::error_text(&e)))?;
        let cap = transport::connection_cap(soft, max);
        if cap < max {
            log::warn!(
                "HTTP: the open-file limit is {soft}: at most {cap} connections at once \
                 (raise the hard limit to {want} for {max})"
            );
        }
        let handler: Arc<dyn Handler> = Arc::new(Routes { units });
        let request_timeout = self.request_timeout;
        let acceptor = std::thread::Builder::new()
            .name("liveness-http".into())
            .stack_size(transport::STACK)
            .spawn(move || transport::serve(&listener, handler, request_timeout, cap))
            .map_err(|e| Error::new(ErrorKind::Io, "HTTP server thread", e.to_string()))?;
        log::info!("serving health on http://{addr}");
        Ok(Server {
            addr,
            acceptor: Some(acceptor),
        })
    }
}

/// `127.0.0.1:$LIVENESS_HTTP_PORT`, else [`Server::DEFAULT_LISTEN`].
fn default_listen() -> Result<String> {
    let Some(port) = std::env::var_os(env::HTTP_PORT) else {
        return Ok(Server::DEFAULT_LISTEN.to_owned());
    };
    let port = port.to_string_lossy();
    match text::number(&port, 1, u16::MAX.into()) {
        Some(p) => Ok(format!("127.0.0.1:{p}")),
        None => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("${}={port:?}", env::HTTP_PORT),
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
    /// The default listen address: loopback only. Kubernetes `httpGet`
    /// probes come from the node, so they need `0.0.0.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Server::DEFAULT_LISTEN, "127.0.0.1:8081");
    /// ```
    pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

    /// Connections held open at once (being read, judged, answered or
    /// closed gracefully). When the table is full, a new connection evicts
    /// the oldest one that is not being judged; only while every one is
    /// being judged do new connections wait in the kernel's accept queue.
    /// Fewer when the open-file limit cannot be raised to this plus 128.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Server::MAX_CONNECTIONS, 1024);
    /// ```
    pub const MAX_CONNECTIONS: usize = 1024;

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

/// What the routes serve.
struct Routes {
    units: Vec<Unit>,
}

/// The routes, as the transport asks for them: it reads a request whole,
/// asks for the answer on a worker thread, and writes it.
impl Handler for Routes {
    fn respond(&self, req: &Request) -> Response {
        route(req, self)
    }

    /// `/health` judges every unit of the run directories, not only the
    /// served ones.
    fn is_heavy(&self, req: &Request) -> bool {
        req.path.split(['?', '#']).next() == Some("/health")
    }
}

fn route(req: &Request, routes: &Routes) -> Response {
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
        Some(mode) => probe(&routes.units, mode),
        None => everything(&routes.units),
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
        match status::scan(dir) {
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
    let mut body = status::json(&reports);
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
