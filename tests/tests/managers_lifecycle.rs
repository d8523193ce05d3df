//! A manager's objects over their life: freed when the last proxy in any
//! process is dropped (CPython's refcounting of managed objects, checked by
//! `ManagerMixin.tearDownClass` through `_number_of_objects()`), kept alive
//! by proxies that are cloned, sent to children, or stored in containers.

use multiproc::Manager;
use multiproc::connection::{Connection, pipe};
use multiproc::managers::{DictProxy, ListProxy};
use tests::{DEADLINE, METHODS, leak_guard};

#[multiproc::task]
fn push_and_return(l: ListProxy<u8>, back: Connection<ListProxy<u8>>, go: Connection<()>) {
    l.push(7).unwrap();
    // Hold the proxy until the parent has dropped all of its own.
    go.recv().unwrap();
    back.send(&l).unwrap();
}

#[multiproc::test]
fn number_of_objects_returns_to_before_once_every_proxy_is_dropped() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let before = manager.number_of_objects().unwrap();
        let d = manager.dict::<u8, u8>().unwrap();
        let copy = d.clone();
        drop(d);
        assert_eq!(manager.number_of_objects().unwrap(), before + 1, "{m:?}: a clone keeps it");
        drop(copy);
        assert_eq!(manager.number_of_objects().unwrap(), before, "{m:?}: the last proxy frees it");

        // The list moves into the child's arguments: the parent holds no proxy of it.
        let (back, their_back) = pipe::<ListProxy<u8>>().unwrap();
        let (go, their_go) = pipe::<()>().unwrap();
        let l = manager.list::<u8>().unwrap();
        let mut p = multiproc::get_context(m).process(push_and_return, (l, their_back, their_go)).unwrap();
        p.start().unwrap();
        assert_eq!(manager.number_of_objects().unwrap(), before + 1, "{m:?}: the child's proxy keeps it");
        go.send(&()).unwrap();
        let l = back.recv_timeout(DEADLINE).unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        assert_eq!(l.snapshot().unwrap(), [7], "{m:?}: the child's push, through the proxy it sent back");
        drop(l);
        assert_eq!(manager.number_of_objects().unwrap(), before, "{m:?}");
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn mark(pets: DictProxy<String, ListProxy<String>>, owner: String) {
    pets.get(&owner).unwrap().unwrap().push("marmot".into()).unwrap();
}

#[multiproc::test]
fn test_dict_proxy_nested_inner_proxies_outlive_local_references() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let before = manager.number_of_objects().unwrap();
        let pets = manager.dict::<String, ListProxy<String>>().unwrap();
        pets.insert("ann".into(), manager.list().unwrap()).unwrap();
        let from_start = manager.dict_from([("bob".to_string(), manager.list_from(["cat".to_string()]).unwrap())]);
        let from_start = from_start.unwrap();
        // Only the dicts hold the lists now.
        assert_eq!(manager.number_of_objects().unwrap(), before + 4, "{m:?}");
        let mut p = multiproc::get_context(m).process(mark, (pets.clone(), "ann".to_string())).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        assert_eq!(pets.get(&"ann".into()).unwrap().unwrap().snapshot().unwrap(), ["marmot"], "{m:?}");
        assert_eq!(from_start.get(&"bob".into()).unwrap().unwrap().snapshot().unwrap(), ["cat"], "{m:?}");
        drop((pets, from_start));
        assert_eq!(manager.number_of_objects().unwrap(), before, "{m:?}: a freed dict frees what it held");
        manager.shutdown().unwrap();
    }
}

#[multiproc::test]
fn registered_names_keep_their_object() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let before = manager.number_of_objects().unwrap();
        manager.register("q", &manager.queue::<u8>().unwrap()).unwrap();
        assert_eq!(manager.number_of_objects().unwrap(), before + 1, "{m:?}");
        let q: multiproc::managers::QueueProxy<u8> = manager.lookup("q").unwrap();
        q.put(1).unwrap();
        drop(q);
        manager.register("q", &manager.event().unwrap()).unwrap();
        assert_eq!(manager.number_of_objects().unwrap(), before + 1, "{m:?}: the old queue is freed");
        manager.shutdown().unwrap();
    }
}

static SERVER_NAME: std::sync::OnceLock<(String, u32)> = std::sync::OnceLock::new();

#[multiproc::task]
fn name_the_server(name: String) {
    SERVER_NAME.set((name, std::process::id())).unwrap();
}

#[multiproc::task]
fn refuse_to_start(why: String) {
    panic!("{why}")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Probe;

#[multiproc::managed]
impl Probe {
    /// What the initializer left in the server process, and the pid it ran in.
    fn seen(&self) -> Option<(String, u32)> {
        SERVER_NAME.get().cloned()
    }
}

#[multiproc::test]
fn test_manager_initializer() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder()
            .start_method(m)
            .initializer(name_the_server, ("initialised".to_string(),))
            .start()
            .unwrap();
        let probe = manager.create(Probe).unwrap();
        let seen = probe.seen().unwrap();
        assert_eq!(seen, Some(("initialised".to_string(), manager.pid().unwrap())), "{m:?}: ran in the server");
        assert_eq!(SERVER_NAME.get(), None, "{m:?}: not in the parent");
        drop(probe);
        manager.shutdown().unwrap();

        let failed = Manager::builder().start_method(m).initializer(refuse_to_start, ("no".to_string(),)).start();
        match failed {
            Err(multiproc::Error::InvalidState(msg)) => {
                assert!(msg.contains("refuse_to_start") && msg.contains("panicked"), "{m:?}: {msg}")
            }
            other => panic!("{m:?}: expected InvalidState, got {other:?}"),
        }
    }
}
