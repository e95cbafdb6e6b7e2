//! xdpvs-checker's parts, as a library for its binary and its benchmark
//! (`perf checker`): keepalived.conf's model ([`conf`]), the pool rules
//! ([`desired`]), the checks ([`health`]), the link to the daemon
//! ([`director`]), the loop ([`manager`]), the status ([`status`]) and the
//! e-mail alerts ([`alert`]).

pub mod alert;
pub mod conf;
pub mod desired;
pub mod director;
pub mod health;
pub mod manager;
pub mod status;
