//! Stopping a training run cleanly: after [`install`], Ctrl-C (SIGINT) or SIGTERM sets a flag
//! that the training loop checks after every gradient step; the loop then stops, the network's
//! checkpoint is written, and training returns [`NsgfError::Interrupted`](crate::NsgfError).
//! A second signal while the first is being handled exits at once (status 130).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the signal handler (once per process; later calls do nothing).
pub fn install() -> crate::Result<()> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("second interrupt: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("interrupt: finishing the current step and writing a checkpoint");
        })
        .map_err(|e| crate::NsgfError::Other(format!("installing the signal handler: {e}")));
    });
    result
}

/// True once a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Requests a stop as a signal would (tests, embedding applications).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Clears a request (tests).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
