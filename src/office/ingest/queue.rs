//! Group commit for `POST /api/v1/ingest`: each request checks its input
//! on its own thread (JSON, signature: [`super::check`]), then queues it
//! here and waits. One writer at a time takes every input waiting (up to
//! [`MAX_BATCH`]) and keeps them in one transaction ([`super::keep`]), so a
//! burst of a thousand schools sending after the night costs a few commits
//! instead of a thousand (docs/performance.md, "Office ingest").
//!
//! A request's answer comes only once its batch is committed: "stored"
//! means on disk. The writer is a thread started when inputs wait and none
//! is running, and it ends when the queue is empty.
//!
//! Uses: `stats::flusher` (the shared store), `office::ingest::{check,
//! keep}`. Used by: `office::ingest`, `web` (through `AppState`).

use super::check::Checked;
use super::keep::{Ids, KeepError, Outcome, keep};
use crate::stats::flusher::SharedStore;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Most inputs kept in one transaction: a batch's answers wait for its
/// commit, so this bounds how long the first of them waits.
pub const MAX_BATCH: usize = 256;

/// What the office received, for `/metrics` (`edudns_ingest_total`).
#[derive(Debug, Default)]
pub struct IngestFigures {
    pub stored: AtomicU64,
    pub duplicate: AtomicU64,
    pub refused: AtomicU64,
    /// Transactions the writer committed, and the inputs in them
    /// (`edudns_ingest_batches_total`, `edudns_ingest_batched_total`).
    pub batches: AtomicU64,
    pub batched: AtomicU64,
}

/// The office's ingest: what it received and the inputs waiting to be kept.
#[derive(Default)]
pub struct Ingest {
    pub figures: IngestFigures,
    waiting: Mutex<Waiting>,
    /// The writer's ids (only the writer takes it).
    ids: Mutex<Ids>,
}

#[derive(Default)]
struct Waiting {
    jobs: Vec<Job>,
    /// A writer thread is running (it takes every job queued meanwhile).
    writing: bool,
}

struct Job {
    store: SharedStore,
    checked: Checked,
    answer: oneshot::Sender<Outcome>,
}

fn lock(waiting: &Mutex<Waiting>) -> MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ingest {
    /// Queues a checked input to be kept in `store`; the answer comes when
    /// its batch is committed (or failed: then nothing of it was kept).
    pub fn submit(
        self: &Arc<Self>,
        store: SharedStore,
        checked: Checked,
    ) -> oneshot::Receiver<Outcome> {
        let (answer, receiver) = oneshot::channel();
        let start = {
            let mut waiting = lock(&self.waiting);
            waiting.jobs.push(Job {
                store,
                checked,
                answer,
            });
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start {
            let ingest = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("office-ingest".into())
                .spawn(move || ingest.write());
            if let Err(e) = spawned {
                // No thread to write with: answer what waits (the nodes
                // send again), and let the next input try to start one.
                let jobs = {
                    let mut waiting = lock(&self.waiting);
                    waiting.writing = false;
                    std::mem::take(&mut waiting.jobs)
                };
                for job in jobs {
                    let _ = job
                        .answer
                        .send(Err(KeepError(format!("cannot start the writer: {e}"))));
                }
            }
        }
        receiver
    }

    /// The writer: batches until nothing waits.
    fn write(&self) {
        loop {
            let mut batch: Vec<Job> = {
                let mut waiting = lock(&self.waiting);
                if waiting.jobs.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let n = waiting.jobs.len().min(MAX_BATCH);
                waiting.jobs.drain(..n).collect()
            };
            // Every request of one office names the same store; kept apart
            // all the same, one transaction per store.
            while !batch.is_empty() {
                let store = batch[0].store.clone();
                let (same, rest): (Vec<Job>, Vec<Job>) = batch
                    .into_iter()
                    .partition(|job| Arc::ptr_eq(&job.store, &store));
                batch = rest;
                self.keep_batch(&store, same);
            }
        }
    }

    fn keep_batch(&self, store: &SharedStore, jobs: Vec<Job>) {
        use std::sync::atomic::Ordering::Relaxed;
        let count = jobs.len();
        let (checked, answers): (Vec<Checked>, Vec<oneshot::Sender<Outcome>>) = jobs
            .into_iter()
            .map(|job| (job.checked, job.answer))
            .unzip();
        let outcomes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            keep(store.connection(), &mut ids, checked)
        }))
        .unwrap_or_else(|_| {
            (0..count)
                .map(|_| Err(KeepError("the office's writer failed".into())))
                .collect()
        });
        self.figures.batches.fetch_add(1, Relaxed);
        self.figures.batched.fetch_add(count as u64, Relaxed);
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            // A request that gave up waiting no longer listens; what was
            // kept stays kept, and its resend is answered "duplicate".
            let _ = answer.send(outcome);
        }
    }
}
