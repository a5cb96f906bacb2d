//! The in-process side of the delivery queue, kept in the core's context: it knows nothing of
//! the rest, so the context can hold it without depending on the deliveries themselves.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// The in-process side of the queue: wakes this instance's worker, stops it.
#[derive(Default)]
pub struct Queue {
    wake: Notify,
    stopped: AtomicBool,
}

impl Queue {
    /// Asks the worker to look for due deliveries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops this instance's worker (its claimed deliveries are taken again after their lock).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Resolves when someone calls [`Queue::wake`] or [`Queue::stop`].
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}
