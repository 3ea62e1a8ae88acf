//! The mutating webhook: `POST /mutate-services` over HTTPS.
//!
//! Every replica serves it. A request is planned ([`super::plan`]), granted on the persisted book
//! ([`super::store`]) and answered with a JSON patch; dry-run requests are answered the same way but
//! reserve nothing. A request that cannot be satisfied is denied with the reason; a request we cannot
//! process (the API unreachable) is answered with an error, so `failurePolicy` decides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::Service;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::plan::{self, Denial};
use super::store::Store;
use crate::metrics::Metrics;

/// What the handler needs.
#[derive(Debug)]
pub struct Webhook {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
}

/// Serves the webhook on `addr` until the listener fails.
pub async fn serve(
    addr: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    webhook: Arc<Webhook>,
) -> std::io::Result<()> {
    let listener = TlsListener {
        tcp: bind(addr)?,
        tls: TlsAcceptor::from(config),
    };
    tracing::info!(%addr, "webhook listening");
    let app = Router::new()
        .route("/mutate-services", post(mutate))
        .with_state(webhook);
    axum::serve(listener, app).await
}

/// Binds with SO_REUSEPORT, so replicas on one host (the local cluster) can share the webhook's
/// address and the kernel spreads connections over them, as a Service does in a cluster.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The answer; a request we could not process is answered 500, so the apiserver applies
/// `failurePolicy` (`Ignore` lets the Service be created and repair adopts what the apiserver chose).
async fn mutate(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<Service>>,
) -> Result<Json<AdmissionReview<DynamicObject>>, (StatusCode, String)> {
    let started = Instant::now();
    let request: AdmissionRequest<Service> = match review.try_into() {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "malformed admission review");
            return Ok(Json(
                AdmissionResponse::invalid(e.to_string()).into_review(),
            ));
        }
    };
    let answered = answer(&webhook, &request).await;
    let outcome = answered.as_ref().map_or("error", |(_, outcome)| *outcome);
    webhook.metrics.observe_webhook(outcome, started.elapsed());
    answered
        .map(|(response, _)| Json(response.into_review()))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn answer(
    webhook: &Webhook,
    request: &AdmissionRequest<Service>,
) -> Result<(AdmissionResponse, &'static str), String> {
    let response = AdmissionResponse::from(request);
    let namespace = request.namespace.clone().unwrap_or_default();
    let service = if request.name.is_empty() {
        // generateName: no name yet; the request's uid stands in (a retry cannot be recognised).
        format!("{namespace}/{}", request.uid)
    } else {
        format!("{namespace}/{}", request.name)
    };
    let Some(new) = request.object.as_ref() else {
        return Ok((response, "allowed"));
    };
    let old = match request.operation {
        Operation::Create => None,
        Operation::Update => request.old_object.as_ref(),
        _ => return Ok((response, "allowed")),
    };
    let (new, old, key) = (new.clone(), old.cloned(), service.clone());
    let outcome = webhook
        .store
        .update(request.dry_run, move |book| {
            let plan = plan::plan(&new, old.as_ref(), &book.families())?;
            if plan.is_empty() {
                return Ok((book.clone(), (plan, None)));
            }
            let (next, grant) = book.grant(&key, &plan)?;
            Ok((next, (plan, Some(grant))))
        })
        .await;
    match outcome {
        Ok(Ok((_, None))) => Ok((response, "allowed")),
        Ok(Ok((plan, Some(grant)))) => {
            let ops = plan::patch_ops(&plan, &grant);
            tracing::info!(
                service,
                dry_run = request.dry_run,
                operation = ?request.operation,
                values = ?ops,
                "allocated"
            );
            let patch = json_patch::Patch(
                ops.into_iter()
                    .map(|(path, value)| {
                        PatchOperation::Add(AddOperation {
                            path: PointerBuf::parse(&path).unwrap_or_default(),
                            value,
                        })
                    })
                    .collect(),
            );
            response
                .with_patch(patch)
                .map(|patched| (patched, "allocated"))
                .map_err(|e| e.to_string())
        }
        Ok(Err(Denial(reason))) => {
            tracing::info!(service, reason, "denied");
            Ok((AdmissionResponse::from(request).deny(reason), "denied"))
        }
        Err(e) => {
            tracing::warn!(service, error = %e, "allocation failed");
            Err(format!("svcnet could not allocate: {e}"))
        }
    }
}

/// TCP with a TLS handshake on accept (bounded, so a silent client cannot stall the listener).
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(5), self.tls.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
