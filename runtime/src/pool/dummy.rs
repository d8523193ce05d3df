//! `multiproc::dummy`: the pool API on threads of this process.
