//! Group commit: requests that arrive while a write is in flight wait for the next one
//! and are committed together, with one statement and one commit, instead of a round
//! trip and a commit (a WAL flush) each. Under load a request pays a share of one
//! commit; alone it is written at once, with no delay waiting for company.
//!
//! One writer task per [`GroupCommit`] takes every request waiting (up to a batch's
//! bound) and hands them to its [`Batch`], which answers one outcome per request.

use std::{future::Future, time::Duration};

use tokio::sync::{mpsc, oneshot};

/// What a writer commits: a batch of items in, one outcome per item out.
pub trait Batch: Send + 'static {
    type Item: Send + 'static;
    type Outcome: Send + 'static;

    /// Commits `items` together; returns exactly one outcome per item, in order.
    fn commit(&mut self, items: Vec<Self::Item>) -> impl Future<Output = Vec<Self::Outcome>> + Send;
}

/// Why a submitted item has no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupCommitError {
    #[error("the writer has stopped")]
    Stopped,
    #[error("not committed within {} ms", .0.as_millis())]
    Timeout(Duration),
}

type Pending<B> = (<B as Batch>::Item, oneshot::Sender<<B as Batch>::Outcome>);

/// The queue of one writer task.
pub struct GroupCommit<B: Batch> {
    queue: mpsc::Sender<Pending<B>>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

impl<B: Batch> GroupCommit<B> {
    /// Starts the writer: batches of at most `max_batch` items; past `queue` waiting
    /// items, a submitter waits for room.
    pub fn spawn(writer: B, max_batch: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(write(writer, rx, max_batch.max(1)));
        Self { queue: tx }
    }

    /// Submits `item` and waits for its outcome, at most `timeout` (queueing included).
    /// An item whose submitter stopped waiting before its batch was taken is not
    /// written.
    pub async fn submit(&self, item: B::Item, timeout: Duration) -> Result<B::Outcome, GroupCommitError> {
        let (done, outcome) = oneshot::channel();
        let wait = async {
            self.queue.send((item, done)).await.map_err(|_| GroupCommitError::Stopped)?;
            outcome.await.map_err(|_| GroupCommitError::Stopped)
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| GroupCommitError::Timeout(timeout))?
    }
}

async fn write<B: Batch>(mut writer: B, mut rx: mpsc::Receiver<Pending<B>>, max_batch: usize) {
    let mut waiting: Vec<Pending<B>> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut waiting, max_batch).await > 0 {
        let (items, replies): (Vec<B::Item>, Vec<oneshot::Sender<B::Outcome>>) =
            waiting.drain(..).filter(|(_, reply)| !reply.is_closed()).unzip();
        if items.is_empty() {
            continue;
        }
        let expected = items.len();
        let outcomes = writer.commit(items).await;
        if outcomes.len() != expected {
            // A writer's defect: the submitters without an outcome learn it stopped.
            tracing::error!(
                items = expected,
                outcomes = outcomes.len(),
                "a batch answered the wrong number of outcomes"
            );
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A submitter that gave up meanwhile has dropped its receiver.
            let _ = reply.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records the batches it is given and answers each item doubled.
    struct Doubler {
        batches: Batches,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Batch for Doubler {
        type Item = u32;
        type Outcome = u32;

        async fn commit(&mut self, items: Vec<u32>) -> Vec<u32> {
            // Held until the test opens the gate, so that later items queue meanwhile.
            self.gate.acquire().await.expect("gate").forget();
            self.batches.lock().expect("lock").push(items.clone());
            items.into_iter().map(|i| i * 2).collect()
        }
    }

    type Batches = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A writer of batches of at most `max_batch`, held at a closed gate; the batches it
    /// was given.
    fn gated(max_batch: usize) -> (GroupCommit<Doubler>, Batches, Arc<tokio::sync::Semaphore>) {
        let batches = Batches::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let commit = GroupCommit::spawn(Doubler { batches: batches.clone(), gate: gate.clone() }, max_batch, 16);
        (commit, batches, gate)
    }

    /// Submits `item` from a task of its own (waiting up to 5 s).
    fn submitted(commit: &GroupCommit<Doubler>, item: u32) -> tokio::task::JoinHandle<Result<u32, GroupCommitError>> {
        let commit = commit.clone();
        tokio::spawn(async move { commit.submit(item, Duration::from_secs(5)).await })
    }

    #[tokio::test]
    async fn items_waiting_during_a_write_are_committed_together_and_each_gets_its_own_outcome() {
        let (commit, batches, gate) = gated(3);
        let first = submitted(&commit, 1);
        // The first item is taken alone (nothing else waits) and held at the gate.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let rest: Vec<_> = (2..=6).map(|i| submitted(&commit, i)).collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.add_permits(10);
        assert_eq!(first.await.expect("task"), Ok(2));
        for (i, task) in (2..=6).zip(rest) {
            assert_eq!(task.await.expect("task"), Ok(i * 2));
        }
        let batches = batches.lock().expect("lock").clone();
        assert_eq!(batches[0], [1]);
        // The five that waited went in batches of at most three, in their order.
        assert_eq!(batches[1..].concat(), [2, 3, 4, 5, 6]);
        assert!(batches[1..].iter().all(|b| b.len() <= 3), "{batches:?}");
        assert_eq!(batches.len(), 3, "{batches:?}");
    }

    #[tokio::test]
    async fn a_submitter_that_stopped_waiting_is_not_written() {
        let (commit, batches, gate) = gated(8);
        let held = submitted(&commit, 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Queued behind the held batch, and given up on before the writer takes it.
        assert_eq!(
            commit.submit(7, Duration::from_millis(20)).await,
            Err(GroupCommitError::Timeout(Duration::from_millis(20)))
        );
        let kept = submitted(&commit, 8);
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.add_permits(10);
        assert_eq!(held.await.expect("task"), Ok(2));
        assert_eq!(kept.await.expect("task"), Ok(16));
        assert_eq!(batches.lock().expect("lock").concat(), [1, 8]);
    }
}
