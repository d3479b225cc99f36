//! A small PostgreSQL-aware TCP proxy for fault tests, the way Citus tests itself (its
//! `mitmproxy`-based failure tests): registered in `pg_dist_node` in place of a worker, it passes
//! every byte between the coordinator and that worker, reads the protocol's message boundaries,
//! and at a chosen moment kills, closes or stalls the connection: when a query containing some
//! text is sent, when a command completes, or after so many bytes of `COPY` data.
//!
//! The proxy answers `SSLRequest` with `N`, so the client falls back to plain text and the
//! messages can be read; the test cluster sets `citus.node_conninfo = 'sslmode=prefer'` for that.
//!
//! Faults are armed with [`FaultProxy::arm`] and fire once; [`FaultProxy::disarm`] and
//! [`FaultProxy::fired`] tell the test what happened. Every query seen is kept in a log (see
//! [`FaultProxy::queries`]) so a test can say what the worker was asked.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// When a fault fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    /// The client sends a query (simple `Q` or extended `P`) whose text contains this
    /// (case-insensitive); the query does not reach the worker.
    Query(String),
    /// The worker reports a command complete whose tag starts with this (`COPY`, `PREPARE
    /// TRANSACTION`, `COMMIT PREPARED`…); the report does not reach the client.
    Completed(String),
    /// The client has sent more than this many bytes of `COPY … FROM STDIN` data on one
    /// connection; the rest does not reach the worker.
    CopyBytes(usize),
    /// Every new connection, for as long as the fault is armed (a worker that is down).
    Connect,
}

/// What happens then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reset both sides (TCP RST), as when a machine or network fails.
    Kill,
    /// Close both sides in order (FIN), as when a server process exits.
    Close,
    /// Hold the message this long, then pass it and go on.
    Stall(Duration),
}

#[derive(Debug, Clone)]
struct Fault {
    moment: Moment,
    action: Action,
    /// Matches to let pass before firing.
    skip: usize,
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    fired: Vec<String>,
    queries: Vec<String>,
    /// Open connections, so a fault can cut all of them.
    conns: Vec<(TcpStream, TcpStream)>,
}

/// A proxy in front of one worker, on a loopback port of its own.
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let s = s.clone();
                thread::spawn(move || {
                    let _ = serve(client, target_port, &s);
                });
            }
        });
        FaultProxy { port, state, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Fire `action` at the `skip + 1`-th `moment` from now on (replaces an armed fault).
    pub fn arm(&self, moment: Moment, action: Action, skip: usize) {
        self.lock().fault = Some(Fault {
            moment,
            action,
            skip,
        });
    }

    /// No more faults; connections pass untouched.
    pub fn disarm(&self) {
        self.lock().fault = None;
    }

    /// What fired so far, described.
    pub fn fired(&self) -> Vec<String> {
        self.lock().fired.clone()
    }

    /// Every query text the client sent through this proxy, in order.
    pub fn queries(&self) -> Vec<String> {
        self.lock().queries.clone()
    }

    /// Cut every open connection now (RST).
    pub fn kill_all(&self) {
        let conns = std::mem::take(&mut self.lock().conns);
        for (a, b) in conns {
            reset(&a);
            reset(&b);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.kill_all();
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
    let _ = s.shutdown(Shutdown::Both);
}

/// The decision for one message: pass it, or act.
fn check(state: &Mutex<State>, event: &Moment, describe: impl Fn() -> String) -> Option<Action> {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let fault = s.fault.as_mut()?;
    let hit = match (&fault.moment, event) {
        (Moment::Query(want), Moment::Query(got)) => got
            .to_ascii_lowercase()
            .contains(&want.to_ascii_lowercase()),
        (Moment::Completed(want), Moment::Completed(got)) => got
            .to_ascii_uppercase()
            .starts_with(&want.to_ascii_uppercase()),
        (Moment::CopyBytes(limit), Moment::CopyBytes(sent)) => sent > limit,
        (Moment::Connect, Moment::Connect) => {
            let action = fault.action;
            s.fired.push("connection refused".into());
            return Some(action);
        }
        _ => false,
    };
    if !hit {
        return None;
    }
    if fault.skip > 0 {
        fault.skip -= 1;
        return None;
    }
    let action = fault.action;
    s.fault = None;
    s.fired.push(format!("{action:?} at {}", describe()));
    Some(action)
}

fn serve(mut client: TcpStream, target_port: u16, state: &Arc<Mutex<State>>) -> io::Result<()> {
    client.set_nodelay(true)?;
    if let Some(action) = check(state, &Moment::Connect, String::new) {
        if action == Action::Kill {
            reset(&client);
        }
        return Ok(());
    }
    // The startup phase: answer SSL and GSS encryption requests with "no" ourselves, then pass
    // the startup message on.
    let startup = loop {
        let mut len = [0u8; 4];
        client.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        if !(8..=10_000).contains(&n) {
            return Ok(());
        }
        let mut body = vec![0u8; n - 4];
        client.read_exact(&mut body)?;
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == 80_877_103 || code == 80_877_104 {
            client.write_all(b"N")?;
            continue;
        }
        let mut msg = len.to_vec();
        msg.extend_from_slice(&body);
        break msg;
    };
    let mut server = TcpStream::connect(("127.0.0.1", target_port))?;
    server.set_nodelay(true)?;
    server.write_all(&startup)?;
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .conns
        .push((client.try_clone()?, server.try_clone()?));
    let (c2, s2, st) = (client.try_clone()?, server.try_clone()?, state.clone());
    let back = thread::spawn(move || pump(s2, c2, &st, Side::Server));
    let _ = pump(
        client.try_clone()?,
        server.try_clone()?,
        state,
        Side::Client,
    );
    let _ = back.join();
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Messages the client (coordinator) sends.
    Client,
    /// Messages the worker sends back.
    Server,
}

/// Copy typed protocol messages from `from` to `to`, checking each against the armed fault.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    state: &Mutex<State>,
    side: Side,
) -> io::Result<()> {
    let mut copied = 0usize;
    let result = (|| -> io::Result<()> {
        loop {
            let mut head = [0u8; 5];
            from.read_exact(&mut head)?;
            let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; n.saturating_sub(4)];
            from.read_exact(&mut body)?;
            let event = match (side, head[0]) {
                (Side::Client, b'Q') => Some(Moment::Query(cstr(&body))),
                // Parse: statement name, then the query text.
                (Side::Client, b'P') => {
                    let name_end = body.iter().position(|b| *b == 0).unwrap_or(0);
                    Some(Moment::Query(cstr(&body[name_end + 1..])))
                }
                (Side::Client, b'd') => {
                    copied += body.len();
                    Some(Moment::CopyBytes(copied))
                }
                (Side::Server, b'C') => Some(Moment::Completed(cstr(&body))),
                _ => None,
            };
            if let Some(Moment::Query(q)) = &event {
                state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .queries
                    .push(q.clone());
            }
            if let Some(e) = &event {
                let describe = || match e {
                    Moment::Query(q) => format!("query {}", short(q)),
                    Moment::Completed(t) => format!("completion {t}"),
                    Moment::CopyBytes(n) => format!("{n} bytes of COPY data"),
                    Moment::Connect => "connect".into(),
                };
                match check(state, e, describe) {
                    Some(Action::Kill) => {
                        reset(&from);
                        reset(&to);
                        return Ok(());
                    }
                    Some(Action::Close) => {
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                        return Ok(());
                    }
                    Some(Action::Stall(d)) => thread::sleep(d),
                    None => {}
                }
            }
            to.write_all(&head)?;
            to.write_all(&body)?;
        }
    })();
    // One side ended: end the other, so neither waits forever.
    let _ = to.shutdown(Shutdown::Write);
    result
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn short(q: &str) -> String {
    let one: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the proxy to the test cluster's coordinator: queries pass and are logged, and an
    /// armed fault cuts the connection at the query it names, once.
    #[test]
    fn passes_queries_and_kills_at_the_named_one() {
        let admin = crate::admin_url();
        let port = crate::port_of(&admin);
        let proxy = FaultProxy::start(port);
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port());
        let mut c = crate::connect(&url);
        let n: i32 = c.query_one("SELECT 41 + 1", &[]).unwrap().get(0);
        assert_eq!(n, 42);
        assert!(proxy.queries().iter().any(|q| q.contains("41 + 1")));
        proxy.arm(Moment::Query("pg_sleep".into()), Action::Kill, 1);
        c.batch_execute("SELECT pg_sleep(0)").unwrap();
        assert!(c.batch_execute("SELECT pg_sleep(0)").is_err());
        assert_eq!(proxy.fired().len(), 1, "{:?}", proxy.fired());
        // Fired once: a new connection works.
        let mut c = crate::connect(&url);
        c.batch_execute("SELECT pg_sleep(0)").unwrap();
        proxy.arm(Moment::Connect, Action::Close, 0);
        assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());
        proxy.disarm();
        crate::connect(&url).batch_execute("SELECT 1").unwrap();
    }

    #[test]
    fn a_completion_can_be_withheld_after_the_server_ran_it() {
        let admin = crate::admin_url();
        let proxy = FaultProxy::start(crate::port_of(&admin));
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port());
        let mut c = crate::connect(&url);
        c.batch_execute("CREATE TEMP TABLE t (x int)").unwrap();
        proxy.arm(Moment::Completed("INSERT".into()), Action::Kill, 0);
        assert!(c.batch_execute("INSERT INTO t VALUES (1)").is_err());
        assert_eq!(proxy.fired().len(), 1);
    }
}
