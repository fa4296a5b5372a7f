//! The one integration-test binary (`autotests = false`): every end-to-end test is a module
//! here, so the cloud SDKs are linked once.

mod cli;
mod detect_identity;
mod emulated;
mod run;
mod sigma_compat;
mod sigma_perf;
pub mod sigma_records;
mod sigma_rules;
mod util;
