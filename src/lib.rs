//! picket: cloud identity and control-plane threat detection and response.
//!
//! ```text
//!  sources ─────► normalize ─────► enrich ──────► detect ──────► respond ──────► notify
//!  raw JSON       IdentityEvent    geo-IP, ASN,   rules +        playbooks,      Slack, email,
//!  + cursor       (one model)      trusted nets   stateful       guardrails      webhook, JSONL
//!             state store: cursors, history, dedup, counters, ledger
//! ```
//!
//! One function runs one batch through the whole chain ([`pipeline::Pipeline::process`]); the
//! CLI, replay, tests and the Lambda handlers all call it.
//!
//! Modules are the pipeline's stages: [`source`], [`normalize`], [`enrich`], [`detect`],
//! [`respond`], [`alert`], with [`state`] beside them, [`model`] shared by all, [`config`]
//! building them and [`cloud`] holding the clients they share; [`run`] is the polling loop of
//! `picket run`; [`lambda`] (feature `lambda`) serves the same pipeline as Lambda functions.

pub mod alert;
pub mod app;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod demo;
pub mod detect;
pub mod enrich;
pub mod json;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod model;
pub mod normalize;
pub mod pipeline;
pub mod respond;
pub mod run;
pub mod source;
pub mod state;
