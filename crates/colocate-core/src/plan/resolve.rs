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
                || fix
                    .changes
                    .iter()
                    .any(|c| matches!(c, Change::SetRole { .. }))
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
            let known =
                t.keys.iter().any(|k| &k.name == c) || t.foreign_keys.iter().any(|f| &f.name == c);
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
    /// Tables that would convert once this kind and every kind listed before it are decided
    /// (with their first choice), directly and by cascade.
    pub unblocks: usize,
    /// The choices, in the kind's order.
    pub choices: Vec<Choice>,
    /// The choice the evidence points at, with why, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended: Option<(Choice, &'static str)>,
}

/// What the schema itself says about a kind: a unique key on a natural value (a token, an
/// e-mail, a provider's id) is how the application finds a row before it knows the tenant, so
/// the table is looked up across tenants: local keeps that working.
fn recommended(kind: DecisionKind) -> Option<(Choice, &'static str)> {
    match kind {
        DecisionKind::UniqueWithoutTenant => Some((
            Choice::KeepLocal,
            "a unique natural value is how the application finds a row before it knows the tenant",
        )),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCase {
    pub table: QualifiedName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    pub holds: usize,
}

/// The decisions the final round still asks for, those holding back most tables first, each
/// with what it unblocks together with those before it: measured by planning again with them
/// decided (their first choice), at most one fixed point more per open kind (six at most).
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
    // Ranked by the tables their cases hold back (each case's table and those waiting for
    // it); then, down that list, what deciding each kind together with those above it unblocks:
    // tables of one foreign-key component wait for every decision in it, so a kind alone may
    // unblock nothing while the first few together unblock most of the schema.
    let mut out: Vec<OpenDecision> = by_kind
        .into_iter()
        .map(|(kind, mut cases)| {
            cases.sort_by(|a, b| b.holds.cmp(&a.holds).then(a.table.cmp(&b.table)));
            OpenDecision {
                kind,
                cases,
                unblocks: 0,
                choices: kind.choices().iter().map(|(c, _)| *c).collect(),
                recommended: recommended(kind),
            }
        })
        .collect();
    let held = |d: &OpenDecision| d.cases.iter().map(|c| c.holds).sum::<usize>();
    out.sort_by(|a, b| held(b).cmp(&held(a)).then(a.kind.cmp(&b.kind)));
    let mut hypothetical = config.clone();
    for d in &mut out {
        hypothetical.decisions.by_kind.insert(
            d.kind,
            crate::decision::Taken {
                choice: d.kind.choices()[0].0,
                reason: String::new(),
            },
        );
        let after = resolve(schema, &hypothetical);
        d.unblocks = resolution.blocked.len().saturating_sub(after.blocked.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::OpenDecision;
    use crate::decision::{Decisions, Exception, Taken};
    use crate::plan::testutil::*;

    fn decided(kinds: &[(DecisionKind, Choice)]) -> DistributionConfig {
        DistributionConfig {
            decisions: Decisions {
                by_kind: kinds
                    .iter()
                    .map(|(k, c)| {
                        (
                            *k,
                            Taken {
                                choice: *c,
                                reason: format!("the team chose {c}"),
                            },
                        )
                    })
                    .collect(),
                except: Vec::new(),
            },
            ..Default::default()
        }
    }

    /// The tables the plan after the fixes converts (distributed or reference, not blocked).
    fn converts(p: &Plan, name: &str) -> bool {
        let fixed = p.fixed.as_deref().unwrap_or(p);
        fixed
            .table(&q(name))
            .is_some_and(|t| !t.blocked && t.role != Role::Local)
    }

    fn changes(p: &Plan) -> Vec<&Change> {
        p.fixes.iter().flat_map(|f| &f.changes).collect()
    }

    fn script(s: &Schema, p: &Plan) -> String {
        let model = p.fixed_schema.as_deref().unwrap();
        let sc = crate::plan::fixsql::script(s, model, &p.fixes);
        sc.up
            .iter()
            .filter(|(_, sql)| !sql.is_empty())
            .map(|(_, sql)| format!("{sql};"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A tenant table keyed by a surrogate id, and one referencing it by that id alone.
    fn tickets_and_comments(on_delete: FkAction) -> Schema {
        schema(vec![
            tenants(),
            tbl("tickets").tenant().pk(&["id"]).fk(
                "tickets_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
            child("comments")
                .col("ticket_id", "bigint")
                .nullable("ticket_id")
                .fk_actions(
                    "comments_ticket_fkey",
                    &["ticket_id"],
                    "tickets",
                    &["id"],
                    on_delete,
                    FkAction::NoAction,
                ),
        ])
    }

    #[test]
    fn a_surrogate_key_and_the_keys_that_use_it_are_fixed_without_a_decision_to_a_fixed_point() {
        let s = tickets_and_comments(FkAction::NoAction);
        let p = run(&s);
        assert!(p.table(&q("tickets")).unwrap().blocked, "blocked as it is");
        assert!(p.table(&q("tickets")).unwrap().fixable);
        assert!(p.table(&q("comments")).unwrap().fixable);
        for t in ["tenants", "tickets", "comments"] {
            assert!(converts(&p, t), "{t} converts after the fixes");
        }
        assert!(p.fixes.iter().all(|f| f.by == By::Automatic));
        assert!(p.decisions.is_empty(), "{:?}", p.decisions);
        // The last round found nothing more: the fixed point took one round to fix, one to see.
        assert_eq!(p.fix_rounds, 2);
        let sql = script(&s, &p);
        let off = sql
            .find("DROP CONSTRAINT IF EXISTS \"comments_ticket_fkey\"")
            .unwrap();
        let key = sql.find("PRIMARY KEY (\"tenant\", \"id\")").unwrap();
        let on = sql
            .find("ADD CONSTRAINT \"comments_ticket_fkey\" FOREIGN KEY (\"tenant\", \"ticket_id\") REFERENCES \"public\".\"tickets\" (\"tenant\", \"id\");")
            .unwrap();
        assert!(off < key && key < on, "{sql}");
        // Planning the fixed schema again finds nothing to fix: no fix re-creates a blocker.
        let again = run(p.fixed_schema.as_deref().unwrap());
        assert!(
            again.fixes.is_empty() && !again.has_problems(),
            "{:?}",
            again.findings
        );
    }

    #[test]
    fn a_key_re_created_with_the_tenant_keeps_no_refused_action_it_asks_its_decision() {
        let s = tickets_and_comments(FkAction::SetNull);
        let p = run(&s);
        // Re-created with the tenant, ON DELETE SET NULL would be refused: a decision, open.
        assert_eq!(p.decisions.len(), 1, "{:?}", p.decisions);
        assert_eq!(p.decisions[0].kind, DecisionKind::KeyActionOnTenant);
        assert_eq!(p.decisions[0].cases[0].table, q("comments"));
        assert!(!converts(&p, "comments"));
        assert!(
            p.fixes.is_empty(),
            "nothing is written while it waits: {:?}",
            p.fixes
        );

        let p = plan(
            &s,
            &decided(&[(DecisionKind::KeyActionOnTenant, Choice::NoAction)]),
        );
        assert!(converts(&p, "comments") && converts(&p, "tickets"));
        let sql = script(&s, &p);
        // The key is written once, as it ends up: the tenant added, no refused action.
        assert_eq!(
            sql.matches("ADD CONSTRAINT \"comments_ticket_fkey\"")
                .count(),
            1,
            "{sql}"
        );
        assert!(!sql.contains("SET NULL"), "{sql}");
        let decided_fix = p
            .fixes
            .iter()
            .find(|f| matches!(f.by, By::Decision { .. }))
            .unwrap();
        assert!(decided_fix
            .by
            .label()
            .contains("key-action-on-tenant = no-action"));
        assert!(decided_fix.by.label().contains("the team chose no-action"));
        let again = run(p.fixed_schema.as_deref().unwrap());
        assert!(!again.has_problems(), "{:?}", again.findings);

        let p = plan(
            &s,
            &decided(&[(DecisionKind::KeyActionOnTenant, Choice::DropKey)]),
        );
        assert!(changes(&p).iter().any(
            |c| matches!(c, Change::DropForeignKey { key, .. } if key == "comments_ticket_fkey")
        ));
        assert!(converts(&p, "comments"));
    }

    /// An api key table with a unique token, referenced by nobody, keyed to tenants.
    fn tokens() -> Schema {
        schema(vec![
            tenants(),
            child("api_keys").col("token_hash", "text").key(
                KeyKind::Unique,
                "api_keys_token_hash_key",
                &["token_hash"],
            ),
            child("tickets"),
        ])
    }

    #[test]
    fn unique_without_tenant_widen_keep_local_or_drop_constraint() {
        let s = tokens();
        let p = run(&s);
        // Undecided: the table holds back tenants (its key) and every table colocated with it.
        assert!(!converts(&p, "tenants") && !converts(&p, "tickets"));
        assert_eq!(p.decisions[0].kind, DecisionKind::UniqueWithoutTenant);
        assert_eq!(
            p.decisions[0].cases[0].constraint.as_deref(),
            Some("api_keys_token_hash_key")
        );
        assert_eq!(p.decisions[0].unblocks, 3, "{:?}", p.decisions);

        let p = plan(
            &s,
            &decided(&[(DecisionKind::UniqueWithoutTenant, Choice::Widen)]),
        );
        assert!(converts(&p, "api_keys") && converts(&p, "tenants"));
        assert!(script(&s, &p).contains(
            "ADD CONSTRAINT \"api_keys_token_hash_key\" UNIQUE (\"tenant\", \"token_hash\")"
        ));

        let p = plan(
            &s,
            &decided(&[(DecisionKind::UniqueWithoutTenant, Choice::KeepLocal)]),
        );
        assert!(!converts(&p, "api_keys") && converts(&p, "tenants") && converts(&p, "tickets"));
        let fixed = p.fixed.as_deref().unwrap();
        let api = fixed.table(&q("api_keys")).unwrap();
        assert_eq!((api.role, api.blocked), (Role::Local, false));
        assert!(
            api.reason
                .starts_with("kept local by decision unique-without-tenant = keep-local"),
            "{}",
            api.reason
        );
        // Its key to tenants goes, so no plain table keeps a key into a distributed one.
        let sql = script(&s, &p);
        assert!(sql.contains("ALTER TABLE \"public\".\"api_keys\" DROP CONSTRAINT IF EXISTS \"api_keys_tenant_fkey\";"), "{sql}");
        assert!(!sql.contains("api_keys_token_hash_key"), "{sql}");
        assert_closed(p.fixed_schema.as_deref().unwrap(), fixed);

        let p = plan(
            &s,
            &decided(&[(DecisionKind::UniqueWithoutTenant, Choice::DropConstraint)]),
        );
        assert!(converts(&p, "api_keys"));
        assert!(script(&s, &p).contains("ALTER TABLE \"public\".\"api_keys\" DROP CONSTRAINT IF EXISTS \"api_keys_token_hash_key\";"));
    }

    #[test]
    fn a_decided_fix_shows_next_to_its_blocker_in_an_order_that_runs() {
        // A natural key widened by decision, with a foreign key that uses it.
        let s = schema(vec![
            tenants(),
            child("codes")
                .col("code", "text")
                .key(KeyKind::Unique, "codes_code_key", &["code"]),
            child("uses")
                .col("code", "text")
                .fk("uses_code_fkey", &["code"], "codes", &["code"]),
        ]);
        let p = plan(
            &s,
            &decided(&[(DecisionKind::UniqueWithoutTenant, Choice::Widen)]),
        );
        let f = p
            .findings
            .iter()
            .find(|f| f.code == Code::KeyMissingDistributionColumn)
            .unwrap();
        assert!(matches!(f.fixed_by, Some(By::Decision { .. })), "{f:?}");
        let fix = f.fix.as_deref().unwrap();
        let off = fix
            .find("ALTER TABLE \"public\".\"uses\" DROP CONSTRAINT IF EXISTS \"uses_code_fkey\";")
            .unwrap();
        let key = fix.find("UNIQUE (\"tenant\", \"code\")").unwrap();
        let on = fix
            .find("ADD CONSTRAINT \"uses_code_fkey\" FOREIGN KEY")
            .unwrap();
        assert!(off < key && key < on, "{fix}");
    }

    #[test]
    fn an_exception_for_a_table_or_a_constraint_wins_over_the_kind() {
        let mut s = tokens();
        s.add(
            child("accounts")
                .col("external_id", "text")
                .key(
                    KeyKind::Unique,
                    "accounts_external_id_key",
                    &["external_id"],
                )
                .0,
        );
        let mut config = decided(&[(DecisionKind::UniqueWithoutTenant, Choice::Widen)]);
        config.decisions.except.push(Exception {
            kind: DecisionKind::UniqueWithoutTenant,
            table: "api_keys".into(),
            constraint: Some("api_keys_token_hash_key".into()),
            choice: Choice::KeepLocal,
            reason: "looked up by a bare token".into(),
        });
        let p = plan(&s, &config);
        let fixed = p.fixed.as_deref().unwrap();
        assert_eq!(fixed.table(&q("api_keys")).unwrap().role, Role::Local);
        assert!(converts(&p, "accounts"), "the kind's choice for the others");
        let by = &p
            .fixes
            .iter()
            .find(|f| f.table == q("api_keys"))
            .unwrap()
            .by;
        assert!(
            by.label().contains("distribution.decisions.except[0]")
                && by.label().contains("looked up by a bare token"),
            "{}",
            by.label()
        );
    }

    #[test]
    fn triggers_drop_keep_unsafe_or_keep_local() {
        let mut audited = child("audited").0;
        audited.triggers.push(Trigger {
            name: "stamp".into(),
            definition: "CREATE TRIGGER stamp BEFORE UPDATE ON public.audited FOR EACH ROW EXECUTE FUNCTION stamp()".into(),
        });
        let s = schema(vec![tenants(), T(audited)]);
        assert_eq!(run(&s).decisions[0].kind, DecisionKind::Triggers);

        let p = plan(&s, &decided(&[(DecisionKind::Triggers, Choice::Drop)]));
        assert!(converts(&p, "audited"));
        assert!(
            script(&s, &p).contains("DROP TRIGGER IF EXISTS \"stamp\" ON \"public\".\"audited\";")
        );
        let undo =
            crate::plan::fixsql::script(&s, p.fixed_schema.as_deref().unwrap(), &p.fixes).down;
        assert!(
            undo.iter()
                .any(|(_, sql)| sql.starts_with("CREATE TRIGGER stamp")),
            "{undo:?}"
        );

        let p = plan(
            &s,
            &decided(&[(DecisionKind::Triggers, Choice::KeepUnsafe)]),
        );
        assert!(converts(&p, "audited"));
        assert!(!script(&s, &p).contains("DROP TRIGGER"));
        let fixed = p.fixed.as_deref().unwrap();
        assert!(fixed
            .findings
            .iter()
            .any(|f| f.code == Code::HasTriggers && f.severity == Severity::Warning));

        let p = plan(&s, &decided(&[(DecisionKind::Triggers, Choice::KeepLocal)]));
        assert!(!converts(&p, "audited") && converts(&p, "tenants"));
    }

    #[test]
    fn tenant_column_type_convert_or_keep_local() {
        let s = schema(vec![
            tenants(),
            tbl("legacy")
                .col("tenant", "character varying(36)")
                .col("id", "bigint")
                .pk(&["tenant", "id"]),
        ]);
        assert_eq!(run(&s).decisions[0].kind, DecisionKind::TenantColumnType);
        let p = plan(
            &s,
            &decided(&[(DecisionKind::TenantColumnType, Choice::Convert)]),
        );
        assert!(converts(&p, "legacy"));
        assert!(script(&s, &p).contains("ALTER TABLE \"public\".\"legacy\" ALTER COLUMN \"tenant\" TYPE uuid USING \"tenant\"::uuid;"));
        let p = plan(
            &s,
            &decided(&[(DecisionKind::TenantColumnType, Choice::KeepLocal)]),
        );
        assert!(!converts(&p, "legacy") && converts(&p, "tenants"));
    }

    /// jobs (tenant, surrogate id) <- job_notes (no tenant) <- note_files (no tenant).
    fn tenantless_children() -> Schema {
        schema(vec![
            tenants(),
            tbl("jobs").tenant().pk(&["id"]).fk(
                "jobs_tenant_fkey",
                &["tenant"],
                "tenants",
                &["tenant"],
            ),
            tbl("job_notes")
                .col("id", "bigint")
                .default("id", "nextval('job_notes_id_seq'::regclass)")
                .col("job_id", "bigint")
                .pk(&["id"])
                .fk("job_notes_job_fkey", &["job_id"], "jobs", &["id"]),
            tbl("note_files")
                .col("id", "bigint")
                .default("id", "nextval('note_files_id_seq'::regclass)")
                .col("note_id", "bigint")
                .pk(&["id"])
                .fk("note_files_note_fkey", &["note_id"], "job_notes", &["id"]),
        ])
    }

    #[test]
    fn tenant_less_children_two_levels_deep_get_the_tenant_column_filled_from_their_parents() {
        let s = tenantless_children();
        let p = run(&s);
        assert_eq!(p.decisions[0].kind, DecisionKind::TenantLessChild);
        assert!(!converts(&p, "jobs"));

        let p = plan(
            &s,
            &decided(&[(DecisionKind::TenantLessChild, Choice::AddTenantColumn)]),
        );
        for t in ["tenants", "jobs", "job_notes", "note_files"] {
            assert!(
                converts(&p, t),
                "{t}: {:?}",
                p.fixed.as_deref().unwrap().findings
            );
        }
        let fixed = p.fixed.as_deref().unwrap();
        assert_eq!(
            fixed.table(&q("note_files")).unwrap().column.as_deref(),
            Some("tenant")
        );
        // The grandchild is filled after its parent got its column.
        let sql = script(&s, &p);
        let notes = sql
            .find("UPDATE \"public\".\"job_notes\" c SET \"tenant\" = p.\"tenant\"")
            .unwrap();
        let files = sql
            .find("UPDATE \"public\".\"note_files\" c SET \"tenant\" = p.\"tenant\"")
            .unwrap();
        assert!(notes < files, "{sql}");
        assert!(
            sql.contains("FROM \"public\".\"jobs\" p\n    WHERE p.\"id\" = c.\"job_id\""),
            "{sql}"
        );
        let not_null = sql
            .find("ALTER TABLE \"public\".\"note_files\" ALTER COLUMN \"tenant\" SET NOT NULL")
            .unwrap();
        assert!(files < not_null);
        // Keys rebuilt with the tenant, and the children's keys re-created with it, last.
        assert!(sql.contains("ADD CONSTRAINT \"note_files_note_fkey\" FOREIGN KEY (\"tenant\", \"note_id\") REFERENCES \"public\".\"job_notes\" (\"tenant\", \"id\");"), "{sql}");
        let model = p.fixed_schema.as_deref().unwrap();
        assert!(crate::plan::fixsql::script(&s, model, &p.fixes).batched);
        let again = run(model);
        assert!(!again.has_problems(), "{:?}", again.findings);
        assert!(p.fix_rounds >= 3, "a round per level: {}", p.fix_rounds);

        let p = plan(
            &s,
            &decided(&[(DecisionKind::TenantLessChild, Choice::ReferenceDropKey)]),
        );
        let fixed = p.fixed.as_deref().unwrap();
        assert_eq!(fixed.table(&q("job_notes")).unwrap().role, Role::Reference);
        assert!(converts(&p, "jobs"));
        let p = plan(
            &s,
            &decided(&[(DecisionKind::TenantLessChild, Choice::LocalDropKey)]),
        );
        let fixed = p.fixed.as_deref().unwrap();
        assert_eq!(fixed.table(&q("job_notes")).unwrap().role, Role::Local);
        assert!(converts(&p, "jobs"));
        assert_closed(p.fixed_schema.as_deref().unwrap(), fixed);
    }

    #[test]
    fn a_tenant_less_child_takes_the_tenant_through_its_not_null_key() {
        // Its author key is nullable (and first by name): rows without an author would have no
        // parent to take the tenant from; its document key is NOT NULL.
        let s = schema(vec![
            tenants(),
            child("docs"),
            child("authors"),
            tbl("comments")
                .col("id", "bigint")
                .default("id", "nextval('comments_id_seq'::regclass)")
                .col("author_id", "bigint")
                .nullable("author_id")
                .col("doc_id", "bigint")
                .pk(&["id"])
                .fk("comments_a_author_fkey", &["author_id"], "authors", &["id"])
                .fk("comments_b_doc_fkey", &["doc_id"], "docs", &["id"]),
        ]);
        let p = plan(
            &s,
            &decided(&[(DecisionKind::TenantLessChild, Choice::AddTenantColumn)]),
        );
        let via: Vec<&str> = changes(&p)
            .into_iter()
            .filter_map(|c| match c {
                Change::AddTenantColumn { via, .. } => Some(via.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(via, ["comments_b_doc_fkey"]);
    }

    #[test]
    fn a_table_kept_local_by_configuration_drops_its_keys_by_decision() {
        let s = schema(vec![tenants(), child("billing_events"), child("tickets")]);
        let config = DistributionConfig {
            local: vec![Forced::Name("billing_events".into())],
            ..Default::default()
        };
        let p = plan(&s, &config);
        assert_eq!(
            p.decisions[0].kind,
            DecisionKind::LocalReferencesDistributed
        );
        let mut config = config;
        config.decisions =
            decided(&[(DecisionKind::LocalReferencesDistributed, Choice::DropKeys)]).decisions;
        let p = plan(&s, &config);
        assert!(converts(&p, "tenants") && converts(&p, "tickets"));
        assert!(script(&s, &p).contains("DROP CONSTRAINT IF EXISTS \"billing_events_tenant_fkey\""));
    }

    #[test]
    fn open_decisions_are_ranked_by_the_tables_they_unblock() {
        // One trigger on a leaf table; a natural key on a table that a chain hangs off.
        let mut leaf = child("leaf").0;
        leaf.triggers.push(Trigger {
            name: "t".into(),
            definition: "CREATE TRIGGER t ...".into(),
        });
        let mut tables = vec![
            tenants(),
            T(leaf),
            tbl("hub")
                .col("tenant", "uuid")
                .col("code", "text")
                .pk(&["code"])
                .fk("hub_tenant_fkey", &["tenant"], "tenants", &["tenant"]),
        ];
        for i in 0..4 {
            tables.push(child(&format!("spoke{i}")).col("code", "text").fk(
                &format!("spoke{i}_hub_fkey"),
                &["code"],
                "hub",
                &["code"],
            ));
        }
        let s = schema(tables);
        let p = run(&s);
        let mut kinds: Vec<DecisionKind> = p.decisions.iter().map(|d| d.kind).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [DecisionKind::UniqueWithoutTenant, DecisionKind::Triggers],
            "{:?}",
            p.decisions
        );
        // Ranked by the tables each holds back; one foreign-key component: neither alone
        // unblocks anything, both together unblock all 7 tables.
        let held = |d: &OpenDecision| d.cases.iter().map(|c| c.holds).sum::<usize>();
        assert!(
            held(&p.decisions[0]) >= held(&p.decisions[1]),
            "{:?}",
            p.decisions
        );
        assert_eq!(
            (p.decisions[0].unblocks, p.decisions[1].unblocks),
            (0, 7),
            "{:?}",
            p.decisions
        );
        // Both decided: everything converts.
        let p = plan(
            &s,
            &decided(&[
                (DecisionKind::UniqueWithoutTenant, Choice::Widen),
                (DecisionKind::Triggers, Choice::Drop),
            ]),
        );
        assert!(p.decisions.is_empty());
        for t in s.tables.keys() {
            assert!(converts(&p, &t.name), "{t}");
        }
    }

    #[test]
    fn a_choice_that_cannot_be_taken_and_a_name_that_does_not_exist_are_warnings() {
        let s = schema(vec![
            tenants(),
            child("assets")
                .key(KeyKind::Exclusion, "assets_excl", &["tenant"])
                .col("code", "text"),
        ]);
        let mut config = decided(&[]);
        config.decisions.except.push(Exception {
            kind: DecisionKind::UniqueWithoutTenant,
            table: "nosuch".into(),
            constraint: None,
            choice: Choice::Widen,
            reason: "typo".into(),
        });
        config.decisions.except.push(Exception {
            kind: DecisionKind::UniqueWithoutTenant,
            table: "assets".into(),
            constraint: Some("assets_nosuch".into()),
            choice: Choice::Widen,
            reason: "typo".into(),
        });
        let p = plan(&s, &config);
        let warnings: Vec<&str> = p
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| f.message.as_str())
            .collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("except[0] names public.nosuch, which does not exist")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("except[1] names constraint assets_nosuch of public.assets")),
            "{warnings:?}"
        );

        // Widening an exclusion constraint is not something a fix can do.
        let s = schema(vec![
            tenants(),
            child("slots")
                .col("room", "text")
                .key(KeyKind::Exclusion, "slots_excl", &["room"]),
        ]);
        let p = plan(
            &s,
            &decided(&[(DecisionKind::UniqueWithoutTenant, Choice::Widen)]),
        );
        assert!(
            p.findings.iter().any(|f| f.severity == Severity::Warning
                && f.message.contains(
                    "chooses widen for public.slots (slots_excl), which cannot be taken here"
                )),
            "{:?}",
            p.findings
        );
        assert!(!converts(&p, "slots"));
    }
}
