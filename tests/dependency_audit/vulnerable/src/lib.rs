//! Empty: the fixture exists only for its Cargo.lock (see Cargo.toml).
