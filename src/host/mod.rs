//! The only place with side effects: the filesystem under a root, a command
//! runner and systemd. Everything else in portico is pure.

pub mod cmd;
pub mod dbus;
pub mod root;
pub mod systemd;

pub use cmd::{Command, Output, Runner};
pub use root::Root;
pub use systemd::Systemd;
