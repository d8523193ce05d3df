//! A plain closure passed to `Process::new` (`Process::fork_closure` is the fork-only way).

fn main() -> multiproc::Result<()> {
    let mut p = multiproc::Process::new(|x: u64| println!("{x}"), (1u64,))?;
    p.start()?;
    p.join()
}
