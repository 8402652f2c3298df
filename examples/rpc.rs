//! One axum `Router` served over HTTP and, through `tower_ws::rpc`, over a WebSocket: a small
//! todo API, the same handlers answering both.
//!
//! ```text
//! cargo run --example rpc --features rpc,axum -- --addr 127.0.0.1:3001
//! ```
//!
//! - `GET/POST /api/todos`, `GET/PUT/DELETE /api/todos/{id}` (JSON bodies), behind an auth
//!   layer that accepts `Authorization: Bearer demo-token` (or `?token=demo-token`) and answers
//!   401 otherwise:
//!   `curl -H 'Authorization: Bearer demo-token' -d '{"title":"try it"}' localhost:3001/api/todos`
//! - `/rpc`: the same router over a WebSocket. The upgrade request is authenticated by the same
//!   layer (a browser cannot set headers on a WebSocket, so `?token=demo-token` works too); the
//!   user it found reaches every request made over the socket. Send
//!   `{"id":1,"method":"GET","target":"/api/todos"}`, get
//!   `{"id":1,"code":200,"message":"OK","body":"[...]"}`.
//! - Every change to the todos is pushed to every open socket:
//!   `{"id":0,"message":"todos",...,"epoch":E,"offset":O}`.
//! - `/` (no auth): a page whose script uses the API over the socket and shows the pushes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tower_ws::axum::WebSocketUpgrade;
use tower_ws::hub::Hub;

/// The user the auth layer found.
#[derive(Clone, Debug)]
struct User(String);

#[derive(Clone, Default)]
struct App {
    todos: Arc<Mutex<BTreeMap<u64, Value>>>,
    next_id: Arc<Mutex<u64>>,
    hub: Hub,
}

fn main() -> std::io::Result<()> {
    let mut addr: SocketAddr = "127.0.0.1:3001".parse().expect("default address");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse())) {
            ("--addr", Some(Ok(a))) => addr = a,
            _ => {
                eprintln!("usage: rpc [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("listening on http://{}", listener.local_addr()?);
            run(listener, std::future::pending()).await
        })
}

/// Serves the example on `listener` until `stop` completes.
pub(crate) async fn run<F>(listener: tokio::net::TcpListener, stop: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router())
        .with_graceful_shutdown(stop)
        .await
}

fn router() -> Router {
    let app = App::default();
    let api = Router::new()
        .route("/api/todos", get(list).post(create))
        .route("/api/todos/{id}", get(read).put(update).delete(remove))
        .with_state(app.clone());
    let rpc_api = api.clone();
    let rpc = Router::new().route(
        "/rpc",
        any(move |ws: WebSocketUpgrade, req: Request| {
            let api = rpc_api.clone();
            let hub = app.hub.clone();
            // What the auth layer learned about this connection, for every request over it.
            let extensions = req.extensions().clone();
            async move {
                ws.on_upgrade(move |socket| async move {
                    let mut socket = socket.into_inner();
                    hub.attach(&mut socket).subscribe("todos");
                    tower_ws::rpc::serve(socket, api)
                        .extensions(extensions)
                        .await;
                })
            }
        }),
    );
    api.merge(rpc)
        .layer(middleware::from_fn(auth))
        .route("/", get(|| async { Html(PAGE) }))
}

/// `Authorization: Bearer demo-token`, or `?token=demo-token`, or a request that already
/// carries the user (made over a socket authenticated at its handshake). A wrong header is
/// refused even then.
async fn auth(mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let token = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "token=demo-token"));
    let known = req.extensions().get::<User>().is_some();
    let ok = match header {
        Some(h) => h == "Bearer demo-token",
        None => token || known,
    };
    if !ok {
        return (StatusCode::UNAUTHORIZED, "a token is needed").into_response();
    }
    req.extensions_mut().insert(User("demo".into()));
    next.run(req).await
}

fn changed(app: &App, what: &str, id: u64) {
    tower_ws::rpc::push(
        &app.hub,
        "todos",
        &json!({ "change": what, "id": id }).to_string(),
    );
}

async fn list(State(app): State<App>) -> Json<Vec<Value>> {
    Json(app.todos.lock().unwrap().values().cloned().collect())
}

async fn create(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Json(body): Json<Value>,
) -> Response {
    let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, "a title is needed").into_response();
    };
    let id = {
        let mut next = app.next_id.lock().unwrap();
        *next += 1;
        *next
    };
    let todo = json!({ "id": id, "title": title, "done": false, "by": user });
    app.todos.lock().unwrap().insert(id, todo.clone());
    changed(&app, "created", id);
    (StatusCode::CREATED, Json(todo)).into_response()
}

async fn read(State(app): State<App>, Path(id): Path<u64>) -> Response {
    match app.todos.lock().unwrap().get(&id) {
        Some(todo) => Json(todo.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn update(State(app): State<App>, Path(id): Path<u64>, Json(body): Json<Value>) -> Response {
    let updated = {
        let mut todos = app.todos.lock().unwrap();
        let Some(todo) = todos.get_mut(&id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if let Some(title) = body["title"].as_str() {
            todo["title"] = title.into();
        }
        if let Some(done) = body["done"].as_bool() {
            todo["done"] = done.into();
        }
        todo.clone()
    };
    changed(&app, "updated", id);
    Json(updated).into_response()
}

async fn remove(State(app): State<App>, Path(id): Path<u64>) -> StatusCode {
    if app.todos.lock().unwrap().remove(&id).is_none() {
        return StatusCode::NOT_FOUND;
    }
    changed(&app, "deleted", id);
    StatusCode::NO_CONTENT
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tower-ws rpc</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #todos li, #log li { padding: .2em 0; }
  #log { color: #555; font-size: 90%; }
</style>
</head>
<body>
<h1>todos over a WebSocket</h1>
<p id="status">connecting…</p>
<form id="form">
  <input id="title" autocomplete="off" placeholder="something to do" autofocus>
  <button id="add" type="submit">Add</button>
</form>
<ul id="todos"></ul>
<h2>pushes</h2>
<ul id="log"></ul>
<script>
  const status = document.getElementById("status");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // A browser cannot set headers on a WebSocket: the token goes in the query.
  const ws = new WebSocket(`${scheme}://${location.host}/rpc?token=demo-token`);
  let nextId = 1;
  const waiting = new Map();
  // One request over the socket: resolves with the reply envelope.
  function request(method, target, body) {
    const id = nextId++;
    ws.send(JSON.stringify({ id, method, target, body: body === undefined ? "" : JSON.stringify(body),
                             headers: { "content-type": "application/json" } }));
    return new Promise((resolve) => waiting.set(id, resolve));
  }
  async function refresh() {
    const reply = await request("GET", "/api/todos");
    const list = document.getElementById("todos");
    list.replaceChildren(...JSON.parse(reply.body).map((t) => {
      const li = document.createElement("li");
      li.textContent = `#${t.id} ${t.title} (by ${t.by})`;
      return li;
    }));
  }
  ws.onopen = () => { status.textContent = "connected"; refresh(); };
  ws.onclose = (event) => { status.textContent = `closed (${event.code})`; };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id === 0) {
      const li = document.createElement("li");
      li.textContent = `push ${msg.message}: ${msg.body}`;
      document.getElementById("log").appendChild(li);
      refresh();
    } else if (waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  };
  document.getElementById("form").onsubmit = async (event) => {
    event.preventDefault();
    const input = document.getElementById("title");
    if (input.value && ws.readyState === WebSocket.OPEN) {
      const reply = await request("POST", "/api/todos", { title: input.value });
      status.textContent = `added: ${reply.code} ${reply.message}`;
      input.value = "";
    }
  };
</script>
</body>
</html>
"#;
