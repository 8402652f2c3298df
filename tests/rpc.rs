//! Requests over a WebSocket into an axum router: the same answers as over HTTP, concurrency,
//! what the handshake learned reaching every handler, pushes, and every bad input.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use std::future::IntoFuture;
use support::within;

use tower::ServiceExt;
use tower_ws::axum::WebSocketUpgrade;
use tower_ws::client::ClientBuilder;
use tower_ws::hub::Hub;
use tower_ws::{Message, UpgradedWebSocket};

#[derive(Clone, Debug)]
struct User(String);

type Todos = Arc<Mutex<HashMap<u64, String>>>;

/// Accepts `Authorization: Bearer demo-token`, or `?token=demo-token` (a browser cannot set
/// headers on a WebSocket), or a request that already carries the user (a request over a
/// socket authenticated at its handshake); the user goes into the request's extensions. A
/// wrong `Authorization` header is refused in every case.
async fn auth(mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let query = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "token=demo-token"));
    let known = req.extensions().get::<User>().is_some();
    let ok = match header {
        Some(h) => h == "Bearer demo-token",
        None => query || known,
    };
    if !ok {
        return (StatusCode::UNAUTHORIZED, "who are you?").into_response();
    }
    req.extensions_mut().insert(User("demo".into()));
    next.run(req).await
}

fn api(todos: Todos) -> Router {
    Router::new()
        .route(
            "/api/todos",
            get(|State(t): State<Todos>, uri: axum::http::Uri| async move {
                let todos = t.lock().unwrap();
                let mut ids: Vec<_> = todos.keys().copied().collect();
                ids.sort_unstable();
                let limit = uri
                    .query()
                    .and_then(|q| q.strip_prefix("limit="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                json!(
                    ids.iter()
                        .take(limit)
                        .map(|id| json!({"id": id, "title": todos[id]}))
                        .collect::<Vec<_>>()
                )
                .to_string()
            })
            .post(|State(t): State<Todos>, body: String| async move {
                let Ok(v) = serde_json::from_str::<Value>(&body) else {
                    return (StatusCode::UNPROCESSABLE_ENTITY, "bad JSON".to_string());
                };
                let mut todos = t.lock().unwrap();
                let id = todos.len() as u64 + 1;
                todos.insert(id, v["title"].as_str().unwrap_or_default().to_owned());
                (StatusCode::CREATED, json!({"id": id}).to_string())
            }),
        )
        .route(
            "/api/todos/{id}",
            get(|State(t): State<Todos>, Path(id): Path<u64>| async move {
                match t.lock().unwrap().get(&id) {
                    Some(title) => (StatusCode::OK, title.clone()),
                    None => (StatusCode::NOT_FOUND, "no such todo".into()),
                }
            })
            .delete(|State(t): State<Todos>, Path(id): Path<u64>| async move {
                match t.lock().unwrap().remove(&id) {
                    Some(_) => StatusCode::NO_CONTENT,
                    None => StatusCode::NOT_FOUND,
                }
            }),
        )
        .route(
            "/api/me",
            get(|Extension(User(name)): Extension<User>| async move { name }),
        )
        .route(
            "/api/slow/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms.to_string()
            }),
        )
        .route(
            "/api/panic",
            get(|| async {
                if true {
                    panic!("a handler bug");
                }
                ""
            }),
        )
        .with_state(todos)
}

/// The app: the API over HTTP, and at `/rpc` over a WebSocket, all behind the auth layer.
fn app(hub: Hub) -> (Router, Todos) {
    let todos = Todos::default();
    let api = api(todos.clone()).layer(middleware::from_fn(auth));
    let rpc_api = api.clone();
    let app = api.route(
        "/rpc",
        any(move |ws: WebSocketUpgrade, req: Request| {
            let api = rpc_api.clone();
            let hub = hub.clone();
            let extensions = req.extensions().clone();
            async move {
                ws.on_upgrade(move |socket| async move {
                    let mut socket: UpgradedWebSocket = socket.into_inner();
                    hub.attach(&mut socket).subscribe("todos");
                    tower_ws::rpc::serve(socket, api)
                        .extensions(extensions)
                        .in_flight(128)
                        .max_body(1024)
                        .await;
                })
            }
        }),
    );
    (app.layer(middleware::from_fn(auth)), todos)
}

async fn rpc_client(app: Router, path: &str) -> UpgradedWebSocket {
    let (ws, _) = within(
        ClientBuilder::new(&format!("ws://localhost{path}"))
            .unwrap()
            .header("authorization", "Bearer demo-token")
            .connect_service(app),
    )
    .await
    .unwrap();
    ws
}

async fn request(ws: &mut UpgradedWebSocket, envelope: Value) -> Value {
    ws.send(Message::text(envelope.to_string())).await.unwrap();
    reply(ws).await
}

async fn reply(ws: &mut UpgradedWebSocket) -> Value {
    match within(ws.recv()).await.unwrap().unwrap() {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("not a text reply: {other:?}"),
    }
}

async fn over_http(
    app: &Router,
    method: &str,
    target: &str,
    body: &str,
    authorization: &str,
) -> (u16, String) {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(target)
        .header("authorization", authorization)
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_same_router_answers_the_same_over_http_and_the_socket() {
    // (method, target, body, an Authorization header sent with the request itself)
    let cases = [
        ("POST", "/api/todos", r#"{"title":"write tests"}"#, None),
        ("POST", "/api/todos", r#"{"title":"ship"}"#, None),
        ("POST", "/api/todos", "not json", None),
        ("GET", "/api/todos", "", None),
        ("GET", "/api/todos?limit=1", "", None),
        ("GET", "/api/todos/2", "", None),
        ("GET", "/api/todos/99", "", None),
        ("DELETE", "/api/todos/1", "", None),
        ("GET", "/api/todos/1", "", None),
        ("GET", "/api/nothing-here", "", None),
        ("PUT", "/api/todos", "", None),
        ("GET", "/api/me", "", None),
        ("GET", "/api/todos", "", Some("Bearer stolen")),
    ];
    // Two apps in the same state: one asked over HTTP, one over the socket.
    let (http_app, _) = app(Hub::new());
    let (ws_app, _) = app(Hub::new());
    let mut ws = rpc_client(ws_app, "/rpc").await;
    let mut statuses = Vec::new();
    for (i, (method, target, body, authorization)) in cases.iter().enumerate() {
        let (status, http_body) = over_http(
            &http_app,
            method,
            target,
            body,
            authorization.unwrap_or("Bearer demo-token"),
        )
        .await;
        statuses.push(status);
        let id = i as u64 + 1;
        let mut envelope = json!({"id": id, "method": method, "target": target, "body": body});
        if let Some(a) = authorization {
            envelope["headers"] = json!({ "authorization": a });
        }
        let reply = request(&mut ws, envelope).await;
        assert_eq!(reply["id"], id);
        assert_eq!(reply["code"], status, "{method} {target}");
        assert_eq!(reply["body"], http_body, "{method} {target}");
    }
    // Path parameters, query strings, 404, 405 and the auth layer's 401 are among them.
    for code in [200, 201, 204, 404, 405, 401, 422] {
        assert!(statuses.contains(&code), "no {code} in {statuses:?}");
    }
    let me = request(
        &mut ws,
        json!({"id": 100, "method": "GET", "target": "/api/me"}),
    )
    .await;
    assert_eq!(me["body"], "demo");
}

#[tokio::test]
async fn the_auth_layer_guards_the_socket_and_the_api_alike() {
    let (app, _) = app(Hub::new());
    // Without credentials: HTTP 401, and the upgrade is refused with 401 too.
    let req = axum::http::Request::get("/api/todos")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 401);
    let err = within(
        ClientBuilder::new("ws://localhost/rpc")
            .unwrap()
            .connect_service(app.clone()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, tower_ws::client::ClientError::Refused { status, .. } if status == 401),
        "{err:?}"
    );
    // A browser cannot set headers on a WebSocket: the token in the query works.
    let (mut ws, _) = within(
        ClientBuilder::new("ws://localhost/rpc?token=demo-token")
            .unwrap()
            .connect_service(app),
    )
    .await
    .unwrap();
    let me = request(
        &mut ws,
        json!({"id": 1, "method": "GET", "target": "/api/me"}),
    )
    .await;
    assert_eq!(
        (me["code"].as_u64(), me["body"].as_str()),
        (Some(200), Some("demo"))
    );
}

#[tokio::test]
async fn a_hundred_requests_in_flight_come_back_matched_by_id() {
    let (app, _) = app(Hub::new());
    let mut ws = rpc_client(app, "/rpc").await;
    // Slower first: replies come back in another order than the requests went.
    for id in 1..=100u64 {
        let ms = (100 - id) / 4;
        ws.send(Message::text(
            json!({"id": id, "method": "GET", "target": format!("/api/slow/{ms}")}).to_string(),
        ))
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..100 {
        let r = reply(&mut ws).await;
        let id = r["id"].as_u64().unwrap();
        assert_eq!(r["code"], 200);
        assert_eq!(r["body"], ((100 - id) / 4).to_string());
        seen.push(id);
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=100).collect::<Vec<_>>(), "every id once");
    assert_ne!(seen, sorted, "replies went out as they finished");
}

#[tokio::test]
async fn bad_input_gets_an_error_envelope_and_the_connection_stays_open() {
    let (app, _) = app(Hub::new());
    let mut ws = rpc_client(app, "/rpc").await;
    for (envelope, id, code) in [
        ("not json".to_owned(), 0, 400),
        (r#"{"method":"GET","target":"/"}"#.to_owned(), 0, 400),
        (
            r#"{"id":5,"method":"NOT A METHOD","target":"/"}"#.to_owned(),
            5,
            400,
        ),
        (
            r#"{"id":6,"method":"GET","target":"api/todos"}"#.to_owned(),
            6,
            400,
        ),
        (
            r#"{"id":7,"method":"GET","target":"http://elsewhere/"}"#.to_owned(),
            7,
            400,
        ),
        (
            json!({"id": 8, "method": "POST", "target": "/api/todos", "body": "x".repeat(2000)})
                .to_string(),
            8,
            413,
        ),
        (
            r#"{"id":9,"method":"GET","target":"/api/panic"}"#.to_owned(),
            9,
            500,
        ),
    ] {
        ws.send(Message::text(envelope.clone())).await.unwrap();
        let r = reply(&mut ws).await;
        assert_eq!(
            (r["id"].as_u64(), r["code"].as_u64()),
            (Some(id), Some(code)),
            "{envelope}"
        );
        assert!(!r["message"].as_str().unwrap().is_empty());
    }
    // A duplicate id while the first is in flight.
    let slow = json!({"id": 10, "method": "GET", "target": "/api/slow/300"}).to_string();
    ws.send(Message::text(slow.clone())).await.unwrap();
    ws.send(Message::text(slow)).await.unwrap();
    let dup = reply(&mut ws).await;
    assert_eq!(
        (dup["id"].as_u64(), dup["code"].as_u64()),
        (Some(10), Some(409))
    );
    let done = reply(&mut ws).await;
    assert_eq!(
        (done["id"].as_u64(), done["code"].as_u64()),
        (Some(10), Some(200))
    );
    // Still open after all that.
    let ok = request(
        &mut ws,
        json!({"id": 11, "method": "GET", "target": "/api/me"}),
    )
    .await;
    assert_eq!(ok["code"], 200);
    // A binary message ends it with 1003.
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    match within(ws.recv()).await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code.as_u16(), 1003),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pushes_arrive_as_envelopes_with_id_0() {
    let hub = Hub::new();
    let (app, _) = app(hub.clone());
    let mut a = rpc_client(app.clone(), "/rpc").await;
    let mut b = rpc_client(app, "/rpc").await;
    // Both are attached once their first request is answered.
    for ws in [&mut a, &mut b] {
        request(ws, json!({"id": 1, "method": "GET", "target": "/api/me"})).await;
    }
    assert_eq!(tower_ws::rpc::push(&hub, "todos", r#"{"changed":1}"#), 2);
    assert_eq!(tower_ws::rpc::push(&hub, "todos", r#"{"changed":2}"#), 2);
    let at = hub.position("todos").expect("the topic's position");
    for ws in [&mut a, &mut b] {
        for (n, offset) in [(1, at.offset - 1), (2, at.offset)] {
            let push = reply(ws).await;
            assert_eq!(push["id"], 0);
            assert_eq!(push["message"], "todos");
            assert_eq!(push["body"], format!(r#"{{"changed":{n}}}"#));
            // Its position: a client tells a missed push by a jump in `offset`.
            assert_eq!(push["epoch"], at.epoch.to_string());
            assert_eq!(push["offset"], offset);
        }
    }
}

#[tokio::test]
async fn a_failing_service_answers_500_for_that_request_only() {
    use tower::Layer;
    use tower_ws::WebSocketLayer;

    // A plain tower service that fails on one path.
    let api = tower::service_fn(|req: axum::http::Request<tower_ws::Body>| async move {
        if req.uri().path() == "/fail" {
            return Err::<axum::http::Response<tower_ws::Body>, _>(std::io::Error::other(
                "storage is down",
            ));
        }
        Ok(axum::http::Response::new(tower_ws::Body::from("fine")))
    });
    let service = WebSocketLayer::new()
        .on_upgrade(move |ws: UpgradedWebSocket, _parts| {
            tower_ws::rpc::serve(ws, api).into_future()
        })
        .layer(tower::service_fn(
            |_req: axum::http::Request<hyper::body::Incoming>| async {
                Ok::<_, std::convert::Infallible>(
                    axum::http::Response::new(tower_ws::Body::empty()),
                )
            },
        ));
    let (mut ws, _) = within(tower_ws::client::connect_service(
        service,
        "ws://localhost/",
    ))
    .await
    .unwrap();
    let failed = request(
        &mut ws,
        json!({"id": 1, "method": "GET", "target": "/fail"}),
    )
    .await;
    assert_eq!(
        (failed["id"].as_u64(), failed["code"].as_u64()),
        (Some(1), Some(500))
    );
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("storage is down")
    );
    let fine = request(&mut ws, json!({"id": 2, "method": "GET", "target": "/ok"})).await;
    assert_eq!(
        (fine["code"].as_u64(), fine["body"].as_str()),
        (Some(200), Some("fine"))
    );
}
