//! `Debug` and `Display` of `Error` print the same sentence, which names what
//! failed and how to fix it (what `fn main() -> multiproc::Result<()>` shows).

use multiproc::{Error, Pool, Queue};

fn both(e: &Error) -> String {
    let shown = e.to_string();
    assert_eq!(format!("{e:?}"), shown, "Debug and Display differ");
    shown
}

#[multiproc::test]
fn the_errors_a_newcomer_meets_first_say_how_to_fix_them() {
    let zero = Pool::new(0).unwrap_err();
    assert_eq!(both(&zero), "invalid argument: a pool needs at least one process");

    let q: Queue<u8> = Queue::new().unwrap();
    assert_eq!(both(&q.get_nowait().unwrap_err()), "the queue is empty");

    let not_annotated = Error::NotAnnotated { what: "cannot start a child with the spawn start method".into() };
    let text = both(&not_annotated);
    assert!(text.contains("annotate `fn main` with #[multiproc::main]"), "{text}");

    let not_registered = Error::NotRegistered { type_name: "my_crate::square" };
    let text = both(&not_registered);
    assert!(text.contains("`my_crate::square` is not a registered task"), "{text}");
    assert!(text.contains("add #[multiproc::task]"), "{text}");

    let io = Error::Io { op: "shm_open", source: std::io::Error::from_raw_os_error(libc::ENOENT) };
    let text = both(&io);
    assert!(text.starts_with("shm_open: "), "{text}");
    assert!(format!("{io:#?}").contains("caused by"), "the alternate form lists the source");
}
