//! Writes pod statuses: the newest status per pod wins, unchanged statuses are not written, and
//! writes for different pods go out concurrently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::Notify;

const CONCURRENCY: usize = 16;
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Pending {
    namespace: String,
    name: String,
    status: Value,
}

#[derive(Debug, Default)]
struct Shared {
    pending: HashMap<String, Pending>,
    /// The last status written per pod uid.
    written: HashMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct StatusWriter {
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
}

impl StatusWriter {
    pub fn spawn(client: kube::Client) -> Self {
        let writer = StatusWriter {
            shared: Arc::default(),
            wake: Arc::new(Notify::new()),
        };
        tokio::spawn(writer.clone().run(client));
        writer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A poisoned lock only means another thread panicked mid-update of plain maps; keep going.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `status` for the pod unless it is what was last written.
    pub fn write(&self, uid: &str, pod: &Pod, status: Value) {
        let mut shared = self.lock();
        if shared.written.get(uid) == Some(&status) {
            shared.pending.remove(uid);
            return;
        }
        shared.pending.insert(
            uid.to_owned(),
            Pending {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                status,
            },
        );
        drop(shared);
        self.wake.notify_one();
    }

    pub fn forget(&self, uid: &str) {
        let mut shared = self.lock();
        shared.pending.remove(uid);
        shared.written.remove(uid);
    }

    async fn run(self, client: kube::Client) {
        loop {
            self.wake.notified().await;
            let batch: Vec<(String, Pending)> = self.lock().pending.drain().collect();
            futures::stream::iter(batch)
                .for_each_concurrent(CONCURRENCY, |(uid, p)| {
                    let client = client.clone();
                    let this = self.clone();
                    async move { this.send(client, uid, p).await }
                })
                .await;
        }
    }

    async fn send(&self, client: kube::Client, uid: String, p: Pending) {
        let api: Api<Pod> = Api::namespaced(client, &p.namespace);
        let patch = Patch::Merge(json!({ "status": p.status }));
        match api
            .patch_status(&p.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {
                self.lock().written.insert(uid, p.status);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{}/{}", p.namespace, p.name), error = %e, "status write failed; retrying");
                self.lock().pending.entry(uid).or_insert(p);
                let wake = self.wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_AFTER).await;
                    wake.notify_one();
                });
            }
        }
    }
}
