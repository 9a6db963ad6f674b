//! The supervisor's stop policy, as a state machine.
//!
//! ```text
//!            TERM, first INT,
//!            a dead death dependency
//! Running ───────────────────────────▶ Stopping { by, deadline }
//!                                         │  second INT,
//!                                         │  or the grace expires
//!                                         ▼
//!                                      Killed { by }
//! ```
//!
//! Entering `Stopping` makes the unit not ready and sends the stop signal
//! (the one that came, or SIGTERM for a death dependency); entering `Killed`
//! sends SIGKILL. Every other signal — a second TERM (it does not shorten
//! the grace), a first INT while stopping, TSTP, CONT, real-time signals —
//! is forwarded as it came. Death dependencies are watched only while
//! `Running`. The loop in `run.rs` feeds events in and does what comes out;
//! the clock is an argument, so the policy is tested without one.

use std::time::{Duration, Instant};

use nix::libc::{SIGINT, SIGTERM};

use crate::vocab::text;
use crate::watch;

/// What the supervisor does about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Act {
    /// Nothing.
    Nothing,
    /// Forwards this signal to the child.
    Forward(i32),
    /// Begins the stop: the unit is not ready, the child gets this signal.
    Stop(i32),
    /// Sends SIGKILL, for this reason (logged).
    Kill(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping { by: String, deadline: Instant },
    Killed { by: String },
}

/// The stop policy of one child: where it stands, and how many SIGINTs it
/// has seen.
#[derive(Debug)]
pub(super) struct Stop {
    grace: Duration,
    ints: u32,
    phase: Phase,
}

impl Stop {
    /// A running child, to be killed `grace` after the stop begins.
    pub(super) fn new(grace: Duration) -> Stop {
        Stop {
            grace,
            ints: 0,
            phase: Phase::Running,
        }
    }

    /// Signal `sig` arrived at `now`.
    pub(super) fn on_signal(&mut self, sig: i32, now: Instant) -> Act {
        if sig == SIGINT {
            self.ints += 1;
        }
        match (&self.phase, sig) {
            (Phase::Stopping { by, .. }, SIGINT) if self.ints >= 2 => {
                self.phase = Phase::Killed { by: by.clone() };
                Act::Kill("second SIGINT")
            }
            (Phase::Running, SIGINT | SIGTERM) => {
                self.begin(text::signal_name(sig), now);
                Act::Stop(sig)
            }
            _ => Act::Forward(sig),
        }
    }

    /// A death dependency died (`why` names it and says how) at `now`.
    pub(super) fn on_dead_dep(&mut self, why: String, now: Instant) -> Act {
        match self.phase {
            Phase::Running => {
                self.begin(why, now);
                Act::Stop(SIGTERM)
            }
            _ => Act::Nothing,
        }
    }

    /// The clock reads `now`: kills once the grace has expired.
    pub(super) fn on_tick(&mut self, now: Instant) -> Act {
        match &self.phase {
            Phase::Stopping { by, deadline } if now >= *deadline => {
                self.phase = Phase::Killed { by: by.clone() };
                Act::Kill("grace expired")
            }
            _ => Act::Nothing,
        }
    }

    /// Whether death dependencies are still watched: only while running.
    pub(super) fn watches_deaths(&self) -> bool {
        self.phase == Phase::Running
    }

    /// When SIGKILL is due, while stopping.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Stopping { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// How long the loop may wait for its next event at `now`: until the
    /// deadline while stopping; the dependencies' fallback tick while
    /// running with `deaths` to watch; otherwise (`None`) until a signal.
    pub(super) fn poll_timeout(&self, now: Instant, deaths: bool) -> Option<Duration> {
        match self.deadline() {
            Some(d) => Some(d.saturating_duration_since(now)),
            None if deaths && self.watches_deaths() => Some(watch::FALLBACK),
            None => None,
        }
    }

    /// Why the supervisor stopped the child, if it did.
    pub(super) fn stopped_by(&self) -> Option<String> {
        match &self.phase {
            Phase::Running => None,
            Phase::Stopping { by, .. } | Phase::Killed { by } => Some(by.clone()),
        }
    }

    /// Whether the supervisor killed the child with SIGKILL.
    pub(super) fn killed(&self) -> bool {
        matches!(self.phase, Phase::Killed { .. })
    }

    fn begin(&mut self, by: String, now: Instant) {
        self.phase = Phase::Stopping {
            by,
            deadline: now + self.grace,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc::{SIGHUP, SIGUSR1};

    const GRACE: Duration = Duration::from_secs(30);

    /// TERM begins the stop; a second TERM is forwarded and does not move
    /// the deadline; the grace expiring kills, once.
    #[test]
    fn term_then_grace_then_kill() {
        let t0 = Instant::now();
        let mut s = Stop::new(GRACE);
        assert_eq!(s.on_signal(SIGTERM, t0), Act::Stop(SIGTERM));
        assert_eq!(s.deadline(), Some(t0 + GRACE));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(s.on_signal(SIGTERM, later), Act::Forward(SIGTERM));
        assert_eq!(s.deadline(), Some(t0 + GRACE), "the grace is not shortened");
        assert_eq!(
            s.on_tick(t0 + GRACE - Duration::from_millis(1)),
            Act::Nothing
        );
        assert_eq!(s.on_tick(t0 + GRACE), Act::Kill("grace expired"));
        assert_eq!(s.on_tick(t0 + GRACE * 2), Act::Nothing, "killed once");
        assert_eq!(s.stopped_by().as_deref(), Some("SIGTERM"));
        assert!(s.killed());
    }

    /// The first INT stops, the second kills at once; after a TERM, the
    /// first INT is forwarded and the second kills.
    #[test]
    fn a_second_int_kills() {
        let t0 = Instant::now();
        let mut s = Stop::new(GRACE);
        assert_eq!(s.on_signal(SIGINT, t0), Act::Stop(SIGINT));
        assert_eq!(s.on_signal(SIGINT, t0), Act::Kill("second SIGINT"));
        assert_eq!(s.on_signal(SIGINT, t0), Act::Forward(SIGINT), "killed once");
        assert_eq!(s.stopped_by().as_deref(), Some("SIGINT"));

        let mut s = Stop::new(GRACE);
        assert_eq!(s.on_signal(SIGTERM, t0), Act::Stop(SIGTERM));
        assert_eq!(s.on_signal(SIGINT, t0), Act::Forward(SIGINT));
        assert_eq!(s.on_signal(SIGINT, t0), Act::Kill("second SIGINT"));
        assert_eq!(s.stopped_by().as_deref(), Some("SIGTERM"));
    }

    /// Other signals are forwarded in every phase and change nothing.
    #[test]
    fn other_signals_are_forwarded() {
        let t0 = Instant::now();
        let mut s = Stop::new(GRACE);
        for sig in [SIGHUP, SIGUSR1, nix::libc::SIGRTMIN() + 1] {
            assert_eq!(s.on_signal(sig, t0), Act::Forward(sig));
        }
        assert_eq!(s.stopped_by(), None);
        assert!(!s.killed());
        assert_eq!(s.on_tick(t0 + GRACE * 10), Act::Nothing);
    }

    /// A dead death dependency stops a running child with SIGTERM, and is
    /// no longer watched once a stop began.
    #[test]
    fn a_dead_dependency_stops_only_a_running_child() {
        let t0 = Instant::now();
        let mut s = Stop::new(GRACE);
        assert!(s.watches_deaths());
        assert_eq!(s.poll_timeout(t0, true), Some(watch::FALLBACK));
        assert_eq!(s.poll_timeout(t0, false), None);
        assert_eq!(
            s.on_dead_dep("death dependency db: exited".into(), t0),
            Act::Stop(SIGTERM)
        );
        assert!(!s.watches_deaths());
        assert_eq!(s.on_dead_dep("again".into(), t0), Act::Nothing);
        assert_eq!(
            s.stopped_by().as_deref(),
            Some("death dependency db: exited")
        );
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            s.poll_timeout(t1, true),
            Some(GRACE - Duration::from_secs(10))
        );
        assert_eq!(s.on_signal(SIGTERM, t1), Act::Forward(SIGTERM));
        s.on_tick(t0 + GRACE);
        assert_eq!(
            s.poll_timeout(t0 + GRACE, true),
            None,
            "killed: wait for the child"
        );
    }
}
