//! Small manifests the tests share: a Deployment of the test server and a Service in front of it.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::Result;
use crate::kit::namespace::TestNamespace;

/// The test server's image lines (indented for a container of a pod template), serving 8080/TCP and
/// 8081/UDP. On the local cluster the node agent serves any image itself; where pods run real images
/// (kind), `SVCNET_TESTSERVER_IMAGE` names one carrying `svcnet-testserver`.
pub fn testserver_image() -> String {
    match std::env::var("SVCNET_TESTSERVER_IMAGE") {
        Ok(image) => format!(
            "        image: {image}
        command: [svcnet-testserver, --tcp=8080, --udp=8081]
        env:
        - name: POD_NAME
          valueFrom: {{ fieldRef: {{ fieldPath: metadata.name }} }}"
        ),
        Err(_) => "        image: svcnet.dev/testserver:local".to_owned(),
    }
}

/// A Deployment `name` (label `app=name`) of the test server on 8080/TCP (`http`) and 8081/UDP
/// (`udp`). With `probe`, pods are Ready once GET /healthz answers; without, once started.
pub fn deployment(name: &str, replicas: u32, probe: bool, grace: u32) -> String {
    let image = testserver_image();
    let mut yaml = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{ name: {name} }}
spec:
  replicas: {replicas}
  selector: {{ matchLabels: {{ app: {name} }} }}
  template:
    metadata: {{ labels: {{ app: {name} }} }}
    spec:
      terminationGracePeriodSeconds: {grace}
      containers:
      - name: server
{image}
        ports:
        - {{ name: http, containerPort: 8080, protocol: TCP }}
        - {{ name: udp, containerPort: 8081, protocol: UDP }}
"
    );
    if probe {
        yaml.push_str(
            "        readinessProbe:
          httpGet: { path: /healthz, port: http }
          periodSeconds: 1
          failureThreshold: 1
",
        );
    }
    yaml
}

/// A bare Pod `name` (label `app=<app>`) of the test server, serving as [`deployment`]'s pods do;
/// `extra` lines go under `spec:` (indented by two spaces), e.g. `hostname: h1`.
pub fn pod(name: &str, app: &str, extra: &[&str]) -> String {
    let image = testserver_image();
    let mut yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{ name: {name}, labels: {{ app: {app} }} }}
spec:
  terminationGracePeriodSeconds: 0
"
    );
    for line in extra {
        let _ = writeln!(yaml, "  {line}");
    }
    // The container is indented as in a Deployment's template, where the image lines fit.
    let _ = write!(
        yaml,
        "  containers:
      - name: server
{image}
        ports:
        - {{ name: http, containerPort: 8080, protocol: TCP }}
        - {{ name: udp, containerPort: 8081, protocol: UDP }}
"
    );
    yaml
}

/// A Service `name` selecting `app=<selects>`: port 80 → `http`, 81/UDP → `udp`. `extra` lines are
/// added under `spec:` (indented by two spaces), e.g. `clusterIP: None`.
pub fn service(name: &str, selects: &str, extra: &[&str]) -> String {
    let mut yaml = format!(
        "apiVersion: v1
kind: Service
metadata: {{ name: {name} }}
spec:
  selector: {{ app: {selects} }}
  ports:
  - {{ name: http, port: 80, targetPort: http, protocol: TCP }}
  - {{ name: udp, port: 81, targetPort: udp, protocol: UDP }}
"
    );
    for line in extra {
        let _ = writeln!(yaml, "  {line}");
    }
    yaml
}

/// Sets the Deployment's replicas.
pub async fn scale(ns: &TestNamespace, name: &str, replicas: u32) -> Result<()> {
    let patch = json!({ "spec": { "replicas": replicas } });
    ns.api::<Deployment>()
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}
