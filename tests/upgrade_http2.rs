//! `tower_ws::upgrade` over HTTP/2 (RFC 8441 extended CONNECT), with hyper's HTTP/2 client.

mod support;

use std::convert::Infallible;

use http::{Request, Response};
use hyper::body::Incoming;
use support::{connect_h2, serve_service, within};
use tower::service_fn;
use tower_ws::{Body, CloseCode, Config, Message};

async fn service(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let config = Config::default().protocols(["v1"]);
    Ok(match tower_ws::upgrade(&mut req, &config) {
        Ok((response, ws)) => {
            tokio::spawn(async move {
                let Ok(mut ws) = ws.await else { return };
                while let Some(Ok(msg)) = ws.recv().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            response
        }
        Err(refused) => refused.into_response(),
    })
}

#[tokio::test]
async fn upgrade_accepts_http2_extended_connect_with_200() {
    let addr = serve_service(service_fn(service), true).await;
    let (status, protocol, ws) = connect_h2(addr, "/", Some("v1")).await;
    assert_eq!(status, 200);
    assert_eq!(protocol.as_deref(), Some("v1"));
    let mut ws = ws.unwrap();
    for i in 0..3 {
        within(ws.send(Message::text(format!("h2 #{i}"))))
            .await
            .unwrap();
        let back = within(ws.recv()).await.unwrap().unwrap();
        assert_eq!(back.as_text(), Some(format!("h2 #{i}").as_str()));
    }
    within(ws.close(CloseCode::NORMAL, "bye")).await.unwrap();
}

#[tokio::test]
async fn upgrade_refuses_a_plain_http2_get_with_405() {
    let addr = serve_service(service_fn(service), true).await;
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://localhost/")
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = within(send.send_request(req)).await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "CONNECT");
}

#[test]
fn upgrade_refuses_http2_connect_without_the_websocket_protocol() {
    let mut req = Request::connect("https://example.com/")
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let err = tower_ws::upgrade(&mut req, &Config::default()).unwrap_err();
    assert_eq!(err.status(), 400);
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    // Valid now, but not from a hyper connection: no upgrade handle.
    let err = tower_ws::upgrade(&mut req, &Config::default()).unwrap_err();
    assert_eq!(err.status(), 500);
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_is_negotiated_over_http2_too() {
    let req = Request::connect("https://example.com/")
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .header(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )
        .body(())
        .unwrap();
    let config = Config::default().deflate(Some(
        tower_ws::DeflateConfig::default().server_max_window_bits(12),
    ));
    let accept = tower_ws::handshake::validate_extended_connect(&req, &config).unwrap();
    let response = accept.response();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["sec-websocket-extensions"],
        "permessage-deflate; server_max_window_bits=12"
    );
    // Without the policy the offer is declined.
    let accept = tower_ws::handshake::validate_extended_connect(&req, &Config::default()).unwrap();
    assert!(
        accept
            .response()
            .headers()
            .get("sec-websocket-extensions")
            .is_none()
    );
}
