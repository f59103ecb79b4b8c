//! The goal sheet: the matrix in plain words, for everyone on the desk.
//!
//! `callwatch goals` prints it as text, the daemon serves it as a page at
//! `/goals` (to be shown to the team, printed for the works council).
//! Both come from the same rows, so they never disagree.

use std::fmt::Write as _;

use crate::config::goals::GuardrailMode;
use crate::goal::{Goal, Matrix};
use crate::kpi::{Better, Unit};

/// One line of thresholds: where a goal applies, target, warn, minimum, weight.
pub struct Row {
    pub scope: String,
    pub target: f64,
    pub warn: f64,
    pub minimum: f64,
    pub weight: f64,
}

/// The base thresholds and every override (inherited values filled in).
pub fn rows(g: &Goal) -> Vec<Row> {
    let mut out = vec![Row {
        scope: "everywhere".into(),
        target: g.thresholds.target,
        warn: g.thresholds.warn,
        minimum: g.thresholds.minimum,
        weight: g.weight,
    }];
    for scope in g.overrides.keys() {
        let (t, w) = g.for_chain(std::slice::from_ref(scope));
        out.push(Row {
            scope: scope.to_string(),
            target: t.target,
            warn: t.warn,
            minimum: t.minimum,
            weight: w,
        });
    }
    out
}

/// A threshold in the KPI's unit, as people read it.
pub fn show(v: f64, unit: Unit, currency: &str) -> String {
    match unit {
        Unit::Ratio => format!("{} %", trim(v * 100.0)),
        Unit::Seconds if v >= 3600.0 => format!("{} h", trim(v / 3600.0)),
        Unit::Seconds if v >= 120.0 => format!("{} min", trim(v / 60.0)),
        Unit::Seconds => format!("{} s", trim(v)),
        Unit::Money => format!("{} {currency}", trim(v)),
        Unit::Count | Unit::Points => trim(v),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{:.2}", v);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn way(b: Better) -> &'static str {
    match b {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    }
}

/// The objectives, each parent before its children.
fn tree(m: &Matrix) -> Vec<&crate::goal::Objective> {
    fn walk<'a>(m: &'a Matrix, parent: Option<&str>, out: &mut Vec<&'a crate::goal::Objective>) {
        for o in m
            .objectives
            .iter()
            .filter(|o| o.parent.as_deref() == parent)
        {
            if out.iter().any(|x| x.id == o.id) {
                continue;
            }
            out.push(o);
            walk(m, Some(&o.id), out);
        }
    }
    let mut out = Vec::new();
    walk(m, None, &mut out);
    out
}

fn period(g: &Goal) -> &'static str {
    match g.kpi.basis {
        crate::kpi::Basis::Now => "now",
        crate::kpi::Basis::Period => g.period.as_str(),
    }
}

/// How the guardrail works, in one paragraph.
pub fn guardrail_text(m: &Matrix) -> String {
    let how = match m.guardrail.mode {
        GuardrailMode::EveryPrimary => "every primary goal is at or above its minimum".to_string(),
        GuardrailMode::PrimaryScore => format!(
            "the weighted primary score is at least {} %",
            trim(m.guardrail.min_score * 100.0)
        ),
    };
    format!(
        "Sales goals are credited only for the {} intervals in which {how}. \
         Sales made while the primary goals fail are still reported as revenue, \
         but they do not count toward the sales goals.",
        humantime_serde::re::humantime::format_duration(m.guardrail.interval)
    )
}

/// The sheet as plain text.
pub fn text(m: &Matrix, currency: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "GOAL SHEET");
    if m.from_targets {
        let _ = writeln!(
            o,
            "(mapped from the deprecated [targets] tables; see docs/goals.md)"
        );
    }
    let _ = writeln!(o);
    for obj in tree(m) {
        let _ = writeln!(
            o,
            "Objective {}{}{}",
            obj.title,
            obj.parent
                .as_ref()
                .map(|p| format!(" (part of {p})"))
                .unwrap_or_default(),
            obj.serves
                .as_ref()
                .map(|s| format!(": serves {s}"))
                .unwrap_or_default()
        );
        for g in m.goals.iter().filter(|g| g.objective == obj.id) {
            let _ = writeln!(
                o,
                "  {} [{}] {}{}, {}, period {}",
                g.id,
                g.category.as_str(),
                g.kpi.title,
                g.kind
                    .as_ref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
                way(g.kpi.better),
                period(g)
            );
            let _ = writeln!(
                o,
                "    measured as: {}{}",
                g.kpi.numerator,
                g.kpi
                    .denominator
                    .map(|d| format!(" / {d}"))
                    .unwrap_or_default()
            );
            if let Some(w) = &g.why {
                let _ = writeln!(o, "    why: {w}");
            }
            for r in rows(g) {
                let _ = writeln!(
                    o,
                    "    {:<22} target {:>10}  warn {:>10}  minimum {:>10}  weight {}",
                    r.scope,
                    show(r.target, g.kpi.unit, currency),
                    show(r.warn, g.kpi.unit, currency),
                    show(r.minimum, g.kpi.unit, currency),
                    trim(r.weight)
                );
            }
            if let Some(a) = &g.alert {
                let _ = writeln!(
                    o,
                    "    alert: {} after {} worse than the minimum",
                    a.severity.as_str(),
                    humantime_serde::re::humantime::format_duration(a.after)
                );
            }
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "Guardrail: {}", guardrail_text(m));
    let _ = writeln!(
        o,
        "Scoring: a goal earns weight × attainment points; attainment is 0 at the minimum, \
         1 at the target, linear in between and capped. The primary and the sales score are \
         points / weights over the goals of their category that have a value."
    );
    o
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The sheet as a self-contained page.
pub fn html(m: &Matrix, currency: &str) -> String {
    let mut o = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>callwatch goal sheet</title><style>\
         body{font:16px/1.4 system-ui,sans-serif;background:#fff;color:#111;margin:2rem}\
         table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
         th,td{border:1px solid #999;padding:.3rem .6rem;text-align:left}\
         th{background:#e8e8e8}.primary{color:#0b4f8a}.sales{color:#6b3d00}\
         </style></head><body><h1>Goal sheet</h1>",
    );
    for obj in tree(m) {
        let _ = write!(o, "<h2 id=\"{}\">{}</h2>", esc(&obj.id), esc(&obj.title));
        if let Some(s) = &obj.serves {
            let _ = write!(o, "<p>Serves: {}</p>", esc(s));
        }
        if let Some(p) = &obj.parent {
            let _ = write!(o, "<p>Part of: {}</p>", esc(p));
        }
        for g in m.goals.iter().filter(|g| g.objective == obj.id) {
            let _ = write!(
                o,
                "<h3 id=\"goal-{id}\">{title} <small class=\"{cat}\">{cat}</small></h3>\
                 <p>Measured as {num}{den}; {way}; period <b>{period}</b>.</p>",
                id = esc(&g.id),
                title = esc(g.kpi.title),
                cat = g.category.as_str(),
                num = esc(g.kpi.numerator),
                den = g
                    .kpi
                    .denominator
                    .map(|d| format!(" divided by {}", esc(d)))
                    .unwrap_or_default(),
                way = way(g.kpi.better),
                period = period(g),
            );
            if let Some(w) = &g.why {
                let _ = write!(o, "<p>Why: {}</p>", esc(w));
            }
            o.push_str("<table><tr><th>Where</th><th>Target</th><th>Warn</th><th>Minimum</th><th>Weight</th></tr>");
            for r in rows(g) {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.scope),
                    esc(&show(r.target, g.kpi.unit, currency)),
                    esc(&show(r.warn, g.kpi.unit, currency)),
                    esc(&show(r.minimum, g.kpi.unit, currency)),
                    trim(r.weight)
                );
            }
            o.push_str("</table>");
        }
    }
    let _ = write!(
        o,
        "<h2>Guardrail</h2><p>{}</p></body></html>",
        esc(&guardrail_text(m))
    );
    o
}
