//! Manager cases: start, dict proxy round trips, a managed object's method
//! call, and an authenticated Listener/Client connect with one message.

use std::time::Instant;

use multiproc::connection::{Address, Client, Listener};
use multiproc::{Connection, Manager, StartMethod, get_context};

use crate::table::{Figure, Table, python, time_per_op};

const KEY: &[u8] = b"benchmark key";

/// A serde type, so `create` moves it into the server process, as CPython's
/// registered class lives in its manager process.
#[derive(serde::Serialize, serde::Deserialize)]
struct Counter {
    n: u64,
}

#[multiproc::managed]
impl Counter {
    fn incr(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

#[multiproc::task]
fn listener_server(ready: Connection<Address>, n: u64) {
    let Ok(listener) = Listener::bind(Address::tcp("127.0.0.1:0").expect("addr"), Some(KEY)) else { return };
    if ready.send(listener.address()).is_err() {
        return;
    }
    for _ in 0..n {
        let Ok(conn) = listener.accept::<u64>() else { return };
        if let Ok(v) = conn.recv() {
            let _ = conn.send(&(v + 1));
        }
    }
}

fn manager_start(method: StartMethod) -> Figure {
    let warm = Manager::builder().start_method(method).start().expect("manager");
    warm.shutdown().expect("shutdown");
    Figure::Time(time_per_op(3, 10, || {
        let m = Manager::builder().start_method(method).start().expect("manager");
        m.shutdown().expect("shutdown");
    }))
}

fn dict_pairs() -> Figure {
    let m = Manager::builder().start_method(StartMethod::Fork).start().expect("manager");
    let d = m.dict::<u64, u64>().expect("dict");
    for i in 0..2_000 {
        d.insert(i, i).expect("insert");
        d.get(&i).expect("get");
    }
    let n = 10_000u64;
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..n {
            d.insert(i, i).expect("insert");
            assert_eq!(d.get(&i).expect("get"), Some(i));
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    m.shutdown().expect("shutdown");
    Figure::Rate(best)
}

fn managed_call() -> Figure {
    let m = Manager::builder().start_method(StartMethod::Fork).start().expect("manager");
    let c = m.create(Counter { n: 0 }).expect("create");
    for _ in 0..2_000 {
        c.incr(1).expect("incr");
    }
    let f = Figure::Time(time_per_op(3, 50_000, || {
        c.incr(1).expect("incr");
    }));
    m.shutdown().expect("shutdown");
    f
}

fn listener_connect() -> Figure {
    let iters = 2_000u64;
    let (ready, theirs) = multiproc::pipe::<Address>().expect("pipe");
    let mut p = get_context(StartMethod::Fork).process(listener_server, (theirs, iters * 3 + 100)).expect("process");
    p.start().expect("start");
    let address = ready.recv().expect("address");
    let once = || {
        let c = Client::connect::<u64>(&address, Some(KEY)).expect("connect");
        c.send(&1).expect("send");
        assert_eq!(c.recv().expect("recv"), 2);
    };
    for _ in 0..100 {
        once();
    }
    let f = Figure::Time(time_per_op(3, iters as usize, once));
    p.kill().expect("kill");
    p.join().expect("join");
    f
}

pub(crate) fn run(t: &mut Table) {
    for method in [StartMethod::Fork, StartMethod::ForkServer] {
        let ours = manager_start(method);
        let py = python("managers.py", &["start", method.name()]).map(|s| ours.like(s));
        t.row(&format!("manager start+shutdown ({method})"), ours, py, None);
    }
    let ours = dict_pairs();
    let py = python("managers.py", &["dict"]).map(|s| ours.like(s));
    t.row("dict proxy insert+get pairs, one client", ours, py, None);
    let ours = managed_call();
    let py = python("managers.py", &["custom"]).map(|s| ours.like(s));
    t.row("managed object method call (object in the server)", ours, py, None);
    let ours = listener_connect();
    let py = python("managers.py", &["connect"]).map(|s| ours.like(s));
    t.row("Listener/Client auth connect + 1 message (TCP)", ours, py, None);
}
