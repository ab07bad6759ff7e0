//! The offline model over TLS, with an injected round-trip time: what a fresh Lambda sandbox
//! sees when it first calls Bedrock. Used by `tests/cold_path.rs` (how many connections a first
//! invocation opens) and `benches/cold_tls.rs` (what they cost).
//!
//! - [`TestCa`]: a CA and a server certificate for `127.0.0.1` / `localhost`, generated per run
//!   (rcgen), the CA written to a PEM file for the binary's `SSL_CERT_FILE`.
//! - [`TlsFront`]: a loopback listener in front of the (plain HTTP) offline model. Each accepted
//!   TCP connection passes through a delay line — every byte reaches the other side `one_way`
//!   after it was sent, in both directions, so a round trip costs `2 × one_way` and the TLS
//!   handshake pays its round trips like on a network — then TLS is terminated (rustls, ring)
//!   and the plaintext goes to the offline model. It records when it accepted each TCP
//!   connection and when each TLS handshake completed.
//!
//! What it cannot delay: the TCP handshake itself (the kernel completes it before `accept`), so
//! a new connection here costs one round trip less than on a network.
// Each test or bench binary uses a different subset.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA generated for this run, its certificate in a PEM file (removed on drop), and a server
/// certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    ca_file: PathBuf,
    server: Arc<ServerConfig>,
}

impl TestCa {
    pub fn generate() -> TestCa {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "chatbot cold-path test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".into()])
            .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "offline bedrock-runtime");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let ca_file = std::env::temp_dir().join(format!(
            "chatbot-test-ca-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&ca_file, ca_cert.pem()).expect("write the CA file");

        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("server TLS config");
        // The offline model speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TestCa {
            ca_file,
            server: Arc::new(config),
        }
    }

    /// The CA certificate (PEM), for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// When connections arrived (TCP accepted) and when their TLS handshakes completed.
#[derive(Default)]
struct Seen {
    accepts: Vec<Instant>,
    handshakes: Vec<Instant>,
}

/// HTTPS on loopback in front of a plain-HTTP upstream, each direction delayed. Dropping it stops
/// accepting (open connections live until their peers close them).
pub struct TlsFront {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(upstream: SocketAddr, ca: &TestCa, one_way: Duration) -> TlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let acceptor = TlsAcceptor::from(ca.server.clone());
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    record(&seen, |s| &mut s.accepts);
                    tokio::spawn(serve(
                        client,
                        acceptor.clone(),
                        upstream,
                        one_way,
                        seen.clone(),
                    ));
                }
            }
        });
        TlsFront { addr, seen, task }
    }

    /// `https://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`.
    pub fn endpoint_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// TCP connections accepted in `[from, to)`.
    pub fn accepts_between(&self, from: Instant, to: Instant) -> usize {
        count(&lock(&self.seen).accepts, from, to)
    }

    /// TLS handshakes completed in `[from, to)`.
    pub fn handshakes_between(&self, from: Instant, to: Instant) -> usize {
        count(&lock(&self.seen).handshakes, from, to)
    }

    pub fn accepts(&self) -> usize {
        lock(&self.seen).accepts.len()
    }

    pub fn handshakes(&self) -> usize {
        lock(&self.seen).handshakes.len()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(seen: &Mutex<Seen>, list: fn(&mut Seen) -> &mut Vec<Instant>) {
    list(&mut lock(seen)).push(Instant::now());
}

fn count(at: &[Instant], from: Instant, to: Instant) -> usize {
    at.iter().filter(|t| **t >= from && **t < to).count()
}

/// One connection: client ⇄ delay line ⇄ TLS ⇄ upstream.
async fn serve(
    client: TcpStream,
    acceptor: TlsAcceptor,
    upstream: SocketAddr,
    one_way: Duration,
    seen: Arc<Mutex<Seen>>,
) {
    let _ = client.set_nodelay(true);
    // The TLS side talks to `near`; the delay lines move bytes between `far` and the socket.
    let (near, far) = tokio::io::duplex(256 * 1024);
    let (client_read, client_write) = client.into_split();
    let (far_read, far_write) = tokio::io::split(far);
    tokio::spawn(delay_line(client_read, far_write, one_way));
    tokio::spawn(delay_line(far_read, client_write, one_way));
    let Ok(mut tls) = acceptor.accept(near).await else {
        return;
    };
    record(&seen, |s| &mut s.handshakes);
    let Ok(mut upstream) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
}

/// Copies `from` to `to`, each chunk written `delay` after it was read (order and throughput
/// kept: a delay line, not a pause per chunk). End of input is passed on after the same delay.
async fn delay_line(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Option<Vec<u8>>)>();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let chunk = match from.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(buf[..n].to_vec()),
            };
            let end = chunk.is_none();
            if tx
                .send((tokio::time::Instant::now() + delay, chunk))
                .is_err()
                || end
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) if to.write_all(&bytes).await.is_ok() => {}
                _ => break,
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
