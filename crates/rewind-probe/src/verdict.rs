//! The pure rule: a reading and the check's bounds (and, for "no worse than
//! known good", the known-good value) give pass, fail or unknown.
//!
//! Unknown is never a pass: no value, NaN or infinity, too little evidence,
//! or a relative bound without a known-good value to compare with.

use crate::{CheckKind, Reading};

/// One evaluation's verdict: `pass` is `None` for unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub value: Option<f64>,
    pub pass: Option<bool>,
    /// What was compared with what, or why nothing could be.
    pub detail: String,
}

impl Evaluation {
    fn unknown(value: Option<f64>, detail: impl Into<String>) -> Evaluation {
        Evaluation {
            value,
            pass: None,
            detail: detail.into(),
        }
    }
}

/// Judges `reading` for a check of `kind`; `known_good` is the same query's
/// value over the app's last known-good window, when there is one.
pub fn judge(kind: &CheckKind, reading: Reading, known_good: Option<f64>) -> Evaluation {
    let query = match (kind, reading) {
        (_, Reading::Unknown(why)) => return Evaluation::unknown(None, why),
        (_, Reading::Passed(detail)) => {
            return Evaluation {
                value: None,
                pass: Some(true),
                detail,
            };
        }
        (_, Reading::Failed(detail)) => {
            return Evaluation {
                value: None,
                pass: Some(false),
                detail,
            };
        }
        (CheckKind::Http(_), Reading::Value(v)) => {
            return Evaluation::unknown(Some(v), "a smoke check read a number");
        }
        (CheckKind::Query(query), Reading::Value(v)) => (query, v),
    };
    let (query, value) = query;
    if !value.is_finite() {
        return Evaluation::unknown(None, format!("the query answered {value}, not a number"));
    }
    let mut passed = Vec::new();
    if let Some(min) = query.min {
        if value < min {
            return fail(value, format!("{} below min {}", show(value), show(min)));
        }
        passed.push(format!("min {}", show(min)));
    }
    if let Some(max) = query.max {
        if value > max {
            return fail(value, format!("{} above max {}", show(value), show(max)));
        }
        passed.push(format!("max {}", show(max)));
    }
    if let Some(delta) = query.max_delta_from_known_good {
        let Some(good) = known_good.filter(|g| g.is_finite()) else {
            return Evaluation::unknown(
                Some(value),
                format!(
                    "{}: no known-good value to compare with (no_worse_than)",
                    show(value)
                ),
            );
        };
        let limit = good + delta;
        if value > limit {
            return fail(
                value,
                format!(
                    "{} worse than known good {} + max_delta {}",
                    show(value),
                    show(good),
                    show(delta)
                ),
            );
        }
        passed.push(format!(
            "known good {} + max_delta {}",
            show(good),
            show(delta)
        ));
    }
    Evaluation {
        value: Some(value),
        pass: Some(true),
        detail: format!("{} within {}", show(value), passed.join(", ")),
    }
}

fn fail(value: f64, detail: String) -> Evaluation {
    Evaluation {
        value: Some(value),
        pass: Some(false),
        detail,
    }
}

/// Numbers as people read them: `0.05`, not `0.05000000000000000277`.
pub fn show(value: f64) -> String {
    let rounded = format!("{value:.6}");
    let trimmed = rounded.trim_end_matches('0').trim_end_matches('.');
    if trimmed.is_empty() || trimmed == "-" {
        "0".into()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HttpCheck, QueryCheck};

    fn query(min: Option<f64>, max: Option<f64>, delta: Option<f64>) -> CheckKind {
        CheckKind::Query(QueryCheck {
            query: "q".into(),
            min,
            max,
            max_delta_from_known_good: delta,
            min_evidence: None,
        })
    }

    #[test]
    fn bounds_pass_and_fail_with_the_numbers_in_the_detail() {
        let max = query(None, Some(0.05), None);
        let ok = judge(&max, Reading::Value(0.01), None);
        assert_eq!(ok.pass, Some(true));
        assert_eq!(ok.detail, "0.01 within max 0.05");
        let bad = judge(&max, Reading::Value(0.2), None);
        assert_eq!((bad.pass, bad.value), (Some(false), Some(0.2)));
        assert_eq!(bad.detail, "0.2 above max 0.05");
        let min = query(Some(10.0), None, None);
        assert_eq!(
            judge(&min, Reading::Value(3.0), None).detail,
            "3 below min 10"
        );
        // Bounds are inclusive.
        assert_eq!(judge(&max, Reading::Value(0.05), None).pass, Some(true));
    }

    #[test]
    fn nan_infinity_and_unknown_readings_are_never_a_pass() {
        let max = query(None, Some(1.0), None);
        for reading in [
            Reading::Value(f64::NAN),
            Reading::Value(f64::INFINITY),
            Reading::Unknown("the query answered no series".into()),
        ] {
            let e = judge(&max, reading.clone(), None);
            assert_eq!(e.pass, None, "{reading:?}");
        }
    }

    #[test]
    fn no_worse_than_known_good_compares_with_the_delta() {
        let relative = query(None, None, Some(0.01));
        assert_eq!(
            judge(&relative, Reading::Value(0.015), Some(0.01)).pass,
            Some(true)
        );
        let worse = judge(&relative, Reading::Value(0.03), Some(0.01));
        assert_eq!(worse.pass, Some(false));
        assert_eq!(
            worse.detail,
            "0.03 worse than known good 0.01 + max_delta 0.01"
        );
        // Without a known-good value there is nothing to compare with.
        assert_eq!(judge(&relative, Reading::Value(0.0), None).pass, None);
    }

    #[test]
    fn smoke_readings_pass_through() {
        let http = CheckKind::Http(HttpCheck {
            method: "GET".into(),
            url: "http://x".into(),
            headers: vec![],
            body: None,
            expect_status: 200,
            expect_body: None,
            expect_json_pointer: None,
        });
        assert_eq!(
            judge(&http, Reading::Failed("500".into()), None).pass,
            Some(false)
        );
        assert_eq!(
            judge(&http, Reading::Passed("200".into()), None).pass,
            Some(true)
        );
    }
}
