//! Every well-known path portico reads or writes, each with one name and
//! one comment. Modules name these; none spells a path of its own.

use std::path::PathBuf;

/// portico's certificate directory: apart from the system's trust store
/// (`/etc/ssl/certs`, a symlink on EL), so the renewal daemon's sandbox can
/// write here and nowhere near the trust store.
pub const CERT_DIR: &str = "/etc/ssl/portico";

/// Where each certificate's key pairs live, one directory per pair named by
/// its content (`pairs/NAME/ID/{fullchain,privkey}.pem`, 0700): a pair is
/// written whole, under a temporary name, and never changed afterwards.
pub const PAIRS_DIR: &str = "/etc/ssl/portico/pairs";

/// One symlink per certificate to its current pair (`live/NAME ->
/// ../pairs/NAME/ID`): replacing it (one rename) switches key and
/// certificate together, so nginx never reads a key beside another
/// order's certificate.
pub const LIVE_DIR: &str = "/etc/ssl/portico/live";

/// The file names inside a pair directory.
pub const PAIR_CERT: &str = "fullchain.pem";
/// The private key's file name inside a pair directory.
pub const PAIR_KEY: &str = "privkey.pem";

/// A certificate's pairs.
pub fn pair_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("{PAIRS_DIR}/{name}"))
}

/// A certificate's live link.
pub fn live_link(name: &str) -> PathBuf {
    PathBuf::from(format!("{LIVE_DIR}/{name}"))
}

/// What nginx reads: a certificate's full chain (leaf first) in its live
/// pair, through `live/NAME`.
pub fn live_cert(name: &str) -> PathBuf {
    live_link(name).join(PAIR_CERT)
}

/// What nginx reads: a certificate's key in its live pair.
pub fn live_key(name: &str) -> PathBuf {
    live_link(name).join(PAIR_KEY)
}

/// A copy of the live certificate at a stable, plain name (0644), for
/// operators, hooks and backups; nginx never reads it.
pub fn cert_file(name: &str) -> PathBuf {
    PathBuf::from(format!("{CERT_DIR}/certs/{name}.crt"))
}

/// A copy of the live key at a stable, plain name (0600 in a 0700
/// directory); nginx never reads it.
pub fn key_file(name: &str) -> PathBuf {
    PathBuf::from(format!("{CERT_DIR}/private/{name}.key"))
}

/// portico's nginx directory: the configuration generations and the link
/// to the live one. Everything in it is portico's.
pub const NGINX_DIR: &str = "/etc/nginx/portico";

/// The link nginx reads portico's configuration through
/// (`live -> gen-ID`): one rename makes a whole new generation live.
pub const NGINX_LIVE: &str = "/etc/nginx/portico/live";

/// The one file portico adds to nginx's own include directory (both
/// layouts include `conf.d/*.conf` in `http {}`): it includes the live
/// generation.
pub const NGINX_ENTRY: &str = "/etc/nginx/conf.d/portico.conf";

/// The host-wide lock every command that changes the host takes (and the
/// PID and command of its holder, for whoever waits).
pub const LOCK_FILE: &str = "/run/portico/lock";
