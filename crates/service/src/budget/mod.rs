//! Daily budgets, enforced before Bedrock is called: the whole service's spend per UTC day
//! (`CHATBOT_DAILY_BUDGET_USD`) and each client's (`CHATBOT_CLIENT_DAILY_BUDGET_USD`).
//!
//! **Reserve, then settle.** Before the model call a request reserves its worst case
//! ([`worst_case`]) on every budget that applies, in one conditional write that fails when the
//! reservation would cross a budget; after the call it settles to its actual cost — the figure
//! its response, summary line and EMF document carry — and releases the rest. A request whose
//! cost cannot be known (an aborted stream, a timed-out call) keeps its whole reservation as
//! spent: what Bedrock may have billed, never zero.
//!
//! **The guarantee.** Each counter holds `committed` = spent + reserved and a reservation
//! succeeds only if `committed + worst case ≤ budget`, atomically (a DynamoDB condition, or the
//! in-process store's lock). Since every actual cost is at most its worst case, the costs of the
//! requests served in a day never add up to more than the budget, however many run at once; and
//! a request is refused only when what is spent and reserved leaves less than its worst case.
//!
//! **A crash between reserve and settle** (the process killed mid-request) leaves its
//! reservation counted as spent — the worst case it may have cost — until its day ends: the
//! counters are per UTC day, so nothing is held past the next midnight.
//!
//! **Midnight.** A reservation settles on the counter of the day it was made in.

pub mod client;
pub mod worst_case;

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::store::{Reserve, ReserveError, Settle, Store};
use crate::telemetry::context::RequestCtx;

pub use client::ClientId;

/// Which budget refused a request. Its name is a summary-line property, never a metric
/// dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    Service,
    Client,
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Service => "service",
            BudgetScope::Client => "client",
        }
    }

    /// What the client is told: which budget, never an amount.
    pub fn refusal(self) -> &'static str {
        match self {
            BudgetScope::Service => {
                "This service has used up its daily budget; try again after midnight UTC"
            }
            BudgetScope::Client => {
                "You have used up your daily budget; try again after midnight UTC"
            }
        }
    }
}

/// Days a counter is kept after its day ends (DynamoDB TTL), for operators' questions.
const KEEP_DAYS: i64 = 7;

/// The configured budgets and where their counters live.
#[derive(Clone)]
pub struct Budgets {
    store: Store,
    service: Option<Decimal>,
    client: Option<Decimal>,
    fail_open: bool,
}

impl Budgets {
    pub fn new(
        store: Store,
        service: Option<Decimal>,
        client: Option<Decimal>,
        fail_open: bool,
    ) -> Self {
        Budgets {
            store,
            service,
            client,
            fail_open,
        }
    }

    /// True when at least one budget is set (otherwise reserving does nothing and costs
    /// nothing).
    pub fn enabled(&self) -> bool {
        self.service.is_some() || self.client.is_some()
    }

    /// Reserve `worst_case` on every budget that applies. `Ok(None)` when no budget is set, or
    /// when the store failed and the operator chose to fail open.
    pub async fn reserve(
        &self,
        ctx: &RequestCtx,
        client: &ClientId,
        worst_case: Decimal,
    ) -> Result<Option<Reservation>, ApiError> {
        if !self.enabled() {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        let day = day_of(now);
        let expires_at = (day_end(now) + time::Duration::days(KEEP_DAYS)).unix_timestamp();
        let scopes: Vec<(BudgetScope, String, Decimal)> = [
            self.service
                .map(|l| (BudgetScope::Service, format!("budget#service#{day}"), l)),
            self.client.map(|l| {
                (
                    BudgetScope::Client,
                    format!("budget#client#{}#{day}", client.as_str()),
                    l,
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        let reservations: Vec<Reserve> = scopes
            .iter()
            .map(|(_, key, limit)| Reserve {
                key: key.clone(),
                amount: worst_case,
                limit: *limit,
                expires_at,
            })
            .collect();
        ctx.record().budget_reserved_usd = Some(worst_case);
        match self.store.reserve(&reservations).await {
            Ok(()) => Ok(Some(Reservation {
                store: self.store.clone(),
                keys: scopes.into_iter().map(|(_, key, _)| key).collect(),
                amount: worst_case,
                settled: false,
            })),
            Err(ReserveError::Refused(i)) => {
                let scope = scopes[i].0;
                let mut r = ctx.record();
                r.budget_reserved_usd = None;
                r.budget_rejected = Some(scope);
                Err(ApiError::BudgetExhausted {
                    scope,
                    retry_after: (day_end(now) - now).whole_seconds().max(1) as u64,
                })
            }
            Err(ReserveError::Store(e)) => {
                tracing::warn!(
                    storeError = %e,
                    failOpen = self.fail_open,
                    "budget check failed"
                );
                let mut r = ctx.record();
                r.budget_reserved_usd = None;
                r.store_errors += 1;
                if self.fail_open {
                    r.budget_failed_open = true;
                    Ok(None)
                } else {
                    Err(ApiError::BudgetUnavailable)
                }
            }
        }
    }
}

/// A request's reservation on its budgets. Settle it with [`Reservation::settle`]; dropped
/// unsettled (a client abort, a panic), it settles in the background to the request's
/// (estimated) cost, or its whole amount when that is unknown.
pub struct Reservation {
    store: Store,
    /// The counters reserved on (the day is part of each key).
    keys: Vec<String>,
    amount: Decimal,
    settled: bool,
}

impl Reservation {
    /// Settle to `actual` (clamped to the reservation: a cost above its worst case is logged as
    /// a bug in the estimate, and counted whole). `None` = unknown: the reservation is spent.
    pub async fn settle(mut self, ctx: &RequestCtx, actual: Option<Decimal>) {
        self.settled = true;
        let amount = actual.unwrap_or(self.amount);
        if amount > self.amount {
            tracing::warn!(
                reservedUsd = %self.amount,
                actualUsd = %amount,
                "a request cost more than its worst case: the estimate is wrong"
            );
        }
        ctx.record().budget_settled_usd = Some(amount);
        if let Err(e) = self.store.settle(&self.settlements(amount)).await {
            // The whole reservation stays counted: conservative, never an overrun.
            tracing::warn!(storeError = %e, "budget settlement failed");
            ctx.record().store_errors += 1;
        }
    }

    fn settlements(&self, actual: Decimal) -> Vec<Settle> {
        self.keys
            .iter()
            .map(|key| Settle {
                key: key.clone(),
                reserved: self.amount,
                actual,
            })
            .collect()
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // The request's cost so far — estimated from what was sent and streamed when usage
        // never came (the body drops inside the request's scope, after the model call has
        // settled as cancelled) — or, with no request in scope or no price, the whole
        // reservation.
        let amount = RequestCtx::with_current(|ctx| {
            let amount = crate::api::spend::settlement(ctx).unwrap_or(self.amount);
            ctx.record().budget_settled_usd = Some(amount);
            amount
        })
        .unwrap_or(self.amount);
        let settlements = self.settlements(amount);
        let store = self.store.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.settle(&settlements).await {
                    tracing::warn!(storeError = %e, "budget settlement after an abort failed");
                }
            });
        }
    }
}

/// `2026-12-02`: the UTC day a reservation belongs to.
fn day_of(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The next UTC midnight after `t`.
fn day_end(t: OffsetDateTime) -> OffsetDateTime {
    (t.date() + time::Duration::days(1)).midnight().assume_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_midnights_are_utc() {
        let t = time::macros::datetime!(2026-12-31 23:59:30 UTC);
        assert_eq!(day_of(t), "2026-12-31");
        assert_eq!(day_end(t), time::macros::datetime!(2027-01-01 00:00 UTC));
        assert_eq!((day_end(t) - t).whole_seconds(), 30);
    }
}
