//! `SSL_GET`'s TLS: rustls (with ring), as keepalived's SSL_GET by default
//! does not verify the server's certificate (it checks that the server
//! answers over TLS, and what it answers). SNI, when `enable_sni`, names
//! `sni_name`, else the virtual host; without it none is sent. The
//! configuration's `SSL` block gives the client certificate every check
//! presents ([`configure`]).

use crate::conf::ssl::ClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Accepts any certificate (keepalived's default); the signatures of the
/// handshake are still verified with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The connector of the configuration in force, and its client certificate.
static CONNECTOR: RwLock<Option<(Option<ClientCert>, TlsConnector)>> = RwLock::new(None);

/// A connector presenting `cert`, if any (the configuration's reader
/// builds one to check the certificate when it reads the file).
pub(crate) fn build(cert: Option<&ClientCert>) -> Result<TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
    let cfg = match cert {
        Some(c) => {
            let (chain, key) = c.parts()?;
            b.with_client_auth_cert(chain, key).map_err(|e| {
                let hint = if e.to_string().contains("UnsupportedCertVersion") {
                    " (an X.509 v1 certificate: issue a v3 one, e.g. `openssl x509 -req … -extfile` with \
                     `basicConstraints=CA:FALSE`)"
                } else {
                    ""
                };
                format!("not usable as a client certificate: {e}{hint}")
            })?
        }
        None => b.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// Makes every later `SSL_GET` present `cert` (none: no certificate).
pub fn configure(cert: Option<&ClientCert>) -> Result<(), String> {
    let mut c = CONNECTOR.write().unwrap_or_else(|e| e.into_inner());
    if c.as_ref().is_some_and(|(have, _)| have.as_ref() == cert) {
        return Ok(());
    }
    *c = Some((cert.cloned(), build(cert)?));
    Ok(())
}

fn connector() -> Result<TlsConnector, String> {
    if let Some((_, c)) = CONNECTOR.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(c.clone());
    }
    configure(None)?;
    connector()
}

/// TLS over `tcp` to the server at `ip`; `sni`: the name to send, if any.
pub async fn wrap(tcp: TcpStream, ip: IpAddr, sni: Option<&str>) -> Result<TlsStream<TcpStream>, String> {
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).map_err(|e| format!("bad SNI name '{n}': {e}"))?,
        None => ServerName::IpAddress(ip.into()),
    };
    connector()?.connect(name, tcp).await.map_err(|e| e.to_string())
}
