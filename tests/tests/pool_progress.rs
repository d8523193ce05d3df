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
