//! Support for the browser tests: ChromeDriver and Chromium ([`driver`]), the chat page's hooks
//! ([`page`]) and the in-process local host ([`server`]).

pub mod driver;
pub mod page;
pub mod server;
