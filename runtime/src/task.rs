//! The [`Task`] trait: what `Process`, `Pool` and friends accept as work.

use std::os::fd::OwnedFd;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::callmark::{self, Step};
use crate::codec::{self, Payload};
use crate::error::{Error, Result};
use crate::registry::{SeqOutcome, SeqReply};

/// A function that can run in another process with arguments `Args` (a tuple).
///
/// Only the macros implement it, so that everything a child process is asked
/// to run is registered (found by name in the child) — checked at compile
/// time: a free function annotated with [`#[multiproc::task]`](crate::task)
/// (its name is then a value of a wrapper type implementing `Task`, which still
/// derefs to the function, so `square(3)` works) and a closure made with
/// [`lambda!`](crate::lambda!). To run an arbitrary closure in a forked copy of
/// this process, use [`Process::fork_closure`](crate::Process::fork_closure).
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// fn run<T: multiproc::Task<(u64,), Output = u64>>(t: T) -> u64 { t.call((7,)) }
/// assert_eq!(run(square), 49);
/// assert_eq!(run(multiproc::lambda!(|x: u64| x + 1)), 8);
/// assert_eq!(square(3), 9);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a multiproc task",
    label = "not a registered task: a child process could not find it by name",
    note = "annotate the function with `#[multiproc::task]`, or wrap the closure in `multiproc::lambda!(|x: T| ...)`",
    note = "a closure that cannot be a task runs in a forked child through `multiproc::Process::fork_closure`, or on threads in a `multiproc::dummy::Pool`",
    note = "if it is a `#[multiproc::task]` already, check the arguments: a tuple of its parameter types, `(a,)`, `(a, b)` or `()`"
)]
pub trait Task<Args>: Send + Sync + 'static {
    /// What the function returns.
    type Output;

    /// Calls the function in this process, with its arguments as a tuple.
    ///
    /// ```
    /// use multiproc::Task;
    ///
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// assert_eq!(add.call((2, 3)), 5);
    /// let k = 10;
    /// let offset = multiproc::lambda!(move [k: u64] |x: u64| x + k);
    /// assert_eq!(offset.call((1,)), 11);
    /// ```
    fn call(&self, args: Args) -> Self::Output;

    /// The registered name a child process finds this task by.
    #[doc(hidden)]
    fn task_name(&self) -> Result<&'static str>;

    /// Encodes the arguments of one call as the child's invoker decodes them.
    #[doc(hidden)]
    fn encode_args(&self, args: &Args) -> Result<Payload>
    where
        Args: Serialize,
    {
        let mut bytes = Vec::new();
        let fds = self.encode_args_into(args, &mut bytes)?;
        Ok(Payload { bytes, fds })
    }

    /// Appends the encoded arguments of one call to `buf` (as [`Task::encode_args`]
    /// would encode them); returns the handles found inside them.
    #[doc(hidden)]
    fn encode_args_into(&self, args: &Args, buf: &mut Vec<u8>) -> Result<Vec<OwnedFd>>
    where
        Args: Serialize,
    {
        if self.put_bulk_args(args, buf) {
            return Ok(Vec::new());
        }
        codec::encode_into(args, buf, "task arguments")
    }

    /// Appends the encoded arguments of several calls laid end to end (each as
    /// [`Task::encode_args_into`] writes it) in one encoder pass; returns the
    /// handles found inside them (indices shared across the calls).
    #[doc(hidden)]
    fn encode_args_batch(&self, args: &[Args], buf: &mut Vec<u8>) -> Result<Vec<OwnedFd>>
    where
        Args: Serialize,
    {
        if let Some((first, rest)) = args.split_first()
            && self.put_bulk_args(first, buf)
        {
            for a in rest {
                self.put_bulk_args(a, buf);
            }
            return Ok(Vec::new());
        }
        codec::encode_into(&codec::EndToEnd(args), buf, "task arguments")
    }

    /// Decodes arguments encoded by [`Task::encode_args`] and calls the function.
    #[doc(hidden)]
    fn call_encoded(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Self::Output>
    where
        Args: DeserializeOwned,
    {
        let args = match self.take_bulk_args(bytes) {
            None => codec::decode(bytes, fds, "task arguments")?,
            Some(taken) => codec::whole(taken, bytes.len(), "task arguments")?,
        };
        Ok(self.call(args))
    }

    /// Appends `args` in one copy if they are a single bulk value (a
    /// `Vec<u8>`, `String`, `Vec<f64>`, …, see `codec::typed`); returns whether
    /// they were. The implementations of `'static` argument types say yes.
    #[doc(hidden)]
    fn put_bulk_args(&self, args: &Args, buf: &mut Vec<u8>) -> bool {
        let _ = (args, buf);
        false
    }

    /// Reads arguments written by [`Task::put_bulk_args`] from the front of
    /// `bytes`: `None` if they do not take that path, else them and the bytes
    /// used, or why the bytes are not them.
    #[doc(hidden)]
    fn take_bulk_args(&self, bytes: &[u8]) -> Option<std::result::Result<(Args, usize), String>> {
        let _ = bytes;
        None
    }

    /// How the parent reads one result in one copy, if `Output` is a bulk
    /// value (the worker writes it so); `None`: through serde. The
    /// implementations of `'static` result types say how.
    #[doc(hidden)]
    fn bulk_output() -> Option<codec::TakeBulk<Self::Output>>
    where
        Self: Sized,
    {
        None
    }
}

/// A function a `multiproc::dummy::Pool` runs on one of its
/// threads with arguments `Args` (a tuple): any `Fn` (closures that capture,
/// values that are not serde), a [`#[multiproc::task]`](crate::task) function
/// or a [`lambda!`](crate::lambda!) — the same tasks a process pool takes, and more.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = multiproc::dummy::Pool::new(2)?;
/// let k = 1;
/// assert_eq!(pool.map(square, 0..3)?, vec![0, 1, 4]);
/// assert_eq!(pool.map(move |x: u64| x + k, 0..3)?, vec![1, 2, 3]);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run on a thread pool",
    label = "not a function of these arguments",
    note = "pass a closure, a `#[multiproc::task]` fn or a `multiproc::lambda!`; its arguments are a tuple: `(a,)`, `(a, b)`, or `()`"
)]
pub trait ThreadTask<Args>: Send + Sync + 'static {
    /// What the function returns.
    type Output;

    /// Calls the function on this thread, with its arguments as a tuple.
    ///
    /// ```
    /// use multiproc::ThreadTask;
    ///
    /// let greeting = String::from("hello");
    /// let greet = move |name: &'static str| format!("{greeting} {name}");
    /// assert_eq!(greet.call_here(("bob",)), "hello bob");
    /// ```
    fn call_here(&self, args: Args) -> Self::Output;
}

macro_rules! impl_task {
    ($($a:ident $A:ident),*) => {
        impl<Func, Ret, $($A: 'static,)*> Task<($($A,)*)> for Lambda<Func>
        where
            Func: Fn($($A),*) -> Ret + Send + Sync + 'static,
        {
            type Output = Ret;
            #[allow(clippy::unused_unit)]
            fn call(&self, ($($a,)*): ($($A,)*)) -> Ret {
                (self.f)($($a),*)
            }
            fn task_name(&self) -> Result<&'static str> {
                Ok(self.name)
            }
            fn put_bulk_args(&self, args: &($($A,)*), buf: &mut Vec<u8>) -> bool {
                codec::put_bulk(args, buf)
            }
            fn take_bulk_args(&self, bytes: &[u8]) -> Option<std::result::Result<(($($A,)*), usize), String>> {
                codec::take_bulk(bytes)
            }
        }

        impl<Func, Ret, $($A,)*> ThreadTask<($($A,)*)> for Func
        where
            Func: Fn($($A),*) -> Ret + Send + Sync + 'static,
        {
            type Output = Ret;
            #[allow(clippy::unused_unit)]
            fn call_here(&self, ($($a,)*): ($($A,)*)) -> Ret {
                self($($a),*)
            }
        }

        impl<Func, Ret, $($A: 'static,)*> ThreadTask<($($A,)*)> for Lambda<Func>
        where
            Func: Fn($($A),*) -> Ret + Send + Sync + 'static,
        {
            type Output = Ret;
            fn call_here(&self, args: ($($A,)*)) -> Ret {
                Task::call(self, args)
            }
        }

        impl<Caps, Func, Ret, $($A: 'static,)*> ThreadTask<($($A,)*)> for LambdaWith<Caps, Func>
        where
            Caps: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
            Func: Fn(Caps, $($A),*) -> Ret + Send + Sync + 'static,
        {
            type Output = Ret;
            fn call_here(&self, args: ($($A,)*)) -> Ret {
                Task::call(self, args)
            }
        }

        impl<Caps, Func, Ret, $($A,)*> Task<($($A,)*)> for LambdaWith<Caps, Func>
        where
            Caps: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
            Func: Fn(Caps, $($A),*) -> Ret + Send + Sync + 'static,
        {
            type Output = Ret;
            fn call(&self, ($($a,)*): ($($A,)*)) -> Ret {
                (self.f)(self.captures.clone(), $($a),*)
            }
            fn task_name(&self) -> Result<&'static str> {
                Ok(self.name)
            }
            fn encode_args(&self, args: &($($A,)*)) -> Result<Payload>
            where
                ($($A,)*): Serialize,
            {
                // bincode lays a tuple out as its fields in order, so
                // (captures, (a, b)) encodes exactly as (captures, a, b).
                codec::encode(&(&self.captures, args), "task arguments")
            }
            fn encode_args_into(&self, args: &($($A,)*), buf: &mut Vec<u8>) -> Result<Vec<OwnedFd>>
            where
                ($($A,)*): Serialize,
            {
                codec::encode_into(&(&self.captures, args), buf, "task arguments")
            }
            fn encode_args_batch(&self, args: &[($($A,)*)], buf: &mut Vec<u8>) -> Result<Vec<OwnedFd>>
            where
                ($($A,)*): Serialize,
            {
                let calls: Vec<(&Caps, &($($A,)*))> = args.iter().map(|a| (&self.captures, a)).collect();
                codec::encode_into(&codec::EndToEnd(&calls), buf, "task arguments")
            }
            #[allow(unused_variables)]
            fn call_encoded(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Ret>
            where
                ($($A,)*): DeserializeOwned,
            {
                let (captures, ($($a,)*)): (Caps, ($($A,)*)) = codec::decode(bytes, fds, "task arguments")?;
                Ok((self.f)(captures, $($a),*))
            }
        }
    };
}

impl_task!();
impl_task!(a A);
impl_task!(a A, b B);
impl_task!(a A, b B, c C);
impl_task!(a A, b B, c C, d D);
impl_task!(a A, b B, c C, d D, e E);
impl_task!(a A, b B, c C, d D, e E, f F);
impl_task!(a A, b B, c C, d D, e E, f F, g G);
impl_task!(a A, b B, c C, d D, e E, f F, g G, h H);
impl_task!(a A, b B, c C, d D, e E, f F, g G, h H, i I);
impl_task!(a A, b B, c C, d D, e E, f F, g G, h H, i I, j J);
impl_task!(a A, b B, c C, d D, e E, f F, g G, h H, i I, j J, k K);
impl_task!(a A, b B, c C, d D, e E, f F, g G, h H, i I, j J, k K, l L);

/// A closure lifted by [`lambda!`](crate::lambda!): registered under `name`.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Lambda<F> {
    name: &'static str,
    f: F,
}

impl<F> Lambda<F> {
    /// Not public API. Used by `lambda!`.
    pub const fn new(name: &'static str, f: F) -> Self {
        Lambda { name, f }
    }

    /// Not public API. Used by `lambda!(move [..] ..)`.
    pub const fn with_captures<C>(name: &'static str, captures: C, f: F) -> LambdaWith<C, F> {
        LambdaWith { name, captures, f }
    }
}

/// A closure lifted by `lambda!(move [captures] ...)`: the captures travel with each call.
#[doc(hidden)]
#[derive(Clone)]
pub struct LambdaWith<C, F> {
    name: &'static str,
    captures: C,
    f: F,
}

/// Not public API: the body of every generated invoker.
#[doc(hidden)]
pub fn invoke<F, A>(f: F, input: &[u8], fds: Vec<OwnedFd>, out: &mut Vec<u8>) -> Result<Vec<OwnedFd>>
where
    F: Task<A>,
    A: DeserializeOwned + 'static,
    F::Output: Serialize + 'static,
{
    let args: A = codec::typed::decode(input, fds, "task arguments")?;
    let result = f.call(args);
    codec::typed::encode_into(&result, out, "task result")
}

/// Not public API: the body of every generated batch invoker ([`SeqInvoker`](registry::SeqInvoker)).
#[doc(hidden)]
pub fn invoke_seq<F, A>(
    f: F,
    input: &[u8],
    count: usize,
    out: &mut Vec<u8>,
    describe_panic: fn() -> (String, String),
) -> Result<SeqReply>
where
    F: Task<A>,
    A: DeserializeOwned + 'static,
    F::Output: Serialize + 'static,
{
    let mut calls: Vec<A> = Vec::new();
    let used = codec::typed::decode_end_to_end_into(input, count, &mut calls, "task arguments")?;
    if used != input.len() {
        return Err(Error::Decode { what: "task arguments", reason: format!("{} trailing bytes", input.len() - used) });
    }
    let run = |args: A| -> SeqOutcome<F::Output> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call(args))).map_err(|_| describe_panic())
    };
    let mut values = Vec::with_capacity(calls.len());
    // Once a call panicked, every outcome travels as a `Result`.
    let mut outcomes: Option<Vec<SeqOutcome<F::Output>>> = None;
    // A pool worker runs only its window of the chunk, marks each call, and
    // stops early when the job is cancelled (see `callmark`).
    let mut walk = callmark::walk();
    for (i, args) in calls.into_iter().enumerate() {
        match walk.next(i) {
            Step::Skip => continue,
            Step::Stop => break,
            Step::Run => {}
        }
        let outcome = run(args);
        match (&mut outcomes, outcome) {
            (None, Ok(v)) => values.push(v),
            (None, Err(panic)) => {
                let mut all: Vec<SeqOutcome<F::Output>> = values.drain(..).map(Ok).collect();
                all.push(Err(panic));
                outcomes = Some(all);
            }
            (Some(all), o) => all.push(o),
        }
    }
    if let Some(outcomes) = outcomes {
        let fds = codec::encode_into(&codec::EndToEnd(&outcomes), out, "task results")?;
        return Ok(SeqReply { fds, all_returned: false });
    }
    let fds = codec::typed::encode_end_to_end_into(&values, out, "task results")?;
    Ok(SeqReply { fds, all_returned: true })
}
