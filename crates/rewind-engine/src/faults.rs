//! The crash tests' fault-injection seam: named failpoints at the steps
//! where a crash matters (after the commit is built, after the rollback is
//! recorded, after the push, after the PR is opened, after the merge,
//! during verification).
//!
//! They exist only with the `failpoints` feature, which only the end-to-end
//! harness turns on (`.ci/check-product-features.sh` proves the product
//! build has none, and that the product binary holds no failpoint name).
//! Without it [`failpoint!`] expands to nothing.
//!
//! A child process is armed by the environment, with the `fail` crate's
//! syntax: `FAILPOINTS="advance.after_push=return(hang)"`. Besides `fail`'s
//! own actions (`panic`, `sleep(ms)`, `pause`, …), `return(hang)` (or
//! plain `return`) prints `failpoint NAME reached` on stderr and parks that
//! job for good, so a test can `kill -9` the process exactly there. Only
//! the job's task waits: the process goes on answering webhooks and
//! running other jobs, and keeps renewing the parked job's lease, like a
//! replica that is slow, not dead, until the kill. `return(exit)` prints
//! the same line and exits at once (status 86), skipping every destructor
//! and shutdown step. `1*return(hang)` fires once.

/// Marks a place (in an async fn) where a test may crash the process. A
/// no-op (nothing compiled, not even the name) without the `failpoints`
/// feature.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if $crate::faults::reached($name) {
            ::std::future::pending::<()>().await;
        }
    };
}
pub(crate) use failpoint;

/// Arms the failpoints named in `FAILPOINTS`; keep the guard for the life
/// of the process. Without the `failpoints` feature: does nothing.
pub fn arm_from_env() -> Armed {
    #[cfg(feature = "failpoints")]
    {
        let scenario = fail::FailScenario::setup();
        if let Ok(spec) = std::env::var("FAILPOINTS") {
            tracing::warn!(failpoints = %spec, "failpoints armed (test build)");
        }
        Armed {
            _scenario: Some(scenario),
        }
    }
    #[cfg(not(feature = "failpoints"))]
    Armed {}
}

/// Keeps the failpoints armed while alive.
#[must_use]
pub struct Armed {
    #[cfg(feature = "failpoints")]
    _scenario: Option<fail::FailScenario<'static>>,
}

impl std::fmt::Debug for Armed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Armed").finish_non_exhaustive()
    }
}

/// Exit status of `return(exit)`: not one rewind uses otherwise.
#[cfg(feature = "failpoints")]
pub const EXIT_STATUS: i32 = 86;

/// Whether the job at failpoint `name` must park (`return(hang)`); exits
/// the process for `return(exit)`.
#[cfg(feature = "failpoints")]
#[doc(hidden)]
pub fn reached(name: &'static str) -> bool {
    use std::io::Write;
    let Some(action) = fail::eval(name, |arg| arg) else {
        return false;
    };
    // Straight to stderr, unbuffered: the test is waiting for this line.
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "failpoint {name} reached");
    let _ = stderr.flush();
    drop(stderr);
    if action.as_deref() == Some("exit") {
        std::process::exit(EXIT_STATUS);
    }
    // `hang`, the default.
    true
}
