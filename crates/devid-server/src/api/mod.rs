//! Public wire types of the newer resources: what the API answers, shaped for JSON
//! clients (camelCase, RFC 3339 times), built from the store's types at the edge.

pub mod contributors;
pub mod suggestions;
