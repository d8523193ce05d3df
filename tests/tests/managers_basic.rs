//! The manager's headline use: a dict proxy passed to a child, a managed
//! custom type, and the server's lifecycle — under every start method.

use std::time::Duration;

use multiproc::managers::{DictProxy, ListProxy};
use multiproc::{Error, Manager, Process};
use tests::{DEADLINE, METHODS, leak_guard};

#[multiproc::task]
fn record(d: DictProxy<String, u64>, key: String, v: u64) {
    d.insert(key, v).unwrap();
}

struct Counter {
    n: u64,
}

#[multiproc::managed]
impl Counter {
    fn incr(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }

    fn get(&self) -> u64 {
        self.n
    }

    fn host_pid(&self) -> u32 {
        std::process::id()
    }

    fn explode(&self, why: String) -> u64 {
        panic!("asked to explode: {why}")
    }

    /// Hidden from other processes, as Python's managers hide `_` methods.
    fn _reset(&mut self) {
        self.n = 0;
    }
}

#[multiproc::task]
fn bump(c: CounterProxy, times: u64) {
    for _ in 0..times {
        c.incr(1).unwrap();
    }
}

fn manager(m: multiproc::StartMethod) -> Manager {
    Manager::builder().start_method(m).start().unwrap()
}

#[multiproc::test]
fn dict_proxy_written_by_child_is_seen_by_parent() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = manager(m);
        let d = manager.dict::<String, u64>().unwrap();
        let mut p = multiproc::get_context(m).process(record, (d.clone(), "a".to_string(), 1)).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        assert_eq!(d.get(&"a".to_string()).unwrap(), Some(1), "{m:?}");
        manager.shutdown().unwrap();
    }
}

#[multiproc::test]
fn managed_type_is_shared_with_children() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = manager(m);
        let c = manager.create(Counter { n: 0 }).unwrap();
        assert_eq!(c.incr(5).unwrap(), 5);
        let mut kids: Vec<Process> =
            (0..2).map(|_| multiproc::get_context(m).process(bump, (c.clone(), 10)).unwrap()).collect();
        kids.iter_mut().for_each(|p| p.start().unwrap());
        for p in &mut kids {
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        }
        assert_eq!(c.get().unwrap(), 25, "{m:?}");
        manager.shutdown().unwrap();
    }
}

#[multiproc::test]
fn method_panic_comes_back_as_remote_error_and_server_keeps_serving() {
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let c = manager.create(Counter { n: 1 }).unwrap();
    match c.explode("test".into()) {
        Err(Error::Remote(msg)) => {
            assert!(msg.contains("asked to explode: test"), "{msg}");
            assert!(msg.contains("method `explode`"), "the message names the method: {msg}");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert_eq!(c.incr(1).unwrap(), 2);
    manager.shutdown().unwrap();
}

#[multiproc::test]
fn dict_methods_behave_like_a_map() {
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i32>().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.insert("x".into(), 1).unwrap(), None);
    assert_eq!(d.insert("x".into(), 2).unwrap(), Some(1));
    d.update([("y".to_string(), 3), ("z".to_string(), 4)]).unwrap();
    assert_eq!(d.len().unwrap(), 3);
    assert!(d.contains_key(&"y".into()).unwrap());
    assert_eq!(d.keys().unwrap(), vec!["x", "y", "z"]);
    assert_eq!(d.values().unwrap(), vec![2, 3, 4]);
    assert_eq!(d.remove(&"y".into()).unwrap(), Some(3));
    assert_eq!(d.items().unwrap(), vec![("x".to_string(), 2), ("z".to_string(), 4)]);
    assert_eq!(d.setdefault("x".into(), 9).unwrap(), 2);
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    manager.shutdown().unwrap();
}

#[multiproc::test]
fn list_methods_behave_like_a_vec() {
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let l = manager.list_from(0..10u32).unwrap();
    assert_eq!(l.snapshot().unwrap(), (0..10).collect::<Vec<_>>());
    l.reverse().unwrap();
    assert_eq!(l.get(0).unwrap(), 9);
    assert!(matches!(l.get(10), Err(Error::Remote(ref m)) if m.contains("out of range")), "an IndexError");
    l.set(0, 100).unwrap();
    assert!(matches!(l.set(10, 1), Err(Error::Remote(_))));
    l.push(7).unwrap();
    l.extend([8, 9]).unwrap();
    assert_eq!(l.len().unwrap(), 13);
    assert_eq!(l.pop().unwrap(), Some(9));
    let seen: Vec<u32> = l.iter().unwrap().collect();
    assert_eq!(seen[0], 100);
    assert_eq!(seen.len(), 12);
    l.insert(1, 42).unwrap();
    assert_eq!(l.remove(1).unwrap(), 42);
    // count, index, sort, and comparing with a Vec (Python's `l == [..]`).
    let c = manager.list_from([3u32, 1, 3, 2]).unwrap();
    assert_eq!(c.count(&3).unwrap(), 2);
    assert_eq!(c.index(&2).unwrap(), 3);
    assert!(matches!(c.index(&9), Err(Error::InvalidArgument(_))));
    c.sort().unwrap();
    assert!(c == vec![1, 2, 3, 3]);
    c.sort_by(|a, b| b.cmp(a)).unwrap();
    assert!(c == vec![3, 3, 2, 1]);
    assert!(c != vec![3, 3, 2]);
    l.clear().unwrap();
    assert_eq!(l.pop().unwrap(), None);
    manager.shutdown().unwrap();
}

#[multiproc::task]
fn add_pet(pets: DictProxy<String, ListProxy<String>>, owner: String, pet: String) {
    pets.get(&owner).unwrap().unwrap().push(pet).unwrap();
}

#[multiproc::test]
fn nested_proxies_share_state() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = manager(m);
        let pets = manager.dict::<String, ListProxy<String>>().unwrap();
        let bob = manager.list::<String>().unwrap();
        pets.insert("bob".into(), bob.clone()).unwrap();
        let mut p =
            multiproc::get_context(m).process(add_pet, (pets.clone(), "bob".to_string(), "cat".to_string())).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(bob.snapshot().unwrap(), vec!["cat"], "{m:?}");
        pets.clear().unwrap();
        assert_eq!(bob.len().unwrap(), 1, "an inner proxy outlives the outer dict's clear");
        manager.shutdown().unwrap();
    }
}

#[multiproc::test]
fn proxies_fail_cleanly_after_shutdown() {
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let pid = manager.pid().unwrap();
    manager.shutdown().unwrap();
    manager.shutdown().unwrap();
    assert!(manager.pid().is_none());
    assert!(d.insert(1, 1).is_err());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            // The pid may be reused by an unrelated process; it is not our child any more.
            !tests::child_pids().contains(&pid)
        }
    );
    let _ = (DEADLINE, Duration::ZERO);
}

struct Maths;

#[multiproc::managed]
impl Maths {
    fn div(&self, a: i64, b: i64) -> Result<i64, String> {
        if b == 0 { Err("division by zero".into()) } else { Ok(a / b) }
    }
}

#[multiproc::test]
fn method_errors_and_unknown_methods_reach_the_caller() {
    use multiproc::managers::Proxy;
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let m = manager.create(Maths).unwrap();
    assert_eq!(m.div(7, 2).unwrap(), Ok(3));
    assert_eq!(m.div(1, 0).unwrap(), Err("division by zero".to_string()), "the method's own error type comes back");
    match m.token().call::<_, i64>("not_exposed", &()) {
        Err(Error::Remote(msg)) => assert!(msg.contains("not_exposed"), "{msg}"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    let d = manager.dict::<u8, u8>().unwrap();
    assert!(matches!(d.token().call::<_, u8>("no_such_method", &()), Err(Error::Remote(_))));
    // CPython's `_TestMyManager`: a `_` method cannot be called from outside.
    let c = manager.create(Counter { n: 4 }).unwrap();
    assert!(matches!(c.token().call::<_, ()>("_reset", &()), Err(Error::Remote(_))));
    assert_eq!(c.get().unwrap(), 4);
    manager.shutdown().unwrap();
}

/// A serde type: `create` sends it to the server process, as Python does.
#[derive(serde::Serialize, serde::Deserialize)]
struct Tally {
    seen: Vec<String>,
}

#[multiproc::managed]
impl Tally {
    fn see(&mut self, what: String) -> usize {
        self.seen.push(what);
        self.seen.len()
    }

    fn host_pid(&self) -> u32 {
        std::process::id()
    }
}

#[multiproc::task]
fn see_twice(t: TallyProxy) {
    t.see("child".into()).unwrap();
    t.see("child".into()).unwrap();
}

#[multiproc::test]
fn serde_managed_values_live_in_the_server_and_others_in_their_creator() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = manager(m);
        let t = manager.create(Tally { seen: vec!["parent".into()] }).unwrap();
        assert_eq!(t.host_pid().unwrap(), manager.pid().unwrap(), "{m:?}: a serde value moves to the server");
        let mut p = multiproc::get_context(m).process(see_twice, (t.clone(),)).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(t.see("parent".into()).unwrap(), 4, "{m:?}");
        let c = manager.create(Counter { n: 0 }).unwrap();
        assert_eq!(c.host_pid().unwrap(), std::process::id(), "a non-serde value is served by its creator");
        manager.shutdown().unwrap();
    }
}

/// Shapes the generated request enum must carry: a unit result, `mut` and
/// pattern arguments, a raw identifier.
#[derive(serde::Serialize, serde::Deserialize)]
struct Shapes {
    total: u64,
}

#[multiproc::managed]
impl Shapes {
    fn reset(&mut self) {
        self.total = 0;
    }

    fn add(&mut self, mut by: u64, (a, b): (u64, u64)) -> u64 {
        by += a + b;
        self.total += by;
        self.total
    }

    fn r#type(&self) -> String {
        "shapes".into()
    }

    /// Named like a helper the macro could generate.
    fn named(&self, method: String) -> String {
        method
    }
}

#[multiproc::test]
fn calls_by_name_reach_the_same_methods_as_the_typed_proxy() {
    use multiproc::managers::Proxy;
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let s = manager.create(Shapes { total: 0 }).unwrap();
    assert_eq!(s.add(1, (2, 3)).unwrap(), 6);
    assert_eq!(s.token().call::<_, u64>("add", &(1u64, (0u64, 0u64))).unwrap(), 7, "by name, same method");
    assert_eq!(s.r#type().unwrap(), "shapes");
    assert_eq!(s.named("x".into()).unwrap(), "x");
    s.reset().unwrap();
    assert_eq!(s.add(0, (0, 0)).unwrap(), 0);
    let d = manager.dict::<u8, u8>().unwrap();
    d.insert(1, 2).unwrap();
    assert_eq!(d.token().call::<_, u64>("len", &()).unwrap(), 1, "a built-in kind answers by name too");
    match d.token().call::<_, u8>("lenn", &()) {
        Err(Error::Remote(msg)) => assert!(msg.contains("lenn") && msg.contains("dict"), "{msg}"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert!(matches!(d.token().call::<_, u64>("get", &()), Err(Error::Remote(_))), "arguments of the wrong shape");
    assert_eq!(d.get(&1).unwrap(), Some(2), "the server keeps serving");
    manager.shutdown().unwrap();
}

/// CPython's `_TestMyManager`: a generator served with a custom proxytype
/// (`IteratorProxy`), made by another object's method (`method_to_typeid`).
struct Squares {
    next: u64,
    below: u64,
}

/// The user's own proxy type for [`Squares`]: an `Iterator`, calling the
/// shared object by name.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SquaresIter {
    token: multiproc::managers::Token,
}

impl multiproc::managers::Proxy for SquaresIter {
    const KIND: &'static str = <Squares as multiproc::managers::Managed>::TYPE_NAME;
    fn from_token(token: multiproc::managers::Token) -> Self {
        SquaresIter { token }
    }
    fn token(&self) -> &multiproc::managers::Token {
        &self.token
    }
}

impl Iterator for SquaresIter {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.token.call("next_square", &()).expect("the manager serves the iterator")
    }
}

#[multiproc::managed(proxytype = "SquaresIter", create_method = false)]
impl Squares {
    fn next_square(&mut self) -> Option<u64> {
        (self.next < self.below).then(|| {
            self.next += 1;
            (self.next - 1) * (self.next - 1)
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Shop;

#[multiproc::managed(method_to_typeid = "squares")]
impl Shop {
    fn squares(&self, below: u64) -> Squares {
        Squares { next: 0, below }
    }
}

#[multiproc::task]
fn take_five(it: SquaresIter, out: ListProxy<u64>) {
    out.extend(it.take(5)).unwrap();
}

#[multiproc::test]
fn test_mymanager_proxytype_and_method_to_typeid() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = manager(m);
        let before = manager.number_of_objects().unwrap();
        let shop = manager.create(Shop).unwrap();
        let it: SquaresIter = shop.squares(10).unwrap();
        assert_eq!(manager.number_of_objects().unwrap(), before + 2, "{m:?}: the iterator lives in the server");
        let out = manager.list::<u64>().unwrap();
        let mut p = multiproc::get_context(m).process(take_five, (it.clone(), out.clone())).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        assert_eq!(out.snapshot().unwrap(), [0, 1, 4, 9, 16], "{m:?}: the child iterated");
        assert_eq!(it.collect::<Vec<_>>(), [25, 36, 49, 64, 81], "{m:?}: the rest, here");
        drop((shop, out));
        assert_eq!(manager.number_of_objects().unwrap(), before, "{m:?}: the shared result is freed with its proxies");
        manager.shutdown().unwrap();
    }
}
