//! keepalived's top-level `SSL { certificate FILE; key FILE; password P;
//! ca FILE }`: the client certificate every `SSL_GET` presents (for real
//! servers that ask for one). As in keepalived, the server's certificate is
//! not verified, so `ca` changes nothing. The files are read when the
//! configuration is: a missing or unreadable one is an error then, not a
//! failed check later. Keys must be unencrypted (rustls reads no
//! encrypted PEM).

use super::model::Diag;
use super::tree::Node;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The client certificate's chain and key, as PEM text (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl ClientCert {
    /// The chain and key for rustls.
    pub fn parts(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let chain = CertificateDer::pem_slice_iter(&self.chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate: {e}"))?;
        if chain.is_empty() {
            return Err("certificate: no CERTIFICATE in the file".into());
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| format!("key: {e}"))?;
        Ok((chain, key))
    }
}

/// The `SSL` block: `None`, with an error, when it names no certificate
/// or a file that cannot be read or used.
pub fn block(n: &Node, diags: &mut Vec<Diag>) -> Option<ClientCert> {
    let mut err = |msg: String| diags.push(Diag { at: n.at(), msg, fatal: true });
    let (mut cert, mut key, mut password) = (None, None, false);
    for k in n.kids() {
        match (k.name(), k.arg(0)) {
            ("certificate", Some(f)) => cert = Some(f.to_string()),
            ("key", Some(f)) => key = Some(f.to_string()),
            ("password", Some(_)) => password = true,
            ("ca", Some(_)) => {}
            (name, _) => err(format!("SSL: '{name}' is not certificate, key, password or ca FILE")),
        }
    }
    let (Some(cert), Some(key)) = (cert, key) else {
        err("SSL: a client certificate needs both certificate FILE and key FILE".into());
        return None;
    };
    let read = |f: &str| std::fs::read(f).map_err(|e| format!("SSL: cannot read {f}: {e}"));
    let c = match (read(&cert), read(&key)) {
        (Ok(chain_pem), Ok(key_pem)) => ClientCert { chain_pem, key_pem },
        (Err(e), _) | (_, Err(e)) => {
            err(e);
            return None;
        }
    };
    if password && String::from_utf8_lossy(&c.key_pem).contains("ENCRYPTED") {
        err(format!(
            "SSL: {key} is encrypted (password): xdpvs-checker reads unencrypted keys; write one with \
             `openssl pkey -in {key} -out {key}.plain` and name that"
        ));
        return None;
    }
    match c.parts().and_then(|_| crate::health::tls::build(Some(&c)).map(drop)) {
        Ok(()) => Some(c),
        Err(e) => {
            err(format!("SSL: {e} ({cert}, {key})"));
            None
        }
    }
}
