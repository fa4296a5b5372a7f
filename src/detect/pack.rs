//! The rule sets picket detects with: the shipped pack (embedded in the binary by `build.rs`
//! from `detections/`), plus rule folders from `[detect.rules] paths` and `--rules`.

use std::path::{Path, PathBuf};

use super::sigma::mapping::{MappingError, Mappings};
use super::sigma::ruleset::{RuleError, RuleSet, rule_files};

include!(concat!(env!("OUT_DIR"), "/pack.rs"));

/// The shipped field mappings, or the ones in `override_dir` (a `mappings/` folder next to
/// rules being authored) when it exists.
pub fn mappings(override_dir: Option<&Path>) -> (Mappings, Vec<MappingError>) {
    if let Some(dir) = override_dir.filter(|d| d.is_dir()) {
        return Mappings::load_dir(dir);
    }
    let sources: Vec<(PathBuf, String)> = MAPPINGS
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_string()))
        .collect();
    Mappings::from_sources(&sources)
}

fn mapping_errors(errors: Vec<MappingError>) -> Vec<RuleError> {
    errors
        .into_iter()
        .map(|e| RuleError {
            path: e.path,
            rule: None,
            reason: e.message,
        })
        .collect()
}

/// Loads the rules detection runs with: the embedded pack when `builtin`, then every rule
/// under `paths`. Rules that fail to load are returned with their reasons.
pub fn load(builtin: bool, paths: &[PathBuf]) -> (RuleSet, Vec<RuleError>) {
    let (maps, merrs) = mappings(None);
    let mut sources: Vec<(PathBuf, String)> = Vec::new();
    if builtin {
        sources.extend(
            RULES
                .iter()
                .map(|(p, t)| (PathBuf::from(p), (*t).to_string())),
        );
    }
    read_rules(paths, sources, &maps, mapping_errors(merrs))
}

/// Loads rule folders being authored (`picket rules test|list|lint`): their own
/// `mappings/` folder when they have one, else the shipped mappings.
pub fn load_dirs(dirs: &[PathBuf]) -> (RuleSet, Vec<RuleError>) {
    let override_dir = dirs.iter().map(|d| d.join("mappings")).find(|m| m.is_dir());
    let (maps, merrs) = mappings(override_dir.as_deref());
    read_rules(dirs, Vec::new(), &maps, mapping_errors(merrs))
}

/// Reads every rule file under `dirs` after `sources` and builds the set; read and load
/// problems join `errors`.
fn read_rules(
    dirs: &[PathBuf],
    mut sources: Vec<(PathBuf, String)>,
    maps: &Mappings,
    mut errors: Vec<RuleError>,
) -> (RuleSet, Vec<RuleError>) {
    let (files, ferrs) = rule_files(dirs);
    errors.extend(ferrs);
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(t) => sources.push((f, t)),
            Err(e) => errors.push(RuleError {
                path: f,
                rule: None,
                reason: e.to_string(),
            }),
        }
    }
    let (set, errs) = RuleSet::from_sources(&sources, maps);
    errors.extend(errs);
    (set, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_pack_loads_completely() {
        let (set, errors) = load(true, &[]);
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(set.rules().len() >= 60, "{} rules", set.rules().len());
        assert!(!set.correlations().is_empty());
    }
}
