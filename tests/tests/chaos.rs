//! Chaos: a parent holding one of everything (pool with work in flight,
//! manager, queues, shared memory, a held lock, a listener, a child) is
//! SIGKILLed, under every start method. Every descendant must be gone within a
//! second, and no `/dev/shm` segment or socket file may stay behind. (Random
//! worker kills under load, killed lock and condition holders, hostile clients
//! and the decode fuzz loop live beside the parts they test:
//! `pool_worker_lost`, `queue_crash`, `sync_*`, `connection_auth`,
//! `managers_remote`, `chaos_decode`.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{DEADLINE, METHODS, exited, leak_guard, shm_entries, wait_until};

/// The pids of every live descendant of `root`, from `/proc`.
fn descendants(root: u32) -> BTreeSet<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = BTreeSet::from([root]);
    loop {
        let before = found.len();
        for &(pid, ppid) in &parents {
            if found.contains(&ppid) {
                found.insert(pid);
            }
        }
        if found.len() == before {
            found.remove(&root);
            return found;
        }
    }
}

/// Socket files a run might leave in the temp dir.
fn socket_files() -> BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("multiproc") && n.ends_with(".sock"))
        .collect()
}

#[test]
fn a_sigkilled_owner_of_everything_leaves_nothing_behind() {
    let _g = leak_guard();
    let sockets_before = socket_files();
    for m in METHODS {
        let mut owner =
            Command::new(env!("CARGO_BIN_EXE_chaos_owner")).arg(m.name()).stdout(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = owner.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut segments = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    break;
                }
                if let Some(name) = line.strip_prefix("shm ") {
                    segments.push(name.to_string());
                }
            }
            let _ = tx.send(segments);
        });
        let Ok(segments) = rx.recv_timeout(DEADLINE) else {
            let _ = owner.kill();
            let _ = owner.wait();
            panic!("{m}: chaos_owner did not get ready within {DEADLINE:?}");
        };
        let _ = reader.join();
        let family = descendants(owner.id());
        // 2 pool workers, a manager, a child, trackers and (forkserver) a server.
        assert!(family.len() >= 4, "{m}: expected the owner's processes, found {family:?}");
        eprintln!("{m}: SIGKILL to the owner of {} processes and {} named segments", family.len(), segments.len());
        let shm = shm_entries();
        assert!(segments.iter().all(|s| shm.contains(s)), "{m}: {segments:?} not in /dev/shm");

        owner.kill().unwrap(); // SIGKILL
        let killed = Instant::now();
        owner.wait().unwrap();
        let mut alive: Vec<u32> = family.iter().copied().collect();
        while !alive.is_empty() && killed.elapsed() < Duration::from_secs(1) {
            alive.retain(|p| !exited(*p));
            std::thread::yield_now();
        }
        alive.retain(|p| !exited(*p));
        assert!(alive.is_empty(), "{m}: alive 1 s after their owner was SIGKILLed: {alive:?} of {family:?}");
        wait_until(
            || !shm_entries().iter().any(|s| segments.contains(s)),
            format_args!("{m}: the owner's segments to be unlinked"),
        );
        assert_eq!(socket_files(), sockets_before, "{m}: a socket file was left behind");
    }
}
