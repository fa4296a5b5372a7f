//! Secrets Manager values for `env:` references, fetched once per container at start-up.
//! A secret that cannot be read (no value put yet, access denied) is logged by name and left
//! out: a reference to it then fails the component that needs it, naming the variable.

use std::collections::HashMap;

use aws_config::SdkConfig;

use crate::config::Secret;

/// Fetches every `(VAR, secret id)` concurrently; returns `VAR -> value` for those read.
pub async fn fetch(sdk: &SdkConfig, wanted: &[(String, String)]) -> HashMap<String, Secret> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let mut tasks = tokio::task::JoinSet::new();
    for (var, id) in wanted {
        let client = client.clone();
        let (var, id) = (var.clone(), id.clone());
        tasks.spawn(async move {
            let out = client.get_secret_value().secret_id(&id).send().await;
            (var, id, out)
        });
    }
    let mut values = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((var, id, out)) = joined else {
            continue;
        };
        match out {
            Ok(v) => match v.secret_string() {
                Some(s) => {
                    values.insert(var, Secret::new(s));
                }
                None => {
                    tracing::warn!(variable = %var, secret = %id, "secret has no string value; left unset")
                }
            },
            Err(e) => tracing::warn!(
                variable = %var,
                secret = %id,
                error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e),
                "secret could not be read; left unset"
            ),
        }
    }
    values
}
