//! What a request leaves behind, and the checks on it: EMF documents against the EMF
//! specification ([`emf`]), X-Ray datagrams and traces ([`xray`], with a loopback daemon), and
//! the process-wide capture of log lines and segments for in-process tests ([`capture`]).
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod capture;
pub mod emf;
pub mod xray;
