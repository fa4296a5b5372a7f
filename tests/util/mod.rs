//! Test helpers: real peers on loopback. [`emulators`] starts moto server and aiosmtpd from
//! the pinned venv (`infra/emulators/setup.sh`), once per test binary; [`stub`] runs an
//! in-process HTTP server (axum on the same hyper the clients use) that records requests.

#[cfg(feature = "aws")]
pub mod emulators;
#[cfg(feature = "lambda")]
pub mod lambda_api;
pub mod stub;
