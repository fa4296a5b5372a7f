//! The one place guardrails live. For each finding: match playbooks, then for each action
//! resolve the target and pass, in order,
//!
//! 1. protected identities (and: no loadable list = no action at all),
//! 2. scope (account actions need a finding built on successful sign-ins; impossible travel
//!    alone never disables an account),
//! 3. mode (`dry-run` records the plan and stops),
//! 4. the blast-radius latch (closed = alert-only until `picket respond reset`),
//! 5. once-only per (action, target, incident): an existing ledger entry is never re-applied
//!    (a `pending` one, left by a crash, is verified instead; only a `failed` one whose error
//!    was transient is tried again, through the same limits),
//! 6. blast radius: per-identity and global counters per hour (`StateStore::incr_window`); a
//!    breach closes the latch and yields exactly one aggregated alert,
//!
//! then claims the ledger entry (`pending`, put-if-absent) BEFORE apply, applies, verifies,
//! and records the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ledger::{Ledger, LedgerEntry, Status, entry_id};
use super::protect::Protected;
use super::{Action, ActionKind, Aliases, RespondError, Scope, undo_command};
use crate::alert::facts::{RESPONSE_KEY, ResponseNote};
use crate::clock::Clock;
use crate::cloud::Clients;
use crate::config::{RespondMode, RespondSection};
use crate::enrich::IdentitiesConfig;
use crate::model::{Finding, Severity, finding_uid};
use crate::state::{CounterOutcome, StateStore};

/// State namespace of the blast-radius counters.
pub const COUNTER_NS: &str = "respond-count";
/// The detector id of the blast-radius breach alert.
pub const GUARDRAIL_DETECTOR: &str = "respond-guardrail";
const HOUR: u64 = 3600;

/// What the Responder did for one finding.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One note per playbook step (attached to the finding's notification).
    pub notes: Vec<ResponseNote>,
    /// The one alert sent when this finding's steps closed the blast-radius latch.
    pub breach: Option<Finding>,
}

impl Outcome {
    /// Attaches the notes to the finding (`data.response`), for the notifiers.
    pub fn attach(&self, f: &mut Finding) {
        if !self.notes.is_empty() {
            f.data.insert(RESPONSE_KEY.into(), json!(self.notes));
        }
    }
}

struct Playbook {
    on: Vec<String>,
    min_severity: Severity,
    actions: Vec<ActionKind>,
}

/// Runs playbooks under the guardrails.
pub struct Responder {
    mode: RespondMode,
    max_per_hour: u64,
    max_per_identity: u64,
    playbooks: Vec<Playbook>,
    protected: Result<Protected, String>,
    aliases: Aliases,
    actions: BTreeMap<ActionKind, Result<Arc<dyn Action>, String>>,
    ledger: Ledger,
    state: Arc<dyn StateStore>,
    clock: Arc<Clock>,
    clients: Clients,
}

/// Whether a finding is built on successful sign-ins (and is more than impossible travel).
pub fn account_actions_allowed(f: &Finding) -> bool {
    if f.detector == "impossible-travel" || f.detector == "new-country" {
        return false;
    }
    f.evidence.iter().any(|e| {
        let a = e.action.to_ascii_lowercase();
        e.success
            && (a.contains("login")
                || a.contains("signin")
                || a.contains("sign-in")
                || a.contains("logon"))
    })
}

/// The incident a finding belongs to (`data.incident`, else the finding itself).
pub fn incident_of(f: &Finding) -> String {
    f.data
        .get("incident")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| f.uid.clone())
}

impl Responder {
    /// Builds the Responder. `force_dry_run` (the CLI's `--dry-run`, replays) can only make
    /// it safer. Actions whose feature or client is missing are kept as errors and reported
    /// per step. A protected list that does not load makes every step a no-op.
    pub fn new(
        section: &RespondSection,
        identities: &IdentitiesConfig,
        clients: &Clients,
        state: Arc<dyn StateStore>,
        clock: Arc<Clock>,
        force_dry_run: bool,
    ) -> Result<Responder, RespondError> {
        let mut playbooks = Vec::new();
        let mut actions = BTreeMap::new();
        for (i, p) in section.playbook.iter().enumerate() {
            let mut kinds = Vec::new();
            for name in &p.actions {
                let kind = ActionKind::parse(name).ok_or_else(|| {
                    RespondError::Build(format!("respond.playbook[{i}]: unknown action `{name}`"))
                })?;
                kinds.push(kind);
                actions
                    .entry(kind)
                    .or_insert_with(|| kind.build(clients).map_err(|e| e.to_string()));
            }
            playbooks.push(Playbook {
                on: p.on.clone(),
                min_severity: p.min_severity,
                actions: kinds,
            });
        }
        let protected = Protected::new(identities);
        if let Err(e) = &protected {
            tracing::error!(error = %e, "protected identities could not be loaded: no response action will run");
        }
        Ok(Responder {
            mode: if force_dry_run {
                RespondMode::DryRun
            } else {
                section.mode
            },
            max_per_hour: section.max_actions_per_hour,
            max_per_identity: section.max_actions_per_identity,
            playbooks,
            protected,
            aliases: Aliases::new(&identities.aliases),
            actions,
            ledger: Ledger::new(state.clone()),
            state,
            clock,
            clients: clients.clone(),
        })
    }

    /// Replaces an action's implementation (tests, custom clients).
    pub fn set_action(&mut self, action: Arc<dyn Action>) {
        self.actions.insert(action.kind(), Ok(action));
    }

    /// The effective mode.
    pub fn mode(&self) -> RespondMode {
        self.mode
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn kinds_for(&self, f: &Finding) -> Vec<ActionKind> {
        let mut out = Vec::new();
        for p in &self.playbooks {
            if f.severity >= p.min_severity && p.on.contains(&f.detector) {
                for k in &p.actions {
                    if !out.contains(k) {
                        out.push(*k);
                    }
                }
            }
        }
        out
    }

    /// Runs the matching playbooks for a finding. Errors of single steps are recorded in
    /// their notes; only a failing state store fails the call.
    pub async fn respond(&self, f: &Finding) -> Result<Outcome, RespondError> {
        let mut out = Outcome::default();
        let kinds = self.kinds_for(f);
        if kinds.is_empty() {
            return Ok(out);
        }
        let now = self.clock.now();
        let incident = incident_of(f);
        let mut latched = self.ledger.latch(now)?.is_some();
        for kind in kinds {
            let mut note = ResponseNote {
                id: String::new(),
                action: kind.name().to_string(),
                target: "-".into(),
                status: "skipped".into(),
                reason: None,
                undo: None,
            };
            let skip = |mut n: ResponseNote, why: String| {
                tracing::info!(action = %n.action, target = %n.target, finding = %f.uid, reason = %why, "response step skipped");
                n.reason = Some(why);
                n
            };
            let Some(target) = kind.target(f, &self.aliases) else {
                out.notes.push(skip(
                    note,
                    "the finding names no principal this action applies to".into(),
                ));
                continue;
            };
            note.target = target.label();
            let id = entry_id(kind.name(), &target, &incident);
            note.id = id.clone();
            // 1. Protected identities.
            match &self.protected {
                Err(e) => {
                    out.notes.push(skip(
                        note,
                        format!(
                            "protected identities could not be loaded ({e}); nothing is touched"
                        ),
                    ));
                    continue;
                }
                Ok(p) => {
                    let mut names = vec![target.principal.as_str(), target.identity.as_str()];
                    names.extend(
                        self.aliases
                            .principals(&target.identity)
                            .iter()
                            .map(String::as_str),
                    );
                    names.extend(self.aliases.identity(&target.principal));
                    if let Some(app) = &target.app
                        && kind == ActionKind::EntraDisableServicePrincipal
                    {
                        names.push(app);
                    }
                    if let Some(g) = p.matches(names) {
                        out.notes
                            .push(skip(note, format!("protected identity ({g})")));
                        continue;
                    }
                }
            }
            // 2. Scope.
            if kind.scope() == Scope::Account && !account_actions_allowed(f) {
                out.notes.push(skip(
                    note,
                    "account actions need a finding built on successful sign-ins".into(),
                ));
                continue;
            }
            let plan = kind.plan(&target);
            let mut entry = LedgerEntry {
                id: id.clone(),
                action: kind.name().to_string(),
                target: target.clone(),
                finding: f.uid.clone(),
                detector: f.detector.clone(),
                incident: incident.clone(),
                status: Status::Planned,
                plan: plan.clone(),
                change: None,
                error: None,
                retryable: false,
                created: now,
                updated: now,
            };
            // 3. Dry run.
            if self.mode == RespondMode::DryRun {
                self.ledger.claim(&entry, now)?;
                note.status = "planned".into();
                note.reason = Some(format!("dry-run: would {}", plan.summary));
                out.notes.push(note);
                continue;
            }
            // 4. Latch.
            if latched {
                out.notes.push(skip(
                    note,
                    "blast-radius limit reached earlier: alert-only until `picket respond reset`"
                        .into(),
                ));
                continue;
            }
            // 5. Once-only (a transient failure may be tried again).
            let mut retry_from = None;
            if let Some((existing, version)) = self.ledger.get(&id, now)?
                && existing.status != Status::Planned
            {
                if existing.status == Status::Failed && existing.retryable {
                    retry_from = Some(version);
                    entry.created = existing.created;
                } else {
                    let status = if existing.status == Status::Pending {
                        self.recover_entry(existing, version).await?
                    } else {
                        existing.status
                    };
                    out.notes.push(skip(
                        note,
                        format!("already done for this incident ({})", status.as_str()),
                    ));
                    continue;
                }
            }
            let action = match self.actions.get(&kind) {
                Some(Ok(a)) => a.clone(),
                Some(Err(e)) => {
                    note.status = "failed".into();
                    note.reason = Some(e.clone());
                    out.notes.push(note);
                    continue;
                }
                None => {
                    note.status = "failed".into();
                    note.reason = Some("not built".into());
                    out.notes.push(note);
                    continue;
                }
            };
            // 6. Blast radius.
            let per_identity = self.state.incr_window(
                COUNTER_NS,
                &format!("identity/{}", target.identity),
                HOUR,
                now,
                Some(self.max_per_identity),
            )?;
            let global = match per_identity {
                CounterOutcome::Counted(_) => Some(self.state.incr_window(
                    COUNTER_NS,
                    "global",
                    HOUR,
                    now,
                    Some(self.max_per_hour),
                )?),
                CounterOutcome::LimitReached(_) => None,
            };
            let breach = match (per_identity, global) {
                (CounterOutcome::LimitReached(n), _) => Some(format!(
                    "{n} actions on identity {} within an hour (max_actions_per_identity = {})",
                    target.identity, self.max_per_identity
                )),
                (_, Some(CounterOutcome::LimitReached(n))) => Some(format!(
                    "{n} actions within an hour (max_actions_per_hour = {})",
                    self.max_per_hour
                )),
                _ => None,
            };
            if let Some(reason) = breach {
                latched = true;
                if self.ledger.close_latch(&reason, now)? {
                    tracing::error!(%reason, "blast-radius limit reached: picket stops acting until `picket respond reset`");
                    out.breach = Some(breach_finding(&reason, f, now));
                }
                out.notes.push(skip(note, format!("blast-radius limit reached ({reason}); alert-only until `picket respond reset`")));
                continue;
            }
            // Claim before apply.
            entry.status = Status::Pending;
            let claimed = match retry_from {
                None => self.ledger.claim(&entry, now)?.then_some(1),
                Some(v) => self.ledger.reclaim(&entry, v, now)?,
            };
            let Some(mut version) = claimed else {
                out.notes
                    .push(skip(note, "claimed by another runner".into()));
                continue;
            };
            let status = self
                .apply_entry(action.as_ref(), &mut entry, &mut version)
                .await?;
            note.status = status.as_str().to_string();
            if let Some(e) = &entry.error {
                note.reason = Some(e.clone());
            } else {
                note.reason = Some(plan.summary.clone());
            }
            if plan.undoable
                && matches!(
                    status,
                    Status::Verified | Status::Applied | Status::Unverified
                )
            {
                note.undo = Some(undo_command(&id));
            }
            out.notes.push(note);
        }
        Ok(out)
    }

    async fn apply_entry(
        &self,
        action: &dyn Action,
        entry: &mut LedgerEntry,
        version: &mut u64,
    ) -> Result<Status, RespondError> {
        match action.apply(&entry.target).await {
            Ok(change) => {
                entry.status = Status::Applied;
                entry.error = None;
                entry.retryable = false;
                entry.change = Some(change.clone());
                entry.updated = self.clock.now();
                *version = self.ledger.update(entry, *version, entry.updated)?;
                entry.status = match action.verify(&entry.target, &change).await {
                    Ok(true) => Status::Verified,
                    Ok(false) => Status::Unverified,
                    Err(e) => {
                        entry.error = Some(format!("verify: {e}"));
                        Status::Unverified
                    }
                };
            }
            Err(e) => {
                tracing::warn!(action = entry.action, target = %entry.target.label(), error = %e, "response action failed");
                entry.status = Status::Failed;
                entry.retryable = e.is_retryable();
                entry.error = Some(e.to_string());
            }
        }
        entry.updated = self.clock.now();
        *version = self.ledger.update(entry, *version, entry.updated)?;
        tracing::info!(action = entry.action, target = %entry.target.label(), id = entry.id, status = entry.status.as_str(), "response action recorded");
        Ok(entry.status)
    }

    /// A `pending` entry means a run stopped between claim and record: verify it, never
    /// re-apply. Returns the new status.
    async fn recover_entry(
        &self,
        mut entry: LedgerEntry,
        version: u64,
    ) -> Result<Status, RespondError> {
        let kind = ActionKind::parse(&entry.action).ok_or_else(|| RespondError::Ledger {
            id: entry.id.clone(),
            message: format!("unknown action {}", entry.action),
        })?;
        let Ok(action) = self.action(kind) else {
            return Ok(Status::Pending);
        };
        let change = entry.change.clone().unwrap_or_default();
        entry.status = match action.verify(&entry.target, &change).await {
            Ok(true) => Status::Verified,
            _ => Status::Unverified,
        };
        entry.error = Some("recovered after an interrupted run: verified, not re-applied".into());
        entry.updated = self.clock.now();
        self.ledger.update(&entry, version, entry.updated)?;
        Ok(entry.status)
    }

    /// Verifies every `pending` entry left by an interrupted run (call at start-up).
    pub async fn recover(&self) -> Result<usize, RespondError> {
        let now = self.clock.now();
        let mut n = 0;
        for e in self.ledger.list(usize::MAX, now)? {
            if e.status == Status::Pending
                && let Some((entry, version)) = self.ledger.get(&e.id, now)?
            {
                self.recover_entry(entry, version).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn action(&self, kind: ActionKind) -> Result<Arc<dyn Action>, String> {
        match self.actions.get(&kind) {
            Some(a) => a.clone(),
            None => kind.build(&self.clients).map_err(|e| e.to_string()),
        }
    }

    /// `picket respond undo ID`: reverses an applied action and records it.
    pub async fn undo(&self, id: &str) -> Result<LedgerEntry, RespondError> {
        let mut actions = self.actions.clone();
        for k in ActionKind::ALL {
            actions.entry(*k).or_insert_with(|| self.action(*k));
        }
        undo(&self.ledger, &actions, id, self.clock.now()).await
    }
}

/// `picket respond undo ID` over explicitly built actions.
pub async fn undo(
    ledger: &Ledger,
    actions: &BTreeMap<ActionKind, Result<Arc<dyn Action>, String>>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<LedgerEntry, RespondError> {
    let bad = |message: String| RespondError::Ledger {
        id: id.to_string(),
        message,
    };
    let (mut entry, version) = ledger
        .get(id, now)?
        .ok_or_else(|| bad("no such entry".into()))?;
    if !matches!(
        entry.status,
        Status::Applied | Status::Verified | Status::Unverified
    ) {
        return Err(bad(format!(
            "is {}, nothing to undo",
            entry.status.as_str()
        )));
    }
    if !entry.plan.undoable {
        return Err(bad(format!("{} cannot be undone", entry.action)));
    }
    let kind = ActionKind::parse(&entry.action).ok_or_else(|| bad("unknown action".into()))?;
    let action = match actions.get(&kind) {
        Some(Ok(a)) => a.clone(),
        Some(Err(e)) => return Err(RespondError::Build(e.clone())),
        None => {
            return Err(bad(format!(
                "{} is not built in this process",
                entry.action
            )));
        }
    };
    let change = entry.change.clone().unwrap_or_default();
    action.undo(&entry.target, &change).await?;
    entry.status = Status::Undone;
    entry.updated = now;
    ledger.update(&entry, version, now)?;
    tracing::info!(id, action = entry.action, target = %entry.target.label(), "response action undone");
    Ok(entry)
}

/// The one aggregated alert of a blast-radius breach.
pub fn breach_finding(reason: &str, trigger: &Finding, now: DateTime<Utc>) -> Finding {
    let mut b = Finding::new(
        GUARDRAIL_DETECTOR,
        "picket stopped acting: blast-radius limit reached",
        Severity::Critical,
        Vec::new(),
    );
    b.uid = finding_uid(GUARDRAIL_DETECTOR, [now.to_rfc3339().as_str()]);
    b.time = now;
    b.description = format!(
        "{reason}. This can be a real wide incident or an attacker flooding picket with forged \
         evidence to lock people out. picket now only alerts; review `picket respond list`, \
         then run `picket respond reset` to let it act again. Last trigger: finding {} ({}).",
        trigger.uid, trigger.detector
    );
    b.data.insert("reason".into(), json!(reason));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PlaybookSection;
    use crate::model::{Actor, Evidence, Provider};
    use crate::state::MemoryStore;
    use std::sync::Mutex;

    struct Fake {
        kind: ActionKind,
        applied: Mutex<Vec<String>>,
        verify_ok: bool,
        /// Failures to return before succeeding: (count, retryable).
        fail: Mutex<(u32, bool)>,
    }

    #[async_trait::async_trait]
    impl Action for Fake {
        fn kind(&self) -> ActionKind {
            self.kind
        }
        async fn apply(
            &self,
            t: &super::super::ActionTarget,
        ) -> Result<super::super::Change, super::super::ActionError> {
            let mut fail = self.fail.lock().unwrap();
            if fail.0 > 0 {
                fail.0 -= 1;
                return Err(super::super::ActionError::Cloud {
                    action: "fake",
                    message: "HTTP 503".into(),
                    retryable: fail.1,
                });
            }
            self.applied.lock().unwrap().push(t.principal.clone());
            Ok(super::super::Change::default())
        }
        async fn verify(
            &self,
            _: &super::super::ActionTarget,
            _: &super::super::Change,
        ) -> Result<bool, super::super::ActionError> {
            Ok(self.verify_ok)
        }
        async fn undo(
            &self,
            _: &super::super::ActionTarget,
            _: &super::super::Change,
        ) -> Result<(), super::super::ActionError> {
            Ok(())
        }
    }

    fn finding(detector: &str, who: &str, n: u32) -> Finding {
        let ev = Evidence {
            uid: format!("{who}-{n}"),
            time: DateTime::UNIX_EPOCH,
            provider: Provider::Entra,
            action: "Sign-in activity".into(),
            success: true,
            src_ip: None,
            user_agent: None,
            geo: None,
            asn: None,
        };
        let mut f = Finding::new(detector, "t", Severity::High, vec![ev]);
        f.identity = Some(who.into());
        f.actor = Some(Actor {
            key: who.into(),
            email: Some(who.into()),
            ..Actor::default()
        });
        f
    }

    fn responder(
        mode: RespondMode,
        actions: &[&str],
        protected: &[&str],
    ) -> (Responder, Arc<Fake>, Arc<Fake>) {
        let section = RespondSection {
            mode,
            max_actions_per_hour: 4,
            max_actions_per_identity: 2,
            playbook: vec![PlaybookSection {
                on: vec!["account-takeover".into(), "impossible-travel".into()],
                min_severity: Severity::High,
                actions: actions.iter().map(|s| s.to_string()).collect(),
            }],
        };
        let identities = IdentitiesConfig {
            protected: protected.iter().map(|s| s.to_string()).collect(),
            ..IdentitiesConfig::default()
        };
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let clock = Arc::new(Clock::Fixed(
            DateTime::UNIX_EPOCH + chrono::Duration::days(1),
        ));
        let mut r = Responder::new(
            &section,
            &identities,
            &Clients::default(),
            state,
            clock,
            false,
        )
        .unwrap();
        let revoke = Arc::new(Fake {
            kind: ActionKind::EntraRevokeSessions,
            applied: Mutex::default(),
            verify_ok: true,
            fail: Mutex::default(),
        });
        let disable = Arc::new(Fake {
            kind: ActionKind::EntraDisableUser,
            applied: Mutex::default(),
            verify_ok: true,
            fail: Mutex::default(),
        });
        r.set_action(revoke.clone());
        r.set_action(disable.clone());
        (r, revoke, disable)
    }

    #[tokio::test]
    async fn dry_run_plans_and_applies_nothing() {
        let (r, revoke, _) = responder(RespondMode::DryRun, &["entra_revoke_sessions"], &[]);
        let out = r
            .respond(&finding("account-takeover", "a@x.example", 1))
            .await
            .unwrap();
        assert_eq!(out.notes[0].status, "planned");
        assert!(revoke.applied.lock().unwrap().is_empty());
        assert_eq!(
            r.ledger().list(10, DateTime::UNIX_EPOCH).unwrap()[0].status,
            Status::Planned
        );
    }

    #[tokio::test]
    async fn enforce_applies_once_per_incident_and_records_undo() {
        let (r, revoke, _) = responder(RespondMode::Enforce, &["entra_revoke_sessions"], &[]);
        let f = finding("account-takeover", "a@x.example", 1);
        let out = r.respond(&f).await.unwrap();
        assert_eq!(out.notes[0].status, "verified", "{:?}", out.notes);
        let again = r.respond(&f).await.unwrap();
        assert_eq!(again.notes[0].status, "skipped");
        assert_eq!(revoke.applied.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn protected_identities_and_unloadable_lists_touch_nothing() {
        let (r, revoke, _) = responder(
            RespondMode::Enforce,
            &["entra_revoke_sessions"],
            &["*@admins.example"],
        );
        let out = r
            .respond(&finding("account-takeover", "boss@admins.example", 1))
            .await
            .unwrap();
        assert!(
            out.notes[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("protected")
        );
        let (bad, revoke2, _) = responder(RespondMode::Enforce, &["entra_revoke_sessions"], &[" "]);
        let out = bad
            .respond(&finding("account-takeover", "a@x.example", 1))
            .await
            .unwrap();
        assert!(
            out.notes[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("could not be loaded")
        );
        assert!(
            revoke.applied.lock().unwrap().is_empty() && revoke2.applied.lock().unwrap().is_empty()
        );
    }

    #[tokio::test]
    async fn impossible_travel_alone_never_disables_an_account() {
        let (r, revoke, disable) = responder(
            RespondMode::Enforce,
            &["entra_revoke_sessions", "entra_disable_user"],
            &[],
        );
        let out = r
            .respond(&finding("impossible-travel", "a@x.example", 1))
            .await
            .unwrap();
        assert_eq!(out.notes[0].status, "verified");
        assert_eq!(out.notes[1].status, "skipped");
        assert_eq!(revoke.applied.lock().unwrap().len(), 1);
        assert!(disable.applied.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_breach_latches_with_exactly_one_alert_until_reset() {
        let (r, revoke, _) = responder(RespondMode::Enforce, &["entra_revoke_sessions"], &[]);
        let mut breaches = 0;
        for i in 0..20 {
            let out = r
                .respond(&finding("account-takeover", &format!("u{i}@x.example"), i))
                .await
                .unwrap();
            breaches += out.breach.is_some() as usize;
        }
        assert_eq!(revoke.applied.lock().unwrap().len(), 4);
        assert_eq!(breaches, 1);
        assert!(r.ledger().reset(DateTime::UNIX_EPOCH).unwrap());
        assert!(r.ledger().latch(DateTime::UNIX_EPOCH).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_pending_entry_is_verified_not_reapplied() {
        let (r, revoke, _) = responder(RespondMode::Enforce, &["entra_revoke_sessions"], &[]);
        let f = finding("account-takeover", "a@x.example", 1);
        let target = ActionKind::EntraRevokeSessions
            .target(&f, &Aliases::default())
            .unwrap();
        let id = entry_id("entra_revoke_sessions", &target, &f.uid);
        let now = DateTime::UNIX_EPOCH;
        let entry = LedgerEntry {
            id: id.clone(),
            action: "entra_revoke_sessions".into(),
            plan: ActionKind::EntraRevokeSessions.plan(&target),
            target,
            finding: f.uid.clone(),
            detector: f.detector.clone(),
            incident: f.uid.clone(),
            status: Status::Pending,
            change: None,
            error: None,
            retryable: false,
            created: now,
            updated: now,
        };
        assert!(r.ledger().claim(&entry, now).unwrap());
        let out = r.respond(&f).await.unwrap();
        assert!(
            out.notes[0].reason.as_deref().unwrap().contains("verified"),
            "{:?}",
            out.notes
        );
        assert!(revoke.applied.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_transient_failure_is_tried_again_and_a_permanent_one_is_not() {
        let (r, revoke, _) = responder(RespondMode::Enforce, &["entra_revoke_sessions"], &[]);
        *revoke.fail.lock().unwrap() = (1, true);
        let f = finding("account-takeover", "a@x.example", 1);
        assert_eq!(r.respond(&f).await.unwrap().notes[0].status, "failed");
        assert_eq!(r.respond(&f).await.unwrap().notes[0].status, "verified");
        assert_eq!(r.respond(&f).await.unwrap().notes[0].status, "skipped");
        assert_eq!(revoke.applied.lock().unwrap().len(), 1);

        let (r, revoke, _) = responder(RespondMode::Enforce, &["entra_revoke_sessions"], &[]);
        *revoke.fail.lock().unwrap() = (1, false);
        assert_eq!(r.respond(&f).await.unwrap().notes[0].status, "failed");
        assert_eq!(r.respond(&f).await.unwrap().notes[0].status, "skipped");
        assert!(revoke.applied.lock().unwrap().is_empty());
    }
}
