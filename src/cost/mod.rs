//! What requests cost: the pricing table and its arithmetic.

pub mod pricing;
