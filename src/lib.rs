//! portico: turns a fresh VM into a hardened nginx HTTPS front end and keeps
//! its certificates renewed. See the README for the playbook reference.

pub mod acme;
pub mod cli;
pub mod daemon;
pub mod dns;
pub mod engine;
pub mod facts;
pub mod hooks;
pub mod host;
pub mod journal;
pub mod limits;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod nginx;
pub mod nothing_due;
pub mod owned;
pub mod paths;
pub mod plan;
pub mod playbook;
pub mod recover;
pub mod renew;
pub mod report;
pub mod status;
pub mod task;
pub mod tasks;
pub mod timing;
pub mod tls;
pub mod untrusted;
pub mod when;
