//! The devid domain: what a developer identity is, how uploaded values are normalised
//! and validated, and how an upload becomes a plan the store can apply in one go.
//!
//! Nothing here does I/O. Readers passed in are the caller's business (a file, a
//! socket bridged from async code); this crate only consumes bytes and returns values.

pub mod apikey;
pub mod change;
pub mod contributor;
pub mod csv_upload;
pub mod errors;
pub mod json_upload;
pub mod mailmap;
pub mod normalize;
pub mod plan;
pub mod resolve;
pub mod time;
pub mod types;
pub mod webhook;

pub use errors::{ErrorGroup, ErrorType, Problems, Sample};
pub use types::{ApplicationType, IntegrationId, Scope};
