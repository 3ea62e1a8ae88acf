//! The webhook's certificates and its `MutatingWebhookConfiguration`.
//!
//! By default the first replica to start makes a CA and a serving certificate and stores them in a
//! Secret; every replica serves with that one, and writes the CA into the webhook configuration's
//! `caBundle`, so the apiserver trusts whichever replica it reaches. With `--webhook-cert-dir`
//! (cert-manager), the files are used as they are and `caBundle` is left to cert-manager.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use crate::Error;

/// PEM texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

/// A new CA and a serving certificate for `names` (DNS names or IP addresses), valid ten years.
pub fn generate(names: &[String]) -> Result<Material, Error> {
    let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("CA", e))?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "svcnet-webhook-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| tls_error("CA", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(|e| tls_error("serving key", e))?;
    let mut params =
        CertificateParams::new(names.to_vec()).map_err(|e| tls_error("serving certificate", e))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "svcnet-webhook");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| tls_error("serving certificate", e))?;
    Ok(Material {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The material in the Secret `namespace/name`, made and stored first if the Secret does not exist.
pub async fn shared(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    names: &[String],
) -> Result<Material, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let existing = api.get_opt(name).await?;
    if let Some(secret) = &existing
        && let Ok(material) = from_secret(secret, namespace, name)
    {
        return Ok(material);
    }
    let material = generate(names)?;
    let data = BTreeMap::from([
        (
            "ca.crt".to_owned(),
            ByteString(material.ca.clone().into_bytes()),
        ),
        (
            "tls.crt".to_owned(),
            ByteString(material.cert.clone().into_bytes()),
        ),
        (
            "tls.key".to_owned(),
            ByteString(material.key.clone().into_bytes()),
        ),
    ]);
    // An empty Secret (the chart makes one, so uninstalling removes it) is filled in, guarded by its
    // resourceVersion; otherwise it is created.
    let written = match existing {
        Some(mut secret) => {
            secret.data = Some(data);
            api.replace(name, &PostParams::default(), &secret).await
        }
        None => {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".to_owned()),
                data: Some(data),
                ..Secret::default()
            };
            api.create(&PostParams::default(), &secret).await
        }
    };
    match written {
        Ok(_) => {
            tracing::info!(secret = %format!("{namespace}/{name}"), "stored a new webhook CA and certificate");
            Ok(material)
        }
        // Another replica stored its own first: use that one.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            from_secret(&api.get(name).await?, namespace, name)
        }
        Err(e) => Err(e.into()),
    }
}

fn from_secret(secret: &Secret, namespace: &str, name: &str) -> Result<Material, Error> {
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .ok_or_else(|| Error::Tls(format!("Secret {namespace}/{name} has no {key}")))
    };
    Ok(Material {
        ca: field("ca.crt")?,
        cert: field("tls.crt")?,
        key: field("tls.key")?,
    })
}

/// The material in a directory (`ca.crt`, `tls.crt`, `tls.key`, as cert-manager writes them).
pub fn from_dir(dir: &std::path::Path) -> Result<Material, Error> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map_err(|e| Error::Tls(format!("{}: {e}", dir.join(file).display())))
    };
    Ok(Material {
        ca: read("ca.crt").unwrap_or_default(),
        cert: read("tls.crt")?,
        key: read("tls.key")?,
    })
}

/// A rustls server configuration serving `material`'s certificate.
pub fn server_config(material: &Material) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(material.cert.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| tls_error("certificate", e))?;
    let key =
        PrivateKeyDer::from_pem_slice(material.key.as_bytes()).map_err(|e| tls_error("key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("certificate", e))?;
    Ok(Arc::new(config))
}

/// How the apiserver reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// The configuration exists (the chart made it): keep its `caBundle` current.
    Existing,
    /// The controller runs outside the cluster (the local cluster): create or update the whole
    /// configuration, calling this URL.
    Url(String),
}

/// The webhook's name in the configuration.
pub const WEBHOOK_NAME: &str = "services.svcnet.dev";

/// Makes the configuration `name` trust `ca` (and, given one, use `failure_policy`). Without a CA
/// only the policy is changed.
pub async fn configure(
    client: &kube::Client,
    name: &str,
    endpoint: &Endpoint,
    ca: Option<&str>,
    failure_policy: Option<&str>,
) -> Result<(), Error> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let ca_bundle = ca.map(|pem| ByteString(pem.as_bytes().to_vec()));
    match (endpoint, &ca_bundle) {
        // The whole object, only with the CA: applying it without would remove the caBundle.
        (Endpoint::Url(url), Some(ca_bundle)) => {
            let body = json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": { "name": name },
                "webhooks": [{
                    "name": WEBHOOK_NAME,
                    "clientConfig": { "url": url, "caBundle": ca_bundle },
                    "rules": [{
                        "apiGroups": [""], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": ["services"],
                        "scope": "Namespaced",
                    }],
                    "sideEffects": "NoneOnDryRun",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": failure_policy.unwrap_or("Ignore"),
                    "reinvocationPolicy": "Never",
                    "timeoutSeconds": 10,
                }],
            });
            api.patch(
                name,
                &PatchParams::apply("svcnet-controller").force(),
                &Patch::Apply(body),
            )
            .await?;
        }
        _ => {
            let current = api.get(name).await?;
            let mut ops = Vec::new();
            for (i, webhook) in current.webhooks.iter().flatten().enumerate() {
                if let Some(bundle) = &ca_bundle
                    && webhook.client_config.ca_bundle.as_ref() != Some(bundle)
                {
                    ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": bundle}));
                }
                if let Some(policy) = failure_policy
                    && webhook.failure_policy.as_deref() != Some(policy)
                {
                    ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/failurePolicy"), "value": policy}));
                }
            }
            if !ops.is_empty() {
                let patch: json_patch::Patch = serde_json::from_value(json!(ops))
                    .map_err(|e| Error::Tls(format!("webhook configuration patch: {e}")))?;
                api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_material_makes_a_server_config() {
        let m = generate(&["svcnet-webhook.svcnet.svc".into(), "127.0.0.1".into()]).unwrap();
        assert!(m.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        server_config(&m).unwrap();
    }
}
