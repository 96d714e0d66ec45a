//! HTTPS for devices that serve a LAN: rustls with the certificate chain and private key read
//! from PEM files (`[server] tls_cert` and `tls_key`, or `--tls-cert` and `--tls-key`).
//!
//! rustls through tokio-rustls is already in the build (reqwest uses it), pure Rust, and with
//! the `ring` provider needs no C toolchain beyond what `ring` brings, which matters for
//! cross-building small edge binaries. The provider is named explicitly rather than taken from
//! the process default, so that a second provider enabled elsewhere in the dependency tree
//! cannot make start-up fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// The certificate file cannot be read or is not valid PEM.
    #[error("reading TLS certificate {path}: {source}")]
    Certificate {
        /// The `tls_cert` path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    /// The key file cannot be read or holds no PEM private key.
    #[error("reading TLS private key {path}: {source}")]
    Key {
        /// The `tls_key` path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: pem::Error,
    },
    /// rustls refused the certificate and key (e.g. they do not match, or the key type is
    /// not supported).
    #[error("TLS certificate and key are not usable: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds the TLS acceptor from the PEM certificate chain at `cert` (leaf first) and the PEM
/// private key (PKCS#8, PKCS#1 or SEC1) at `key`. Only HTTP/1.1 is offered through ALPN, as
/// that is what the server speaks.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certificate_error = |source| TlsError::Certificate {
        path: cert.to_owned(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(certificate_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(certificate_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_owned(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(cert: &Path, key: &Path) -> TlsError {
        match acceptor(cert, key) {
            Ok(_) => panic!("{} with {} was accepted", cert.display(), key.display()),
            Err(e) => e,
        }
    }

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_matching_pem_certificate_and_key_make_an_acceptor() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "a");
        acceptor(&cert, &key).unwrap();
    }

    #[test]
    fn unusable_certificate_or_key_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = write_pair(dir.path(), "a");
        let (_, key_b) = write_pair(dir.path(), "b");
        let missing = dir.path().join("missing.pem");

        let err = refused(&missing, &key_a);
        assert!(matches!(err, TlsError::Certificate { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        // A key file is valid PEM but holds no certificate.
        let err = refused(&key_a, &key_a);
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");

        let err = refused(&cert_a, &cert_a);
        assert!(matches!(err, TlsError::Key { .. }), "{err}");

        let err = refused(&cert_a, &key_b);
        assert!(matches!(err, TlsError::Config(_)), "{err}");
    }
}
