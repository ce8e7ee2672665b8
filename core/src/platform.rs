//! Everything that differs between native targets and `wasm32-unknown-unknown`, in one leaf
//! module: `Send` bounds that only exist where there are threads (as matrix-sdk-common's
//! `SendOutsideWasm` does), running two closures in parallel, the wall clock, and the batch
//! sizes each target streams with. Other modules use `target_arch` only to leave out what
//! cannot exist in a browser (files, threads, the native HTTP client).

/// `Send` on native targets, nothing on wasm (single-threaded; JS objects are not `Send`).
/// The bound on the readers and writers the vault streams through.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` on native targets, nothing on wasm (single-threaded; JS objects are not `Send`).
/// The bound on the readers and writers the vault streams through.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Send + Sync` on native targets, nothing on wasm (where JS objects are neither).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
/// `Send + Sync` on native targets, nothing on wasm (where JS objects are neither).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// A boxed future that is `Send` where there are threads.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
/// A boxed future that is `Send` where there are threads.
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Progress callback: units done so far (bytes for publish and open).
#[cfg(not(target_arch = "wasm32"))]
pub type Progress<'a> = &'a mut (dyn FnMut(u64) + Send);
/// Progress callback: units done so far. (On wasm there are no threads, so no `Send`: a
/// JavaScript callback can be one.)
#[cfg(target_arch = "wasm32")]
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// Runs `a` and `b` in parallel (rayon's work stealing).
#[cfg(not(target_arch = "wasm32"))]
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    rayon::join(a, b)
}

/// Runs `a`, then `b` (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub fn join<A: FnOnce() -> RA, B: FnOnce() -> RB, RA, RB>(a: A, b: B) -> (RA, RB) {
    (a(), b())
}

/// Runs two futures concurrently on the calling task; both run to completion.
pub async fn join_futures<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let mut ra = None;
    let mut rb = None;
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let std::task::Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => std::task::Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// Whether the calling thread's pool has more than one thread: the vault starts I/O threads
/// of its own for reads ([`overlap`], [`map_io`]) only then, so a caller that
/// confines it to one core (`ThreadPool::install` with one thread) gets one core's work.
#[cfg(not(target_arch = "wasm32"))]
pub fn threads() -> bool {
    rayon::current_num_threads() > 1
}

/// Never on wasm (no threads).
#[cfg(target_arch = "wasm32")]
pub fn threads() -> bool {
    false
}

/// Runs `work` while `io` (a store call) runs: natively, when `parallel`, `io` is driven on a
/// thread of its own, so a read decrypts one group of leaves while the next is fetched.
/// Otherwise (and always on wasm) `work`, then `io`. Only for stores whose calls may run on
/// another thread while the caller waits ([`crate::store::BlockStore::parallel_io`]).
#[cfg(not(target_arch = "wasm32"))]
pub async fn overlap<R, F>(parallel: bool, work: impl FnOnce() -> R + Send, io: F) -> (R, F::Output)
where
    R: Send,
    F: std::future::Future + Send,
    F::Output: Send,
{
    if parallel {
        // Its own thread, not one of the pool's: the store call mostly waits (on a disk, on a
        // kubo node), and the pool's threads are for `work`.
        std::thread::scope(|s| {
            let io = s.spawn(|| block_on(io));
            let r = work();
            match io.join() {
                Ok(out) => (r, out),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    } else {
        let r = work();
        (r, io.await)
    }
}

/// Runs `work`, then `io` (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub async fn overlap<R, F: std::future::Future>(
    _parallel: bool,
    work: impl FnOnce() -> R,
    io: F,
) -> (R, F::Output) {
    let r = work();
    (r, io.await)
}

/// `f(item)` awaited for every item, results in the order of `items`: natively, when `parallel`,
/// on up to four threads at once (a read fetching a group of leaves from a kubo node);
/// otherwise one after the other.
#[cfg(not(target_arch = "wasm32"))]
pub async fn map_io<T, R, F>(
    parallel: bool,
    items: &[T],
    f: impl Fn(T) -> F + Sync + Send,
) -> Vec<R>
where
    T: Copy + Send + Sync,
    R: Send,
    F: std::future::Future<Output = R> + Send,
{
    if parallel && items.len() > 1 {
        // Up to four threads, each taking every fourth item in turn: each call mostly waits,
        // and a kubo node on this machine served a read's four leaves at once in 4.8 s a GiB
        // against 5.4 s with two threads and 7.4 s with one (same run).
        let (f, lanes) = (&f, 4.min(items.len()));
        let done: Vec<Vec<R>> = std::thread::scope(|s| {
            let running: Vec<_> = (0..lanes)
                .map(|lane| {
                    s.spawn(move || {
                        items
                            .iter()
                            .skip(lane)
                            .step_by(lanes)
                            .map(|t| block_on(f(*t)))
                            .collect::<Vec<R>>()
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut done: Vec<_> = done.into_iter().map(Vec::into_iter).collect();
        let mut out = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            if let Some(r) = done[i % lanes].next() {
                out.push(r);
            }
        }
        return out;
    }
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        out.push(f(*t).await);
    }
    out
}

/// `f(item)` awaited for every item, one after the other (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub async fn map_io<T: Copy, R, F: std::future::Future<Output = R>>(
    _parallel: bool,
    items: &[T],
    f: impl Fn(T) -> F,
) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        out.push(f(*t).await);
    }
    out
}

/// Runs `work` on this thread while `f(item)` is driven for every item on the pool (with
/// [`block_on`], so only for futures that finish when polled:
/// [`crate::store::BlockStore::completes_when_polled`]); results in the order of `items`. The
/// thread that finishes `work` first takes the remaining items.
#[cfg(not(target_arch = "wasm32"))]
pub async fn join_fetch<T, R, O, F>(
    work: impl FnOnce() -> R + Send,
    items: Vec<T>,
    f: impl Fn(T) -> F + Sync + Send,
) -> (R, Vec<O>)
where
    T: Send,
    R: Send,
    O: Send,
    F: std::future::Future<Output = O>,
{
    use rayon::prelude::*;
    join(work, || {
        items
            .into_par_iter()
            .with_max_len(1)
            .map(|t| block_on(f(t)))
            .collect()
    })
}

/// Runs `work`, then awaits `f(item)` for every item in order (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub async fn join_fetch<T, R, O, F: std::future::Future<Output = O>>(
    work: impl FnOnce() -> R,
    items: Vec<T>,
    f: impl Fn(T) -> F,
) -> (R, Vec<O>) {
    let r = work();
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        out.push(f(t).await);
    }
    (r, out)
}

/// Drives `f` to completion on this thread, parking it while `f` waits. The native stores'
/// futures do their I/O when polled (files, and the blocking HTTP client), so this is how
/// [`overlap`] runs one on a pool thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Maps `f` over `items` on every core where there are threads, keeping the order.
#[cfg(not(target_arch = "wasm32"))]
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() > 1 {
        items.par_iter().map(f).collect()
    } else {
        items.iter().map(f).collect()
    }
}

/// Maps `f` over `items` in order (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub fn par_map<T, R>(items: &[T], f: impl Fn(&T) -> R) -> Vec<R> {
    items.iter().map(f).collect()
}

/// True if `f` holds for every item, checked on every core where there are threads (at least
/// `min_len` items per task).
#[cfg(not(target_arch = "wasm32"))]
pub fn par_all<T: Sync>(items: &[T], min_len: usize, f: impl Fn(&T) -> bool + Sync + Send) -> bool {
    use rayon::prelude::*;
    items.par_iter().with_min_len(min_len.max(1)).all(f)
}

/// True if `f` holds for every item (no threads on wasm).
#[cfg(target_arch = "wasm32")]
pub fn par_all<T>(items: &[T], _min_len: usize, f: impl Fn(&T) -> bool) -> bool {
    items.iter().all(f)
}

/// Unix time in seconds. `std::time::SystemTime::now()` panics on wasm32-unknown-unknown;
/// web-time asks the JS host there and is std's `SystemTime` everywhere else.
pub fn now_secs() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How much each target streams at once.
pub mod batch {
    /// Content blocks written to a store per batch (4 MiB of 1 MiB leaves natively: peak
    /// memory stays under 32 MiB for any record size). In a browser each batch is also where
    /// the page gets control back, so batches are smaller there.
    #[cfg(not(target_arch = "wasm32"))]
    pub const PUT: usize = 4;
    /// Content blocks written to a store per batch (see the native value).
    #[cfg(target_arch = "wasm32")]
    pub const PUT: usize = 2;

    /// Raw leaves fetched and hashed ahead per step of a read.
    #[cfg(not(target_arch = "wasm32"))]
    pub const OPEN_GROUP: usize = 4;
    /// Raw leaves fetched ahead per step of a read (one: no threads to hash them on).
    #[cfg(target_arch = "wasm32")]
    pub const OPEN_GROUP: usize = 1;

    /// Plaintext sealed per pipeline step of a publish: two leaves, so hashing spreads over
    /// both cores. (4 MiB was as fast in the same run, and with the filesystem store writing a
    /// batch's leaves on both cores took peak memory over 32 MiB through allocator arenas.)
    #[cfg(not(target_arch = "wasm32"))]
    pub const SEAL_PIECE: usize = 2 << 20;
    /// Plaintext sealed per step of a publish in a browser.
    #[cfg(target_arch = "wasm32")]
    pub const SEAL_PIECE: usize = 1 << 20;

    /// Plaintext sealed per step of a publish through [`crate::offload::Offload`] (whose
    /// implementations run each step's chunks concurrently, on threads of their own).
    pub const OFFLOAD_PIECE: usize = 4 << 20;
    /// Raw leaves fetched, hashed and opened per step of a read through
    /// [`crate::offload::Offload`].
    pub const OFFLOAD_GROUP: usize = 4;

    /// Ledger blocks whose rules are checked on one core while the other cores verify the
    /// previous batch's signatures.
    pub const VERIFY: usize = 16;

    /// CAR blocks staged per batch on import (at most 32 MiB of 2 MiB blocks).
    pub const CAR: usize = 16;
}
