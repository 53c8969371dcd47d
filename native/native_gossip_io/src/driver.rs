//! The I/O driver: the OS thread that runs one topology's engine over its sockets. The
//! loop only waits, reads a batch, hands it to the engine, sends what the engine
//! returns and puts events in the outbox (telling the owner when it should look): every decision is the engine's, every socket call is in
//! `socket`. It sleeps in `poll(2)` on the sockets and a wake-up socket until a
//! datagram, a command or the engine's next deadline, so an idle topology wakes only to
//! send and receive heartbeats.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::socket::{BatchReceiver, Join, SocketConfig, Sockets, Source, BATCH};
use crate::topology::{own_addresses, same_family, wall_ms, Command, EventSink, Shared};
use native_gossip_core::engine::Transmit;
use native_gossip_core::peers::PeerEvent;

/// The thread's state; built by `Topology::start`.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sockets: Sockets,
    pub(crate) wake_rx: UnixDatagram,
    pub(crate) commands: Receiver<Command>,
    pub(crate) socket: SocketConfig,
    pub(crate) join: JoinState,
}

/// First retry of a failed join; each next one doubles, up to `JOIN_RETRY_MAX`.
const JOIN_RETRY_FIRST: Duration = Duration::from_millis(250);
const JOIN_RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a joined socket checks that it still is (an interface that went away
/// and came back has lost its memberships).
const JOIN_REFRESH: Duration = Duration::from_secs(5);

/// Membership bookkeeping of the thread.
pub(crate) struct JoinState {
    /// `None` when joined; otherwise why not (reported once per change).
    failure: Option<String>,
    next_check: Instant,
    backoff: Duration,
    /// The failure at start still has to be reported.
    unreported: bool,
    /// The last check found no address but loopback, where an earlier one found one
    /// (a link down): checked again soon, so that heartbeats list the address again as
    /// soon as it is back (with a secret, peers drop a heartbeat that lists none of its
    /// source's). A host on loopback alone by design keeps the usual refresh.
    no_address: bool,
    /// Some check found an address other than loopback.
    had_address: bool,
}

impl JoinState {
    pub(crate) fn new(now: Instant, failure: Option<String>) -> Self {
        let unreported = failure.is_some();
        let first = if unreported {
            JOIN_RETRY_FIRST
        } else {
            JOIN_REFRESH
        };
        JoinState {
            next_check: now + first,
            failure,
            backoff: JOIN_RETRY_FIRST,
            unreported,
            no_address: false,
            had_address: false,
        }
    }

    /// A deadline for the thread's sleep only while not joined or without an address:
    /// the refresh of a joined socket rides on the wake-ups the heartbeats cause anyway.
    fn deadline(&self) -> Option<Instant> {
        (self.failure.is_some() || self.no_address).then_some(self.next_check)
    }
}

/// Datagrams read per wake-up and socket before timers and commands get a turn.
const RECV_BATCH: usize = 256;
/// Longest sleep, so that a lost wake-up can never hang a stop for long.
const MAX_SLEEP: Duration = Duration::from_secs(5);

enum Flow {
    Continue,
    Stop,
}

impl Worker {
    /// Starts the thread.
    pub(crate) fn spawn(self, sink: impl EventSink) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("native_gossip".into())
            .spawn(move || self.run(sink))
    }

    fn run(mut self, mut sink: impl EventSink) {
        match catch_unwind(AssertUnwindSafe(|| self.serve(&mut sink))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => sink.fault(&format!("socket error: {e}")),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                sink.fault(&format!("native thread panicked: {what}"));
            }
        }
    }

    fn serve(&mut self, sink: &mut impl EventSink) -> io::Result<()> {
        let mut events = Vec::new();
        let mut outgoing = Vec::new();
        let mut batch = BatchReceiver::new();
        if self.join.unreported {
            self.join.unreported = false;
            sink.membership(Err(self.join.failure.as_deref().unwrap_or_default()));
        }
        loop {
            let mut deadline = self.shared.engine.lock().next_deadline();
            if let Some(t) = self.join.deadline() {
                deadline = deadline.min(t);
            }
            if let Some(t) = self.shared.outbox.lock().deadline() {
                deadline = deadline.min(t);
            }
            let sleep = deadline
                .saturating_duration_since(Instant::now())
                .min(MAX_SLEEP);
            let ready = self.sockets.wait(&self.wake_rx, sleep)?;
            if ready.wake {
                let mut drain = [0u8; 64];
                while self.wake_rx.recv(&mut drain).is_ok() {}
            }
            if let Flow::Stop = self.run_commands()? {
                return Ok(());
            }
            if ready.group {
                self.receive(Source::Group, &mut batch, &mut events)?;
            }
            if ready.unicast {
                self.receive(Source::Unicast, &mut batch, &mut events)?;
            }
            if ready.answers {
                self.receive(Source::Answers, &mut batch, &mut events)?;
            }
            let now = Instant::now();
            if now >= self.join.next_check {
                self.check_membership(now, sink);
            }
            {
                let mut engine = self.shared.engine.lock();
                let wall = wall_ms();
                engine.set_clock(now, wall);
                engine.handle_timeout(now, &mut events);
                while let Some(t) = engine.poll_transmit(now, wall) {
                    outgoing.push(t);
                }
            }
            self.send(&mut outgoing);
            let notify = {
                let mut outbox = self.shared.outbox.lock();
                let pushed = outbox.push(events.drain(..), now);
                pushed | outbox.poll(now)
            };
            if notify && !sink.ready() {
                return Ok(());
            }
        }
    }

    /// Sends what the engine decided, without holding its lock, then counts it.
    fn send(&self, outgoing: &mut Vec<Transmit>) {
        if outgoing.is_empty() {
            return;
        }
        let results: Vec<_> = outgoing.iter().map(|t| self.sockets.send(t)).collect();
        outgoing.clear();
        let mut engine = self.shared.engine.lock();
        for result in results {
            engine.record_send(result.err());
        }
    }

    /// Joins if not a member, or checks that a joined socket still is one. A join that
    /// succeeds after a failure, or after the membership was lost, starts the joining
    /// burst again so that peers answer at once.
    fn check_membership(&mut self, now: Instant, sink: &mut impl EventSink) {
        // The host's addresses may have changed too (DHCP, an interface up or down):
        // heartbeats list the current ones.
        let addrs = own_addresses(&self.socket);
        let none = addrs.iter().all(|a| a.is_loopback());
        self.join.no_address = none && self.join.had_address;
        self.join.had_address |= !none;
        self.shared.engine.lock().set_own_addresses(addrs);
        // Without an address (a link down), soon again: the link may be back any moment.
        let refresh = if self.join.no_address {
            JOIN_RETRY_FIRST
        } else {
            JOIN_REFRESH
        };
        match self.sockets.join(&self.socket) {
            Join::AlreadyMember => {
                self.join.next_check = now + refresh;
            }
            Join::Joined => {
                self.shared.joined.store(true, Ordering::Relaxed);
                let was_reported = self.join.failure.take().is_some();
                self.join.next_check = now + refresh;
                self.join.backoff = JOIN_RETRY_FIRST;
                self.shared.engine.lock().restart_burst(now);
                if was_reported {
                    sink.membership(Ok(()));
                }
            }
            Join::Failed(why) => {
                self.shared.joined.store(false, Ordering::Relaxed);
                if self.join.failure.as_deref() != Some(why.as_str()) {
                    sink.membership(Err(&why));
                }
                self.join.failure = Some(why);
                self.join.next_check = now + self.join.backoff.min(refresh);
                self.join.backoff = (self.join.backoff * 2).min(JOIN_RETRY_MAX);
            }
        }
    }

    fn run_commands(&mut self) -> io::Result<Flow> {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return Ok(Flow::Continue),
                // The owner is gone without saying stop: leave quietly.
                Err(TryRecvError::Disconnected) => return Ok(Flow::Stop),
            };
            if let Command::PauseForTest(d) = command {
                std::thread::sleep(d);
                continue;
            }
            let mut engine = self.shared.engine.lock();
            match command {
                Command::PauseForTest(_) => {}
                Command::Announce => engine.announce(Instant::now()),
                Command::Panic => panic!("panic requested by the test hook"),
                Command::SetSeeds(seeds) => engine.set_seeds(same_family(seeds, &self.socket)),
                Command::Stop { leave } => {
                    if leave {
                        // The goodbye lists the host's addresses as they are now (a
                        // link just back: peers would drop it otherwise).
                        engine.set_own_addresses(own_addresses(&self.socket));
                        engine.leave(wall_ms(), Instant::now());
                        let mut goodbyes = Vec::new();
                        while let Some(t) = engine.poll_transmit(Instant::now(), wall_ms()) {
                            goodbyes.push(t);
                        }
                        drop(engine);
                        self.send(&mut goodbyes);
                    }
                    return Ok(Flow::Stop);
                }
            }
        }
    }

    /// Reads what is waiting on one socket, up to RECV_BATCH datagrams, a batch per
    /// system call, and hands each batch to the engine.
    fn receive(
        &mut self,
        from: Source,
        batch: &mut BatchReceiver,
        events: &mut Vec<PeerEvent>,
    ) -> io::Result<()> {
        let mut read = 0;
        while read < RECV_BATCH {
            let (n, via) = self.sockets.recv(from, batch)?;
            if n == 0 {
                break;
            }
            let now = Instant::now();
            let mut engine = self.shared.engine.lock();
            for i in 0..n {
                // A datagram longer than a slot is cut to it; it is still over
                // MAX_PACKET, so it is counted as too long.
                if let (data, Some(from)) = batch.get(i) {
                    events.extend(engine.handle_datagram(data, from, via, now));
                }
            }
            read += n;
            if n < BATCH {
                // Drained (a batch comes back short only then): another read would be
                // a system call that finds nothing, once per datagram on a quiet
                // group. What arrives meanwhile wakes the next wait.
                break;
            }
        }
        Ok(())
    }
}
