//! A small team of threads for tensorcv's kernels: the calling thread and `n - 1` workers.
//!
//! A model's operators are tens of microseconds each (BlazeFace: 60 of them in 0.4 ms), so
//! handing a part of one to a thread that has gone to sleep costs more than it saves. While a
//! model runs (inside [`Team::scope`]), the workers spin waiting for the next part, through
//! tract's own operators between tensorcv's (as onnxruntime's pool spins through a run). Between
//! runs, a worker that has seen no work for a while parks; the next run wakes it as it starts,
//! so the wake-up overlaps the run's first serial work (converting the input, copying it into
//! a padded buffer) instead of delaying its first parallel operator. Parts are assigned
//! statically (part `i` to member `i % n`), which the kernels' even splits make balanced.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker spins without work, outside a run, before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// The job being run: `parts` calls of `f`, as a raw pointer to the caller's closure (alive
/// until every member has reported the generation done).
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
}

// SAFETY: `f` is `Sync` and outlives every use (see `Team::run`)
unsafe impl Send for Job {}

struct Worker {
    /// generation of the job published to this worker
    ready: AtomicU64,
    /// generation this worker has finished
    done: AtomicU64,
    /// the worker is parked (or about to): publishing must wake it
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

struct Shared {
    job: Mutex<Option<Job>>,
    workers: Vec<Worker>,
    stop: AtomicBool,
    /// a run is in [`Team::scope`]: workers do not park
    running: AtomicBool,
    /// a part panicked on a worker (reported by the caller once the job is done)
    panicked: AtomicBool,
}

/// The team; dropping it stops the workers.
pub struct Team {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// generation of the last job
    generation: AtomicU64,
    /// one run at a time (a model shared by threads runs the others single-threaded)
    busy: Mutex<()>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Team({} threads)", self.size())
    }
}

impl Team {
    /// A team of `threads` (the caller and `threads - 1` workers); `None` where threads
    /// cannot be spawned.
    pub fn new(threads: usize) -> Option<Team> {
        let n = threads.max(1) - 1;
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            workers: (0..n)
                .map(|_| Worker {
                    ready: AtomicU64::new(0),
                    done: AtomicU64::new(0),
                    parked: AtomicBool::new(false),
                    lock: Mutex::new(()),
                    wake: Condvar::new(),
                })
                .collect(),
            stop: AtomicBool::new(false),
            running: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        });
        let mut handles = vec![];
        for w in 0..n {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("tensorcv-{}", w + 1))
                .spawn(move || work(&s, w))
                .ok()?;
            handles.push(h);
        }
        Some(Team {
            shared,
            handles,
            generation: AtomicU64::new(0),
            busy: Mutex::new(()),
        })
    }

    /// Members, the caller included.
    pub fn size(&self) -> usize {
        self.shared.workers.len() + 1
    }

    /// Run `f` with this team as the current thread's (what [`threads`] and [`for_parts`] use),
    /// or without it if another thread is running on it. Parked workers are woken as `f`
    /// starts, and spin until it returns.
    pub fn scope<R>(self: &Arc<Team>, f: impl FnOnce() -> R) -> R {
        let Ok(_guard) = self.busy.try_lock() else {
            return f();
        };
        /// Ends the run (also on a panic): workers may park again, the thread's previous team
        /// is back.
        struct Run<'a>(&'a Shared, Option<Arc<Team>>);
        impl Drop for Run<'_> {
            fn drop(&mut self) {
                self.0.running.store(false, Ordering::SeqCst);
                let previous = self.1.take();
                CURRENT.with_borrow_mut(|c| *c = previous);
            }
        }
        let _run = Run(
            &self.shared,
            CURRENT.with_borrow_mut(|c| c.replace(self.clone())),
        );
        self.shared.running.store(true, Ordering::SeqCst);
        for w in &self.shared.workers {
            if w.parked.load(Ordering::SeqCst) {
                let _l = w.lock.lock().unwrap_or_else(|e| e.into_inner());
                w.wake.notify_one();
            }
        }
        f()
    }

    /// Call `f(i)` for every `i < parts`, spread over the team; returns when all are done.
    fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let n = self.size();
        let workers = &self.shared.workers[..(parts.min(n) - 1)];
        // SAFETY: the pointer is only dereferenced by members while the generation is not
        // reported done, and this call does not return before every member reports it
        let f_static: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Job { f: f_static, parts });
        let g = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        for w in workers {
            w.ready.store(g, Ordering::SeqCst);
            if w.parked.load(Ordering::SeqCst) {
                let _l = w.lock.lock().unwrap_or_else(|e| e.into_inner());
                w.wake.notify_one();
            }
        }
        // the caller's share
        let mut i = 0;
        while i < parts {
            f(i);
            i += n;
        }
        for w in workers {
            while w.done.load(Ordering::Acquire) != g {
                std::hint::spin_loop();
            }
        }
        if self.shared.panicked.swap(false, Ordering::SeqCst) {
            panic!("a tensorcv kernel panicked on a worker thread");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &self.shared.workers {
            let _l = w.lock.lock().unwrap_or_else(|e| e.into_inner());
            w.wake.notify_one();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A worker's loop: wait (spinning, then parked) for a generation, run its parts, report.
fn work(s: &Shared, w: usize) {
    let me = &s.workers[w];
    let n = s.workers.len() + 1;
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while me.ready.load(Ordering::Acquire) == seen {
            if s.stop.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024)
                && start.elapsed() > SPIN
                && !s.running.load(Ordering::Relaxed)
            {
                // park until a job is published or a run starts (rechecked under the lock:
                // no missed wake)
                me.parked.store(true, Ordering::SeqCst);
                let mut l = me.lock.lock().unwrap_or_else(|e| e.into_inner());
                while me.ready.load(Ordering::SeqCst) == seen
                    && !s.stop.load(Ordering::SeqCst)
                    && !s.running.load(Ordering::SeqCst)
                {
                    l = me
                        .wake
                        .wait_timeout(l, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                me.parked.store(false, Ordering::SeqCst);
                break;
            }
        }
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let g = me.ready.load(Ordering::Acquire);
        if g == seen {
            continue;
        }
        seen = g;
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = job {
            let mut i = w + 1;
            while i < job.parts {
                // SAFETY: the publisher waits for this generation's report before returning
                let part = std::panic::AssertUnwindSafe(|| unsafe { (*job.f)(i) });
                if std::panic::catch_unwind(part).is_err() {
                    s.panicked.store(true, Ordering::SeqCst);
                }
                i += n;
            }
        }
        me.done.store(g, Ordering::Release);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Team>>> = const { RefCell::new(None) };
}

/// Members of the current thread's team (1 without one).
pub(crate) fn team_size() -> Option<usize> {
    CURRENT.with_borrow(|c| c.as_ref().map(|t| t.size()))
}

/// Run `f(i)` for `i < parts` on the current thread's team; false (nothing run) without one.
pub(crate) fn team_run(parts: usize, f: &(dyn Fn(usize) + Sync)) -> bool {
    let team = CURRENT.with_borrow(|c| c.clone());
    match team {
        Some(t) if t.size() > 1 && parts > 1 => {
            t.run(parts, f);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wait up to a second for `cond`.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        cond()
    }

    #[test]
    fn runs_wake_parked_workers_and_keep_them_spinning() {
        let Some(team) = Team::new(2) else {
            return; // no threads here
        };
        let team = Arc::new(team);
        let parked = || team.shared.workers[0].parked.load(Ordering::SeqCst);
        let count = AtomicUsize::new(0);
        let add = |_: usize| {
            count.fetch_add(1, Ordering::SeqCst);
        };
        // outside a run the worker parks once it has been idle for a while
        assert!(eventually(parked), "an idle worker parks");
        team.scope(|| {
            // the run wakes it before any part is published, and it stays awake through gaps
            // longer than its spin between runs
            assert!(eventually(|| !parked()), "a run wakes the worker");
            std::thread::sleep(SPIN * 5);
            assert!(!parked(), "the worker spins for the whole run");
            assert!(team_run(4, &add));
        });
        assert_eq!(count.load(Ordering::SeqCst), 4);
        assert!(eventually(parked), "after the run the worker parks again");
        // a part that panics on the caller ends the run all the same
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.scope(|| panic!("a kernel failed"))
        }));
        assert!(caught.is_err());
        assert!(!team.shared.running.load(Ordering::SeqCst));
        assert_eq!(team_size(), None, "the thread's team is restored");
    }
}
