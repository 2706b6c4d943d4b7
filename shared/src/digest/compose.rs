//! The digest mail: subject, plain text and HTML from a day's [`DayFigures`]. Every string a
//! project provides (its name, event types, rule and monitor names) is HTML-escaped with the
//! `html-escape` crate, as the notify worker's mail is. The link goes to the day's overview
//! through `PULSE_PUBLIC_URL`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::day_range;
use super::figures::DayFigures;

/// A composed digest.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Escapes text for HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// `1h 2m 5s`, `3m 0s`, `45s`.
pub fn duration(seconds: i64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m {seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

fn clock(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The link to the day in the api's overview.
pub fn overview_link(public_url: &str, figures: &DayFigures) -> String {
    let (start, end) = day_range(figures.day);
    format!(
        "{public_url}/v1/analytics/overview?project_id={}&start={}&end={}",
        figures.project_id,
        start.format("%Y-%m-%dT%H:%M:%SZ"),
        end.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

fn unsubscribe_hint(public_url: &str, project: Uuid) -> String {
    format!(
        "You get this digest because you turned it on for this project. To stop it: PUT {public_url}/v1/projects/{project}/digest with {{\"enabled\": false}}."
    )
}

/// The error ratio as shown: `12.5 % (1 of 8 events)`, or `no events`.
pub fn error_ratio(figures: &DayFigures) -> String {
    match figures.error_ratio() {
        Some(ratio) => format!(
            "{:.1} % ({} of {} events)",
            ratio * 100.0,
            figures.errors,
            figures.events
        ),
        None => "no events".to_owned(),
    }
}

/// One incident as a line: `checkout errors: fired 2026-12-01 10:32 UTC, resolved … / still firing`.
fn incident_line(incident: &super::figures::AlertIncident) -> (String, String) {
    let state = match incident.resolved_at {
        Some(resolved) => format!("resolved {}", clock(resolved)),
        None => "still firing".to_owned(),
    };
    (
        incident.rule_name.clone(),
        format!("fired {}, {state}", clock(incident.started_at)),
    )
}

/// Composes the digest of `project_name` from `figures`.
pub fn compose(project_name: &str, figures: &DayFigures, public_url: &str) -> Composed {
    let day = figures.day.format("%Y-%m-%d").to_string();
    let link = overview_link(public_url, figures);
    let hint = unsubscribe_hint(public_url, figures.project_id);
    let summary = [
        ("Events", figures.events.to_string()),
        ("Unique users", figures.unique_users.to_string()),
        ("Error ratio", error_ratio(figures)),
        ("Alert incidents", figures.incident_count.to_string()),
        (
            "Monitor downtime",
            duration(figures.downtime.iter().map(|monitor| monitor.down_s).sum()),
        ),
    ];
    let incidents: Vec<(String, String)> = figures.incidents.iter().map(incident_line).collect();
    let more_incidents = figures.incident_count - figures.incidents.len() as i64;
    let downtime: Vec<(String, String)> = figures
        .downtime
        .iter()
        .map(|monitor| {
            let plural = if monitor.incidents == 1 { "" } else { "s" };
            (
                monitor.name.clone(),
                format!(
                    "{} down ({} incident{plural})",
                    duration(monitor.down_s),
                    monitor.incidents
                ),
            )
        })
        .collect();

    let mut text = format!("Pulse daily digest of {project_name} for {day} (UTC)\n\n");
    for (key, value) in &summary {
        let _ = writeln!(text, "{key}: {value}");
    }
    text.push_str("\nTop event types:\n");
    if figures.top_event_types.is_empty() {
        text.push_str("  (none)\n");
    }
    for (event_type, count) in &figures.top_event_types {
        let _ = writeln!(text, "  {event_type}: {count}");
    }
    text.push_str("\nAlert incidents:\n");
    if incidents.is_empty() {
        text.push_str("  (none)\n");
    }
    for (name, line) in &incidents {
        let _ = writeln!(text, "  {name}: {line}");
    }
    if more_incidents > 0 {
        let _ = writeln!(text, "  … and {more_incidents} more");
    }
    text.push_str("\nMonitor downtime:\n");
    if downtime.is_empty() {
        text.push_str("  (none)\n");
    }
    for (name, line) in &downtime {
        let _ = writeln!(text, "  {name}: {line}");
    }
    let _ = write!(text, "\nDetails: {link}\n\n{hint}\n");

    let rows = |pairs: &[(String, String)]| -> String {
        if pairs.is_empty() {
            return "<p>None.</p>".to_owned();
        }
        let rows: String = pairs
            .iter()
            .map(|(key, value)| {
                format!(
                    "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                    escape(key),
                    escape(value)
                )
            })
            .collect();
        format!("<table>{rows}</table>")
    };
    let summary: Vec<(String, String)> = summary
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    let top: Vec<(String, String)> = figures
        .top_event_types
        .iter()
        .map(|(event_type, count)| (event_type.clone(), count.to_string()))
        .collect();
    let more = if more_incidents > 0 {
        format!("<p>… and {more_incidents} more</p>")
    } else {
        String::new()
    };
    let html = format!(
        "<!doctype html><html><body>\
         <h2>Pulse daily digest of {name} for {day} (UTC)</h2>{summary}\
         <h3>Top event types</h3>{top}\
         <h3>Alert incidents</h3>{incidents}{more}\
         <h3>Monitor downtime</h3>{downtime}\
         <p><a href=\"{link_attr}\">Details</a></p><p>{hint}</p>\
         </body></html>",
        name = escape(project_name),
        summary = rows(&summary),
        top = rows(&top),
        incidents = rows(&incidents),
        downtime = rows(&downtime),
        link_attr = escape(&link),
        hint = escape(&hint),
    );
    Composed {
        subject: format!("[Pulse] Daily digest of {project_name} for {day}"),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::super::figures::{AlertIncident, MonitorDowntime};
    use super::*;

    fn figures() -> DayFigures {
        DayFigures {
            project_id: Uuid::parse_str("0192f0c1-7a3e-7000-8000-00000000d001").expect("uuid"),
            day: "2026-12-01".parse().expect("day"),
            events: 8,
            errors: 1,
            unique_users: 3,
            top_event_types: vec![("<script>alert(1)</script>".into(), 5), ("signup".into(), 3)],
            incident_count: 1,
            incidents: vec![AlertIncident {
                rule_name: "errors & \"more\"".into(),
                started_at: "2026-12-01T10:32:00Z".parse().expect("t"),
                resolved_at: None,
            }],
            downtime: vec![MonitorDowntime {
                monitor_id: Uuid::nil(),
                name: "api <eu>".into(),
                incidents: 1,
                down_s: 330,
            }],
        }
    }

    #[test]
    fn the_mail_says_the_figures_and_escapes_what_the_project_chose() {
        let mail = compose("shop <b>", &figures(), "https://pulse.example.com");
        assert_eq!(mail.subject, "[Pulse] Daily digest of shop <b> for 2026-12-01");
        for line in [
            "Events: 8",
            "Unique users: 3",
            "Error ratio: 12.5 % (1 of 8 events)",
            "Alert incidents: 1",
            "Monitor downtime: 5m 30s",
            "  <script>alert(1)</script>: 5",
            "  signup: 3",
            "  errors & \"more\": fired 2026-12-01 10:32 UTC, still firing",
            "  api <eu>: 5m 30s down (1 incident)",
            "Details: https://pulse.example.com/v1/analytics/overview?project_id=0192f0c1-7a3e-7000-8000-00000000d001&start=2026-12-01T00:00:00Z&end=2026-12-02T00:00:00Z",
        ] {
            assert!(mail.text.lines().any(|l| l == line), "{line:?} in\n{}", mail.text);
        }
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(!mail.html.contains("<b>"), "{}", mail.html);
        assert!(
            mail.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            mail.html
        );
        assert!(mail.html.contains("errors &amp; &quot;more&quot;"), "{}", mail.html);
        assert!(mail.html.contains("api &lt;eu&gt;"), "{}", mail.html);
        assert!(
            mail.html.contains("start=2026-12-01T00:00:00Z&amp;end="),
            "{}",
            mail.html
        );
    }

    #[test]
    fn an_empty_day_says_so() {
        let mut empty = figures();
        empty.events = 0;
        empty.errors = 0;
        empty.unique_users = 0;
        empty.top_event_types.clear();
        empty.incident_count = 0;
        empty.incidents.clear();
        empty.downtime.clear();
        let mail = compose("shop", &empty, "http://127.0.0.1:8080");
        assert!(mail.text.contains("Error ratio: no events"), "{}", mail.text);
        assert!(mail.text.contains("Monitor downtime: 0s"), "{}", mail.text);
        assert_eq!(mail.text.matches("  (none)").count(), 3, "{}", mail.text);
        assert_eq!(duration(3725), "1h 2m 5s");
    }
}
