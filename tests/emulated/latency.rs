//! The figure for the report, not a timed test (`#[ignore]`d; run with
//! `cargo test --all-features --test tests latency -- --ignored --nocapture`): from a
//! finding entering the Responder to the action applied and verified against moto, p50/p99.

use std::time::Instant;

use picket::config::RespondMode;

use super::aws_actions::{ACCOUNT, aws_finding, responder, section, seed_user};
use crate::util::emulators::{aws_config, moto};

#[tokio::test]
#[ignore = "measurement for the report; run with --ignored --nocapture"]
async fn finding_to_verified_action_latency_against_moto() {
    const N: usize = 200;
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let mut users = Vec::new();
    for i in 0..N {
        let name = format!("lat-{i}");
        let key = seed_user(&iam, &name).await;
        users.push((name, key));
    }
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::Enforce,
            &["aws_deactivate_access_keys"],
            10_000,
            10,
        ),
        &[],
    )
    .await;
    let mut ms = Vec::with_capacity(N);
    for (i, (name, key)) in users.iter().enumerate() {
        let f = aws_finding(
            &format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            Some(key),
            i as u32,
        );
        let t = Instant::now();
        let out = r.respond(&f).await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(out.notes[0].status, "verified");
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "finding -> aws_deactivate_access_keys applied+verified (moto, loopback), n={N}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(0.50),
        p(0.99),
        ms[ms.len() - 1]
    );
}
