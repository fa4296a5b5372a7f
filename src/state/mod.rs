//! The state store: cursors, per-identity history, dedup marks, counters and the response
//! ledger all live behind [`StateStore`], so the CLI (SQLite), tests (memory) and Lambda
//! (DynamoDB) share one semantics.
//!
//! To add a backend: implement [`StateStore`], add a variant to [`StateConfig`], and run the
//! shared property suite (`contract::run_contract`, feature `contract`, which the tests turn
//! on) against it.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "contract"))]
#[doc(hidden)]
pub mod contract;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod memory;
pub mod sqlite;

#[cfg(feature = "aws")]
pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use crate::cloud::Clients;
use crate::config::Checker;

/// `[state]` of `picket.toml`: which backend keeps the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum StateConfig {
    /// An SQLite file on local disk: the default for `picket run`.
    Sqlite {
        /// The database file (created if missing); relative paths were resolved by the config
        /// loader. Default `picket.db`.
        #[serde(default = "sqlite::default_path")]
        path: PathBuf,
    },
    /// Process memory: nothing survives the process (`picket replay`, tests). A struct
    /// variant so that keys given with it (`path`) are refused, not ignored.
    Memory {},
    /// A DynamoDB table (feature `aws`): the serverless deployment's state, shared by every
    /// function. The table comes from `terraform/modules/state_table`.
    Dynamodb {
        /// Table name (the module's `table_name` output).
        table: String,
        /// Endpoint for DynamoDB only (DynamoDB Local, a VPC endpoint); default: the `[aws]`
        /// client settings.
        #[serde(default)]
        endpoint_url: Option<String>,
    },
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig::Sqlite {
            path: sqlite::default_path(),
        }
    }
}

impl StateConfig {
    /// Opens the configured backend; DynamoDB uses the AWS settings in `clients`.
    pub fn build(&self, clients: &Clients) -> Result<Arc<dyn StateStore>, StateError> {
        let _ = clients; // Only DynamoDB needs them.
        Ok(match self {
            StateConfig::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
            StateConfig::Memory {} => Arc::new(MemoryStore::new()),
            #[cfg(feature = "aws")]
            StateConfig::Dynamodb {
                table,
                endpoint_url,
            } => {
                let sdk = clients.aws.as_ref().ok_or_else(|| StateError::Backend {
                    backend: "dynamodb",
                    message: "dynamodb state needs the [aws] client settings, which were not built"
                        .into(),
                    source: None,
                })?;
                Arc::new(DynamoStore::new(sdk, table, endpoint_url.as_deref())?)
            }
            #[cfg(not(feature = "aws"))]
            StateConfig::Dynamodb { .. } => {
                return Err(StateError::Backend {
                    backend: "dynamodb",
                    message: DYNAMODB_NEEDS_AWS.into(),
                    source: None,
                });
            }
        })
    }

    /// Resolves relative paths and checks what serde cannot (table names, the feature a
    /// backend needs), for `Config::resolve` and `picket validate`.
    pub fn resolve(&mut self, c: &mut Checker<'_>) {
        match self {
            StateConfig::Sqlite { path } => c.path(path),
            StateConfig::Memory {} => {}
            StateConfig::Dynamodb { table, .. } => {
                if !cfg!(feature = "aws") {
                    c.error("state.backend", DYNAMODB_NEEDS_AWS);
                }
                let ok_chars = table
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
                if !(3..=255).contains(&table.len()) || !ok_chars {
                    c.error(
                        "state.table",
                        format!(
                            "`{table}` is not a DynamoDB table name (3-255 of a-z, A-Z, 0-9, '_', '-', '.')"
                        ),
                    );
                }
            }
        }
    }
}

/// What a build without the `aws` feature says about a DynamoDB state section.
const DYNAMODB_NEEDS_AWS: &str = "dynamodb state needs the `aws` feature";

/// A stored value with its version (for compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// Starts at 1 on insert and grows by one on every write.
    pub version: u64,
}

/// Outcome of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the new version.
    Written(u64),
    /// Not written: the version did not match. What is there now (None: absent).
    Conflict(Option<Versioned>),
}

/// Outcome of a bounded counter increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOutcome {
    /// Counted; the count in the window after this increment.
    Counted(u64),
    /// Not counted: the window already holds `limit`; the count as it is.
    LimitReached(u64),
}

/// Errors of a state backend.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The backend failed (I/O, SQL, network).
    #[error("state backend {backend}: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What went wrong.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored value could not be decoded.
    #[error("state value {namespace}/{key} is corrupt: {message}")]
    Corrupt {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl StateError {
    /// Whether retrying the call may help (throttling, contention, network, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            StateError::Backend {
                message, source, ..
            } => {
                #[cfg(feature = "aws")]
                if let Some(retry) = source.as_deref().and_then(dynamodb::retryable) {
                    return retry;
                }
                let _ = source;
                message.contains("busy")
                    || message.contains("locked")
                    || message.contains("throttl")
            }
            StateError::Corrupt { .. } => false,
        }
    }
}

/// Durable key-value state with the operations DynamoDB also provides natively.
///
/// Keys live in namespaces (`cursor`, `history`, `dedup`, `counter`, `ledger`, ...). `now` is
/// passed in (wall-clock time of the caller) so expiry is testable; expired entries behave as
/// absent everywhere.
pub trait StateStore: Send + Sync {
    /// The backend's name, for logs.
    fn name(&self) -> &'static str;

    /// Reads a value; expired or absent values are `None`.
    fn get(&self, ns: &str, key: &str, now: DateTime<Utc>)
    -> Result<Option<Versioned>, StateError>;

    /// Reads several values of one namespace: one answer per key, in the order of `keys`
    /// (a key given twice is answered twice). Backends that can read many rows in one
    /// round-trip (SQLite) do; the default reads them one by one.
    fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Versioned>>, StateError> {
        keys.iter().map(|k| self.get(ns, k, now)).collect()
    }

    /// Writes a value unconditionally; `expires` sets a TTL.
    fn put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StateError>;

    /// Inserts only if absent (or expired). Returns whether it inserted.
    fn put_if_absent(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError>;

    /// Writes only if the current version is `expected` (`None`: only if absent).
    fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<CasOutcome, StateError>;

    /// Deletes a value (absent is fine).
    fn delete(&self, ns: &str, key: &str) -> Result<(), StateError>;

    /// Lists the live keys of a namespace that start with `prefix`, sorted, at most `limit`.
    fn list(
        &self,
        ns: &str,
        prefix: &str,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Versioned)>, StateError>;

    /// Atomically adds one to the counter `key` for the fixed window of `window_secs` that
    /// contains `at`, unless it already holds `limit`. Windows expire on their own.
    fn incr_window(
        &self,
        ns: &str,
        key: &str,
        window_secs: u64,
        at: DateTime<Utc>,
        limit: Option<u64>,
    ) -> Result<CounterOutcome, StateError>;

    /// Runs `ops` (which call this same store, e.g. through a captured `Arc`) as one group:
    /// backends that can (SQLite) commit the group in one transaction for throughput, and
    /// roll it back when `ops` returns an error (see [`StateStore::rolls_back_batches`]).
    /// Each operation keeps its own semantics. The default just calls `ops`: its writes
    /// stay even when `ops` fails.
    fn run_batch(&self, ops: &mut dyn FnMut() -> Result<(), StateError>) -> Result<(), StateError> {
        ops()
    }

    /// Whether [`StateStore::run_batch`] is all-or-nothing: every write of the group commits
    /// together, none when `ops` fails, and no other writer interleaves. Detectors then keep
    /// their state changes in memory until the end of the batch (write-back) instead of
    /// writing each change through.
    fn rolls_back_batches(&self) -> bool {
        false
    }

    /// Whether reads are worth batching: the pipeline lets detectors read a batch's state up
    /// front ([`StateStore::get_many`]) only then. True for a store across the network (one
    /// round-trip per read); false for a local one (SQLite, memory), whose read of a missing
    /// identity costs about what checking every event's identity against the caches does.
    fn batches_reads(&self) -> bool {
        true
    }
}

/// The per-window key of a windowed counter and when that window's entry may expire
/// (one window after it closes). Every backend uses this, so counts agree across backends.
pub(crate) fn window_bucket(
    key: &str,
    window_secs: u64,
    at: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    let window = window_secs.max(1) as i64;
    let index = at.timestamp().div_euclid(window);
    let expires = DateTime::<Utc>::from_timestamp((index + 2) * window, 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (format!("{key}#{window}#{index}"), expires)
}

/// Decodes a counter value (8 bytes, big-endian).
pub(crate) fn decode_count(ns: &str, key: &str, value: &[u8]) -> Result<u64, StateError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| StateError::Corrupt {
        namespace: ns.to_string(),
        key: key.to_string(),
        message: format!("counter of {} bytes, expected 8", value.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StateConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn config_parses_each_backend_and_defaults_the_path() {
        assert_eq!(
            parse("backend = \"sqlite\"").unwrap(),
            StateConfig::Sqlite {
                path: PathBuf::from("picket.db")
            }
        );
        assert_eq!(
            parse("backend = \"sqlite\"\npath = \"/var/lib/picket/state.db\"").unwrap(),
            StateConfig::Sqlite {
                path: PathBuf::from("/var/lib/picket/state.db")
            }
        );
        assert_eq!(
            parse("backend = \"memory\"").unwrap(),
            StateConfig::Memory {}
        );
        assert_eq!(
            StateConfig::default(),
            parse("backend = \"sqlite\"").unwrap()
        );
    }

    #[test]
    fn config_rejects_unknown_backends_and_keys() {
        let err = parse("backend = \"redis\"").unwrap_err().to_string();
        assert!(err.contains("redis"), "{err}");
        let err = parse("backend = \"sqlite\"\npaht = \"x.db\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("paht"), "{err}");
        assert!(parse("backend = \"memory\"\npath = \"x.db\"").is_err());
    }

    #[test]
    fn config_builds_working_stores() {
        let dir = tempfile::tempdir().unwrap();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        for config in [
            StateConfig::Memory {},
            StateConfig::Sqlite {
                path: dir.path().join("state.db"),
            },
        ] {
            let store = config.build(&Clients::default()).unwrap();
            assert_eq!(store.put("n", "k", b"v", None, now).unwrap(), 1);
            assert_eq!(store.get("n", "k", now).unwrap().unwrap().value, b"v");
        }
        assert!(dir.path().join("state.db").exists());
    }

    #[test]
    fn config_parses_dynamodb_and_checks_the_table_name() {
        let c = parse("backend = \"dynamodb\"\ntable = \"picket-state\"").unwrap();
        assert_eq!(
            c,
            StateConfig::Dynamodb {
                table: "picket-state".into(),
                endpoint_url: None
            }
        );
        assert!(
            parse("backend = \"dynamodb\"").is_err(),
            "table is required"
        );
        assert!(parse("backend = \"dynamodb\"\ntable = \"t\"\npath = \"x\"").is_err());
        let with_endpoint = parse(
            "backend = \"dynamodb\"\ntable = \"abc\"\nendpoint_url = \"http://127.0.0.1:8000\"",
        )
        .unwrap();
        assert!(matches!(
            with_endpoint,
            StateConfig::Dynamodb { endpoint_url: Some(ref u), .. } if u == "http://127.0.0.1:8000"
        ));
        let check = |table: &str| {
            let mut config = StateConfig::Dynamodb {
                table: table.into(),
                endpoint_url: None,
            };
            let mut c = Checker {
                base_dir: std::path::Path::new("/"),
                errors: Vec::new(),
            };
            config.resolve(&mut c);
            c.errors
        };
        let good = check("picket-state_1.prod");
        if cfg!(feature = "aws") {
            assert!(good.is_empty(), "{good:?}");
        } else {
            assert_eq!(
                good,
                [(
                    "state.backend".to_string(),
                    "dynamodb state needs the `aws` feature".to_string()
                )]
            );
        }
        for bad in ["ab", "has space", "tab/le", &"x".repeat(256)] {
            assert!(
                check(bad).iter().any(|(k, _)| k == "state.table"),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn dynamodb_without_the_feature_or_the_clients_says_what_is_missing() {
        let config = StateConfig::Dynamodb {
            table: "picket-state".into(),
            endpoint_url: None,
        };
        let Err(err) = config.build(&Clients::default()) else {
            panic!("built a dynamodb store without its settings");
        };
        let err = err.to_string();
        if cfg!(feature = "aws") {
            assert!(err.contains("needs the [aws] client settings"), "{err}");
        } else {
            assert!(
                err.contains("dynamodb state needs the `aws` feature"),
                "{err}"
            );
        }
    }

    #[test]
    fn run_batch_through_the_trait_object() {
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::in_memory().unwrap());
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let s = Arc::clone(&store);
        store
            .run_batch(&mut || {
                for i in 0..100 {
                    s.put("n", &format!("k{i}"), b"v", None, now)?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(store.list("n", "k", 1000, now).unwrap().len(), 100);
    }
}
