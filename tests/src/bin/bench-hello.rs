//! `bench-hello ADDR`: the ceiling the benchmark measures our routes against. A bare axum
//! handler answering any method on `/` with a small static JSON body (reading the body
//! first), on the same runtime, HTTP stack and socket options as our servers.

use axum::http::header;
use axum::routing::any;

const BODY: &str = r#"{"active":true,"client_id":"bench","scope":"mcp:read","exp":4102444800}"#;

// Requests allocate and free many small buffers; mimalloc does it faster than glibc's
// allocator and returns memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".into());
    let app = axum::Router::new().route(
        "/",
        any(|_body: axum::body::Bytes| async {
            ([(header::CONTENT_TYPE, "application/json")], BODY)
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening http://{}", listener.local_addr()?);
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|t| {
        let _ = t.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
