//! One file per kind of task. Each task checks (reads only) and returns the
//! changes it needs; the engine applies them.

pub mod ca;
pub mod certificate;
pub mod challenge;
pub mod daemon_restart;
pub mod daemon_sandbox;
pub mod daemon_unit;
pub mod default_server;
pub mod dhparam;
pub mod file;
pub mod firewall;
pub mod generation;
pub mod nginx_test;
pub mod packages;
pub mod pair;
pub mod prune;
pub mod refused;
pub mod reload;
pub mod selinux;
pub mod service;
