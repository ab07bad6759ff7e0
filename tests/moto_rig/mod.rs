//! Support for the cost command tests: moto, the CLI as a subprocess, and seeding.
// Each helper is used by some tests only.
#![allow(dead_code)]

pub mod cbor_proxy;
pub mod cli;
pub mod moto;
pub mod seed;
