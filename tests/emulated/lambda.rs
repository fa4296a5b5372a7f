//! The `picket-lambda` binary under a real Lambda Runtime API (`util::lambda_api`, in
//! process), with S3, SQS, DynamoDB, IAM and Secrets Manager on moto server: what goes in is
//! what Lambda would deliver (S3 notifications moto itself put on a queue, an EventBridge
//! CloudTrail event, findings on the respond queue); what is checked is what comes out — the
//! batch response, the findings on the respond queue, the state in DynamoDB, the access key in
//! IAM, the Slack message.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use picket::model::Finding;
use picket::pipeline::{FINDINGS_NS, RESPONDED_NS};
use picket::state::{DynamoStore, StateStore};
use serde_json::{Value, json};

use super::aws_actions::{ACCOUNT, aws_finding, seed_user};
use crate::util::emulators::{aws_config, moto};
use crate::util::lambda_api::{FunctionProcess, Outcome, RuntimeApi};
use crate::util::stub::{Reply, Stub};

const BINARY: &str = env!("CARGO_BIN_EXE_picket-lambda");
const TABLE: &str = "picket-state";
const BUCKET: &str = "org-trail";
const STOP_LOGGING_RULE: &str = "421a0cfc-50af-478d-8221-b023becef7a2";

fn fixture(rel: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Every Stratus Red Team CloudTrail record of the fixtures, as one trail object.
fn stratus_records() -> Vec<Value> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail/stratus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|p| {
            match serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap() {
                Value::Array(a) => a,
                other => vec![other],
            }
        })
        .collect()
}

fn gzip(v: &Value) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(v.to_string().as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// An SQS event as Lambda's event source mapping delivers it.
fn sqs_event(messages: &[(String, String)]) -> Value {
    json!({"Records": messages.iter().map(|(id, body)| json!({
        "messageId": id,
        "receiptHandle": format!("rh-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:{ACCOUNT}:picket-ingest"),
        "awsRegion": "us-east-1",
    })).collect::<Vec<_>>()})
}

/// Everything a deployment has, in moto: the state table, the ingest and respond queues, the
/// trail bucket notifying the ingest queue; and the packaged config.
struct Deployment {
    sdk: aws_config::SdkConfig,
    endpoint: String,
    ingest_queue: String,
    respond_queue: String,
    dir: tempfile::TempDir,
}

impl Deployment {
    async fn new(endpoint: &str, config: &str) -> Deployment {
        let sdk = aws_config(endpoint).await;
        DynamoStore::new(&sdk, TABLE, None)
            .unwrap()
            .create_table()
            .unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let mut urls = Vec::new();
        for name in ["picket-ingest", "picket-respond"] {
            let q = sqs.create_queue().queue_name(name).send().await.unwrap();
            urls.push(q.queue_url().unwrap().to_string());
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("picket.toml"),
            format!("[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n\n{config}"),
        )
        .unwrap();
        Deployment {
            sdk,
            endpoint: endpoint.to_string(),
            ingest_queue: urls[0].clone(),
            respond_queue: urls[1].clone(),
            dir,
        }
    }

    /// The environment terraform/modules/picket gives the functions (names only).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("LAMBDA_TASK_ROOT", self.dir.path().display().to_string()),
            ("PICKET_STATE_BACKEND", "dynamodb".into()),
            ("PICKET_TABLE", TABLE.into()),
            ("PICKET_RESPOND_QUEUE_URL", self.respond_queue.clone()),
            ("PICKET_METRICS_NAMESPACE", "Picket".into()),
        ]
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(&self.sdk, TABLE, Some(&self.endpoint)).unwrap()
    }

    /// Receives every message of a queue (and deletes them).
    async fn drain(&self, url: &str) -> Vec<String> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let msgs = got.messages();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                out.push(m.body().unwrap().to_string());
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Uploads trail objects to a bucket that notifies the ingest queue (moto sends the S3
    /// event notifications); returns the notification messages as (message id, body).
    async fn upload_trail(&self, objects: &[(&str, Vec<u8>)]) -> Vec<(String, String)> {
        let s3 = aws_sdk_s3::Client::new(&self.sdk);
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        let queue_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:picket-ingest");
        s3.put_bucket_notification_configuration()
            .bucket(BUCKET)
            .notification_configuration(
                aws_sdk_s3::types::NotificationConfiguration::builder()
                    .queue_configurations(
                        aws_sdk_s3::types::QueueConfiguration::builder()
                            .queue_arn(queue_arn)
                            .events(aws_sdk_s3::types::Event::S3ObjectCreated)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        for (key, body) in objects {
            s3.put_object()
                .bucket(BUCKET)
                .key(*key)
                .body(body.clone().into())
                .send()
                .await
                .unwrap();
        }
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&self.ingest_queue)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                break;
            }
            for m in got.messages() {
                let body = m.body().unwrap().to_string();
                // moto's s3:TestEvent on configuration: a real message that announces nothing.
                out.push((m.message_id().unwrap().to_string(), body));
            }
        }
        out
    }
}

fn findings(bodies: &[String]) -> Vec<Finding> {
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

fn key(object: &str) -> String {
    format!("AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/07/31/{object}.json.gz")
}

#[tokio::test]
async fn ingest_turns_an_s3_notification_batch_into_findings_and_reports_the_poisoned_message() {
    let moto = moto().await;
    let d = Deployment::new(&moto.endpoint, "").await;
    let stratus = stratus_records();
    let notifications = d
        .upload_trail(&[(&key("stratus"), gzip(&json!({"Records": stratus})))])
        .await;
    let announcing: Vec<_> = notifications
        .iter()
        .filter(|(_, b)| b.contains("ObjectCreated"))
        .cloned()
        .collect();
    assert_eq!(
        announcing.len(),
        1,
        "moto notified the upload: {notifications:?}"
    );
    let mut messages = notifications.clone();
    // EventBridge delivers a CloudTrail event to the queue as the event itself.
    let event = fixture("cloudtrail/hand-written/eventbridge.json")[0].clone();
    messages.push(("eb-1".into(), event.to_string()));
    // Poison: a notification of an object that is not there.
    let poison = announcing[0]
        .1
        .replace("stratus.json.gz", "deleted.json.gz");
    messages.push(("poison-1".into(), poison));

    let api = RuntimeApi::start().await;
    let f = FunctionProcess::start(BINARY, &api, "ingest", &d.env());
    let out = api.invoke(sqs_event(&messages)).await;
    assert_eq!(
        out,
        Outcome::Response(json!({"batchItemFailures": [{"itemIdentifier": "poison-1"}]})),
        "{:#?}",
        f.lines()
    );

    // Findings came out on the respond queue, each recorded in the DynamoDB ledger.
    let queued = findings(&d.drain(&d.respond_queue).await);
    let stop: Vec<_> = queued
        .iter()
        .filter(|x| x.detector == STOP_LOGGING_RULE)
        .collect();
    assert_eq!(
        stop.len(),
        2,
        "StopLogging from the trail object and from EventBridge"
    );
    let eb_event_id = event["detail"]["eventID"].as_str().unwrap();
    assert!(
        stop.iter()
            .any(|x| x.evidence.iter().any(|e| e.uid == eb_event_id))
    );
    let store = d.store();
    let mut ledger: Vec<String> = store
        .list(FINDINGS_NS, "", 1000, Utc::now())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut uids: Vec<String> = queued.iter().map(|x| x.uid.clone()).collect();
    ledger.sort();
    uids.sort();
    assert!(uids.len() >= 15, "{uids:?}");
    assert_eq!(ledger, uids, "every queued finding is in the state table");

    // Lambda redelivers the batch (say a timeout): nothing is found twice.
    let again = api.invoke(sqs_event(&messages)).await;
    assert_eq!(again, out);
    assert!(d.drain(&d.respond_queue).await.is_empty());

    // The source-lag metric for the alarm, in embedded metric format.
    assert!(
        f.lines()
            .iter()
            .any(|l| l.contains("\"SourceLagSeconds\"") && l.contains("\"_aws\""))
    );
    let first = f.wait_log("first invocation done", Duration::from_secs(10));
    eprintln!("lambda ingest (debug build): {first}");
}

#[tokio::test]
async fn respond_deactivates_the_key_in_enforce_mode_and_alerts_through_a_secret_webhook() {
    let moto = moto().await;
    let slack = Stub::start(|_| Reply::empty(200)).await;
    let d = Deployment::new(
        &moto.endpoint,
        "[respond]\nmode = \"dry-run\"\n\n[[respond.playbook]]\non = [\"account-takeover\"]\n\
         min_severity = \"high\"\nactions = [\"aws_deactivate_access_keys\"]\n\n\
         [[notify]]\ntype = \"slack\"\nwebhook_url = \"env:PICKET_SLACK_WEBHOOK_URL\"\n",
    )
    .await;
    let iam = aws_sdk_iam::Client::new(&d.sdk);
    let key_id = seed_user(&iam, "mallory").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&d.sdk);
    let secret = secrets
        .create_secret()
        .name("picket/slack-webhook-url")
        .secret_string(format!("{}/services/T0/B0/x", slack.url))
        .send()
        .await
        .unwrap();
    let empty = secrets
        .create_secret()
        .name("picket/smtp-password")
        .send()
        .await
        .unwrap();
    let finding = aws_finding(
        &format!("arn:aws:iam::{ACCOUNT}:user/mallory"),
        Some(&key_id),
        1,
    );
    let messages = vec![
        ("f-1".to_string(), serde_json::to_string(&finding).unwrap()),
        ("junk".to_string(), "{\"not\": \"a finding\"}".to_string()),
    ];

    let mut env = d.env();
    env.push(("PICKET_RESPOND_MODE", "enforce".into()));
    env.push((
        "PICKET_SLACK_WEBHOOK_URL_SECRET_ARN",
        secret.arn().unwrap().to_string(),
    ));
    // A secret without a value yet (never put): logged, and nothing references it.
    env.push((
        "PICKET_SMTP_PASSWORD_SECRET_ARN",
        empty.arn().unwrap().to_string(),
    ));
    let api = RuntimeApi::start().await;
    let f = FunctionProcess::start(BINARY, &api, "respond", &env);
    let out = api.invoke(sqs_event(&messages)).await;
    assert_eq!(
        out,
        Outcome::Response(json!({"batchItemFailures": [{"itemIdentifier": "junk"}]})),
        "{:#?}",
        f.lines()
    );
    let keys = iam
        .list_access_keys()
        .user_name("mallory")
        .send()
        .await
        .unwrap();
    let status: Vec<_> = keys
        .access_key_metadata()
        .iter()
        .map(|k| k.status().unwrap().as_str().to_string())
        .collect();
    assert_eq!(status, ["Inactive"]);
    let posts = slack.requests();
    assert_eq!(posts.len(), 1, "one alert");
    assert!(posts[0].path.ends_with("/services/T0/B0/x"));
    assert!(
        posts[0].body.contains("picket respond undo"),
        "{}",
        posts[0].body
    );
    assert!(
        d.store()
            .get(RESPONDED_NS, &finding.uid, Utc::now())
            .unwrap()
            .is_some(),
        "recorded in the respond ledger"
    );
    // A redelivered finding is neither acted on nor alerted twice.
    api.invoke(sqs_event(&messages[..1])).await;
    assert_eq!(slack.requests().len(), 1);
    let lines = f.lines().join("\n");
    assert!(
        !lines.contains(&slack.url),
        "the secret never reaches a log"
    );
}

#[tokio::test]
async fn poll_reads_the_configured_sources_once_and_commits_their_cursors() {
    let moto = moto().await;
    let input = tempfile::tempdir().unwrap();
    std::fs::write(
        input.path().join("trail.json"),
        json!({"Records": stratus_records()}).to_string(),
    )
    .unwrap();
    let d = Deployment::new(
        &moto.endpoint,
        &format!(
            "[[sources]]\ntype = \"files\"\npath = \"{}\"\n",
            input.path().display()
        ),
    )
    .await;
    let api = RuntimeApi::start().await;
    let f = FunctionProcess::start(BINARY, &api, "poll", &d.env());
    // The EventBridge scheduled event.
    let tick = json!({"version": "0", "id": "t-1", "detail-type": "Scheduled Event",
        "source": "aws.events", "time": "2026-11-28T10:00:00Z", "detail": {}});
    let Outcome::Response(summary) = api.invoke(tick.clone()).await else {
        panic!("{:#?}", f.lines());
    };
    assert_eq!(summary["records"], stratus_records().len());
    let queued = findings(&d.drain(&d.respond_queue).await);
    assert!(queued.iter().any(|x| x.detector == STOP_LOGGING_RULE));
    let store = d.store();
    let cursors = store
        .list(picket::source::CURSOR_NS, "", 10, Utc::now())
        .unwrap();
    assert_eq!(cursors.len(), 1, "the file's cursor is in DynamoDB");
    // The next tick finds nothing new.
    let Outcome::Response(summary) = api.invoke(tick).await else {
        panic!("{:#?}", f.lines());
    };
    assert_eq!(summary["records"], 0);
    assert!(d.drain(&d.respond_queue).await.is_empty());
}

#[tokio::test]
async fn a_function_that_cannot_start_reports_an_init_error_that_says_no_retry_helps() {
    let api = RuntimeApi::start().await;
    let mut f = FunctionProcess::start(
        BINARY,
        &api,
        "ingset",
        &[("AWS_REGION", "us-east-1".into())],
    );
    let Some(Outcome::Error { error_type, body }) = api.init_error(Duration::from_secs(60)).await
    else {
        panic!("no init error: {:#?}", f.lines());
    };
    assert_eq!(error_type, "Permanent.Config");
    assert_eq!(body["errorType"], "Permanent.Config");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("`ingset`"),
        "{body}"
    );
    assert_eq!(f.wait_exit(Duration::from_secs(10)), Some(1));
}

/// `n` CloudTrail records, one in a hundred an attack (the Stratus records in turn), the
/// others routine `DescribeInstances` calls; each with its own event id and a later time.
fn many_records(n: usize) -> Vec<Value> {
    let base = stratus_records();
    (0..n)
        .map(|i| {
            let mut r = base[(i / 100) % base.len()].clone();
            if i % 100 != 0 {
                r["eventName"] = json!("DescribeInstances");
                r["eventSource"] = json!("ec2.amazonaws.com");
                r["readOnly"] = json!(true);
                r["requestParameters"] = Value::Null;
                r["responseElements"] = Value::Null;
            }
            r["eventID"] = json!(format!("figures-{i:06}"));
            let t = chrono::DateTime::parse_from_rfc3339(r["eventTime"].as_str().unwrap()).unwrap()
                + chrono::Duration::seconds(i as i64);
            r["eventTime"] = json!(
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            r
        })
        .collect()
}

/// Figures for the closing note, not a test: it asserts nothing about time. Run it on
/// a release binary:
/// `cargo build --release --features lambda --bin picket-lambda` then
/// `PICKET_LAMBDA_BIN=target/release/picket-lambda cargo test --all-features --test tests
/// lambda_figures -- --ignored --nocapture`. Prints, per state backend (memory; DynamoDB on
/// moto), the function's own log of start-up (`init_ms`), process start to the first batch
/// done (`since_start_ms`), and peak memory (`peak_rss_kb`) for one S3 object of 1,000 records.
#[tokio::test]
#[ignore = "measurement: run with --ignored on a release binary"]
async fn lambda_figures() {
    let binary = std::env::var("PICKET_LAMBDA_BIN").unwrap_or_else(|_| BINARY.to_string());
    for (backend, config) in [
        ("memory", "[state]\nbackend = \"memory\"\n"),
        ("dynamodb", ""),
    ] {
        let moto = moto().await;
        let d = Deployment::new(&moto.endpoint, config).await;
        let object = gzip(&json!({"Records": many_records(1000)}));
        let messages: Vec<_> = d
            .upload_trail(&[(&key("figures"), object)])
            .await
            .into_iter()
            .filter(|(_, b)| b.contains("ObjectCreated"))
            .collect();
        let mut env = d.env();
        if backend == "memory" {
            env.retain(|(k, _)| *k != "PICKET_STATE_BACKEND" && *k != "PICKET_TABLE");
        }
        let api = RuntimeApi::start().await;
        let f = FunctionProcess::start(&binary, &api, "ingest", &env);
        let out = api.invoke(sqs_event(&messages)).await;
        assert_eq!(
            out,
            Outcome::Response(json!({"batchItemFailures": []})),
            "{:#?}",
            f.lines()
        );
        let ready = f.wait_log("picket-lambda ready", Duration::from_secs(10));
        let first = f.wait_log("first invocation done", Duration::from_secs(10));
        let findings = d.drain(&d.respond_queue).await.len();
        eprintln!(
            "FIGURES state={backend} binary={binary} init_ms={} first_batch_done_since_start_ms={} \
             batch_ms={} peak_rss_kb={} records=1000 findings={findings}",
            ready["init_ms"], first["since_start_ms"], first["duration_ms"], first["peak_rss_kb"]
        );
    }
}
