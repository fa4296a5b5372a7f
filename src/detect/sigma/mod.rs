//! Sigma rules (spec v2) over raw records.
pub mod condition;
pub mod detection;
pub mod mapping;
pub mod path;
pub mod pattern;
pub mod rule;
pub mod ruleset;
pub mod correlation;
