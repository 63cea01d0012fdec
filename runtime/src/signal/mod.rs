//! Unix signals as async streams: [`ctrl_c`] and [`unix::signal`].
//!
//! # Design
//! A process-wide `sigaction` handler counts each signal (one atomic counter per signal
//! number) and writes to the eventfd of every listener slot. Each listener owns one slot (an
//! eventfd, kept open for the life of the process so the handler never writes to a closed or
//! reused descriptor) and waits by reading its eventfd **through the ring**; it then compares
//! the signal's counter with the count it last saw. A spurious wake-up is therefore harmless,
//! and no signal delivered after a listener was created is missed.
//!
//! Why not `signalfd`: a signalfd only sees a signal that every thread of the process blocks;
//! any thread that does not (the test harness's, a library's) would take the signal's default
//! action instead. A handler works whatever the other threads do.
//!
//! Like tokio's, once a listener for a signal has been created the handler stays installed:
//! the signal's default action (terminating on `SIGINT`, say) no longer happens.

pub mod unix;

use std::io;

/// Completes at the next `SIGINT` (Ctrl-C) received after the call.
///
/// ```no_run
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// coring::signal::ctrl_c().await?;
/// println!("bye");
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut signal = unix::signal(unix::SignalKind::interrupt())?;
    signal.recv().await;
    Ok(())
}
