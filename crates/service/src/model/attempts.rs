//! Counts a model call's attempts and throttled responses, and keeps the last HTTP status, by
//! watching the SDK's own retry loop (an interceptor) rather than re-implementing retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Debug, Default)]
pub struct AttemptStats {
    attempts: AtomicU32,
    throttles: AtomicU32,
    last_status: AtomicU16,
}

impl AttemptStats {
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }
    pub fn throttles(&self) -> u32 {
        self.throttles.load(Ordering::Relaxed)
    }
    /// HTTP status of the last attempt that got a response.
    pub fn last_status(&self) -> Option<u16> {
        Some(self.last_status.load(Ordering::Relaxed)).filter(|s| *s != 0)
    }
}

#[derive(Debug, Clone, Default)]
pub struct AttemptObserver(pub Arc<AttemptStats>);

impl Intercept for AttemptObserver {
    fn name(&self) -> &'static str {
        "AttemptObserver"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        self.0.last_status.store(status, Ordering::Relaxed);
        if status == 429 {
            self.0.throttles.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
