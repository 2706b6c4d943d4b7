//! Whether a rule's window breaches it, and the value reported as `observed`: pure, so every
//! kind and edge is unit-tested.
//! - `count`: the matching events, `above` (more than) or `below` (fewer than) `threshold`;
//! - `error_ratio`: errors / matching, above `threshold`, only with at least `min_events`
//!   matching (one error in two events pages nobody);
//! - `absent`: no matching event at all (dead man's switch); `observed` is 0.

use super::rules::Rule;
use super::window::Observation;

/// The verdict on one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub breached: bool,
    pub observed: f64,
}

pub fn judge(rule: &Rule, seen: Observation) -> Verdict {
    #[allow(clippy::cast_precision_loss)]
    let matching = seen.matching as f64;
    match rule.kind.as_str() {
        "error_ratio" => {
            #[allow(clippy::cast_precision_loss)]
            let ratio = if seen.matching > 0 {
                seen.errors as f64 / matching
            } else {
                0.0
            };
            Verdict {
                breached: seen.matching >= i64::from(rule.min_events.max(1)) && ratio > rule.threshold,
                observed: ratio,
            }
        }
        "absent" => Verdict {
            breached: seen.matching == 0,
            observed: matching,
        },
        _ => Verdict {
            breached: if rule.op == "below" {
                matching < rule.threshold
            } else {
                matching > rule.threshold
            },
            observed: matching,
        },
    }
}

/// Whether a rule's window can be judged yet: `below` and `absent` need a whole window since
/// the rule was last changed (a new rule has not seen a quiet window).
pub fn needs_whole_window(rule: &Rule) -> bool {
    rule.kind == "absent" || (rule.kind == "count" && rule.op == "below")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, op: &str, threshold: f64, min_events: i32) -> Rule {
        Rule {
            id: uuid::Uuid::nil(),
            project_id: uuid::Uuid::nil(),
            name: "r".into(),
            kind: kind.into(),
            filter_event_type: None,
            filter_source: None,
            filter_status: None,
            window_s: 60,
            op: op.into(),
            threshold,
            min_events,
            cooldown_s: 0,
            renotify_s: 0,
            emails: vec![],
            webhook_ids: vec![],
            notify_owners: false,
            updated_at: chrono::Utc::now(),
        }
    }

    fn seen(matching: i64, errors: i64) -> Observation {
        Observation { matching, errors }
    }

    #[test]
    fn count_above_and_below_are_strict() {
        let above = rule("count", "above", 10.0, 0);
        assert!(!judge(&above, seen(10, 0)).breached);
        assert!(judge(&above, seen(11, 0)).breached);
        assert_eq!(judge(&above, seen(11, 0)).observed, 11.0);
        let below = rule("count", "below", 5.0, 0);
        assert!(judge(&below, seen(4, 0)).breached);
        assert!(!judge(&below, seen(5, 0)).breached);
        assert!(needs_whole_window(&below) && !needs_whole_window(&above));
    }

    #[test]
    fn error_ratio_needs_enough_events() {
        let ratio = rule("error_ratio", "above", 0.2, 10);
        assert!(!judge(&ratio, seen(2, 1)).breached, "one error in two events");
        assert!(judge(&ratio, seen(10, 3)).breached);
        assert!(!judge(&ratio, seen(10, 2)).breached, "0.2 is not above 0.2");
        assert!((judge(&ratio, seen(10, 3)).observed - 0.3).abs() < 1e-9);
        assert!(!judge(&ratio, seen(0, 0)).breached);
    }

    #[test]
    fn absent_fires_on_silence_only() {
        let absent = rule("absent", "above", 0.0, 0);
        assert!(judge(&absent, seen(0, 0)).breached);
        assert!(!judge(&absent, seen(1, 0)).breached);
        assert!(needs_whole_window(&absent));
    }
}
