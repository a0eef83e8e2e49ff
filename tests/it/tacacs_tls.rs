//! TACACS+ over TLS 1.3 (RFC 9887) end to end: a CA, server and client certificates made with
//! rcgen in the test, a real gateway on loopback, and a rustls client (ring provider). Checks a
//! login with a client certificate, clear bodies inside TLS, and every refusal with its counted
//! reason (no certificate, a certificate from another CA, plain TACACS+ on the TLS port, an
//! obfuscated packet inside TLS, an unknown source address).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokengate::tacacs::{
    deobfuscate, encode_packet, AuthenAction, AuthenService, AuthenStart, AuthenStatus, AuthenType,
    Body, Header, Obfuscation, Version, FLAG_UNENCRYPTED, HEADER_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::common::*;

/// A CA and a certificate it signed, as PEM and DER.
struct Issued {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Issued,
    client: Issued,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issue = |names: Vec<String>, eku: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    };
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server: issue(
            vec!["localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: issue(
            vec!["switch.example".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    }
}

/// `[tacacs]` with a plain and a TLS listener, the PEM files written to `dir`.
fn tls_config(dir: &Path, p: &Pki) -> String {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    format!(
        r#"
[tacacs]
listen = ["127.0.0.1:0"]
tls_listen = ["127.0.0.1:0"]
tls_cert_file = "{}"
tls_key_file = "{}"
tls_client_ca_file = "{}"
idle_timeout_secs = 3

[[client]]
name = "switch"
address = "127.0.0.1/32"
secret = "radius-unused"
tacacs_keys = ["tackey"]
"#,
        write("server.pem", &p.server.cert_pem),
        write("server.key", &p.server.key_pem),
        write("ca.pem", &p.ca_pem),
    )
}

async fn gateway() -> (TestGateway, SocketAddr, Pki, tempfile::TempDir) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let tg = TestGateway::start_with(&tls_config(dir.path(), &pki)).await;
    let addr = tg.gw().tacacs_tls_addrs()[0];
    (tg, addr, pki, dir)
}

/// A TLS 1.3 client trusting the test CA, with the client certificate when `cert` is given.
fn connector(p: &Pki, cert: Option<&Issued>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca_der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots);
    let config = match cert {
        Some(c) => builder
            .with_client_auth_cert(
                vec![c.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    c: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    c.connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A PAP START, clear (UNENCRYPTED flag) or obfuscated with `key`.
fn pap_start(session_id: u32, user: &str, passcode: &str, key: Option<&[u8]>) -> Vec<u8> {
    let body = Body::AuthenStart(AuthenStart {
        action: AuthenAction::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Pap,
        service: AuthenService::Login,
        user: user.as_bytes(),
        port: b"tty0",
        rem_addr: b"192.0.2.1",
        data: passcode.as_bytes(),
    });
    let (flags, obf) = match key {
        Some(k) => (0, Obfuscation::Key(k)),
        None => (FLAG_UNENCRYPTED, Obfuscation::Clear),
    };
    let header = Header::new(Version::One, body.packet_type(), 1, flags, session_id);
    let mut buf = vec![0u8; 4096];
    encode_packet(&header, &body, obf, &mut buf)
        .unwrap()
        .to_vec()
}

/// Reads one TACACS+ authentication REPLY; `None` on close, error or a non-TACACS+ answer.
async fn reply<S: AsyncRead + Unpin>(s: &mut S) -> Option<(Header, AuthenStatus)> {
    let mut head = [0u8; HEADER_LEN];
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut head))
        .await
        .expect("an answer or a close in time");
    r.ok()?;
    let header = Header::decode(&head).ok()?;
    let mut body = vec![0u8; header.body_len()];
    s.read_exact(&mut body).await.ok()?;
    if header.is_obfuscated() {
        deobfuscate(b"tackey", &header, &mut body);
    }
    match Body::decode(&header, &body).ok()? {
        Body::AuthenReply(r) => Some((header, r.status)),
        _ => None,
    }
}

async fn pap_over<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    session_id: u32,
    user: &str,
    passcode: &str,
) -> Option<(Header, AuthenStatus)> {
    s.write_all(&pap_start(session_id, user, passcode, None))
        .await
        .ok()?;
    reply(s).await
}

async fn closed_count(tg: &TestGateway, reason: &str) -> u64 {
    crate::tacacs_e2e::closed_count(tg, reason, 1).await
}

#[tokio::test]
async fn tacacs_tls_login_with_a_client_certificate_uses_clear_bodies() {
    let (tg, addr, pki, _dir) = gateway().await;
    tg.pin_user("alice").await;
    let s = tg.step();
    let mut tls = tls_connect(addr, &connector(&pki, Some(&pki.client)))
        .await
        .unwrap();
    let (h, status) = pap_over(&mut tls, 1, "alice", &format!("1234{}", code(s)))
        .await
        .expect("a TACACS+ reply inside TLS");
    assert_eq!(status, AuthenStatus::Pass);
    assert!(!h.is_obfuscated(), "the reply body is clear inside TLS");
    // A fresh code is needed again (R-1 holds over TLS too).
    let mut tls = tls_connect(addr, &connector(&pki, Some(&pki.client)))
        .await
        .unwrap();
    let (_, status) = pap_over(&mut tls, 2, "alice", &format!("1234{}", code(s)))
        .await
        .unwrap();
    assert_eq!(status, AuthenStatus::Fail, "replay");
    let audit = tg.gw().store.audit_since(0, 100).await.unwrap();
    assert!(audit
        .iter()
        .any(|r| r.protocol == "tacacs" && r.result == "accept"));
}

#[tokio::test]
async fn tacacs_tls_refuses_clients_without_a_certificate_or_from_another_ca() {
    let (tg, addr, pki, _dir) = gateway().await;
    tg.pin_user("alice").await;
    let pc = format!("1234{}", code(tg.step()));

    // No certificate: TLS 1.3 lets the client finish first; the server then refuses.
    if let Ok(mut tls) = tls_connect(addr, &connector(&pki, None)).await {
        assert!(pap_over(&mut tls, 1, "alice", &pc).await.is_none());
    }
    assert!(closed_count(&tg, "tls_no_client_certificate").await >= 1);

    // A certificate from another CA.
    let other = pki_with_foreign_client(&pki);
    if let Ok(mut tls) = tls_connect(addr, &connector(&other, Some(&other.client))).await {
        assert!(pap_over(&mut tls, 1, "alice", &pc).await.is_none());
    }
    assert!(closed_count(&tg, "tls_bad_client_certificate").await >= 1);

    // The passcode was never judged: it still works with a good certificate.
    let mut tls = tls_connect(addr, &connector(&pki, Some(&pki.client)))
        .await
        .unwrap();
    assert_eq!(
        pap_over(&mut tls, 3, "alice", &pc).await.unwrap().1,
        AuthenStatus::Pass
    );
}

/// Trusts the test's server CA, but presents a client certificate from a CA of its own.
fn pki_with_foreign_client(p: &Pki) -> Pki {
    let foreign = pki();
    Pki {
        ca_pem: p.ca_pem.clone(),
        ca_der: p.ca_der.clone(),
        server: foreign.server,
        client: foreign.client,
    }
}

#[tokio::test]
async fn tacacs_tls_port_gives_plain_tacacs_no_answer_and_counts_it() {
    let (tg, addr, _pki, _dir) = gateway().await;
    tg.pin_user("alice").await;
    let pc = format!("1234{}", code(tg.step()));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&pap_start(5, "alice", &pc, Some(b"tackey")))
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got)).await;
    // At most a TLS alert record (content type 21), never a TACACS+ header (0xc0/0xc1).
    assert!(got.is_empty() || got[0] == 21, "{got:?}");
    assert!(closed_count(&tg, "tls_not_tls").await >= 1);
    // No fallback: the plain port still serves the same packet.
    let plain = tg.gw().tacacs_addrs()[0];
    let mut tcp = TcpStream::connect(plain).await.unwrap();
    tcp.write_all(&pap_start(6, "alice", &pc, Some(b"tackey")))
        .await
        .unwrap();
    assert_eq!(reply(&mut tcp).await.unwrap().1, AuthenStatus::Pass);
}

#[tokio::test]
async fn tacacs_tls_refuses_an_obfuscated_packet_inside_tls() {
    let (tg, addr, pki, _dir) = gateway().await;
    tg.pin_user("alice").await;
    let pc = format!("1234{}", code(tg.step()));
    let mut tls = tls_connect(addr, &connector(&pki, Some(&pki.client)))
        .await
        .unwrap();
    tls.write_all(&pap_start(7, "alice", &pc, Some(b"tackey")))
        .await
        .unwrap();
    assert!(reply(&mut tls).await.is_none(), "closed without an answer");
    assert!(closed_count(&tg, "obfuscated_in_tls").await >= 1);
}

#[tokio::test]
async fn tacacs_tls_client_must_match_a_configured_address() {
    let (tg, addr, pki, _dir) = gateway().await;
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let tcp = sock.connect(addr).await.unwrap();
    let r = connector(&pki, Some(&pki.client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(r.is_err(), "closed before the handshake");
    assert!(closed_count(&tg, "unknown_client").await >= 1);
}
