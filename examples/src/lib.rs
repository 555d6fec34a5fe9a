//! Runnable templates for `ops` runbooks. Run one with `cargo run -p ops-examples --example NAME`.
