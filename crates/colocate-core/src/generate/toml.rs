//! The toml format: each file as one declarative step, which `colocate migrate` runs through the
//! apply engine instead of replaying SQL.

use super::layout::File;
use super::writer::Writer;
use crate::declarative::DeclarativeStep;
use crate::sqltext::inert;

impl Writer<'_> {
    pub(super) fn toml_file(&self, f: &File, header: &[String]) -> String {
        let mut out = String::new();
        for h in header {
            out.push_str(&format!("# {}\n", inert(h)));
        }
        out.push_str(
            "# Run by `colocate migrate` through the apply engine: idempotent, with an automatic\n# down part, and a no-op that says so where the server has no Citus.\n\n",
        );
        let step = match f {
            File::Extension => DeclarativeStep::Extension,
            File::Reference(tables) => DeclarativeStep::Reference {
                tables: tables.clone(),
            },
            File::Distribute { tables, root, .. } => {
                let column = self.sel.column(&tables[0]).unwrap_or_default().to_string();
                let root_name = self.sel.root.clone();
                let alone = *root && tables.len() == 1;
                DeclarativeStep::Distribute {
                    column,
                    colocate_with: if alone { None } else { root_name },
                    tables: tables.clone(),
                    shard_count: if *root { self.shard_count } else { None },
                    unsafe_triggers: self.sel.all_unsafe_triggers(),
                }
            }
            File::Fixes => unreachable!("the fixes are a .sql migration"),
        };
        out.push_str(&step.to_toml());
        out
    }
}
