//! What requests cost: the pricing table and its arithmetic, and the two cost commands —
//! `cost-report` (what the deployed function measured) and `cost-estimate` (a scenario's bill).

pub mod estimate;
pub mod pricing;
pub mod report;
