//! Support code for the integration tests, as a module (`mod support;`).

pub(crate) mod sandbox;
