//! `picket respond list / reset / undo` over a real SQLite ledger.

use std::process::Command;
use std::sync::Arc;

use chrono::Utc;
use picket::respond::{ActionKind, ActionTarget, Ledger, LedgerEntry, Status};
use picket::state::{SqliteStore, StateStore};

fn picket(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        // Never let the AWS SDK look for an instance metadata service from a test.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run picket");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_shows_entries_and_the_latch_and_reset_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("picket.db");
    let now = Utc::now();
    {
        let state: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&db).unwrap());
        let ledger = Ledger::new(state);
        let target = ActionTarget {
            principal: "alice@corp.example".into(),
            identity: "alice@corp.example".into(),
            credential: None,
            app: None,
        };
        let entry = LedgerEntry {
            id: "0123456789abcdef".into(),
            action: "entra_revoke_sessions".into(),
            plan: ActionKind::EntraRevokeSessions.plan(&target),
            target,
            finding: "f-1".into(),
            detector: "account-takeover".into(),
            incident: "f-1".into(),
            status: Status::Planned,
            change: None,
            error: None,
            retryable: false,
            created: now,
            updated: now,
        };
        assert!(ledger.claim(&entry, now).unwrap());
        assert!(ledger.close_latch("6 actions within an hour", now).unwrap());
    }
    let db = db.to_str().unwrap();
    let (code, out, err) = picket(&["respond", "list", "--state", db]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("LATCHED (alert-only): 6 actions within an hour"),
        "{out}"
    );
    assert!(
        out.contains("0123456789abcdef") && out.contains("planned"),
        "{out}"
    );

    let (code, _, err) = picket(&["respond", "undo", "0123456789abcdef", "--state", db]);
    assert_eq!(code, 2, "a planned step has nothing to undo");
    assert!(err.contains("nothing to undo"), "{err}");

    let (code, out, _) = picket(&["respond", "reset", "--state", db]);
    assert_eq!(code, 0);
    assert!(out.contains("latch reset"), "{out}");
    let (_, out, _) = picket(&["respond", "list", "--state", db]);
    assert!(!out.contains("LATCHED"), "{out}");
}
