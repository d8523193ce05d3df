//! Value, Array, RawValue, RawArray, SharedMemory, ShareableList and the
//! resource tracker (PARITY §7, §8).

use multiproc::{Array, Error, Event, RawArray, RawValue, ShareableList, SharedMemory, Value, get_context};
use tests::{DEADLINE, METHODS, leak_guard, shm_entries, wait_until};

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Point {
    x: i32,
    pad: i32,
    y: f64,
    z: i64,
}

#[multiproc::task]
fn double_all(i: Value<i32>, d: Value<f64>, q: RawValue<i64>, pt: Value<Point>, arr: Array<f64>, raw: RawArray<u8>) {
    *i.lock().unwrap() *= 2;
    d.set(d.get() * 2.0);
    q.set(q.get() * 2);
    {
        let mut p = pt.lock().unwrap();
        p.x *= 2;
        p.y *= 2.0;
        p.z *= 2;
    }
    for x in arr.lock().unwrap().iter_mut() {
        *x *= 2.0;
    }
    let n = raw.len() / 2;
    let mut all = raw.to_vec();
    let (a, b) = all.split_at_mut(n);
    b.copy_from_slice(a);
    raw.copy_from_slice(&all).unwrap();
}

#[multiproc::test]
fn values_and_arrays_written_by_a_child_are_seen_by_the_parent() {
    let _g = leak_guard();
    for m in METHODS {
        let i = Value::new(7i32).unwrap();
        let d = Value::new(1.0f64 / 3.0).unwrap();
        let q = RawValue::new(1i64 << 33).unwrap();
        let pt = Value::new(Point { x: 7, pad: 0, y: 1.0 / 3.0, z: 1 << 33 }).unwrap();
        let arr = Array::from_slice(&[1.0f64, 2.0, 3.0]).unwrap();
        let mut raw = RawArray::<u8>::zeroed(20).unwrap();
        // SAFETY: no other handle of this new array exists yet.
        unsafe { raw.as_mut_slice()[..5].copy_from_slice(b"hello") };
        let mut p = get_context(m)
            .process(double_all, (i.clone(), d.clone(), q.clone(), pt.clone(), arr.clone(), raw.clone()))
            .unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(i.get(), 14, "{m:?}");
        assert_eq!(d.get(), 2.0 / 3.0);
        assert_eq!(q.get(), 1 << 34);
        assert_eq!(pt.get(), Point { x: 14, pad: 0, y: 2.0 / 3.0, z: 1 << 34 });
        assert_eq!(arr.to_vec(), vec![2.0, 4.0, 6.0]);
        assert_eq!(&raw.to_vec()[..15], b"hello\0\0\0\0\0hello");
    }
}

#[multiproc::test]
fn arrays_index_and_are_zeroed() {
    let _g = leak_guard();
    for _ in 0..3 {
        let a = Array::<i32>::zeroed(10).unwrap();
        assert_eq!(a.to_vec(), vec![0; 10]);
        a.set(4, 1).unwrap();
        assert_eq!(a.get(4), Some(1));
        assert_eq!(a.get(10), None);
        assert!(matches!(a.set(10, 1), Err(Error::InvalidArgument(_))));
        a.lock().unwrap()[4..8].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(a.len(), 10);
    }
    let empty = RawArray::<u64>::from_slice(&[]).unwrap();
    assert!(empty.is_empty());
    let lock = multiproc::Lock::new().unwrap();
    let v = Value::with_lock(5u8, lock.clone()).unwrap();
    let _held = lock.lock().unwrap();
    assert!(v.get_lock().locked(), "get_lock returns the lock given");
}

#[multiproc::task]
fn shm_child(shm: SharedMemory, by_name: String) {
    shm.write_at(0, b"howdy").unwrap();
    let other = SharedMemory::attach(&by_name).unwrap();
    other.write_at(5, b"HELLO").unwrap();
    assert!(matches!(other.write_at(other.size() - 2, b"abc"), Err(Error::InvalidArgument(_))));
}

#[multiproc::test]
fn shared_memory_is_shared_by_name_and_as_an_argument() {
    let _g = leak_guard();
    for m in METHODS {
        let shm = SharedMemory::create(512).unwrap();
        assert!(shm.name().starts_with("multiproc"));
        assert!(shm.size() >= 512 && shm.to_vec().len() >= 512);
        let mut p = get_context(m).process(shm_child, (shm.clone(), shm.name().to_string())).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(&shm.to_vec()[..10], b"howdyHELLO", "{m:?}");
        let again = SharedMemory::attach(shm.name()).unwrap();
        assert_eq!(again.size(), shm.size());
        shm.unlink().unwrap();
        assert!(matches!(shm.unlink(), Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound));
        assert!(
            matches!(SharedMemory::attach(shm.name()), Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound)
        );
    }
}

#[multiproc::test]
fn shared_memory_rejects_bad_arguments() {
    let _g = leak_guard();
    assert!(matches!(SharedMemory::create(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(SharedMemory::attach("multiproc-no-such-segment"), Err(Error::Io { .. })));
    assert!(matches!(SharedMemory::attach("bad\0name"), Err(Error::InvalidArgument(_))));
    let a = SharedMemory::create_named("multiproc-test-dup", 64).unwrap();
    assert!(matches!(SharedMemory::create_named("multiproc-test-dup", 64),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists));
    a.unlink().unwrap();
}

#[multiproc::test]
fn shareable_list_reads_writes_and_attaches() {
    let _g = leak_guard();
    let l = ShareableList::new(&[5i64, -273, 100, 42, 42]).unwrap();
    assert_eq!(l.len(), 5);
    assert_eq!(l.get(5), None);
    assert!(matches!(l.set(5, 1), Err(Error::InvalidArgument(_))));
    assert_eq!(l.index(&100), Some(2));
    assert_eq!(l.count(&42), 2);
    let other = ShareableList::<i64>::attach(l.shm().name()).unwrap();
    other.set(0, 7).unwrap();
    assert_eq!(l.get(0), Some(7));
    assert!(matches!(ShareableList::<u8>::attach(l.shm().name()), Err(Error::Decode { .. })));
    l.unlink().unwrap();
    let empty = ShareableList::<u32>::new(&[]).unwrap();
    assert_eq!(empty.len(), 0);
    assert_eq!(empty.index(&1), None);
    empty.unlink().unwrap();
}

#[multiproc::task]
fn create_and_die(name_out: multiproc::Queue<String>, done: Event) {
    let shm = SharedMemory::create(4096).unwrap();
    name_out.put(shm.name().to_string()).unwrap();
    done.wait(None);
}

#[multiproc::test]
fn segments_of_a_killed_creator_are_unlinked() {
    let _g = leak_guard();
    for m in METHODS {
        let names = multiproc::Queue::new().unwrap();
        let done = Event::new().unwrap();
        let mut p = get_context(m).process(create_and_die, (names.clone(), done.clone())).unwrap();
        p.start().unwrap();
        let name = names.get_timeout(DEADLINE).unwrap();
        assert!(shm_entries().contains(&name), "{m:?}: the segment should exist while its creator runs");
        p.kill().unwrap();
        p.join().unwrap();
        wait_until(
            || !shm_entries().contains(&name),
            format_args!("{m:?}: {name} to be unlinked after its creator died"),
        );
    }
}

/// Creates and unlinks named segments (`<prefix>-<i>`) until it is killed;
/// a name that is taken is skipped.
#[multiproc::task]
fn churn_named_segments(prefix: String, started: Event) {
    for i in 0u64.. {
        match SharedMemory::create_named(&format!("{prefix}-{}", i % 8), 4096) {
            Ok(shm) => shm.unlink().unwrap(),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{e}"),
        }
        started.set();
    }
}

/// A creator SIGKILLed at a random moment of `create_named` (between
/// `shm_open` and the tracker's registration, among others) leaves nothing in
/// `/dev/shm`, and never takes a segment that another process owns.
#[multiproc::test]
fn a_creator_killed_mid_create_named_leaks_nothing() {
    let _g = leak_guard();
    let mut rng = tests::Rng(0xdead_5ee0);
    for m in METHODS {
        for round in 0..25 {
            let prefix = format!("multiproc-test-churn-{}-{round}", std::process::id());
            // A segment of someone else's under a name the child will try to take.
            let bystander = SharedMemory::options().track(false).name(&format!("{prefix}-3")).create(64).unwrap();
            let started = Event::new().unwrap();
            let mut p = get_context(m).process(churn_named_segments, (prefix.clone(), started.clone())).unwrap();
            p.start().unwrap();
            assert!(started.wait(Some(DEADLINE)), "{m:?}: the child did not start creating");
            // Kill at a random point of its create/unlink loop.
            let until = std::time::Instant::now() + std::time::Duration::from_micros(rng.next_u64() % 3000);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            p.kill().unwrap();
            p.join().unwrap();
            let mine = |e: &String| e.starts_with(&prefix) && *e != bystander.name();
            wait_until(
                || !shm_entries().iter().any(mine),
                format_args!("{m:?} round {round}: the killed creator's segments to be unlinked"),
            );
            assert!(shm_entries().contains(bystander.name()), "{m:?}: another process's segment was unlinked");
            bystander.unlink().unwrap();
        }
    }
}

#[multiproc::task]
fn increment_under_get_lock(counter: Value<u64>, times: u64, by_guard: bool) {
    for _ in 0..times {
        if by_guard {
            let _g = counter.get_lock().lock().unwrap();
            counter.set(counter.get() + 1);
        } else {
            assert!(counter.get_lock().acquire(true, None).unwrap());
            counter.set(counter.get() + 1);
            counter.get_lock().release().unwrap();
        }
    }
}

/// Python's `with counter.get_lock(): counter.value += 1` from four processes:
/// `get`/`set` under this thread's own hold do not wait for themselves, and
/// the hold still excludes the other processes.
#[multiproc::test]
fn the_get_lock_idiom_counts_every_increment() {
    let _g = leak_guard();
    for m in METHODS {
        for by_guard in [false, true] {
            let counter = Value::new(0u64).unwrap();
            let mut ps: Vec<_> = (0..4)
                .map(|_| get_context(m).process(increment_under_get_lock, (counter.clone(), 1000, by_guard)).unwrap())
                .collect();
            for p in &mut ps {
                p.start().unwrap();
            }
            for p in &mut ps {
                p.join().unwrap();
                assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
            }
            assert_eq!(counter.get(), 4000, "{m:?}, by guard: {by_guard}");
        }
    }
}

/// The program that used to hold two live `&mut` to one cell: a clone's
/// `release` under a live guard is refused, so a second guard cannot start
/// until the first drops.
#[multiproc::test]
fn a_release_cannot_free_the_lock_under_a_value_guard() {
    let _g = leak_guard();
    let v = Value::new(1u64).unwrap();
    let other = v.clone();
    let mut guard = v.lock().unwrap();
    assert!(matches!(other.get_lock().release(), Err(Error::InvalidState(_))));
    assert!(other.get_lock().locked());
    assert!(other.get_lock().try_lock().is_none(), "the guard still holds the lock");
    *guard += 1;
    drop(guard);
    assert_eq!(other.get(), 2);
    let a = Array::from_slice(&[1u32, 2]).unwrap();
    let g = a.lock().unwrap();
    assert!(matches!(a.clone().get_lock().release(), Err(Error::InvalidState(_))));
    drop(g);
    assert!(matches!(a.get_lock().release(), Err(Error::InvalidState(_))), "unlocked now");
    // A plain acquire may still be released by anyone (Python semantics).
    assert!(a.get_lock().acquire(true, None).unwrap());
    a.clone().get_lock().release().unwrap();
}

/// The copying accessors of the unlocked types stay correct under a racing writer.
#[multiproc::test]
fn raw_copies_are_whole_values_when_nothing_races() {
    let _g = leak_guard();
    let raw = RawArray::<u64>::from_slice(&[1, 2, 3, 4, 5]).unwrap();
    let clone = raw.clone();
    clone.copy_from_slice(&[10, 20, 30, 40, 50]).unwrap();
    assert_eq!(raw.to_vec(), vec![10, 20, 30, 40, 50]);
    assert!(matches!(raw.copy_from_slice(&[1]), Err(Error::InvalidArgument(_))));
    let list = ShareableList::new(&[1u16, 2, 3]).unwrap();
    list.clone().set(1, 7).unwrap();
    assert_eq!(list.to_vec(), vec![1, 7, 3]);
    assert_eq!(list.index(&7), Some(1));
    list.unlink().unwrap();
}

/// Doubles every field of the struct and every element, in whatever handles it is given.
#[multiproc::task]
fn double_copies(pt: Value<Point>, raw: RawValue<Point>, arr: Array<f64>, raw_arr: RawArray<i64>) {
    let double = |p: Point| Point { x: p.x * 2, pad: 0, y: p.y * 2.0, z: p.z * 2 };
    pt.set(double(pt.get()));
    raw.set(double(raw.get()));
    for x in arr.lock().unwrap().iter_mut() {
        *x *= 2.0;
    }
    let doubled: Vec<i64> = raw_arr.to_vec().iter().map(|x| x * 2).collect();
    raw_arr.copy_from_slice(&doubled).unwrap();
}

#[multiproc::test]
fn test_copy() {
    // _TestSharedCTypes.test_copy: `copy(foo)` keeps foo's contents and is independent of it.
    let _g = leak_guard();
    let foo = Point { x: 2, pad: 0, y: 5.0, z: 1 << 33 };
    for m in METHODS {
        let (pt, raw) = (Value::new(foo).unwrap(), RawValue::new(foo).unwrap());
        let (arr, raw_arr) = (Array::from_slice(&[1.0f64, 2.5]).unwrap(), RawArray::from_slice(&[3i64, -4]).unwrap());
        let copies = (pt.copy().unwrap(), raw.copy().unwrap(), arr.copy().unwrap(), raw_arr.copy().unwrap());
        // A child changes the originals: the copies keep the old contents.
        let mut p =
            get_context(m).process(double_copies, (pt.clone(), raw.clone(), arr.clone(), raw_arr.clone())).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        let doubled = Point { x: 4, pad: 0, y: 10.0, z: 1 << 34 };
        assert_eq!((pt.get(), raw.get()), (doubled, doubled), "{m:?}");
        assert_eq!((arr.to_vec(), raw_arr.to_vec()), (vec![2.0, 5.0], vec![6, -8]), "{m:?}");
        assert_eq!((copies.0.get(), copies.1.get()), (foo, foo), "{m:?}: a copy followed its original");
        assert_eq!((copies.2.to_vec(), copies.3.to_vec()), (vec![1.0, 2.5], vec![3, -4]), "{m:?}");
        // A child changes the copies: the originals stay as they are.
        let mut p = get_context(m).process(double_copies, copies.clone()).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(copies.0.get(), doubled, "{m:?}");
        assert_eq!(copies.3.to_vec(), vec![6, -8], "{m:?}");
        assert_eq!((pt.get(), arr.to_vec()), (doubled, vec![2.0, 5.0]), "{m:?}: an original followed its copy");
        // Each copy of a locked object has a lock of its own.
        let _held = pt.get_lock().lock().unwrap();
        assert!(!copies.0.get_lock().locked(), "{m:?}: a copy shares its original's lock");
    }
}

/// Creates one tracked and one untracked segment, writes to both, sends their
/// names (tracked first) and waits to be killed or let go.
#[multiproc::task]
fn create_tracked_and_untracked(names: multiproc::Queue<String>, done: Event) -> multiproc::Result<()> {
    let tracked = SharedMemory::create(64)?;
    let untracked = SharedMemory::options().track(false).create(64)?;
    assert!(tracked.tracked() && !untracked.tracked());
    untracked.write_at(0, b"survivor")?;
    names.put(tracked.name().to_string())?;
    names.put(untracked.name().to_string())?;
    done.wait(Some(DEADLINE));
    Ok(())
}

#[multiproc::test]
fn shared_memory_untracking() {
    // Python 3.13's SharedMemory(create=True, track=False): the segment outlives its creator.
    let _g = leak_guard();
    for m in METHODS {
        for kill in [false, true] {
            let names = multiproc::Queue::new().unwrap();
            let done = Event::new().unwrap();
            let mut p = get_context(m).process(create_tracked_and_untracked, (names.clone(), done.clone())).unwrap();
            p.start().unwrap();
            let tracked = names.get_timeout(DEADLINE).unwrap();
            let untracked = names.get_timeout(DEADLINE).unwrap();
            if kill {
                p.kill().unwrap();
            } else {
                done.set();
            }
            p.join().unwrap();
            // The creator's tracker has run (it unlinked the tracked one) and left the other alone.
            wait_until(|| !shm_entries().contains(&tracked), format_args!("{m:?}: {tracked} to be unlinked"));
            assert!(
                shm_entries().contains(&untracked),
                "{m:?} kill={kill}: the untracked segment went with its creator"
            );
            let shm = SharedMemory::attach(&untracked).unwrap();
            assert_eq!(&shm.to_vec()[..8], b"survivor");
            shm.unlink().unwrap(); // the user unlinks it
        }
    }
}

/// Attaches to `name` with tracking on and exits without unlinking.
#[multiproc::task]
fn attach_tracked(name: String) -> multiproc::Result<()> {
    let shm = SharedMemory::options().track(true).attach(&name)?;
    assert!(shm.tracked());
    shm.write_at(0, b"seen")
}

#[multiproc::test]
fn shared_memory_tracking() {
    // Python's SharedMemory(name, track=True): the attaching process unlinks the segment when it ends.
    let _g = leak_guard();
    for m in METHODS {
        let shm = SharedMemory::options().track(false).create(32).unwrap();
        let mut p = get_context(m).process(attach_tracked, (shm.name().to_string(),)).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        assert_eq!(&shm.to_vec()[..4], b"seen", "{m:?}");
        let name = shm.name().to_string();
        wait_until(|| !shm_entries().contains(&name), format_args!("{m:?}: the tracking child to unlink {name}"));
        // A plain attachment never tracks: the segment stays after the child.
        let shm = SharedMemory::create(32).unwrap();
        assert!(!SharedMemory::options().attach(shm.name()).unwrap().tracked());
        shm.unlink().unwrap();
    }
}

/// Doubles every element of the list in `from..to`, and writes to the segment.
#[multiproc::task]
fn double_part(list: ShareableList<u64>, from: usize, to: usize, shm: SharedMemory) -> multiproc::Result<()> {
    for i in from..to {
        list.set(i, list.get(i).unwrap_or(0) * 2)?;
    }
    shm.write_at(from, &[1])
}

#[multiproc::test]
fn shared_memory_shared_memory_manager_basics() {
    // test_shared_memory_SharedMemoryManager_basics.
    let _g = leak_guard();
    let smm = multiproc::SharedMemoryManager::new();
    assert!(matches!(smm.shared_memory(8), Err(Error::InvalidState(_))), "a segment before start()");
    assert!(matches!(smm.shareable_list(&[1u8]), Err(Error::InvalidState(_))));
    smm.start().unwrap();
    assert!(matches!(smm.start(), Err(Error::InvalidState(_))));
    for m in METHODS {
        let list = smm.shareable_list(&(0..2000u64).collect::<Vec<_>>()).unwrap();
        let shm = smm.shared_memory(4096).unwrap();
        let mut ps: Vec<_> = [(0, 1000), (1000, 2000)]
            .into_iter()
            .map(|(from, to)| get_context(m).process(double_part, (list.clone(), from, to, shm.clone())).unwrap())
            .collect();
        for p in &mut ps {
            p.start().unwrap();
        }
        for p in &mut ps {
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        }
        assert_eq!(list.to_vec(), (0..2000u64).map(|i| i * 2).collect::<Vec<_>>(), "{m:?}");
        assert_eq!((shm.to_vec()[0], shm.to_vec()[1000]), (1, 1), "{m:?}");
    }
    let names = smm.segment_names();
    assert_eq!(names.len(), 6);
    assert!(names.iter().all(|n| shm_entries().contains(n)));
    SharedMemory::attach(&names[0]).unwrap().unlink().unwrap(); // a user may unlink one first
    smm.shutdown().unwrap();
    for name in &names {
        assert!(
            matches!(SharedMemory::attach(name), Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound),
            "{name} survived shutdown"
        );
    }
    assert!(matches!(smm.shared_memory(8), Err(Error::InvalidState(_))), "a segment after shutdown()");
    smm.shutdown().unwrap();
    // Leaving the scope (Python's `with`) unlinks as shutdown does.
    let name = {
        let scoped = multiproc::SharedMemoryManager::started();
        scoped.shared_memory(16).unwrap().name().to_string()
    };
    assert!(SharedMemory::attach(&name).is_err(), "{name} survived the manager's drop");
}
