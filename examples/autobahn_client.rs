//! The Autobahn|Testsuite client driver: runs every case of a fuzzingserver against this
//! crate's client, echoing each message, with permessage-deflate offered.
//!
//! ```text
//! AUTOBAHN_URL=ws://127.0.0.1:9011 AUTOBAHN_AGENT=tower-ws \
//!     cargo run --release --example autobahn_client --features client
//! ```
//!
//! The suite's standard loop: read the number of cases from `/getCaseCount`, run
//! `/runCase?case=I&agent=AGENT` for each (echo every text and binary message until the
//! connection ends; a case that fails the connection on purpose is not an error here), then
//! `/updateReports?agent=AGENT` so that the server writes its report. `AUTOBAHN_DEFLATE=0`
//! offers no compression.

use tower_ws::client::ClientBuilder;
use tower_ws::{Config, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn builder(url: &str) -> Result<ClientBuilder, tower_ws::client::ClientError> {
    let config = Config::default()
        .max_frame_size(Some(64 << 20))
        .max_message_size(Some(64 << 20));
    let builder = ClientBuilder::new(url)?.config(config);
    #[cfg(feature = "deflate")]
    if std::env::var("AUTOBAHN_DEFLATE").as_deref() != Ok("0") {
        return Ok(builder.deflate(tower_ws::DeflateConfig::default()));
    }
    Ok(builder)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9011".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "tower-ws".into());

    let (mut ws, _) = builder(&format!("{base}/getCaseCount"))?.connect().await?;
    let count: u32 = match ws.recv().await {
        Some(Ok(Message::Text(text))) => text.parse()?,
        other => return Err(format!("no case count: {other:?}").into()),
    };
    while let Some(Ok(_)) = ws.recv().await {}

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let (mut ws, _) = match builder(&url)?.connect().await {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        // Echo until the connection ends, however it ends.
        while let Some(Ok(msg)) = ws.recv().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    }

    let (mut ws, _) = builder(&format!("{base}/updateReports?agent={agent}"))?
        .connect()
        .await?;
    while let Some(Ok(_)) = ws.recv().await {}
    Ok(())
}
