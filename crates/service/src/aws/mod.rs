//! What every AWS client of the service shares (Bedrock Runtime, DynamoDB): one HTTPS client and
//! one configuration, made once at start-up.
//!
//! **Why not only `aws_config::load()`.** Its default chain builds providers for profiles, SSO,
//! web identity (an STS client) and the EC2 metadata service, and the STS client's TLS set-up
//! scans the platform's certificate store: measured here, ~3.7 ms of a Lambda init of ~6 ms and
//! ~3 MB of resident memory (docs/benchmarks.md). In Lambda none of it is needed — the region
//! and the credentials are environment variables — so when the environment holds static
//! credentials the configuration is built from it directly, with the same meaning (region from
//! `AWS_REGION`, endpoints from `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL`). Elsewhere
//! (a developer's profile or SSO login) the full default chain runs.
//!
//! **Trust.** rustls with ring (aws-lc-rs would add ~2 MB to the artifact). The roots are the
//! Amazon Trust Services CAs every AWS endpoint chains to, compiled in (no certificate files read
//! at start-up), plus the certificates in `SSL_CERT_FILE` when it is set (a test CA, or a TLS
//! proxy's): added to the Amazon roots, never replacing them, and read each time an HTTPS client
//! is built (once per process). A file that cannot be read, holds no certificate or holds one
//! that is not a usable CA is logged as a warning and ignored (the built-in roots still work).

pub mod prewarm;

use std::path::Path;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{DEFAULT_REGION, ServiceConfig};

/// Amazon Root CA 1–4 and Starfield Services Root G2 (Amazon Trust Services).
const AMAZON_ROOTS: &[u8] = include_bytes!("amazon_roots.pem");

/// The HTTPS client every AWS client uses (also for plain-HTTP test endpoints).
pub fn https_client() -> SharedHttpClient {
    let mut trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        match extra_roots(Path::new(&path)) {
            Ok(pem) => {
                trust.add_pem_certificate(pem);
            }
            Err(e) => tracing::warn!(
                path = %path.to_string_lossy(),
                error = %e,
                "SSL_CERT_FILE is not used; trusting the built-in Amazon roots only"
            ),
        }
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("the built-in roots are valid PEM");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https()
}

/// The certificates of `SSL_CERT_FILE`, checked the way the TLS stack will use them: the SDK
/// parses the trust store only when it builds a connection, and `expect`s every certificate to
/// be valid — a malformed file would panic there (at start-up) instead of being reported.
fn extra_roots(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    for (i, cert) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(cert)
            .map_err(|e| format!("certificate {} is not a usable CA: {e}", i + 1))?;
    }
    Ok(pem)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The endpoint override for a service, as the SDKs read it: `AWS_ENDPOINT_URL_<SERVICE>` (e.g.
/// `BEDROCK_RUNTIME`, `DYNAMODB`), else `AWS_ENDPOINT_URL`.
pub fn endpoint_override(service: &str) -> Option<String> {
    env(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| env("AWS_ENDPOINT_URL"))
}

/// The model calls' retries: the SDK's standard mode with backoff.
pub fn retry(config: &ServiceConfig) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(config.max_attempts)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2))
}

/// The model calls' timeouts.
pub fn timeouts(config: &ServiceConfig) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout())
        .operation_attempt_timeout(config.attempt_timeout())
        .operation_timeout(config.model_timeout())
        .build()
}

/// The shared AWS configuration: from the environment when it holds static credentials (Lambda
/// always does), else aws-config's default chain.
pub async fn sdk_config(config: &ServiceConfig) -> SdkConfig {
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    if let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        let credentials =
            Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "Environment");
        return SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(
                region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            ))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .http_client(https_client())
            .retry_config(retry(config))
            .timeout_config(timeouts(config))
            .build();
    }
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(Region::new(DEFAULT_REGION));
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .region(region)
        .retry_config(retry(config))
        .timeout_config(timeouts(config))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(contents: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("chatbot-roots-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn ssl_cert_file_is_used_only_when_every_certificate_is_a_usable_ca() {
        let good = file(AMAZON_ROOTS);
        assert_eq!(extra_roots(&good).unwrap(), AMAZON_ROOTS);
        let cases: [(&[u8], &str); 3] = [
            (
                b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
                "not valid PEM",
            ),
            (b"no certificate here\n", "holds no PEM certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1 is not a usable CA",
            ),
        ];
        for (contents, expected) in cases {
            let path = file(contents);
            let err = extra_roots(&path).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
            std::fs::remove_file(path).unwrap();
        }
        assert!(
            extra_roots(Path::new("/nonexistent/roots.pem"))
                .unwrap_err()
                .starts_with("cannot be read")
        );
        std::fs::remove_file(good).unwrap();
    }
}
