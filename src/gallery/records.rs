//! A sweep's run records: what one run leaves in its folder besides `ldyn run`'s files
//! (`claims.csv`, `experiment,claim_id,holds,text`, or `error.txt`, one line), and how a
//! sweep or a merge reads them back, as strictly as they were written.

use std::path::Path;

use crate::error::{Error, Result, quote};
use crate::io::read_input;

/// The record files of one run's folder.
pub(super) const CLAIMS: &str = "claims.csv";
pub(super) const ERROR: &str = "error.txt";

/// What one run left in its folder.
pub(super) struct Outcome {
    pub(super) claims: Vec<(String, bool)>,
    pub(super) summary: Vec<(String, String)>,
    pub(super) error: Option<String>,
}

/// The record one run left in `folder`, checked as strictly as it was written: exactly one
/// of `claims.csv` (its header, then one `experiment,id,holds,text` row per claim of the
/// sweep's `experiment`, each id once) and `error.txt` (one non-empty line).
pub(super) fn read_outcome(folder: &Path, experiment: &str) -> Result<Outcome> {
    let (claims_path, error_path) = (folder.join(CLAIMS), folder.join(ERROR));
    let malformed = |path: &Path, line: usize, what: &str| Error::Parse {
        path: path.to_path_buf(),
        line,
        message: format!("not a record that ldyn sweep wrote: {what}"),
    };
    match (claims_path.exists(), error_path.exists()) {
        (true, true) => {
            return Err(malformed(&error_path, 1, "the run also has a claims.csv"));
        }
        (false, true) => {
            let text = read_input(&error_path, "a run's error")?;
            let error = text.strip_suffix('\n').unwrap_or(&text);
            if error.trim().is_empty() || error.contains('\n') {
                return Err(malformed(&error_path, 1, "an error is one non-empty line"));
            }
            return Ok(Outcome {
                claims: Vec::new(),
                summary: Vec::new(),
                error: Some(error.to_string()),
            });
        }
        (false, false) => {
            return Err(Error::InvalidArgument(format!(
                "{} holds no record of its run ({CLAIMS} or {ERROR}): it did not run, or did not finish",
                quote(&folder.display().to_string())
            )));
        }
        (true, false) => {}
    }
    let text = read_input(&claims_path, "a run's claims")?;
    let mut lines = text.lines();
    if lines.next() != Some("experiment,claim_id,holds,text") || !text.ends_with('\n') {
        return Err(malformed(
            &claims_path,
            1,
            "its header, or its last line, is missing",
        ));
    }
    let mut claims: Vec<(String, bool)> = Vec::new();
    for (k, line) in lines.enumerate() {
        let mut fields = line.splitn(4, ',');
        if fields.next() != Some(experiment) {
            return Err(malformed(
                &claims_path,
                k + 2,
                &format!("the claim is not one of {experiment}'s"),
            ));
        }
        let (id, holds, claim_text) = (fields.next(), fields.next(), fields.next());
        let holds = match holds {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(malformed(&claims_path, k + 2, "holds is true or false")),
        };
        let id = id.unwrap_or_default();
        let named = !id.is_empty()
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !named || claim_text.is_none_or(str::is_empty) {
            return Err(malformed(&claims_path, k + 2, "a claim is id,holds,text"));
        }
        if claims.iter().any(|c| c.0 == id) {
            return Err(malformed(&claims_path, k + 2, "a claim is listed twice"));
        }
        claims.push((id.to_string(), holds));
    }
    if claims.is_empty() {
        return Err(malformed(&claims_path, 2, "it lists no claim"));
    }
    let summary_path = folder.join(format!("{experiment}_summary.csv"));
    let summary = if summary_path.exists() {
        read_summary(&summary_path).ok_or_else(|| malformed(&summary_path, 1, "a summary row"))?
    } else {
        Vec::new()
    };
    Ok(Outcome {
        claims,
        summary,
        error: None,
    })
}

/// A summary table's `(metric, value)` rows; with a label column (`regime,metric,value`)
/// the metric is `label.metric`.
fn read_summary(path: &Path) -> Option<Vec<(String, String)>> {
    let text = read_input(path, "a run's summary").ok()?;
    let mut lines = text.lines();
    let labelled = lines.next()?.split(',').count() == 3;
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            match (labelled, fields.as_slice()) {
                (true, [label, metric, value]) => {
                    Some((format!("{label}.{metric}"), (*value).to_string()))
                }
                (false, [metric, value]) => Some(((*metric).to_string(), (*value).to_string())),
                _ => None,
            }
        })
        .collect()
}
