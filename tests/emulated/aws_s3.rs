//! The `aws_s3` pieces against moto server with the real `aws-sdk-s3` / `aws-sdk-sqs`
//! clients: CloudTrail objects (`.json.gz`, the real records of `tests/fixtures/cloudtrail`)
//! downloaded and decoded.

use std::io::Write;

use picket::source::aws_s3::{FetchError, ObjectRef, fetch_records};
use picket::source::decode::Limits;

use crate::util::emulators::{aws_config, moto};

/// The fixture CloudTrail document (Invictus IR selection, 25 real records).
pub fn fixture_document() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cloudtrail/invictus/selection.json"
    ))
    .unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// An S3 client for moto (path-style addressing, as picket uses with an endpoint override).
pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let sdk = aws_config(endpoint).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

fn obj(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.into(),
        key: key.into(),
        size: None,
        version_id: None,
        event_time: None,
    }
}

#[tokio::test]
async fn fetch_records_downloads_and_decodes_gzip_and_plain_objects() {
    let moto = moto().await;
    let s3 = s3_client(&moto.endpoint).await;
    s3.create_bucket().bucket("trail").send().await.unwrap();
    let doc = fixture_document();
    let key = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/a b.json.gz";
    for (k, body) in [(key, gzip(&doc)), ("plain.json", doc.clone())] {
        s3.put_object()
            .bucket("trail")
            .key(k)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    for k in [key, "plain.json"] {
        let records = fetch_records(&s3, &obj("trail", k), Limits::default())
            .await
            .unwrap();
        assert_eq!(records.len(), 25, "{k}");
        assert!(
            records
                .iter()
                .all(|r| r.kind == Some(picket::model::RecordKind::Cloudtrail))
        );
        assert_eq!(&*records[0].origin.source, format!("s3://trail/{k}"));
    }

    // Poison: missing, undecodable, truncated.
    let missing = fetch_records(&s3, &obj("trail", "nope.json.gz"), Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, FetchError::Missing { .. }), "{missing}");
    let gz = gzip(&doc);
    for (k, body) in [
        ("junk.json.gz", b"\x1f\x8bnot really gzip".to_vec()),
        ("cut.json.gz", gz[..gz.len() / 2].to_vec()),
        ("text.json", b"{\"Records\": [ {\"a\":".to_vec()),
    ] {
        s3.put_object()
            .bucket("trail")
            .key(k)
            .body(body.into())
            .send()
            .await
            .unwrap();
        let e = fetch_records(&s3, &obj("trail", k), Limits::default())
            .await
            .unwrap_err();
        assert!(e.is_poison(), "{k}: {e}");
    }
    // A missing bucket is poison too; nothing here is worth a retry.
    let e = fetch_records(&s3, &obj("gone", "x"), Limits::default())
        .await
        .unwrap_err();
    assert!(e.is_poison() && !e.is_retryable(), "{e}");
}

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Every real CloudTrail document of the fixtures: the Stratus Red Team detonations and the
/// Invictus selection (path, bytes).
pub fn fixture_documents() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail");
    let mut out: Vec<_> = std::fs::read_dir(root.join("stratus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.push(root.join("invictus/selection.json"));
    out.sort();
    out.into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// A moto call outside the SDK crates picket links (SNS, EventBridge): moto routes by the
/// credential scope of the Authorization header and does not check the signature.
pub async fn moto_call(
    endpoint: &str,
    service: &str,
    target: Option<&str>,
    body: String,
) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("Authorization", auth)
        .body(body);
    req = match target {
        Some(t) => req
            .header("X-Amz-Target", t)
            .header("Content-Type", "application/x-amz-json-1.1"),
        None => req.header("Content-Type", "application/x-www-form-urlencoded"),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(
        status.is_success(),
        "{service} {target:?}: {status}: {text}"
    );
    text
}

pub async fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws_config(endpoint).await)
}

/// Messages in a queue, visible or in flight.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|a| {
        attrs
            .get(a)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// A queue with a dead-letter queue after `max_receive` receives; (url, arn, dlq url).
pub async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receive: u32,
) -> (String, String, String) {
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}-dlq");
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (url, format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"), dlq)
}

/// A working folder with `picket.toml`: SQLite state, the jsonl notifier, the test geo-IP
/// databases, `[aws]` pointing at moto and `extra` appended (the sources).
pub fn workdir(endpoint: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/geoip");
    std::fs::write(
        dir.path().join("picket.toml"),
        format!(
            r#"[state]
backend = "sqlite"
path = "state.db"

[geoip]
city = "{}"
asn = "{}"

[aws]
region = "{REGION}"
endpoint_url = "{endpoint}"

[[notify]]
type = "jsonl"
path = "findings.jsonl"

{extra}
"#,
            assets.join("GeoLite2-City-Test.mmdb").display(),
            assets.join("GeoLite2-ASN-Test.mmdb").display(),
        ),
    )
    .unwrap();
    dir
}

/// `picket ARGS` in `dir` with static emulator credentials from the environment.
pub fn picket(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .current_dir(dir)
        .env("PICKET_LOG", "warn")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run picket")
}

pub fn run_once(dir: &std::path::Path) -> String {
    let out = picket(dir, &["run", "--config", "picket.toml", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "picket run --once failed: {stderr}");
    stderr
}

/// The finding uids of a JSONL output, in order.
pub fn finding_uids(path: &std::path::Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["finding_info"]["uid"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The findings `picket replay` makes of `files` with the config of `dir` (the reference).
pub fn replay_uids(dir: &std::path::Path, files: &[std::path::PathBuf]) -> Vec<String> {
    let mut args = vec![
        "replay",
        "--config",
        "picket.toml",
        "--format",
        "ocsf",
        "--output",
        "reference.jsonl",
    ];
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = picket(dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    finding_uids(&dir.join("reference.jsonl"))
}

#[tokio::test]
async fn objects_announced_by_s3_sns_and_eventbridge_are_processed_once_and_poison_goes_to_the_dlq()
{
    use aws_sdk_s3::types::{
        Event, EventBridgeConfiguration, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter, TopicConfiguration,
    };
    let moto = moto().await;
    let ep = moto.endpoint.as_str();
    let (s3, sqs) = (s3_client(ep).await, sqs_client(ep).await);
    let (queue, queue_arn, dlq) = queue_with_dlq(&sqs, "trail", 2).await;

    // SNS topic subscribed by the queue (the notification arrives wrapped).
    moto_call(
        ep,
        "sns",
        None,
        "Action=CreateTopic&Name=trail&Version=2010-03-31".into(),
    )
    .await;
    let topic_arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:trail");
    moto_call(
        ep,
        "sns",
        None,
        format!(
            "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=sqs&Endpoint={}",
            urlencode(&topic_arn),
            urlencode(&queue_arn)
        ),
    )
    .await;
    // EventBridge rule sending S3 "Object Created" events to the queue.
    let pattern = serde_json::json!({"source": ["aws.s3"], "detail-type": ["Object Created"]});
    moto_call(
        ep,
        "events",
        Some("AWSEvents.PutRule"),
        serde_json::json!({"Name": "s3-created", "EventPattern": pattern.to_string()}).to_string(),
    )
    .await;
    moto_call(
        ep,
        "events",
        Some("AWSEvents.PutTargets"),
        serde_json::json!({"Rule": "s3-created", "Targets": [{"Id": "q", "Arn": queue_arn}]})
            .to_string(),
    )
    .await;

    // Bucket `direct`: prefix sqs/ notifies the queue, prefix sns/ the topic. Bucket `bridge`:
    // EventBridge.
    let prefix = |p: &str| {
        NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(p)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    for b in ["direct", "bridge"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    s3.put_bucket_notification_configuration()
        .bucket("direct")
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(&queue_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(prefix("sqs/"))
                        .build()
                        .unwrap(),
                )
                .topic_configurations(
                    TopicConfiguration::builder()
                        .topic_arn(&topic_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(prefix("sns/"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket("bridge")
        .notification_configuration(
            NotificationConfiguration::builder()
                .event_bridge_configuration(EventBridgeConfiguration::builder().build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The fixtures, round robin over the three paths; keys in CloudTrail's layout, one with a
    // space (S3 notifications encode it as `+`).
    let docs = fixture_documents();
    for (i, (path, bytes)) in docs.iter().enumerate() {
        let stem = path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('.', "_");
        let log = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/11/28/{ACCOUNT}_CloudTrail_{REGION}_20261128T0000Z_{stem} {i}.json.gz"
        );
        let (bucket, key) = match i % 3 {
            0 => ("direct", format!("sqs/{log}")),
            1 => ("direct", format!("sns/{log}")),
            _ => ("bridge", log),
        };
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(gzip(bytes).into())
            .send()
            .await
            .unwrap();
    }
    // A poisoned object: announced, never decodable.
    s3.put_object()
        .bucket("direct")
        .key("sqs/AWSLogs/broken.json.gz")
        .body(b"\x1f\x8b\x08\x00garbage".to_vec().into())
        .send()
        .await
        .unwrap();
    // Test events of the two notification configurations + one message per object + poison.
    let announced = queue_depth(&sqs, &queue).await;
    assert!(
        announced > docs.len(),
        "moto delivered {announced} notifications for {} objects",
        docs.len()
    );

    let dir = workdir(
        ep,
        &format!(
            "[[sources]]\ntype = \"aws_s3\"\nqueue_url = \"{queue}\"\nwait_time_secs = 1\nvisibility_timeout_secs = 1\n"
        ),
    );
    let reference: Vec<String> = replay_uids(
        dir.path(),
        &docs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
    );
    assert!(
        reference.len() >= 10,
        "{} reference findings",
        reference.len()
    );

    run_once(dir.path());
    let first = finding_uids(&dir.path().join("findings.jsonl"));
    let mut sorted = first.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), first.len(), "a finding was written twice");
    let mut expected = reference.clone();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "the findings of a replay of the same records"
    );
    // Every message is gone but the poisoned one.
    assert_eq!(queue_depth(&sqs, &queue).await, 1);
    let store = picket::state::SqliteStore::open(dir.path().join("state.db")).unwrap();
    let status = picket::run::statuses(&store).unwrap();
    assert_eq!(status.len(), 1);
    let records: u64 = docs
        .iter()
        .map(|(_, b)| {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            v.get("Records").unwrap_or(&v).as_array().unwrap().len() as u64
        })
        .sum();
    assert_eq!(status[0].events_total, records);
    assert_eq!(status[0].errors_total, 1, "the poisoned object");
    drop(store);

    // Each run receives the poisoned message once more and leaves it; SQS moves it to the
    // dead-letter queue after its second receive. No finding is written again.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        run_once(dir.path());
    }
    assert_eq!(finding_uids(&dir.path().join("findings.jsonl")), first);
    assert_eq!(queue_depth(&sqs, &queue).await, 0);
    assert_eq!(queue_depth(&sqs, &dlq).await, 1);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The fixture documents with every record's `eventTime` moved to `day` (10:00, one minute
/// apart) and its `eventID` made unique per day.
fn documents_on(day: &str) -> Vec<Vec<u8>> {
    fixture_documents()
        .into_iter()
        .map(|(_, bytes)| {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let mut records = v.get("Records").unwrap_or(&v).as_array().unwrap().clone();
            for (i, r) in records.iter_mut().enumerate() {
                r["eventTime"] = format!("{day}T10:{:02}:00Z", i % 60).into();
                let id = r["eventID"].as_str().unwrap_or("x").to_string();
                r["eventID"] = format!("{day}-{id}").into();
            }
            serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn replay_of_a_trail_bucket_lists_only_the_days_asked_for() {
    use picket::source::aws_s3::list_trail;
    let moto = moto().await;
    let s3 = s3_client(&moto.endpoint).await;
    s3.create_bucket().bucket("trail").send().await.unwrap();
    let local = tempfile::tempdir().unwrap();
    let mut expected_keys = Vec::new();
    let mut n = 0;
    for day in ["2026-11-01", "2026-11-02", "2026-11-03"] {
        let folder = day.replace('-', "/");
        let compact = day.replace('-', "");
        for (i, doc) in documents_on(day).into_iter().enumerate() {
            let region = if i % 2 == 0 { "us-east-1" } else { "eu-west-1" };
            let key = format!(
                "AWSLogs/{ACCOUNT}/CloudTrail/{region}/{folder}/{ACCOUNT}_CloudTrail_{region}_{compact}T1015Z_{i:04}.json.gz"
            );
            if day == "2026-11-02" {
                expected_keys.push(key.clone());
            }
            s3.put_object()
                .bucket("trail")
                .key(&key)
                .body(gzip(&doc).into())
                .send()
                .await
                .unwrap();
            n += 1;
            std::fs::write(local.path().join(format!("{n}.json")), &doc).unwrap();
        }
    }
    // Not CloudTrail logs: a digest file and another folder.
    for key in [
        format!("AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/11/02/digest.json.gz"),
        "exports/2026/11/02/other.json".to_string(),
    ] {
        s3.put_object()
            .bucket("trail")
            .key(key)
            .body(b"not a log".to_vec().into())
            .send()
            .await
            .unwrap();
    }

    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let listed = list_trail(
        &s3,
        "trail",
        "",
        t("2026-11-02T00:00:00Z"),
        t("2026-11-02T23:59:59Z"),
    )
    .await
    .unwrap();
    let mut got: Vec<String> = listed.iter().map(|o| o.object.key.clone()).collect();
    got.sort();
    expected_keys.sort();
    assert_eq!(got, expected_keys);
    // A prefix down to one region lists that region only.
    let one = list_trail(
        &s3,
        "trail",
        &format!("AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/"),
        t("2026-11-02T00:00:00Z"),
        t("2026-11-02T23:59:59Z"),
    )
    .await
    .unwrap();
    assert!(!one.is_empty() && one.iter().all(|o| o.object.key.contains("/eu-west-1/")));

    // The CLI: the findings of the same day replayed from local copies.
    let dir = workdir(&moto.endpoint, "");
    let range = ["--since", "2026-11-02", "--until", "2026-11-02"];
    let mut args = vec!["replay", "--config", "picket.toml", "--format", "ocsf"];
    args.extend(range);
    let mut s3_args = args.clone();
    s3_args.extend(["--output", "s3.jsonl", "s3://trail/"]);
    let out = picket(dir.path(), &s3_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local_path = local.path().display().to_string();
    args.extend(["--output", "local.jsonl", local_path.as_str()]);
    let out = picket(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_s3 = finding_uids(&dir.path().join("s3.jsonl"));
    let from_local = finding_uids(&dir.path().join("local.jsonl"));
    assert!(from_s3.len() >= 10, "{} findings", from_s3.len());
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(from_s3), sorted(from_local));
}
