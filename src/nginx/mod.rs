//! Pure rendering of nginx configuration: sites, TLS profiles, snippets.

pub mod default_server;
pub mod generation;
pub mod identity;
pub mod profile;
pub mod render;
