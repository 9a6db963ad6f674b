//! The HTTP transport: one I/O thread owns every connection, from accept to
//! close, and never blocks on one; worker threads only compute answers.
//! What an answer says is a [`Handler`]'s business (the routes, in
//! `mod.rs`), which this module never names: it frames requests and
//! answers, and bounds every connection.
//!
//! Each connection is in one state, with one deadline:
//!
//! | state | polled for | deadline | then |
//! |---|---|---|---|
//! | reading the request head | input | accept + request timeout | 408 |
//! | judging (a worker has it) | nothing | dispatch + request timeout | 503 |
//! | writing the answer | output | answer + request timeout | closed |
//! | lingering (read side drained, our side shut) | input | [`LINGER`], or [`LINGER_BYTES`] read | closed |
//!
//! The I/O thread reads, parses, writes 400/408/431/503 itself, lingers
//! after every answer (so that a close never turns into a reset that
//! destroys the answer) and closes. A worker takes a request read whole,
//! asks the handler for the answer and hands its bytes back through a queue
//! and a wake-up socket: it never touches a client's socket, so no client
//! can hold a worker. At most [`HEAVY_WORKERS`] of the [`MAX_WORKERS`]
//! answer heavy requests (for the routes, `/health`: every unit of the run
//! directory) at once, so probes always have workers.
//!
//! The connection table holds at most the cap (see [`connection_cap`]).
//! When it is full and a connection is waiting, the oldest connection that
//! is not being judged is closed to make room — lingering ones first, then
//! those still sending their request, then those not reading their answer
//! — so that idle or slow clients can never keep a probe out: the accept
//! queue keeps moving. A fresh connection is read at once, so a probe that
//! sends its request with its connection is judged before anyone could
//! evict it. When the process runs out of descriptors, the table makes
//! room the same way; if there is none to make, a reserve descriptor is
//! given up to accept the waiting connection, answer it 503 and close it,
//! and accepting pauses for [`PAUSE`] if even that fails: never a busy loop.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::os;

/// Threads that judge requests, started on demand and kept.
pub(super) const MAX_WORKERS: usize = 8;
/// Of those, how many may judge `/health` at once.
const HEAVY_WORKERS: usize = MAX_WORKERS / 2;
/// `/health` requests waiting for a worker; more are answered 503 at once,
/// so that they cannot fill the connection table with requests nobody may
/// evict.
const HEAVY_QUEUE: usize = 32;
/// The largest request head.
pub(super) const MAX_REQUEST: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
/// How long, and how many bytes, we read and discard after an answer
/// before closing.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// Connections accepted per turn of the loop: the loop reads the ready
/// connections between two batches. Below the cap, so that a connection
/// accepted in one batch is read before the next batch could evict it.
const ACCEPT_BATCH: usize = 256;
/// Descriptors left to the rest of the process (workers reading state
/// files, the application that called `Health::serve`).
pub(super) const FD_HEADROOM: usize = 128;
/// Bytes of answers waiting for slow readers, all connections together;
/// past it, the oldest such connections are closed.
const OUTPUT_BUDGET: usize = 16 << 20;
/// How long accepting pauses when no descriptor can be had at all.
const PAUSE: Duration = Duration::from_millis(100);
pub(super) const STACK: usize = 128 * 1024;

/// The connection cap for a soft open-file limit of `soft`: at most
/// `max`, and [`FD_HEADROOM`] descriptors left over.
pub(super) fn connection_cap(soft: u64, max: usize) -> usize {
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    max.min(soft.saturating_sub(FD_HEADROOM)).max(1)
}

/// What the transport asks of the routes, which it never names.
pub(super) trait Handler: Send + Sync + 'static {
    /// The answer to a request read whole, computed on a worker thread.
    fn respond(&self, req: &Request) -> Response;

    /// Whether the request is expensive to answer: at most
    /// [`HEAVY_WORKERS`] such requests are judged at once, and at most
    /// [`HEAVY_QUEUE`] wait.
    fn is_heavy(&self, req: &Request) -> bool;
}

/// What a request asked for, once read whole.
pub(super) struct Request {
    pub method: String,
    pub path: String,
}

/// A response: status, reason phrase, content type, extra headers, body.
pub(super) struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: &'static str,
    pub extra: &'static str,
    pub body: String,
}

impl Response {
    pub(super) fn text(status: u16, reason: &'static str, body: String) -> Response {
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

/// Status line, headers and (unless `head_only`) body.
pub(super) fn render(response: &Response, head_only: bool) -> Vec<u8> {
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
    if !head_only {
        out.extend_from_slice(response.body.as_bytes());
    }
    out
}

/// One connection and where it is.
struct Conn {
    id: u64,
    stream: TcpStream,
    accepted: Instant,
    deadline: Instant,
    state: State,
}

enum State {
    Reading(Vec<u8>),
    Judging,
    Writing { out: Vec<u8>, sent: usize },
    Lingering { drained: usize },
    Closed,
}

impl Conn {
    /// Which connection to close first to make room (lower first); `None`
    /// for one being judged, which is never evicted.
    fn eviction_rank(&self) -> Option<u8> {
        match self.state {
            State::Closed => Some(0),
            State::Lingering { .. } => Some(1),
            State::Reading(_) => Some(2),
            State::Writing { .. } => Some(3),
            State::Judging => None,
        }
    }

    fn want_write(&self) -> Option<bool> {
        match self.state {
            State::Reading(_) | State::Lingering { .. } => Some(false),
            State::Writing { .. } => Some(true),
            State::Judging | State::Closed => None,
        }
    }
}

/// The I/O thread's state.
struct Io {
    request_timeout: Duration,
    pool: Arc<Pool>,
    conns: Vec<Conn>,
    next_id: u64,
    cap: usize,
    /// Bytes held in `State::Writing` buffers.
    held: usize,
    /// A descriptor given up to accept one connection when there are
    /// none left (a duplicate of the listener's).
    reserve: Option<OwnedFd>,
    paused_until: Option<Instant>,
    /// When running out of descriptors was last logged (once a second).
    shed_logged: Option<Instant>,
}

/// Runs the I/O loop until the process ends. `cap`: the most connections
/// held at once.
pub(super) fn serve(
    listener: &TcpListener,
    handler: Arc<dyn Handler>,
    request_timeout: Duration,
    cap: usize,
) {
    match Io::new(listener, handler, request_timeout, cap) {
        Ok((mut io, wake)) => loop {
            io.turn(listener, &wake);
        },
        Err(e) => log::error!("HTTP: cannot start: {e}"),
    }
}

impl Io {
    /// The I/O thread's state, and the socket the workers wake it with.
    /// Makes the listener non-blocking.
    fn new(
        listener: &TcpListener,
        handler: Arc<dyn Handler>,
        request_timeout: Duration,
        cap: usize,
    ) -> io::Result<(Io, UnixStream)> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        listener.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let io = Io {
            pool: Arc::new(Pool::new(wake_tx, handler)),
            request_timeout,
            conns: Vec::new(),
            next_id: 0,
            cap,
            held: 0,
            reserve: listener.as_fd().try_clone_to_owned().ok(),
            paused_until: None,
            shed_logged: None,
        };
        Ok((io, wake_rx))
    }

    /// One turn: deadlines, one poll, progress on every ready connection,
    /// answers from the workers, a batch of new connections.
    fn turn(&mut self, listener: &TcpListener, wake: &UnixStream) {
        let now = Instant::now();
        for i in 0..self.conns.len() {
            if self.conns[i].deadline <= now {
                self.expire(i);
            }
        }
        self.sweep();
        if self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
        }
        let accepting = self.paused_until.is_none() && self.has_room();
        let mut fds = Vec::with_capacity(self.conns.len() + 2);
        let mut polled = Vec::with_capacity(self.conns.len());
        fds.push((wake.as_fd(), false));
        if accepting {
            fds.push((listener.as_fd(), false));
        }
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(w) = c.want_write() {
                fds.push((c.stream.as_fd(), w));
                polled.push(i);
            }
        }
        let mut next = self.conns.iter().map(|c| c.deadline).min();
        if let Some(t) = self.paused_until {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let wait = next.map_or(-1, |t| {
            crate::watch::millis(t.saturating_duration_since(now))
        });
        let ready = match os::poll_ready(&fds, wait) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("HTTP: poll: {e}");
                std::thread::sleep(PAUSE);
                return;
            }
        };
        drop(fds);
        let base = if accepting { 2 } else { 1 };
        for (k, &i) in polled.iter().enumerate() {
            if ready[base + k] {
                self.progress(i);
            }
        }
        if ready[0] {
            let mut sink = [0u8; 256];
            while matches!((&*wake).read(&mut sink), Ok(n) if n > 0) {}
            self.take_answers();
        }
        self.sweep();
        if accepting && ready[1] {
            self.accept(listener);
        }
    }

    /// Whether a new connection can be taken: the table has room, or
    /// holds one that may be evicted.
    fn has_room(&self) -> bool {
        self.conns.len() < self.cap || self.conns.iter().any(|c| c.eviction_rank().is_some())
    }

    fn accept(&mut self, listener: &TcpListener) {
        for _ in 0..ACCEPT_BATCH {
            if !self.has_room() {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    if self.conns.len() >= self.cap {
                        self.evict();
                    }
                    self.admit(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_descriptors(&e) => {
                    if !self.evict() {
                        self.shed(listener);
                        return;
                    }
                }
                // The connection died in the queue: the next may be fine.
                Err(e) if connection_failed(&e) => {}
                // Anything else may last: pause rather than spin.
                Err(e) => {
                    log::warn!("HTTP: accept: {e}");
                    self.paused_until = Some(Instant::now() + PAUSE);
                    return;
                }
            }
        }
    }

    /// Takes a new connection and reads at once what came with it.
    fn admit(&mut self, stream: TcpStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let now = Instant::now();
        self.next_id += 1;
        self.conns.push(Conn {
            id: self.next_id,
            stream,
            accepted: now,
            deadline: now + self.request_timeout,
            state: State::Reading(Vec::new()),
        });
        let i = self.conns.len() - 1;
        self.progress(i);
        if matches!(self.conns[i].state, State::Closed) {
            self.conns.swap_remove(i);
        }
    }

    /// Out of descriptors with nothing to evict: accept the waiting
    /// connection on the reserve descriptor, tell it why, close it.
    fn shed(&mut self, listener: &TcpListener) {
        self.reserve = None;
        let accepted = listener.accept();
        let shed = accepted.is_ok();
        if let Ok((mut stream, _)) = accepted {
            let _ = stream.set_nonblocking(true);
            let _ = stream.write(&render(
                &Response::text(
                    503,
                    "Service Unavailable",
                    "out of file descriptors\n".into(),
                ),
                false,
            ));
            // Read what the client sent already, so that the close is a
            // FIN rather than a reset that would destroy the answer.
            let _ = stream.shutdown(Shutdown::Write);
            let _ = linger(&mut stream, &mut 0);
            let now = Instant::now();
            if self
                .shed_logged
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
            {
                self.shed_logged = Some(now);
                log::warn!("HTTP: out of file descriptors: connections answered 503");
            }
        }
        self.reserve = listener.as_fd().try_clone_to_owned().ok();
        // Nothing accepted (the descriptor went elsewhere at once), or no
        // reserve for next time: pause rather than spin.
        if !shed || self.reserve.is_none() {
            self.paused_until = Some(Instant::now() + PAUSE);
        }
    }

    /// Closes the connection that is cheapest to lose. False when every
    /// connection is being judged.
    fn evict(&mut self) -> bool {
        let victim = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.eviction_rank().map(|r| ((r, c.accepted), i)))
            .min()
            .map(|(_, i)| i);
        match victim {
            Some(i) => {
                self.close(i);
                self.conns.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Moves connection `i` on as far as it goes without blocking.
    fn progress(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let next = match &mut c.state {
                State::Reading(buf) => read_request(&mut c.stream, buf),
                State::Writing { out, sent } => write_answer(&mut c.stream, out, sent),
                State::Lingering { drained } => linger(&mut c.stream, drained),
                State::Judging | State::Closed => Step::Stay,
            };
            match next {
                Step::Stay => return,
                Step::Close => return self.close(i),
                Step::Judge(request) => {
                    let c = &mut self.conns[i];
                    if self.pool.submit(c.id, request) {
                        c.state = State::Judging;
                        c.deadline = Instant::now() + self.request_timeout;
                        return;
                    }
                    let busy = Response::text(
                        503,
                        "Service Unavailable",
                        "busy: too many /health requests at once\n".into(),
                    );
                    self.start_answer(i, render(&busy, false));
                }
                Step::Answer(response) => self.start_answer(i, render(&response, false)),
                Step::Written => {
                    let c = &mut self.conns[i];
                    if let State::Writing { out, .. } = &c.state {
                        self.held -= out.len();
                    }
                    // A FIN after the answer, then read until the client
                    // closes too.
                    let _ = c.stream.shutdown(Shutdown::Write);
                    c.state = State::Lingering { drained: 0 };
                    c.deadline = Instant::now() + LINGER;
                }
            }
        }
    }

    /// Connection `i` has `out` to write, within the request timeout.
    fn start_answer(&mut self, i: usize, out: Vec<u8>) {
        self.held += out.len();
        let c = &mut self.conns[i];
        c.state = State::Writing { out, sent: 0 };
        c.deadline = Instant::now() + self.request_timeout;
    }

    /// Starts writing `out` on connection `i` and writes what it can.
    fn answer(&mut self, i: usize, out: Vec<u8>) {
        self.start_answer(i, out);
        let id = self.conns[i].id;
        self.progress(i);
        // Answers nobody reads cannot pile up: close the oldest.
        while self.held > OUTPUT_BUDGET {
            let oldest = self
                .conns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.id != id && matches!(c.state, State::Writing { .. }))
                .min_by_key(|(_, c)| c.accepted)
                .map(|(k, _)| k);
            match oldest {
                Some(k) => self.close(k),
                None => break,
            }
        }
    }

    /// Marks connection `i` closed and closes its socket (see
    /// [`Io::sweep`]).
    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let State::Writing { out, .. } = &c.state {
            self.held -= out.len();
        }
        c.state = State::Closed;
        let _ = c.stream.shutdown(Shutdown::Both);
    }

    /// Drops closed connections.
    fn sweep(&mut self) {
        self.conns.retain(|c| !matches!(c.state, State::Closed));
    }

    /// Connection `i` is past its deadline.
    fn expire(&mut self, i: usize) {
        match self.conns[i].state {
            State::Reading(_) => self.answer(i, render(&Response::timeout(), false)),
            State::Judging => {
                self.pool.cancel(self.conns[i].id);
                let ms = self.request_timeout.as_millis();
                let r = Response::text(
                    503,
                    "Service Unavailable",
                    format!("no verdict within {ms} ms\n"),
                );
                self.answer(i, render(&r, false));
            }
            State::Writing { .. } | State::Lingering { .. } => self.close(i),
            State::Closed => {}
        }
    }

    /// Answers the workers have finished.
    fn take_answers(&mut self) {
        for (id, out) in self.pool.finished() {
            let found = self
                .conns
                .iter()
                .position(|c| c.id == id && matches!(c.state, State::Judging));
            // Not found: the request's deadline passed and it was answered
            // 503 meanwhile.
            if let Some(i) = found {
                self.answer(i, out);
            }
        }
    }
}

/// What a connection does next.
enum Step {
    Stay,
    Close,
    Judge(Request),
    Answer(Response),
    Written,
}

/// An `accept` error about one connection (it was reset or aborted while
/// queued, a signal interrupted): the next connection may be fine.
fn connection_failed(e: &io::Error) -> bool {
    use nix::libc::{ECONNABORTED, EINTR, EPERM, EPROTO};
    matches!(
        e.raw_os_error(),
        Some(ECONNABORTED | EINTR | EPERM | EPROTO)
    )
}

fn out_of_descriptors(e: &io::Error) -> bool {
    use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM))
}

/// Reads what has arrived of a request head; parses it once it may be
/// whole.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Step {
    let mut chunk = [0u8; 4096];
    loop {
        let room = chunk.len().min(MAX_REQUEST - buf.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Step::Close,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Stay,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Step::Close,
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {
                return Step::Judge(Request {
                    method: req.method.unwrap_or_default().to_owned(),
                    path: req.path.unwrap_or_default().to_owned(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Step::Answer(Response::text(
                    431,
                    "Request Header Fields Too Large",
                    "request too large\n".into(),
                ));
            }
            Err(e) => {
                return Step::Answer(Response::text(
                    400,
                    "Bad Request",
                    format!("bad request: {e}\n"),
                ));
            }
        }
    }
}

fn write_answer(stream: &mut TcpStream, out: &[u8], sent: &mut usize) -> Step {
    while *sent < out.len() {
        match stream.write(&out[*sent..]) {
            Ok(0) => return Step::Close,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Stay,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
    Step::Written
}

/// Reads and discards until the client closes, or [`LINGER_BYTES`].
fn linger(stream: &mut TcpStream, drained: &mut usize) -> Step {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Step::Close,
            Ok(n) => {
                *drained += n;
                if *drained >= LINGER_BYTES {
                    return Step::Close;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Stay,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
}

/// The workers: a queue for probes, one for `/health`, answers going back.
struct Pool {
    state: Mutex<Queues>,
    work: Condvar,
    /// Written to (one byte) when an answer is ready.
    wake: UnixStream,
    handler: Arc<dyn Handler>,
}

#[derive(Default)]
struct Queues {
    light: VecDeque<(u64, Request)>,
    heavy: VecDeque<(u64, Request)>,
    heavy_running: usize,
    idle: usize,
    workers: usize,
    done: Vec<(u64, Vec<u8>)>,
}

impl Pool {
    fn new(wake: UnixStream, handler: Arc<dyn Handler>) -> Pool {
        Pool {
            state: Mutex::new(Queues::default()),
            work: Condvar::new(),
            wake,
            handler,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a request read whole; starts a worker if none is free.
    /// False when the `/health` queue is full.
    fn submit(self: &Arc<Self>, id: u64, request: Request) -> bool {
        let spawn = {
            let mut q = self.lock();
            if self.handler.is_heavy(&request) {
                if q.heavy.len() >= HEAVY_QUEUE {
                    return false;
                }
                q.heavy.push_back((id, request));
            } else {
                q.light.push_back((id, request));
            }
            let spawn = q.idle == 0 && q.workers < MAX_WORKERS;
            q.workers += usize::from(spawn);
            spawn
        };
        self.work.notify_one();
        if spawn {
            let pool = Arc::clone(self);
            let started = std::thread::Builder::new()
                .name("liveness-http-worker".into())
                .stack_size(STACK)
                .spawn(move || pool.work());
            if let Err(e) = started {
                self.lock().workers -= 1;
                log::warn!("HTTP: cannot start a worker thread: {e}");
            }
        }
        true
    }

    /// A worker's life: take a request, judge, hand the answer back.
    fn work(&self) {
        let mut q = self.lock();
        loop {
            let (id, request, heavy) = if let Some((id, r)) = q.light.pop_front() {
                (id, r, false)
            } else if q.heavy_running < HEAVY_WORKERS
                && let Some((id, r)) = q.heavy.pop_front()
            {
                q.heavy_running += 1;
                (id, r, true)
            } else {
                q.idle += 1;
                q = self.work.wait(q).unwrap_or_else(|p| p.into_inner());
                q.idle -= 1;
                continue;
            };
            drop(q);
            let out = render(&self.handler.respond(&request), request.method == "HEAD");
            q = self.lock();
            q.heavy_running -= usize::from(heavy);
            q.done.push((id, out));
            // Full: a wake-up is already pending.
            let _ = (&self.wake).write(&[1]);
        }
    }

    /// Forgets a request not yet taken by a worker (its client was
    /// answered meanwhile).
    fn cancel(&self, id: u64) {
        let mut q = self.lock();
        q.light.retain(|(k, _)| *k != id);
        q.heavy.retain(|(k, _)| *k != id);
    }

    fn finished(&self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.lock().done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request 200, names nothing: the transport alone is
    /// under test.
    struct Ok200;

    impl Handler for Ok200 {
        fn respond(&self, _: &Request) -> Response {
            Response::text(200, "OK", "ok\n".into())
        }

        fn is_heavy(&self, req: &Request) -> bool {
            req.path == "/heavy"
        }
    }

    fn io(cap: usize) -> (Io, UnixStream, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let timeout = Duration::from_secs(600);
        let (io, wake) = Io::new(&listener, Arc::new(Ok200), timeout, cap).unwrap();
        (io, wake, listener)
    }

    fn connect(listener: &TcpListener, request: &[u8]) -> TcpStream {
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(request).unwrap();
        c
    }

    fn states(io: &Io) -> Vec<&'static str> {
        io.conns
            .iter()
            .map(|c| match c.state {
                State::Reading(_) => "reading",
                State::Judging => "judging",
                State::Writing { .. } => "writing",
                State::Lingering { .. } => "lingering",
                State::Closed => "closed",
            })
            .collect()
    }

    const PROBE: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";

    /// The cap follows the open-file limit: 1,024 with room to spare,
    /// fewer (never none) when the limit is low.
    #[test]
    fn the_cap_leaves_descriptors_to_the_process() {
        for (soft, cap) in [
            (1_048_576, 1024),
            (1024 + 128, 1024),
            (1024, 1024 - 128),
            (200, 72),
            (128, 1),
            (0, 1),
        ] {
            assert_eq!(connection_cap(soft, 1024), cap, "soft limit {soft}");
        }
    }

    /// A full table evicts its oldest unfinished request to take a new
    /// connection, never a request being judged; a table holding only
    /// requests being judged takes none.
    #[test]
    fn a_full_table_evicts_the_oldest_unfinished_request() {
        let (mut io, _wake, listener) = io(2);
        let mut idle = connect(&listener, b"");
        io.accept(&listener);
        let _probe = connect(&listener, PROBE);
        io.accept(&listener);
        assert_eq!(states(&io), ["reading", "judging"]);
        let _newer = connect(&listener, b"GET /he");
        io.accept(&listener);
        assert_eq!(states(&io), ["judging", "reading"]);
        let mut buf = [0u8; 16];
        assert_eq!(idle.read(&mut buf).unwrap(), 0, "the idle one was closed");

        let (mut io, _wake, listener) = io_judging_only();
        let _waiting = connect(&listener, PROBE);
        assert!(!io.has_room());
        io.accept(&listener);
        assert_eq!(states(&io), ["judging"], "not taken while all are judged");
    }

    fn io_judging_only() -> (Io, UnixStream, TcpListener) {
        let (mut io, wake, listener) = io(1);
        let _ = connect(&listener, PROBE);
        io.accept(&listener);
        (io, wake, listener)
    }

    /// A request whose verdict is not reached by its deadline is answered
    /// 503 with the reason, and its answer when it comes is dropped.
    #[test]
    fn a_verdict_past_the_deadline_is_answered_503() {
        let (mut io, _wake, listener) = io(4);
        let mut probe = connect(&listener, PROBE);
        io.accept(&listener);
        assert_eq!(states(&io), ["judging"]);
        // The worker is done, its answer not yet taken: it comes late.
        assert!(common_wait(|| !io.pool.lock().done.is_empty()));
        io.conns[0].deadline = Instant::now();
        io.expire(0);
        let mut answer = String::new();
        probe.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(
            answer.ends_with("\r\n\r\nno verdict within 600000 ms\n"),
            "{answer}"
        );
        assert_eq!(states(&io), ["lingering"]);
        io.take_answers();
        assert_eq!(states(&io), ["lingering"], "the late verdict is dropped");
    }

    /// Out of descriptors with nothing to evict, the waiting connection is
    /// accepted on the reserve descriptor, told why, and closed; the
    /// reserve is taken again; with nothing accepted, accepting pauses.
    #[test]
    fn out_of_descriptors_the_waiting_connection_gets_503() {
        let (mut io, _wake, listener) = io(4);
        assert!(io.reserve.is_some());
        let mut client = connect(&listener, PROBE);
        io.shed(&listener);
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.ends_with("out of file descriptors\n"), "{answer}");
        assert!(io.reserve.is_some());
        assert!(io.conns.is_empty());
        assert!(io.paused_until.is_none(), "no pause after a shed");
        // Nothing was waiting: accepting pauses instead of spinning.
        io.shed(&listener);
        assert!(io.paused_until.is_some());
        assert!(io.reserve.is_some());
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(
            nix::libc::EMFILE
        )));
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(
            nix::libc::ECONNABORTED
        )));
    }

    fn common_wait(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}
