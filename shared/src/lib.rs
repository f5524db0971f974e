//! Types shared by the Updraft backend and the web UI.
//!
//! Everything here compiles for the host and for `wasm32-unknown-unknown`, so the API's
//! response shapes are defined once and the UI deserializes exactly what the server sends.

pub mod api;
pub mod dag;
pub mod state;
