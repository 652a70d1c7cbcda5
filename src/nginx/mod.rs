//! Pure rendering of nginx configuration: sites, TLS profiles, snippets.

pub mod profile;
pub mod render;
