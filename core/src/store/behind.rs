//! Writing content blocks behind the caller. A publish produces a batch of leaves per step;
//! where the store's calls may run on other threads ([`super::BlockStore::parallel_io`]),
//! [`Behind`] hands each batch to one of two writer threads and returns, so sealing the next
//! piece overlaps writing the last ones, and a kubo node always has imports to work on instead
//! of waiting for the next. Elsewhere (a browser, a store written in another language) each
//! batch is written when handed over.
//!
//! What a writer thread fails with comes back from the next [`Behind::put`] or from
//! [`Behind::finish`], which waits for every batch: a caller moves the head only after
//! `finish` succeeded, so no head names a block that was not written. Memory is bounded: a
//! hand-over waits until a writer is free (two batches in flight, none queued).

use crate::error::Result;
use crate::store::{Block, Store};

/// Writer threads per [`Behind`].
#[cfg(not(target_arch = "wasm32"))]
const WRITERS: usize = 3;

/// Puts batches of blocks into a store, behind the caller where it can (see the module).
pub(crate) struct Behind {
    store: Store,
    #[cfg(not(target_arch = "wasm32"))]
    threads: Option<threads::Writers>,
}

impl Behind {
    /// A writer for `store`: threaded if the store allows it and threads can be started.
    pub(crate) fn new(store: &Store) -> Behind {
        Behind {
            store: store.clone(),
            #[cfg(not(target_arch = "wasm32"))]
            threads: if store.parallel_io() {
                threads::Writers::start(store)
            } else {
                None
            },
        }
    }

    /// Whether batches are written by other threads (so hand over small ones often).
    pub(crate) fn is_threaded(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.threads.is_some()
        }
        #[cfg(target_arch = "wasm32")]
        {
            false
        }
    }

    /// Hands over a batch of blocks this process hashed (see [`Store::put_many_hashed`]).
    /// Fails with the first error a writer met, if any.
    pub(crate) async fn put(&mut self, blocks: Vec<Block>) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(t) = &self.threads {
            return t.send(blocks);
        }
        self.store.put_many_hashed(&blocks).await
    }

    /// Waits until every batch handed over is written; the first error a writer met, if any.
    pub(crate) async fn finish(self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(t) = self.threads {
            return t.finish();
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod threads {
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::thread::JoinHandle;

    use super::WRITERS;
    use crate::error::{Error, Result};
    use crate::platform::block_on;
    use crate::store::{Block, Store};

    /// The writer threads, the channel to them, and the first error one met.
    pub(super) struct Writers {
        to: Option<SyncSender<Vec<Block>>>,
        running: Vec<JoinHandle<()>>,
        failed: Arc<Mutex<Option<Error>>>,
    }

    fn take(failed: &Mutex<Option<Error>>) -> Option<Error> {
        failed.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    impl Writers {
        /// Starts the threads; `None` if the system refuses one (the caller writes itself).
        pub(super) fn start(store: &Store) -> Option<Writers> {
            // A rendezvous channel: a hand-over waits for a free writer.
            let (to, from) = sync_channel::<Vec<Block>>(0);
            let from = Arc::new(Mutex::new(from));
            let failed = Arc::new(Mutex::new(None));
            let mut w = Writers {
                to: Some(to),
                running: Vec::with_capacity(WRITERS),
                failed,
            };
            for i in 0..WRITERS {
                let (store, from, failed) = (store.clone(), from.clone(), w.failed.clone());
                let started = std::thread::Builder::new()
                    .name(format!("medshare-writer-{i}"))
                    .spawn(move || write(&store, &from, &failed));
                match started {
                    Ok(h) => w.running.push(h),
                    // Dropping `w` stops the threads already started.
                    Err(_) => return None,
                }
            }
            Some(w)
        }

        pub(super) fn send(&self, blocks: Vec<Block>) -> Result<()> {
            if let Some(e) = take(&self.failed) {
                return Err(e);
            }
            let sent = self.to.as_ref().map(|to| to.send(blocks));
            match sent {
                Some(Ok(())) => Ok(()),
                // Every writer stopped: one failed (or panicked, reported by `finish`).
                _ => Err(take(&self.failed).unwrap_or_else(|| {
                    Error::Backend("the store's writer threads stopped".into())
                })),
            }
        }

        pub(super) fn finish(mut self) -> Result<()> {
            self.stop();
            match take(&self.failed) {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }

        /// Closes the channel and waits for the threads (each ends after its batch).
        fn stop(&mut self) {
            self.to = None;
            for h in self.running.drain(..) {
                if let Err(panic) = h.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }

    impl Drop for Writers {
        fn drop(&mut self) {
            self.to = None;
            for h in self.running.drain(..) {
                let _ = h.join();
            }
        }
    }

    /// A writer thread: batches until the channel closes or a put fails.
    fn write(store: &Store, from: &Mutex<Receiver<Vec<Block>>>, failed: &Mutex<Option<Error>>) {
        loop {
            let next = from.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(blocks) = next else { return };
            if let Err(e) = block_on(store.put_many_hashed(&blocks)) {
                failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(e);
                return;
            }
        }
    }
}
