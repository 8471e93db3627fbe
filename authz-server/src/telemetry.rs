//! Tracing subscriber set-up: human-readable or JSON lines on stderr, filtered by `RUST_LOG`.

pub fn init(format: &str) {
    observe::init_tracing(format);
}
