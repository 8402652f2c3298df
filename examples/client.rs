//! A command-line WebSocket client: each line of stdin goes out as a text message, each
//! message received is printed (binary as hex).
//!
//! ```text
//! cargo run --example client --features client -- ws://127.0.0.1:9001/ [--protocol P]... \
//!     [--header 'K: V']... [--ca FILE] [--deflate]
//! ```
//!
//! `wss://` URLs need the `rustls` feature; `--ca FILE` trusts the PEM certificates in FILE
//! (a self-signed server, a private CA) instead of the webpki roots.
//!
//! At the end of stdin the client closes (1000) and exits 0 once the close handshake is done;
//! any failure (refused, a protocol error, the connection lost) is printed and exits 1.

use std::io::Write;

use tokio::io::{AsyncBufReadExt, BufReader};
use tower_ws::client::{ClientBuilder, ClientError};
use tower_ws::{CloseCode, Message};

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: client URL [--protocol P]... [--header 'K: V']... [--deflate]");
    std::process::exit(2)
}

fn parse_args() -> Result<ClientBuilder, ClientError> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        usage("no URL")
    };
    let mut builder = ClientBuilder::new(&url)?;
    let mut protocols = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--protocol" => match args.next() {
                Some(p) => protocols.push(p),
                None => usage("--protocol needs a value"),
            },
            "--header" => match args.next().as_deref().and_then(|h| h.split_once(':')) {
                Some((k, v)) => builder = builder.header(k.trim(), v.trim()),
                None => usage("--header needs 'Name: value'"),
            },
            "--deflate" => builder = with_deflate(builder),
            "--ca" => match args.next() {
                Some(file) => builder = with_ca(builder, &file),
                None => usage("--ca needs a file"),
            },
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    Ok(builder.protocols(protocols))
}

/// Trusts the PEM certificates in `file` for `wss://`.
#[cfg(feature = "rustls")]
fn with_ca(builder: ClientBuilder, file: &str) -> ClientBuilder {
    use tower_ws::client::rustls::{self, pki_types::CertificateDer, pki_types::pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(file).unwrap_or_else(|e| usage(&format!("--ca {file}: {e}")));
    for cert in certs {
        let cert = cert.unwrap_or_else(|e| usage(&format!("--ca {file}: {e}")));
        roots
            .add(cert)
            .unwrap_or_else(|e| usage(&format!("--ca {file}: {e}")));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    builder.tls_config(std::sync::Arc::new(config))
}

#[cfg(not(feature = "rustls"))]
fn with_ca(_: ClientBuilder, _: &str) -> ClientBuilder {
    usage("--ca needs the `rustls` feature")
}

#[cfg(feature = "deflate")]
fn with_deflate(builder: ClientBuilder) -> ClientBuilder {
    builder.deflate(tower_ws::DeflateConfig::default())
}

#[cfg(not(feature = "deflate"))]
fn with_deflate(_: ClientBuilder) -> ClientBuilder {
    usage("--deflate needs the `deflate` feature")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (mut ws, _response) = parse_args()?.connect().await?;
    if let Some(p) = ws.protocol() {
        eprintln!("subprotocol: {}", p.to_str().unwrap_or("?"));
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line? {
                Some(line) => ws.send(Message::text(line)).await?,
                None => {
                    // End of input: close, then read until the server's close comes back.
                    stdin_open = false;
                    ws.send(Message::Close(Some(tower_ws::CloseFrame::new(CloseCode::NORMAL, "")))).await?;
                }
            },
            msg = ws.recv() => match msg {
                Some(Ok(msg)) => print(&msg)?,
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
        }
    }
}

fn print(msg: &Message) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match msg {
        Message::Text(text) => writeln!(out, "{text}"),
        Message::Binary(data) => {
            for b in data.iter() {
                write!(out, "{b:02x}")?;
            }
            writeln!(out)
        }
        Message::Close(frame) => {
            if let Some(f) = frame {
                eprintln!("closed: {} {}", f.code.as_u16(), f.reason);
            }
            Ok(())
        }
        Message::Ping(_) | Message::Pong(_) => Ok(()),
    }
}
