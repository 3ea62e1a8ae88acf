//! The `AllocationState` object named `default`, changed only by compare-and-swap.
//!
//! Every change is computed on the last version this replica read and written with that version's
//! `resourceVersion`; when another replica wrote in between, the apiserver answers 409, and the
//! changes are computed again on the fresh version. So two replicas never hand out the same value, as
//! with kube-apiserver's RangeAllocation. One writer task per replica takes every change waiting and
//! commits them in one write (group commit): under a burst a replica writes a few times a second
//! instead of once per request, which keeps conflicts between replicas rare.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ObjectMeta, PostParams};
use svcnet_crds::AllocationState;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::book::{Book, Ranges};
use super::plan::Denial;
use crate::Error;

/// The object's name.
pub const STATE_NAME: &str = "default";

/// How long a batch is retried on conflicts before its requests fail. An error answer lets the
/// apiserver allocate by itself (`failurePolicy: Ignore`), whose values svcnet only learns later, so
/// retrying is worth the whole time the apiserver waits (`timeoutSeconds`: 10 by default).
const RETRY_FOR: Duration = Duration::from_secs(8);

/// Changes committed in one write at most.
const BATCH: usize = 256;

#[derive(Debug)]
struct Loaded {
    book: Book,
    resource_version: String,
}

type Output = Box<dyn Any + Send>;
type Change = Box<dyn Fn(&Book) -> Result<(Book, Output), Denial> + Send + Sync>;

struct Job {
    dry_run: bool,
    change: Change,
    reply: oneshot::Sender<Result<Result<Output, Denial>, Error>>,
}

/// The persisted book.
#[derive(Debug)]
pub struct Store {
    api: Api<AllocationState>,
    loaded: Arc<Mutex<Option<Loaded>>>,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl Store {
    /// A store and its writer task (which ends when the store is dropped).
    pub fn new(client: kube::Client) -> Store {
        let api: Api<AllocationState> = Api::all(client);
        let loaded = Arc::new(Mutex::new(None));
        let (jobs, queue) = mpsc::channel(4096);
        tokio::spawn(write_batches(api.clone(), loaded.clone(), queue));
        Store { api, loaded, jobs }
    }

    /// Reads the object, creating it with an empty book over `ranges` when it does not exist.
    pub async fn load_or_create(&self, ranges: &Ranges) -> Result<(), Error> {
        let mut loaded = self.loaded.lock().await;
        if self.api.get_opt(STATE_NAME).await?.is_none() {
            let object = AllocationState {
                metadata: ObjectMeta {
                    name: Some(STATE_NAME.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Book::new(ranges)?.to_spec(),
            };
            match self.api.create(&PostParams::default(), &object).await {
                Ok(_) => tracing::info!(ranges = ?ranges, "created the allocation state"),
                // Another replica was first.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        *loaded = Some(read(&self.api).await?);
        Ok(())
    }

    /// A copy of the book as this replica last read or wrote it.
    pub async fn book(&self) -> Option<Book> {
        self.loaded.lock().await.as_ref().map(|l| l.book.clone())
    }

    /// Reads the book again (another replica may have changed it).
    pub async fn refresh(&self) -> Result<Book, Error> {
        let mut loaded = self.loaded.lock().await;
        let fresh = read(&self.api).await?;
        let book = fresh.book.clone();
        *loaded = Some(fresh);
        Ok(book)
    }

    /// Applies `change` to the latest book and persists the result; with `dry_run`, computes it and
    /// persists nothing. A denial is returned as it is and changes nothing.
    pub async fn update<T: Send + 'static>(
        &self,
        dry_run: bool,
        change: impl Fn(&Book) -> Result<(Book, T), Denial> + Send + Sync + 'static,
    ) -> Result<Result<T, Denial>, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            dry_run,
            change: Box::new(move |book| {
                change(book).map(|(next, out)| (next, Box::new(out) as Output))
            }),
            reply,
        };
        let stopped = || Error::InvalidAllocationState("the writer stopped".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        let outcome = answer.await.map_err(|_| stopped())??;
        match outcome {
            Ok(out) => out
                .downcast::<T>()
                .map(|out| Ok(*out))
                .map_err(|_| Error::InvalidAllocationState("a job's output changed type".into())),
            Err(denial) => Ok(Err(denial)),
        }
    }
}

async fn read(api: &Api<AllocationState>) -> Result<Loaded, Error> {
    let object = api.get(STATE_NAME).await?;
    Ok(Loaded {
        book: Book::from_spec(&object.spec)?,
        resource_version: object.metadata.resource_version.unwrap_or_default(),
    })
}

/// The writer: every job waiting, one write.
async fn write_batches(
    api: Api<AllocationState>,
    loaded: Arc<Mutex<Option<Loaded>>>,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut jobs, BATCH).await > 0 {
        let mut guard = loaded.lock().await;
        let outcome = commit(&api, &mut guard, &jobs).await;
        drop(guard);
        match outcome {
            Ok(outputs) => {
                for (job, output) in jobs.drain(..).zip(outputs) {
                    // The caller may have gone (the apiserver timed out): nothing to do.
                    let _ = job.reply.send(Ok(output));
                }
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(
                    error = message,
                    jobs = jobs.len(),
                    "allocation state not written"
                );
                for job in jobs.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(Error::InvalidAllocationState(message.clone())));
                }
            }
        }
    }
}

/// Applies the jobs in order on the latest book and writes the result, again on conflicts.
async fn commit(
    api: &Api<AllocationState>,
    loaded: &mut Option<Loaded>,
    jobs: &[Job],
) -> Result<Vec<Result<Output, Denial>>, Error> {
    let started = Instant::now();
    let mut attempt = 0;
    while attempt == 0 || started.elapsed() < RETRY_FOR {
        attempt += 1;
        let (current, fresh) = match loaded.take() {
            Some(current) => (current, false),
            None => (read(api).await?, true),
        };
        let mut book = current.book.clone();
        let mut outputs = Vec::with_capacity(jobs.len());
        for job in jobs {
            match (job.change)(&book) {
                Ok((next, out)) => {
                    if !job.dry_run {
                        book = next;
                    }
                    outputs.push(Ok(out));
                }
                Err(denial) => outputs.push(Err(denial)),
            }
        }
        // A denial ("already allocated", "no NodePort is free") must not come from a stale copy:
        // another replica may have released the value since. Read the latest and decide again.
        if !fresh && outputs.iter().any(Result::is_err) {
            continue;
        }
        let spec = book.to_spec();
        if spec == current.book.to_spec() {
            *loaded = Some(current);
            return Ok(outputs);
        }
        let object = AllocationState {
            metadata: ObjectMeta {
                name: Some(STATE_NAME.to_owned()),
                resource_version: Some(current.resource_version.clone()),
                ..ObjectMeta::default()
            },
            spec,
        };
        match api
            .replace(STATE_NAME, &PostParams::default(), &object)
            .await
        {
            Ok(written) => {
                *loaded = Some(Loaded {
                    book,
                    resource_version: written.metadata.resource_version.unwrap_or_default(),
                });
                return Ok(outputs);
            }
            // Another replica wrote first: read its version (loaded stays empty) and redo, after a
            // short random pause so two replicas stop colliding in step.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tokio::time::sleep(jitter(attempt)).await;
            }
            Err(e) => {
                *loaded = Some(current);
                return Err(e.into());
            }
        }
    }
    Err(Error::Contended(attempt))
}

/// Up to 2 ms per attempt so far (at most 40 ms), drawn afresh each time.
fn jitter(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(attempt);
    let bound = (2 * (attempt as u64 + 1)).min(40);
    Duration::from_millis(hasher.finish() % bound)
}
