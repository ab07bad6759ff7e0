//! The floor for the Lambda benchmarks (`cargo bench --bench cold_start`): the smallest useful
//! `lambda_runtime` function — it answers each event with the event — built with the same
//! profile and toolchain as `bootstrap`, so the difference between the two is the service's.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(lambda_runtime::run(service_fn(
            |event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) },
        )))
}
