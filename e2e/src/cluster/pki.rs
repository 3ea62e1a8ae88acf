//! Certificates and keys the control plane needs, generated fresh at every `up`: a cluster CA, the
//! apiserver's serving certificate, an admin client certificate and the service-account signing key.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// Paths of the files [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
}

fn pem_err(e: rcgen::Error) -> Error {
    Error::invalid("certificate", e)
}

/// Writes a new PKI into `dir`. The apiserver certificate is valid for loopback, the first service
/// address and the in-cluster names, so pods and nodes can use it through their relays.
pub fn generate(dir: &Path, first_service_ip: &str) -> Result<Pki> {
    fs::create_dir_all(dir)?;
    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        apiserver_cert: dir.join("apiserver.crt"),
        apiserver_key: dir.join("apiserver.key"),
        admin_cert: dir.join("admin.crt"),
        admin_key: dir.join("admin.key"),
        service_account_key: dir.join("sa.key"),
        service_account_pub: dir.join("sa.pub"),
    };

    let ca_key = KeyPair::generate().map_err(pem_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pem_err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "svcnet-local-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(pem_err)?;
    fs::write(&pki.ca_cert, ca_cert.pem())?;
    fs::write(&pki.ca_key, ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params, ca_key);

    let sans = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
        crate::addresses::API_V4.to_string(),
        first_service_ip.to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
        "kubernetes.default.svc.cluster.local".to_owned(),
    ];
    leaf(
        &issuer,
        sans,
        "kube-apiserver",
        None,
        ExtendedKeyUsagePurpose::ServerAuth,
        (&pki.apiserver_cert, &pki.apiserver_key),
    )?;
    leaf(
        &issuer,
        Vec::new(),
        "kubernetes-admin",
        Some("system:masters"),
        ExtendedKeyUsagePurpose::ClientAuth,
        (&pki.admin_cert, &pki.admin_key),
    )?;

    let sa_key = KeyPair::generate().map_err(pem_err)?;
    fs::write(&pki.service_account_key, sa_key.serialize_pem())?;
    fs::write(&pki.service_account_pub, sa_key.public_key_pem())?;
    Ok(pki)
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    sans: Vec<String>,
    common_name: &str,
    organization: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
    (cert_path, key_path): (&Path, &Path),
) -> Result<()> {
    let key = KeyPair::generate().map_err(pem_err)?;
    let mut params = CertificateParams::new(sans).map_err(pem_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).map_err(pem_err)?;
    fs::write(cert_path, cert.pem())?;
    fs::write(key_path, key.serialize_pem())?;
    Ok(())
}

/// An admin kubeconfig pointing at the apiserver on loopback (also reachable on the same address and
/// port from inside every node namespace, through the node agent's relay).
pub fn kubeconfig(pki: &Pki, api_port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: svcnet-local
  cluster:
    server: https://127.0.0.1:{api_port}
    certificate-authority: {ca}
users:
- name: admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: svcnet-local
  context:
    cluster: svcnet-local
    user: admin
current-context: svcnet-local
",
        ca = pki.ca_cert.display(),
        cert = pki.admin_cert.display(),
        key = pki.admin_key.display(),
    )
}
