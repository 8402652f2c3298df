//! The examples driven by headless Chromium through the browser's own `WebSocket`: two chat
//! tabs exchange messages; the rpc example's page calls the API over its socket and shows the
//! pushes.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install -y chromium chromium-driver`;
//! or set `CHROMIUM` and `CHROMEDRIVER` to their paths). Without them the test passes and says,
//! loudly, that it was skipped, unless `TOWER_WS_REQUIRE_BROWSER` is set (`.ci/run` sets it after
//! installing them): then a missing browser fails the test. chromedriver's W3C HTTP API is
//! spoken directly, on 127.0.0.1 only.

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;

#[cfg(feature = "rpc")]
#[allow(dead_code)]
#[path = "../examples/rpc.rs"]
mod rpc_example;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The whole test, browser start-up included, must finish within this.
const TOTAL: Duration = Duration::from_secs(90);
/// One chromedriver call.
const CALL: Duration = Duration::from_secs(30);

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// chromium and chromedriver, or `None` (and a loud notice) when they are not installed and
/// not required.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let (Some(chromium), Some(chromedriver)) = (
        tool("CHROMIUM", "/usr/bin/chromium"),
        tool("CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        assert!(
            std::env::var_os("TOWER_WS_REQUIRE_BROWSER").is_none(),
            "chromium and chromedriver are required (apt-get install -y chromium chromium-driver, \
             or set CHROMIUM and CHROMEDRIVER)"
        );
        eprintln!();
        eprintln!("**********************************************************************");
        eprintln!("*** SKIPPED: browser test: chromium / chromedriver not installed   ***");
        eprintln!("*** (apt-get install -y chromium chromium-driver, or set CHROMIUM   ***");
        eprintln!("***  and CHROMEDRIVER)                                              ***");
        eprintln!("**********************************************************************");
        eprintln!();
        return None;
    };
    Some((chromium, chromedriver))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_example_two_browser_tabs_see_each_others_messages() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    tokio::time::timeout(
        TOTAL,
        with_example(chat::run, |addr| {
            with_browser(&chromium, &chromedriver, move |wd| chat_tabs(wd, addr))
        }),
    )
    .await
    .expect("browser test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_example_a_tab_that_loses_its_connection_or_reloads_misses_nothing() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    tokio::time::timeout(
        TOTAL,
        with_example(chat::run, |addr| {
            with_browser(&chromium, &chromedriver, move |wd| chat_resume(wd, addr))
        }),
    )
    .await
    .expect("browser test timed out");
}

/// Runs an example's server (its `run(listener, stop)`) in this process on a free loopback
/// port for as long as `body` takes, then stops it gracefully.
async fn with_example<R, Fut, B, BFut>(run: R, body: B)
where
    R: FnOnce(tokio::net::TcpListener, Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    B: FnOnce(SocketAddr) -> BFut,
    BFut: Future<Output = ()>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(
        listener,
        Box::pin(async {
            let _ = stop_rx.await;
        }),
    ));
    body(addr).await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

#[cfg(feature = "rpc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_example_page_calls_the_api_over_its_socket_and_sees_pushes() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let test = with_example(rpc_example::run, |addr| {
        with_browser(&chromium, &chromedriver, move |wd| async move {
            wd.post("/url", json!({ "url": format!("http://{addr}/") }))
                .await;
            wd.wait_for("document.getElementById('status').textContent", "connected")
                .await;
            let script = "const t = document.getElementById('title'); t.value = arguments[0]; \
                          document.getElementById('add').click();";
            wd.post(
                "/execute/sync",
                json!({ "script": script, "args": ["buy milk"] }),
            )
            .await;
            // The request's reply, the push it caused, and the list fetched again after it.
            wd.wait_for(
                "document.getElementById('status').textContent",
                "added: 201 Created",
            )
            .await;
            wd.wait_for(
                "document.getElementById('log').textContent",
                "push todos: {\"change\":\"created\",\"id\":1}",
            )
            .await;
            wd.wait_for(
                "document.getElementById('todos').textContent",
                "#1 buy milk (by demo)",
            )
            .await;
            wd
        })
    });
    tokio::time::timeout(TOTAL, test)
        .await
        .expect("browser test timed out");
}

/// The chat scenario: two tabs, each sees what the other says.
async fn chat_tabs(wd: Driver, chat_addr: SocketAddr) -> Driver {
    let page = format!("http://{chat_addr}/");
    // Tab A.
    let tab_a = wd.get("/window").await.as_str().unwrap().to_owned();
    wd.post("/url", json!({ "url": page })).await;
    wd.wait_for("document.getElementById('status').textContent", "connected")
        .await;
    // Tab B.
    let tab_b = wd.post("/window/new", json!({ "type": "tab" })).await["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    wd.post("/window", json!({ "handle": tab_b })).await;
    wd.post("/url", json!({ "url": page })).await;
    wd.wait_for("document.getElementById('status').textContent", "connected")
        .await;

    wd.say("hello from B").await;
    wd.wait_for(
        "document.getElementById('log').textContent",
        ": hello from B",
    )
    .await;
    wd.post("/window", json!({ "handle": tab_a })).await;
    wd.wait_for(
        "document.getElementById('log').textContent",
        ": hello from B",
    )
    .await;
    wd.say("hi B, this is A").await;
    wd.post("/window", json!({ "handle": tab_b })).await;
    wd.wait_for(
        "document.getElementById('log').textContent",
        ": hi B, this is A",
    )
    .await;
    wd
}

/// Tab B loses its connection while tab A talks, then comes back; later B is reloaded. B ends
/// with every line of the room exactly once.
async fn chat_resume(wd: Driver, chat_addr: SocketAddr) -> Driver {
    let page = format!("http://{chat_addr}/?room=resume");
    let log = "document.getElementById('log').textContent";
    let status = "document.getElementById('status').textContent";
    let tab_a = wd.get("/window").await.as_str().unwrap().to_owned();
    wd.post("/url", json!({ "url": page })).await;
    wd.wait_for(status, "connected").await;
    let tab_b = wd.post("/window/new", json!({ "type": "tab" })).await["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    wd.post("/window", json!({ "handle": tab_b })).await;
    wd.post("/url", json!({ "url": page })).await;
    wd.wait_for(status, "connected").await;
    wd.say("before the drop").await;
    wd.wait_for(log, ": before the drop").await;

    // B's connection drops (and B does not reconnect until told to).
    wd.post(
        "/execute/sync",
        json!({ "script": "ws.onclose = null; ws.close();", "args": [] }),
    )
    .await;
    wd.post("/window", json!({ "handle": tab_a })).await;
    wd.say("while B was away").await;
    wd.wait_for(log, ": while B was away").await;
    wd.say("and once more").await;
    wd.wait_for(log, ": and once more").await;

    // B comes back with its position: the two lines it missed, once each.
    wd.post("/window", json!({ "handle": tab_b })).await;
    wd.post(
        "/execute/sync",
        json!({ "script": "connect();", "args": [] }),
    )
    .await;
    wd.wait_for(log, ": and once more").await;
    for line in [": before the drop", ": while B was away", ": and once more"] {
        assert_eq!(wd.count(log, line).await, 1, "{line}");
    }
    assert_eq!(wd.count(log, "missed messages").await, 0);

    // A reload keeps the lines and resumes from the last one: nothing shown twice.
    wd.post("/refresh", json!({})).await;
    wd.wait_for(status, "connected").await;
    wd.post("/window", json!({ "handle": tab_a })).await;
    wd.say("after the reload").await;
    wd.post("/window", json!({ "handle": tab_b })).await;
    wd.wait_for(log, ": after the reload").await;
    for line in [
        ": before the drop",
        ": while B was away",
        ": and once more",
        ": after the reload",
    ] {
        assert_eq!(wd.count(log, line).await, 1, "{line} after the reload");
    }
    wd
}

/// Kills and reaps the child, and removes the profile directory, however the test ends.
struct Cleanup {
    child: Child,
    profile: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts chromedriver and a headless Chromium session, runs `scenario` with it, and ends
/// both however the scenario ends.
async fn with_browser<F, Fut>(chromium: &Path, chromedriver: &Path, scenario: F)
where
    F: FnOnce(Driver) -> Fut,
    Fut: Future<Output = Driver>,
{
    // chromedriver on a free local port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // One profile per browser: the tests of this file run at the same time.
    let profile =
        std::env::temp_dir().join(format!("tower-ws-browser-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let _cleanup = Cleanup {
        child,
        profile: profile.clone(),
    };
    let started = Instant::now();
    loop {
        if let Ok(status) = call(driver_addr, "GET", "/status", None).await {
            if status["value"]["ready"] == true {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let caps = json!({
        "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }},
    });
    let session = call(driver_addr, "POST", "/session", Some(caps))
        .await
        .expect("new session");
    let id = session["value"]["sessionId"]
        .as_str()
        .expect("session id")
        .to_owned();
    let wd = Driver {
        addr: driver_addr,
        session: id,
    };
    // Ends the browser even if an assertion below fails (chromedriver alone would leave it).
    let mut session_guard = EndSession {
        addr: driver_addr,
        session: wd.session.clone(),
    };

    let wd = scenario(wd).await;

    let _ = call(
        driver_addr,
        "DELETE",
        &format!("/session/{}", wd.session),
        None,
    )
    .await;
    let path = format!("/session/{}", wd.session);
    if call(driver_addr, "DELETE", &path, None).await.is_ok() {
        session_guard.session.clear();
    }
    drop(session_guard);
}

/// Deletes the chromedriver session (closing the browser) when dropped, blocking briefly.
struct EndSession {
    addr: SocketAddr,
    session: String,
}

impl Drop for EndSession {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if self.session.is_empty() {
            return;
        }
        let Ok(mut tcp) = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
        else {
            return;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.addr
        );
        if tcp.write_all(request.as_bytes()).is_ok() {
            let _ = tcp.read_to_end(&mut Vec::new());
        }
    }
}

struct Driver {
    addr: SocketAddr,
    session: String,
}

impl Driver {
    async fn get(&self, path: &str) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(self.addr, "GET", &path, None).await.unwrap()["value"].take()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let mut reply = call(self.addr, "POST", &path, Some(body)).await.unwrap();
        if let Some(error) = reply["value"].get("error") {
            panic!("WebDriver {path}: {error}: {}", reply["value"]["message"]);
        }
        reply["value"].take()
    }

    /// Types `text` into the chat box and submits it.
    async fn say(&self, text: &str) {
        let script = "const m = document.getElementById('msg'); m.value = arguments[0]; \
                      document.getElementById('send').click();";
        self.post("/execute/sync", json!({ "script": script, "args": [text] }))
            .await;
    }

    /// How many times `needle` occurs in the text of `expr`.
    async fn count(&self, expr: &str, needle: &str) -> usize {
        let script = format!("return {expr}.split(arguments[0]).length - 1;");
        let value = self
            .post(
                "/execute/sync",
                json!({ "script": script, "args": [needle] }),
            )
            .await;
        usize::try_from(value.as_u64().expect("a count")).unwrap()
    }

    /// Polls `expr` until its text contains `needle` (10 s at most).
    async fn wait_for(&self, expr: &str, needle: &str) {
        let script = format!("return {expr};");
        let started = Instant::now();
        loop {
            let value = self
                .post("/execute/sync", json!({ "script": script, "args": [] }))
                .await;
            let text = value.as_str().unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{expr}: {needle:?} never appeared in {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One chromedriver request over a fresh HTTP/1.1 connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let res = send.send_request(req).await.map_err(|e| e.to_string())?;
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))
    };
    tokio::time::timeout(CALL, exchange)
        .await
        .map_err(|_| "WebDriver call timed out".to_owned())?
}
