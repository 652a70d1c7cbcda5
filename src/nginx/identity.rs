//! Who the backend is told the client is. Every proxied location sets every
//! identity header of the playbook exactly once: from oauth2-proxy's answer
//! on a protected location, from the TLS handshake for the site's client
//! certificate headers, and empty (nginx then sends nothing) everywhere
//! else. A client's own `X-Auth-Request-User: admin` never gets through,
//! and no location can drop a header by setting one of its own.

use crate::playbook::{IdentityField, Oauth2, Site};

/// The nginx variable that holds one field of oauth2-proxy's answer. It is
/// set empty for the whole server and filled only by `auth_request_set`.
pub fn variable(field: IdentityField) -> &'static str {
    match field {
        IdentityField::User => "$portico_auth_user",
        IdentityField::Email => "$portico_auth_email",
        IdentityField::Groups => "$portico_auth_groups",
        IdentityField::PreferredUsername => "$portico_auth_preferred_username",
        IdentityField::AccessToken => "$portico_auth_access_token",
    }
}

/// The answer header nginx reads a field from (`$upstream_http_...`).
fn upstream_variable(field: IdentityField) -> String {
    format!(
        "$upstream_http_{}",
        field.header().to_ascii_lowercase().replace('-', "_")
    )
}

/// The fields a site's oauth2-proxy passes on: the user, email, groups and
/// preferred username always; the access token only when asked for.
pub fn passed_fields(oauth2: &Oauth2) -> Vec<IdentityField> {
    IdentityField::ALL
        .into_iter()
        .filter(|f| *f != IdentityField::AccessToken || oauth2.pass_access_token)
        .collect()
}

/// `auth_request_set` lines of a protected location.
pub fn auth_request_sets(oauth2: &Oauth2) -> Vec<String> {
    passed_fields(oauth2)
        .into_iter()
        .map(|f| format!("auth_request_set {} {};", variable(f), upstream_variable(f)))
        .collect()
}

/// The value that clears a header (nginx then does not send it).
pub const EMPTY: &str = "\"\"";

/// `(header, value)` for every identity header in `all`, for one location
/// of `site`. `oauth2` is the proxy protecting this location, if it is.
pub fn headers(all: &[String], site: &Site, oauth2: Option<&Oauth2>) -> Vec<(String, String)> {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    all.iter()
        .map(|h| {
            let from_tls = site.client_auth.as_ref().and_then(|ca| {
                if same(h, &ca.verify_header) {
                    Some("$ssl_client_verify")
                } else if same(h, &ca.dn_header) {
                    Some("$ssl_client_s_dn")
                } else {
                    None
                }
            });
            let from_oauth2 = oauth2.and_then(|o| {
                let passed = passed_fields(o);
                let field = IdentityField::ALL
                    .into_iter()
                    .find(|f| same(h, f.header()))
                    .or_else(|| {
                        o.headers
                            .iter()
                            .find(|(name, _)| same(h, name))
                            .map(|(_, f)| *f)
                    })?;
                passed.contains(&field).then(|| variable(field))
            });
            let value = from_tls.or(from_oauth2).unwrap_or(EMPTY);
            (h.clone(), value.to_string())
        })
        .collect()
}
