//! Fixes planned to a fixed point. The rules look at the schema as it is and say, for each
//! blocker, what fixes it: changes that keep the schema's meaning (automatic), or a decision
//! whose choice is taken in `colocate.toml`. The planner makes those changes in its model of the
//! schema and looks again, until a round finds nothing new to change: a key rebuilt with the
//! tenant column makes the foreign keys that use it be re-created with it, a tenant column
//! added to a tenant-less child lets its own keys be rebuilt, a key re-created with a refused
//! action asks its decision. So the fixes `generate --with-fixes` writes never leave a blocker
//! they caused, in whatever order a runner applies them.
//!
//! Each round is one classification and one pass of the rules, linear in tables plus keys; a
//! round only exists because the previous one changed something, and each change is made once,
//! so the rounds are bounded by the depth of the fixes' cascade (a handful on real schemas).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::change::{Change, Decided};
use super::classify;
use super::rules;
use super::{Code, Finding, Role, Severity};
use crate::decision::{Choice, DecisionKind};
use crate::distribution::DistributionConfig;
use crate::graph::FkGraph;
use crate::schema::{QualifiedName, Schema};

/// No real schema needs this many rounds; a model that keeps changing past it is a planner bug,
/// and the plan stops there with what it has (every round's changes are still sound).
const MAX_ROUNDS: usize = 64;

/// One blocker's fix: its changes and who decided them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub table: QualifiedName,
    pub code: Code,
    /// The blocker, as `plan` says it.
    pub message: String,
    pub changes: Vec<Change>,
    #[serde(flatten)]
    pub by: By,
    /// The round of the fixed point that found it (1: the schema as it is).
    pub round: usize,
}

/// Who decided a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum By {
    /// It keeps what the schema means.
    Automatic,
    /// The team, in `colocate.toml`.
    Decision {
        kind: DecisionKind,
        choice: Choice,
        reason: String,
        /// Where it was said (`distribution.decisions.triggers`, `...except[2]`).
        setting: String,
    },
}

impl By {
    /// As `plan` and generated files say it.
    pub fn label(&self) -> String {
        match self {
            By::Automatic => "automatic: keeps what the schema means".into(),
            By::Decision {
                kind,
                choice,
                reason,
                setting,
            } => {
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                format!("decision {kind} = {choice} ({setting}){why}")
            }
        }
    }
}

/// What the fixed point leaves.
pub(super) struct Resolution {
    /// The schema as it is once every fix ran.
    pub(super) model: Schema,
    pub(super) decided: Decided,
    /// In the order found (round by round).
    pub(super) fixes: Vec<Fix>,
    pub(super) rounds: usize,
    /// Tables still blocked (their own blockers or waiting) in the last round.
    pub(super) blocked: BTreeSet<QualifiedName>,
    /// Warnings about decisions: a choice that cannot be taken where it applies, an exception
    /// naming a table or constraint that does not exist.
    pub(super) warnings: Vec<Finding>,
}

/// Classify and run the rules (with the closure) on one state of the model.
pub(super) fn analyse(
    schema: &Schema,
    config: &DistributionConfig,
    decided: &Decided,
) -> (classify::Classification, Vec<Finding>) {
    let graph = FkGraph::new(schema);
    let mut findings = Vec::new();
    let classes = classify::classify(schema, config, decided, &mut findings);
    rules::check(
        &rules::Context::new(schema, &graph, &classes, decided),
        &mut findings,
    );
    (classes, findings)
}

/// Plan the fixes of `schema` under `config` to a fixed point.
pub(super) fn resolve(schema: &Schema, config: &DistributionConfig) -> Resolution {
    let mut model = schema.clone();
    let mut decided = Decided::default();
    let mut seen: BTreeSet<Change> = BTreeSet::new();
    let mut fixes = Vec::new();
    let mut refused: BTreeMap<(QualifiedName, DecisionKind, Option<String>), Finding> =
        BTreeMap::new();
    let mut rounds = 0;
    let blocked = loop {
        rounds += 1;
        let (_, findings) = analyse(&model, config, &decided);
        let mut found = Vec::new();
        for f in &findings {
            if f.severity != Severity::Blocker {
                continue;
            }
            let (changes, by) = if let Some(ch) = &f.automatic {
                (ch.clone(), By::Automatic)
            } else if let Some(case) = &f.decision {
                let Some(applied) =
                    config
                        .decisions
                        .choice_for(case.kind, &f.table, case.constraint.as_deref())
                else {
                    continue;
                };
                match case.changes(applied.choice) {
                    Ok(ch) => (
                        ch.to_vec(),
                        By::Decision {
                            kind: case.kind,
                            choice: applied.choice,
                            reason: applied.reason.to_string(),
                            setting: applied.setting(),
                        },
                    ),
                    Err(why) => {
                        let key = (f.table.clone(), case.kind, case.constraint.clone());
                        refused.entry(key).or_insert_with(|| {
                            Finding::new(
                                f.code,
                                Severity::Warning,
                                &f.table,
                                format!(
                                    "{} chooses {} for {}{}, which cannot be taken here: {why}",
                                    applied.setting(),
                                    applied.choice,
                                    f.table,
                                    case.constraint
                                        .as_deref()
                                        .map(|c| format!(" ({})", super::display_col(c)))
                                        .unwrap_or_default()
                                ),
                                None,
                                true,
                            )
                        });
                        continue;
                    }
                }
            } else {
                continue;
            };
            let fresh: Vec<Change> = changes.into_iter().filter(|c| !seen.contains(c)).collect();
            if fresh.is_empty() {
                continue;
            }
            seen.extend(fresh.iter().cloned());
            found.push(Fix {
                table: f.table.clone(),
                code: f.code,
                message: f.message.clone(),
                changes: fresh,
                by,
                round: rounds,
            });
        }
        // A table whose role a decision sets this round takes no other fix of the same round
        // to itself: kept local, its triggers or keys need not change.
        let roled: BTreeSet<QualifiedName> = found
            .iter()
            .flat_map(|f| &f.changes)
            .filter_map(|c| match c {
                Change::SetRole { table, .. } => Some(table.clone()),
                _ => None,
            })
            .collect();
        found.retain(|fix| {
            !roled.contains(&fix.table)
                || fix.changes.iter().any(|c| matches!(c, Change::SetRole { .. }))
        });
        if found.is_empty() || rounds >= MAX_ROUNDS {
            break findings
                .iter()
                .filter(|f| f.severity == Severity::Blocker)
                .map(|f| f.table.clone())
                .collect();
        }
        for fix in &found {
            for c in &fix.changes {
                if let (Change::SetRole { table, role }, By::Decision { .. }) = (c, &fix.by) {
                    decided
                        .roles
                        .entry(table.clone())
                        .or_insert_with(|| (*role, role_reason(*role, &fix.by)));
                } else {
                    c.apply(&mut model, &mut decided);
                }
            }
        }
        fixes.extend(found);
    };
    let mut warnings: Vec<Finding> = refused.into_values().collect();
    warnings.extend(unknown_names(schema, config));
    Resolution {
        model,
        decided,
        fixes,
        rounds,
        blocked,
        warnings,
    }
}

/// The reason a table has the role a decision gave it.
fn role_reason(role: Role, by: &By) -> String {
    let verb = match role {
        Role::Local => "kept local",
        Role::Reference => "made a reference table",
        _ => "placed",
    };
    format!("{verb} by {}", by.label())
}

/// Exceptions naming a table, or a constraint of it, that does not exist: the configuration
/// wins, so a typo must not pass silently.
fn unknown_names(schema: &Schema, config: &DistributionConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, e) in config.decisions.except.iter().enumerate() {
        let q = QualifiedName::parse(&e.table, "public");
        let setting = format!("distribution.decisions.except[{i}]");
        let Some(t) = schema.table(&q) else {
            out.push(Finding::new(
                Code::ConfigUnknownTable,
                Severity::Warning,
                &q,
                format!("{setting} names {q}, which does not exist (a typo, or a dropped table?)"),
                None,
                true,
            ));
            continue;
        };
        if let Some(c) = &e.constraint {
            let known = t.keys.iter().any(|k| &k.name == c)
                || t.foreign_keys.iter().any(|f| &f.name == c);
            if !known {
                out.push(Finding::new(
                    Code::ConfigUnknownTable,
                    Severity::Warning,
                    &q,
                    format!(
                        "{setting} names constraint {} of {q}, which has no such key or foreign key",
                        super::display_col(c)
                    ),
                    None,
                    true,
                ));
            }
        }
    }
    out
}

/// A decision nobody took yet, with what taking it would unblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenDecision {
    pub kind: DecisionKind,
    /// Each case: the table, the constraint when the case is one, and the tables it holds back
    /// (itself and those waiting for it).
    pub cases: Vec<OpenCase>,
    /// Tables that would convert once this kind is decided with its first choice, directly and
    /// by cascade.
    pub unblocks: usize,
    /// The choices, in the kind's order.
    pub choices: Vec<Choice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCase {
    pub table: QualifiedName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    pub holds: usize,
}

/// The decisions the final round still asks for, most unblocking first. Per kind, what it
/// unblocks is measured by planning again with the kind decided (its first choice): at most one
/// fixed point more per kind that is open.
pub(super) fn open_decisions(
    schema: &Schema,
    config: &DistributionConfig,
    resolution: &Resolution,
    fixed: &[Finding],
) -> Vec<OpenDecision> {
    let mut waiting: BTreeMap<&QualifiedName, usize> = BTreeMap::new();
    for f in fixed {
        if let Some(origin) = &f.waits_for {
            *waiting.entry(origin).or_default() += 1;
        }
    }
    let mut by_kind: BTreeMap<DecisionKind, Vec<OpenCase>> = BTreeMap::new();
    for f in fixed.iter().filter(|f| f.severity == Severity::Blocker) {
        let Some(case) = &f.decision else { continue };
        if config
            .decisions
            .choice_for(case.kind, &f.table, case.constraint.as_deref())
            .is_some()
        {
            continue;
        }
        by_kind.entry(case.kind).or_default().push(OpenCase {
            table: f.table.clone(),
            constraint: case.constraint.clone(),
            holds: 1 + waiting.get(&f.table).copied().unwrap_or(0),
        });
    }
    let mut out: Vec<OpenDecision> = by_kind
        .into_iter()
        .map(|(kind, mut cases)| {
            cases.sort_by(|a, b| b.holds.cmp(&a.holds).then(a.table.cmp(&b.table)));
            let choice = kind.choices()[0].0;
            let mut hypothetical = config.clone();
            hypothetical.decisions.by_kind.insert(
                kind,
                crate::decision::Taken {
                    choice,
                    reason: String::new(),
                },
            );
            let after = resolve(schema, &hypothetical);
            let unblocks = resolution.blocked.len().saturating_sub(after.blocked.len());
            OpenDecision {
                kind,
                cases,
                unblocks,
                choices: kind.choices().iter().map(|(c, _)| *c).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.unblocks.cmp(&a.unblocks).then(a.kind.cmp(&b.kind)));
    out
}
