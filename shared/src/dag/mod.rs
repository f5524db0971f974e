//! DAG files: the model (always), the parser and validator (feature `parser`), the JSON Schema
//! (feature `schema`).

pub mod duration;
pub mod model;
#[cfg(feature = "parser")]
pub mod parse;
#[cfg(feature = "schema")]
pub mod schema;
#[cfg(feature = "parser")]
pub mod yaml;

pub use duration::Duration;
pub use model::*;
#[cfg(feature = "parser")]
pub use parse::{parse_dag, parse_dag_with, Diagnostic, ParseOptions};

#[cfg(all(test, feature = "parser"))]
mod tests;
