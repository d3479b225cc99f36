//! Which tables the set converts and how they are laid into files: the selection (included,
//! left out, fixable), the files in order, foreign-key cycles kept whole, and the conversion
//! order within a file. Every format writes this same layout, so the formats cannot disagree on
//! what runs when.

use std::collections::{BTreeMap, BTreeSet};

use super::chain::FixId;
use super::coverage::Coverage;
use super::{GenerateError, GenerateOptions, SetFormat};
use crate::graph::FkGraph;
use crate::plan::{Finding, Fix, Plan, Role, Severity, State, TablePlan};
use crate::schema::{ForeignKey, QualifiedName, Schema};

pub(super) struct Selection<'a> {
    /// Tables the set converts (reference, root, distributed).
    pub(super) included: BTreeSet<QualifiedName>,
    /// Blocked tables the fixes unblock (`--with-fixes`).
    pub(super) fixable: BTreeSet<QualifiedName>,
    /// The fixes the set applies first (`--with-fixes`), each with its id.
    pub(super) fixes: Vec<(FixId, &'a Fix)>,
    /// Tables left out, with why (their blocker codes).
    left_out: Vec<(QualifiedName, String)>,
    pub(super) root: Option<QualifiedName>,
    tables: BTreeMap<&'a QualifiedName, &'a TablePlan>,
    /// Blockers and conflicts per table.
    pub(super) problems: BTreeMap<&'a QualifiedName, Vec<&'a Finding>>,
}

impl<'a> Selection<'a> {
    /// What a set converts of `plan`. With fixes, `plan` is the plan of the schema once they
    /// ran ([`Plan::fixed`]) and `fixes` are the planner's, against the schema as it is
    /// (`before`): the tables that convert are those of that plan.
    pub(super) fn new(
        plan: &'a Plan,
        before: &Schema,
        fixes: &'a [Fix],
        fixable: BTreeSet<QualifiedName>,
    ) -> Selection<'a> {
        let tables: BTreeMap<&QualifiedName, &TablePlan> =
            plan.tables.iter().map(|t| (&t.name, t)).collect();
        let mut problems: BTreeMap<&QualifiedName, Vec<&Finding>> = BTreeMap::new();
        for f in plan
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Warning)
        {
            problems.entry(&f.table).or_default().push(f);
        }
        let problem: BTreeSet<&QualifiedName> = plan
            .tables
            .iter()
            .filter(|t| t.blocked || t.state == State::Conflict || problems.contains_key(&t.name))
            .map(|t| &t.name)
            .collect();
        let is_problem = |t: &TablePlan| problem.contains(&t.name);
        let mut sel = Selection {
            included: BTreeSet::new(),
            fixable,
            fixes: fixes
                .iter()
                .map(|f| {
                    (
                        FixId::new(&f.table, f.code.as_str(), &fix_text(before, f)),
                        f,
                    )
                })
                .collect(),
            left_out: Vec::new(),
            root: None,
            tables,
            problems,
        };
        for t in &plan.tables {
            if t.role != Role::Local && !is_problem(t) {
                sel.included.insert(t.name.clone());
            }
        }
        sel.root = plan
            .root
            .clone()
            .filter(|r| sel.included.contains(r) && sel.role(r) == Some(Role::Root));
        for t in &plan.tables {
            if !sel.included.contains(&t.name) {
                if is_problem(t) {
                    let mut codes: Vec<String> = sel
                        .problems
                        .get(&t.name)
                        .map(|fs| fs.iter().map(|f| f.code.to_string()).collect())
                        .unwrap_or_default();
                    codes.dedup();
                    sel.left_out.push((t.name.clone(), codes.join(", ")));
                }
            } else if t.role == Role::Distributed && sel.root.is_none() {
                sel.included.remove(&t.name);
                let root = plan
                    .root
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                sel.left_out.push((
                    t.name.clone(),
                    format!("no root to colocate with ({root} is blocked or missing)"),
                ));
            }
        }
        sel.left_out.sort();
        sel
    }

    pub(super) fn role(&self, t: &QualifiedName) -> Option<Role> {
        self.tables.get(t).map(|p| p.role)
    }

    pub(super) fn column(&self, t: &QualifiedName) -> Option<&str> {
        self.tables.get(t).and_then(|p| p.column.as_deref())
    }

    /// Whether `t` converts keeping its triggers (`triggers = keep-unsafe`).
    pub(super) fn unsafe_triggers(&self, t: &QualifiedName) -> bool {
        self.tables.get(t).is_some_and(|p| p.unsafe_triggers)
    }

    /// Every table of the plan that converts keeping its triggers.
    pub(super) fn all_unsafe_triggers(&self) -> Vec<QualifiedName> {
        self.tables
            .values()
            .filter(|p| p.unsafe_triggers)
            .map(|p| p.name.clone())
            .collect()
    }

    /// The fixes the set applies, with their ids.
    pub(super) fn applied_fixes(&self) -> Vec<(FixId, &'a Fix)> {
        self.fixes.clone()
    }

    pub(super) fn left_out_lines(&self) -> Vec<String> {
        if self.left_out.is_empty() {
            return Vec::new();
        }
        let mut out = vec![format!(
            "Left out, {} (`colocate plan` shows each blocker with its fix):",
            crate::words::count(self.left_out.len(), "blocked table")
        )];
        for (t, why) in &self.left_out {
            out.push(format!("  {t}: {why}"));
        }
        out
    }
}

/// A fix's SQL as one text, for its id: the statements of its changes against the schema as
/// it is.
pub(super) fn fix_text(before: &Schema, f: &Fix) -> String {
    f.changes
        .iter()
        .flat_map(|c| crate::plan::fixsql::change_sql(before, c))
        .collect::<Vec<_>>()
        .join(";\n")
}

// ---------------------------------------------------------------------------------------------
// Files and what each holds

pub(super) enum File {
    Fixes,
    Extension,
    Reference(Vec<QualifiedName>),
    Distribute {
        /// In conversion order.
        tables: Vec<QualifiedName>,
        root: bool,
        slug: String,
    },
}

impl File {
    pub(super) fn tables(&self) -> &[QualifiedName] {
        match self {
            File::Fixes | File::Extension => &[],
            File::Reference(t) | File::Distribute { tables: t, .. } => t,
        }
    }

    pub(super) fn slug(&self) -> String {
        match self {
            File::Fixes => "citus_fixes".into(),
            File::Extension => "citus_extension".into(),
            File::Reference(_) => "citus_reference_tables".into(),
            File::Distribute { slug, .. } => slug.clone(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            File::Fixes => "fix the blockers that have an automatic fix".into(),
            File::Extension => "enable the citus extension".into(),
            File::Reference(t) => {
                format!("create {}", crate::words::count(t.len(), "reference table"))
            }
            File::Distribute { tables, root, .. } if *root && tables.len() == 1 => {
                format!("distribute the root table {}", tables[0])
            }
            File::Distribute { tables, root, .. } if *root => format!(
                "distribute the root table {} with the {} of its foreign-key cycle",
                tables[0],
                crate::words::count_as(tables.len() - 1, "other table", "other tables")
            ),
            File::Distribute { tables, .. } => {
                format!("distribute {}", crate::words::count(tables.len(), "table"))
            }
        }
    }
}

/// A strongly connected group of distributed tables (a foreign-key cycle, or one table).
struct Unit {
    tables: Vec<QualifiedName>,
    layer: usize,
    column: String,
}

/// The files of the set, leaving out what the chain already covers (`cov`): the fixes file when
/// it holds every fix, the extension, and the tables it converts.
pub(super) fn layout(
    schema: &Schema,
    plan: &Plan,
    sel: &Selection,
    cov: &Coverage,
    opts: &GenerateOptions,
) -> Result<Vec<File>, GenerateError> {
    let mut files = Vec::new();
    if opts.with_fixes && !sel.fixable.is_empty() && cov.needs_fixes(sel) {
        files.push(File::Fixes);
    }
    if !cov.extension {
        files.push(File::Extension);
    }
    let references: Vec<QualifiedName> = plan
        .tables
        .iter()
        .filter(|t| {
            t.role == Role::Reference
                && sel.included.contains(&t.name)
                && !cov.tables.contains(&t.name)
        })
        .map(|t| t.name.clone())
        .collect();
    if !references.is_empty() {
        files.push(File::Reference(order(schema, &references, None).0));
    }
    let Some(root) = &sel.root else {
        return Ok(files);
    };
    let distributed: Vec<QualifiedName> = plan
        .tables
        .iter()
        .filter(|t| distributed_role(t.role) && sel.included.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    // Layers over every table the plan distributes, so a table added since keeps the layer
    // (and the file name) it would have in a whole set; then what the chain covers goes.
    let mut units = units(schema, sel, root, &distributed);
    for u in &mut units {
        u.tables.retain(|t| !cov.tables.contains(t));
    }
    units.retain(|u| !u.tables.is_empty());
    if opts.format == SetFormat::Toml {
        for u in &units {
            let cols: BTreeSet<&str> = u.tables.iter().filter_map(|t| sel.column(t)).collect();
            if cols.len() > 1 {
                return Err(GenerateError::MixedColumnCycle {
                    tables: join(&u.tables),
                    columns: cols.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    // The root's unit, unless the chain distributes the root already (a table of its cycle
    // left over then converts as any other, colocated with it).
    let (root_units, rest): (Vec<&Unit>, Vec<&Unit>) =
        units.iter().partition(|u| u.tables.contains(root));
    if !root_units.is_empty() {
        let root_tables: Vec<QualifiedName> =
            root_units.iter().flat_map(|u| u.tables.clone()).collect();
        files.push(File::Distribute {
            tables: root_first(order(schema, &root_tables, Some(root)).0, root),
            root: true,
            slug: "citus_distribute_root".into(),
        });
    }
    // Groups of units, in order; each becomes one file (or, in toml, one per column run).
    let groups: Vec<(String, Vec<&Unit>)> = match opts.tables_per_file {
        None => {
            let mut by_layer: BTreeMap<usize, Vec<&Unit>> = BTreeMap::new();
            for u in rest {
                by_layer.entry(u.layer).or_default().push(u);
            }
            by_layer
                .into_iter()
                .map(|(l, us)| (format!("citus_distribute_layer_{l}"), us))
                .collect()
        }
        Some(n) => {
            let mut chunks: Vec<Vec<&Unit>> = Vec::new();
            let mut size = 0;
            for u in rest {
                if chunks.is_empty() || (size > 0 && size + u.tables.len() > n) {
                    chunks.push(Vec::new());
                    size = 0;
                }
                size += u.tables.len();
                if let Some(last) = chunks.last_mut() {
                    last.push(u);
                }
            }
            chunks
                .into_iter()
                .map(|c| ("citus_distribute_part".to_string(), c))
                .collect()
        }
    };
    let mut part = 0;
    for (slug, us) in groups {
        let runs: Vec<Vec<&Unit>> = if opts.format == SetFormat::Toml {
            let mut runs: Vec<Vec<&Unit>> = Vec::new();
            for u in us {
                match runs.last_mut() {
                    Some(r) if r[0].column == u.column => r.push(u),
                    _ => runs.push(vec![u]),
                }
            }
            runs
        } else {
            vec![us]
        };
        let many = runs.len() > 1;
        for (j, run) in runs.into_iter().enumerate() {
            let tables: Vec<QualifiedName> = run.iter().flat_map(|u| u.tables.clone()).collect();
            let slug = if opts.tables_per_file.is_some() {
                part += 1;
                format!("{slug}_{part}")
            } else if many {
                format!("{slug}_{}", j + 1)
            } else {
                slug.clone()
            };
            files.push(File::Distribute {
                tables: order(schema, &tables, Some(root)).0,
                root: false,
                slug,
            });
        }
    }
    Ok(files)
}

fn distributed_role(r: Role) -> bool {
    matches!(r, Role::Root | Role::Distributed)
}

fn root_first(mut tables: Vec<QualifiedName>, root: &QualifiedName) -> Vec<QualifiedName> {
    if let Some(pos) = tables.iter().position(|t| t == root) {
        let r = tables.remove(pos);
        tables.insert(0, r);
    }
    tables
}

/// The distributed tables as foreign-key cycles (strongly connected groups) with their
/// dependency layer: the root's group is layer 0; every other group is one above the highest
/// group it references, and at least 1. Sorted by layer, column, then name.
fn units(
    schema: &Schema,
    sel: &Selection,
    root: &QualifiedName,
    tables: &[QualifiedName],
) -> Vec<Unit> {
    // Each group comes after every group it references, so their layers are known.
    let groups = FkGraph::new(schema).components(tables);
    let mut layers = vec![0usize; groups.len()];
    let mut out = Vec::with_capacity(groups.len());
    for (i, group) in groups.into_iter().enumerate() {
        let layer = if group.tables.contains(root) {
            0
        } else {
            group
                .references
                .iter()
                .map(|&j| layers[j] + 1)
                .max()
                .unwrap_or(1)
                .max(1)
        };
        layers[i] = layer;
        let column = sel.column(&group.tables[0]).unwrap_or_default().to_string();
        out.push(Unit {
            tables: group.tables,
            layer,
            column,
        });
    }
    out.sort_by(|a, b| (a.layer, &a.column, &a.tables).cmp(&(b.layer, &b.column, &b.tables)));
    out
}

/// Conversion order within one file: foreign-key targets first. In each cycle (taken in name
/// order, `first` leading) the keys that point forward are dropped for the conversion and
/// restored afterwards, as the planner does. Returns the order and the keys to drop.
pub(super) fn order(
    schema: &Schema,
    tables: &[QualifiedName],
    first: Option<&QualifiedName>,
) -> (Vec<QualifiedName>, Vec<(QualifiedName, ForeignKey)>) {
    let order = FkGraph::new(schema).order(tables, first);
    (order.tables, order.dropped)
}

/// `prefix` and the names, as comment lines of about 96 characters.
pub(super) fn wrap(prefix: &str, tables: &[QualifiedName]) -> Vec<String> {
    let mut lines = vec![prefix.trim_end().to_string()];
    for (i, t) in tables.iter().enumerate() {
        let item = if i + 1 < tables.len() {
            format!("{t},")
        } else {
            t.to_string()
        };
        let last = lines.last_mut().expect("lines starts non-empty");
        if last.chars().count() + 1 + item.chars().count() > 96 && last.len() > prefix.len() {
            lines.push(format!("  {item}"));
        } else {
            last.push(' ');
            last.push_str(&item);
        }
    }
    lines
}

fn join(tables: &[QualifiedName]) -> String {
    tables
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
