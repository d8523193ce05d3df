//! The `progress` feature: `pool.imap(..)?.progress()` yields every result, in
//! order for `imap`, as a plain iterator would, under every start method.
#![cfg(feature = "progress")]

use multiproc::Pool;
use tests::{METHODS, leak_guard};

#[multiproc::task]
fn triple(x: u64) -> u64 {
    3 * x
}

#[multiproc::test]
fn progress_yields_every_result_in_order() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(2).start_method(m).build().unwrap();
        let got: Vec<u64> = pool.imap(triple, 0..50u64).unwrap().progress().map(Result::unwrap).collect();
        assert_eq!(got, (0..50).map(|x| 3 * x).collect::<Vec<_>>(), "{m}");
        let mut unordered: Vec<u64> =
            pool.imap_unordered(triple, 0..20u64).unwrap().progress().map(Result::unwrap).collect();
        unordered.sort_unstable();
        assert_eq!(unordered, (0..20).map(|x| 3 * x).collect::<Vec<_>>(), "{m}");
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn progress_on_an_unsized_input_still_ends() {
    let _g = leak_guard();
    let pool = Pool::new(2).unwrap();
    let got: Vec<u64> =
        pool.imap(triple, (0..30u64).filter(|x| x % 2 == 0)).unwrap().progress().map(Result::unwrap).collect();
    assert_eq!(got.len(), 15);
    assert_eq!(got[14], 84);
    pool.close();
    pool.join().unwrap();
}

#[multiproc::task]
fn odd_fails(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd input {x}");
    x
}

#[multiproc::test]
fn the_bar_counts_every_item_done() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(2).start_method(m).build().unwrap();
        let mut it = pool.imap(triple, 0..40u64).unwrap().progress();
        assert_eq!((it.position(), it.length()), (0, Some(40)), "{m}");
        for done in 1..=10u64 {
            assert_eq!(it.next().unwrap().unwrap(), 3 * (done - 1), "{m}");
            assert_eq!(it.position(), done, "{m}");
        }
        assert_eq!(it.by_ref().count(), 30, "{m}");
        assert_eq!(it.position(), 40, "{m}");
        assert!(it.next().is_none(), "{m}");
        assert_eq!(it.position(), 40, "{m}: the end is not an item");
        // Failed calls are items done too.
        let mut it = pool.imap_unordered(odd_fails, 0..9u64).unwrap().progress();
        let failed = it.by_ref().filter(Result::is_err).count();
        assert_eq!((failed, it.position(), it.length()), (4, 9, Some(9)), "{m}");
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn the_bar_of_an_unsized_input_has_no_length_but_counts() {
    let _g = leak_guard();
    let pool = Pool::new(2).unwrap();
    let mut it = pool.imap(triple, (0..30u64).filter(|x| x % 3 == 0)).unwrap().progress();
    assert_eq!(it.length(), None);
    assert_eq!(it.by_ref().count(), 10);
    assert_eq!(it.position(), 10);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn the_thread_pools_bar_counts_too() {
    let pool = multiproc::dummy::Pool::new(2).unwrap();
    let mut it = pool.imap_unordered(triple, 0..25u64).unwrap().progress();
    assert_eq!(it.length(), Some(25));
    assert_eq!(it.by_ref().filter(Result::is_ok).count(), 25);
    assert_eq!(it.position(), 25);
}
