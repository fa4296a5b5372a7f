//! The DynamoDB state store through the real `aws-sdk-dynamodb` against moto server: the same
//! contract suite as memory and SQLite, blast-radius counters under concurrent workers, the
//! stored item layout (the Terraform schema), and errors that name the table.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use chrono::{TimeZone, Utc};
use picket::state::{CounterOutcome, DynamoStore, StateConfig, StateStore};

use crate::util::emulators::{aws_config, moto};

/// A store on a new table of its own (created with the Terraform module's schema).
fn fresh(sdk: &aws_config::SdkConfig, table: &str) -> DynamoStore {
    let store = DynamoStore::new(sdk, table, None).unwrap();
    store.create_table().unwrap();
    store
}

#[tokio::test]
async fn dynamodb_meets_the_state_contract() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let tables = AtomicUsize::new(0);
    // Called from this test's current-thread runtime: the store's own runtime thread does
    // the SDK work, so blocking here is safe.
    picket::state::contract::run_contract(&|| {
        let n = tables.fetch_add(1, Ordering::Relaxed);
        Box::new(fresh(&sdk, &format!("contract-{n}")))
    });
    assert!(
        tables.load(Ordering::Relaxed) > 8,
        "the model-based cases ran"
    );
}

#[tokio::test]
async fn concurrent_workers_never_exceed_the_blast_radius_budget() {
    const WORKERS: usize = 8;
    const TRIES: usize = 6;
    const LIMIT: u64 = 13;
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    drop(fresh(&sdk, "budget"));
    let at = Utc.timestamp_opt(1_795_000_020, 0).unwrap();
    let barrier = Arc::new(Barrier::new(WORKERS));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            // Each worker: its own store, client, connection pool and runtime thread.
            let store = DynamoStore::new(&sdk, "budget", None).unwrap();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                (0..TRIES)
                    .map(|_| {
                        store
                            .incr_window("respond", "actions", 3600, at, Some(LIMIT))
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outcomes: Vec<CounterOutcome> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let mut counted: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| match o {
            CounterOutcome::Counted(n) => Some(*n),
            CounterOutcome::LimitReached(_) => None,
        })
        .collect();
    counted.sort_unstable();
    // Exactly `LIMIT` units granted, each count handed out once.
    assert_eq!(counted, (1..=LIMIT).collect::<Vec<_>>());
    assert_eq!(
        outcomes.len() - counted.len(),
        WORKERS * TRIES - LIMIT as usize
    );
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o, CounterOutcome::LimitReached(n) if *n != LIMIT)),
        "{outcomes:?}"
    );
    let store = DynamoStore::new(&sdk, "budget", None).unwrap();
    assert_eq!(
        store
            .incr_window("respond", "actions", 3600, at, Some(LIMIT))
            .unwrap(),
        CounterOutcome::LimitReached(LIMIT)
    );
}

#[tokio::test]
async fn items_follow_the_terraform_schema() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let store = fresh(&sdk, "layout");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let ttl = client
        .describe_time_to_live()
        .table_name("layout")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    let now = Utc.timestamp_opt(1_795_000_020, 0).unwrap();
    let expires = Utc.timestamp_opt(1_795_000_080, 250).unwrap();
    store
        .put("dedup", "event-1", b"seen", Some(expires), now)
        .unwrap();
    store.incr_window("counter", "k", 60, now, None).unwrap();
    let item = |pk: &str, sk: &str| {
        let client = client.clone();
        let (pk, sk) = (pk.to_string(), sk.to_string());
        async move {
            client
                .get_item()
                .table_name("layout")
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let dedup = item("dedup", "#event-1").await;
    assert_eq!(dedup["value"].as_b().unwrap().as_ref(), b"seen");
    assert_eq!(dedup["version"].as_n().unwrap(), "1");
    // TTL in whole seconds, rounded up; the exact expiry beside it.
    assert_eq!(dedup["expires_at"].as_n().unwrap(), "1795000081");
    assert_eq!(dedup["expires_ns"].as_n().unwrap(), "1795000080000000250");
    let counter = item("counter", "#k#60#29916667").await;
    assert_eq!(counter["n"].as_n().unwrap(), "1");
    assert_eq!(counter["expires_at"].as_n().unwrap(), "1795000140");
    assert!(!counter.contains_key("value"));

    // An item the TTL sweeper has not removed yet is absent to reads and writes.
    let later = Utc.timestamp_opt(1_795_000_090, 0).unwrap();
    assert_eq!(store.get("dedup", "event-1", later).unwrap(), None);
    assert!(
        store
            .put_if_absent("dedup", "event-1", b"again", None, later)
            .unwrap()
    );
}

#[tokio::test]
async fn a_missing_table_is_a_clear_permanent_error() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let store = StateConfig::Dynamodb {
        table: "nope".into(),
        endpoint_url: Some(moto.endpoint.clone()),
    }
    .build(&picket::cloud::Clients {
        aws: Some(sdk),
        ..Default::default()
    })
    .unwrap();
    let err = store.get("n", "k", Utc::now()).unwrap_err();
    assert!(err.to_string().contains("GetItem on table nope"), "{err}");
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
    assert!(!err.is_retryable());
}
