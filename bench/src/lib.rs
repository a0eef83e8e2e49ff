//! tokengate's load generator as a library: the `tg-loadgen` binary is a thin command line over
//! [`generator::run`], and tests drive it directly.
//!
//! It sends Access-Requests to any RADIUS server on loopback (tokengate, FreeRADIUS), with real
//! PIN + TOTP or PIN + HOTP passcodes from a `tokengate populate` secrets file or plain PAP
//! passwords, and reports throughput, latency percentiles and CPU per request. It must stay
//! cheaper per request than the servers it measures, and say so when it is not.

pub mod generator;
pub mod histogram;
pub mod hotp;
pub mod population;
pub mod procstat;
pub mod report;
pub mod state;

pub use generator::{run, Load, Options, Passcodes, Stop};
pub use report::Report;
