#!/usr/bin/env python3
"""Figures for the aws_s3 source against moto server (not a test: it prints numbers).

  ~/.cache/picket/venv/bin/python infra/bench/aws_s3.py [--picket PATH] [--objects N] [--records R]

1. events/s: N CloudTrail objects (.json.gz, R records each, copied from the fixture records
   with fresh ids) are announced by S3 event notifications in an SQS queue; `picket run --once`
   drains the queue (wall time, including start-up).
2. landing -> finding: with `picket run` running, one object holding a StopLogging event is
   uploaded at a time; the time until its finding is in the jsonl file (5 rounds).
"""
import argparse, gzip, json, os, pathlib, signal, socket, subprocess, sys, tempfile, time, uuid

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = pathlib.Path(os.environ.get("PICKET_VENV", pathlib.Path.home() / ".cache/picket/venv"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def templates():
    out = []
    for f in sorted((ROOT / "tests/fixtures/cloudtrail/stratus").glob("*.json")) + [
        ROOT / "tests/fixtures/cloudtrail/invictus/selection.json"
    ]:
        v = json.loads(f.read_text())
        out.extend(v["Records"] if isinstance(v, dict) else v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--picket", default=str(pathlib.Path.home() / ".cache/picket/target/debug/picket"))
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--records", type=int, default=250)
    a = ap.parse_args()

    port = free_port()
    moto = subprocess.Popen([str(VENV / "bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ep = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        q = sqs.create_queue(QueueName="trail")["QueueUrl"]
        s3.create_bucket(Bucket="trail")
        s3.put_bucket_notification_configuration(Bucket="trail", NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:123456789012:trail",
                                     "Events": ["s3:ObjectCreated:*"]}]})
        t = templates()
        now = time.time()
        n = 0
        for o in range(a.objects):
            recs = []
            for r in range(a.records):
                v = dict(t[n % len(t)])
                v["eventID"] = str(uuid.uuid4())
                v["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 + n % 3000))
                recs.append(v)
                n += 1
            key = f"AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28/123456789012_CloudTrail_us-east-1_20261128T1000Z_{o:05}.json.gz"
            s3.put_object(Bucket="trail", Key=key, Body=gzip.compress(json.dumps({"Records": recs}).encode()))
        d = pathlib.Path(tempfile.mkdtemp())
        geo = ROOT / "assets/geoip"
        (d / "picket.toml").write_text(f"""[state]
backend = "sqlite"
path = "state.db"
[geoip]
city = "{geo / 'GeoLite2-City-Test.mmdb'}"
asn = "{geo / 'GeoLite2-ASN-Test.mmdb'}"
[aws]
region = "us-east-1"
endpoint_url = "{ep}"
[[sources]]
type = "aws_s3"
queue_url = "{q}"
wait_time_secs = 1
[[notify]]
type = "jsonl"
path = "findings.jsonl"
""")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_EC2_METADATA_DISABLED="true", PICKET_LOG="warn")
        start = time.monotonic()
        subprocess.run([a.picket, "run", "--config", "picket.toml", "--once"], cwd=d, env=env, check=True)
        secs = time.monotonic() - start
        print(f"aws_s3: {n} events in {a.objects} objects: {secs:.2f} s wall, {n / secs:.0f} events/s "
              f"(incl. start-up and the final 1 s empty long poll)")

        # Landing -> finding.
        stop = [v for v in t if v.get("eventName") == "StopLogging"][0]
        run = subprocess.Popen([a.picket, "run", "--config", "picket.toml"], cwd=d, env=env)
        time.sleep(3)
        lat = []
        for i in range(5):
            v = dict(stop)
            v["eventID"] = str(uuid.uuid4())
            v["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            t0 = time.monotonic()
            s3.put_object(Bucket="trail", Key=f"AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28/live_{i}.json.gz",
                          Body=gzip.compress(json.dumps({"Records": [v]}).encode()))
            while v["eventID"] not in (d / "findings.jsonl").read_text():
                if time.monotonic() - t0 > 60:
                    sys.exit("no finding within 60 s")
                time.sleep(0.01)
            lat.append(time.monotonic() - t0)
            time.sleep(0.5)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
        lat.sort()
        print("aws_s3: object landing -> finding in the jsonl file: " +
              ", ".join(f"{x * 1000:.0f} ms" for x in lat) + f" (median {lat[2] * 1000:.0f} ms)")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
