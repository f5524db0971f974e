//! Diagnostics of the DAG parser: one test per class of bad file.

use super::*;
