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
