//! The MPI pool under `mpirun -n 3`: the example binaries run as real MPI jobs,
//! launched through `std::process::Command` with a timeout (libtest itself never
//! runs under mpirun). Needs `--features mpi` and Open MPI's `mpirun` (see `.ci/mpi`).
#![cfg(feature = "mpi")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bounds a whole MPI job (start-up on a loaded 2-core machine included).
const JOB_DEADLINE: Duration = Duration::from_secs(90);

const EXAMPLES: [&str; 6] = ["mpi_pool", "mpi_check", "mpi_methods", "mpi_panic", "mpi_die", "mpi_stuck"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Builds the example binaries once (same profile as this test) and returns their directory.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace()).args(["build", "-q", "-p", "examples", "--features", "mpi"]);
        for e in EXAMPLES {
            cmd.args(["--example", e]);
        }
        let status = cmd.status().expect("run cargo build for the MPI examples");
        assert!(status.success(), "building the MPI examples failed");
        // target/<profile>/deps/mpi_pool-<hash> → target/<profile>/examples
        let exe = std::env::current_exe().expect("current_exe");
        exe.parent().and_then(Path::parent).expect("target/<profile>").join("examples")
    })
}

struct Job {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `mpirun -n 3 [mpirun_args] <bin> [args]`, killing it if it outlives [`JOB_DEADLINE`].
fn mpirun_bin(mpirun_args: &[&str], bin: &Path, args: &[&str]) -> Job {
    assert!(bin.exists(), "{} was not built", bin.display());
    let started = Instant::now();
    let mut child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "3"])
        // mpirun's own bound, below ours, so it can still take its ranks down.
        .args(["--timeout", &(JOB_DEADLINE.as_secs() - 10).to_string()])
        .args(mpirun_args)
        .arg(bin)
        .args(args)
        .env_remove("MULTIPROC_BACKEND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mpirun (is Open MPI installed? see .ci/mpi)");
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().expect("stdout")), Box::new(child.stderr.take().expect("stderr"))];
    for (i, mut pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            let _ = tx.send((i, s));
        });
    }
    drop(tx);
    // Both pipes reach EOF when every process of the job has exited.
    let mut out = [String::new(), String::new()];
    for _ in 0..2 {
        match rx.recv_timeout(JOB_DEADLINE.saturating_sub(started.elapsed())) {
            Ok((i, s)) => out[i] = s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mpirun {} did not finish within {JOB_DEADLINE:?}; killed it", bin.display());
            }
        }
    }
    let status = child.wait().expect("wait for mpirun");
    let [stdout, stderr] = out;
    Job { status, stdout, stderr, took: started.elapsed() }
}

fn mpirun(mpirun_args: &[&str], example: &str, args: &[&str]) -> Job {
    mpirun_bin(mpirun_args, &examples_dir().join(example), args)
}

fn line<'a>(job: &'a Job, key: &str) -> &'a str {
    job.stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{}\nstderr:\n{}", job.stdout, job.stderr))
}

fn sum_of_squares(n: u64) -> u64 {
    (0..n).map(|x| x * x).sum()
}

#[test]
fn pool_auto_runs_on_the_ranks_under_mpirun() {
    let _g = tests::leak_guard();
    let job = mpirun(&[], "mpi_pool", &[]);
    assert!(job.status.success(), "{}\n{}", job.stdout, job.stderr);
    assert_eq!(job.stdout.trim(), sum_of_squares(1_000_000).to_string(), "stderr: {}", job.stderr);
}

#[test]
fn map_on_three_ranks_returns_every_square() {
    let _g = tests::leak_guard();
    let job = mpirun(&[], "mpi_check", &["200000"]);
    assert!(job.status.success(), "{}\n{}", job.stdout, job.stderr);
    assert_eq!(job.stdout.trim(), sum_of_squares(200_000).to_string(), "stderr: {}", job.stderr);
}

#[test]
fn starmap_imap_unordered_apply_async_and_large_messages_give_their_results() {
    let _g = tests::leak_guard();
    let job = mpirun(&[], "mpi_methods", &[]);
    assert!(job.status.success(), "{}\n{}", job.stdout, job.stderr);
    assert_eq!(line(&job, "workers"), "2");
    assert_eq!(line(&job, "starmap"), (0..1000u64).map(|x| x * (x % 7)).sum::<u64>().to_string());
    assert_eq!(line(&job, "imap"), format!("{} true", sum_of_squares(500)));
    assert_eq!(line(&job, "imap_unordered"), format!("500 {}", sum_of_squares(500)));
    assert_eq!(line(&job, "imap_ranks"), "1,2");
    assert_eq!(line(&job, "apply_async"), (0..10u64).map(|x| x * 3).sum::<u64>().to_string());
    assert_eq!(line(&job, "apply"), "bob:7:true");
    assert_eq!(line(&job, "closed_submit_fails"), "true");
    assert_eq!(line(&job, "after_join_ready"), "true");
    assert_eq!(line(&job, "big"), "24 true");
    assert_eq!(line(&job, "map_async"), format!("{} {}", sum_of_squares(300), (0..300u64).map(|x| 2 * x).sum::<u64>()));
    assert_eq!(line(&job, "terminated"), "true true");
    assert_eq!(line(&job, "late"), "144");
    assert_eq!(line(&job, "as_completed"), (0..20u64).map(|x| x * x).sum::<u64>().to_string());
    assert_eq!(line(&job, "try_map"), "true");
    assert_eq!(line(&job, "cancel"), "true true");
}

#[test]
fn panicking_task_is_reported_while_the_rest_completes() {
    let _g = tests::leak_guard();
    let job = mpirun(&[], "mpi_panic", &[]);
    assert!(job.status.success(), "{}\n{}", job.stdout, job.stderr);
    let failed: Vec<&str> = job.stdout.lines().filter(|l| l.starts_with("item ")).collect();
    assert_eq!(failed.len(), 1, "{}", job.stdout);
    assert!(failed[0].starts_with("item 7 failed: task `mpi_panic::fragile` panicked at "), "{}", failed[0]);
    assert!(failed[0].contains("mpi_panic.rs:8:") && failed[0].ends_with("seven is not allowed"), "{}", failed[0]);
    assert_eq!(line(&job, "ok_sum"), (0..20u64).filter(|&x| x != 7).map(|x| x + 1).sum::<u64>().to_string());
    assert!(line(&job, "map failed:").contains("seven is not allowed"), "{}", job.stdout);
    assert_eq!(line(&job, "after"), (9..13u64).sum::<u64>().to_string());
}

#[test]
fn killed_worker_rank_ends_the_job_nonzero_in_bounded_time() {
    let _g = tests::leak_guard();
    let job = mpirun(&[], "mpi_die", &[]);
    assert!(!job.status.success(), "the job succeeded although a rank died:\n{}", job.stdout);
    assert!(!job.stdout.contains("unexpected"), "{}", job.stdout);
    assert!(
        job.stderr.contains("rank") && job.stderr.contains("signal 6"),
        "no message naming the rank:\n{}",
        job.stderr
    );
    assert!(job.took < Duration::from_secs(60), "took {:?}", job.took);
}

#[test]
fn a_stopped_rank_is_given_up_and_its_calls_run_on_another() {
    let _g = tests::leak_guard();
    let marker = std::env::temp_dir().join(format!("multiproc-mpi-stall-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let job = mpirun(&["-x", "MULTIPROC_MPI_TIMEOUT=2"], "mpi_stuck", &[marker.to_str().unwrap()]);
    let _ = std::fs::remove_file(&marker);
    // Every result arrives although one rank stopped holding work ...
    let squares: u64 = (0..40u64).map(|x| x * x).sum();
    assert_eq!(line(&job, "sum"), squares.to_string(), "stdout: {}\nstderr: {}", job.stdout, job.stderr);
    // ... and the job then ends, non-zero (5 from rank 0, or 137 when mpirun
    // first reports the lost rank that rank 0 SIGKILLed), saying which rank.
    assert!(matches!(job.status.code(), Some(5 | 137)), "{:?}: {}", job.status, job.stderr);
    assert!(job.stderr.contains("stopped answering"), "{}", job.stderr);
    assert!(job.took < Duration::from_secs(60), "took {:?}", job.took);
}

#[test]
fn a_rank_busy_past_the_timeout_is_not_given_up() {
    let _g = tests::leak_guard();
    let job = mpirun(&["-x", "MULTIPROC_MPI_TIMEOUT=1"], "mpi_stuck", &["-", "long"]);
    assert!(job.status.success(), "{}\n{}", job.stdout, job.stderr);
    assert_eq!(line(&job, "sum"), "6", "stderr: {}", job.stderr);
    assert!(!job.stderr.contains("lost"), "{}", job.stderr);
}

#[test]
fn map_over_tcp_only_transport() {
    let _g = tests::leak_guard();
    let job = mpirun(
        &["--mca", "pml", "ob1", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo"],
        "mpi_check",
        &["50000"],
    );
    assert!(job.status.success(), "{}\n{}", job.stdout, job.stderr);
    assert_eq!(job.stdout.trim(), sum_of_squares(50_000).to_string(), "stderr: {}", job.stderr);
}

#[test]
fn mpi_launch_of_a_build_without_the_feature_fails_loudly_on_every_rank() {
    let _g = tests::leak_guard();
    // `quickstart` built without `mpi`, into its own target dir so that this
    // run's build (with the feature) is left alone.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = workspace().join("target").join("no-mpi");
    let status = Command::new(cargo)
        .current_dir(workspace())
        .args(["build", "-q", "-p", "examples", "--example", "quickstart", "--target-dir"])
        .arg(&target)
        .status()
        .expect("cargo build");
    assert!(status.success());
    let job = mpirun_bin(&[], &target.join("debug").join("examples").join("quickstart"), &[]);
    assert!(!job.status.success());
    assert!(job.stdout.is_empty(), "user code ran: {}", job.stdout);
    let loud = "launched under MPI";
    // Each rank prints it and exits 2; mpirun may kill the others once the first has exited.
    assert!(job.stderr.contains("built without multiproc's `mpi` feature"), "{}", job.stderr);
    assert!(job.stderr.contains(loud), "{}", job.stderr);
}
