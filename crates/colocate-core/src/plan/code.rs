//! Finding codes: the stable names users grep for, filter on and read in docs/cli.md.

use std::fmt;

use serde::{Serialize, Serializer};

/// Stable finding codes: documented in docs/cli.md; never renamed. The variant order is the
/// order findings of one table and severity are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    RootMissing,
    RootWithoutColumn,
    ConfigUnknownTable,
    ConfigUnknownColumn,
    KeyMissingDistributionColumn,
    DistributionColumnTypeMismatch,
    DistributionColumnNotHashable,
    DistributionColumnCollation,
    DistributionColumnGenerated,
    NullableDistributionColumn,
    HasTriggers,
    ForeignKeyMissingDistributionColumn,
    ForeignKeyActionOnDistributionColumn,
    LocalReferencesDistributed,
    ReferencesLocalTable,
    ReferencesBlockedTable,
    ReferencedByBlockedTable,
    ColocatedWithBlockedRoot,
    LocalReferencesReference,
    TableInheritance,
    MultiLevelPartitioning,
    RlsPolicySubquery,
    IdentityColumn,
    DistributedByWrongColumn,
    WrongColocationGroup,
    WrongCitusTableType,
}

impl Code {
    /// Every code, in variant order.
    pub const ALL: [Code; 26] = [
        Code::RootMissing,
        Code::RootWithoutColumn,
        Code::ConfigUnknownTable,
        Code::ConfigUnknownColumn,
        Code::KeyMissingDistributionColumn,
        Code::DistributionColumnTypeMismatch,
        Code::DistributionColumnNotHashable,
        Code::DistributionColumnCollation,
        Code::DistributionColumnGenerated,
        Code::NullableDistributionColumn,
        Code::HasTriggers,
        Code::ForeignKeyMissingDistributionColumn,
        Code::ForeignKeyActionOnDistributionColumn,
        Code::LocalReferencesDistributed,
        Code::ReferencesLocalTable,
        Code::ReferencesBlockedTable,
        Code::ReferencedByBlockedTable,
        Code::ColocatedWithBlockedRoot,
        Code::LocalReferencesReference,
        Code::TableInheritance,
        Code::MultiLevelPartitioning,
        Code::RlsPolicySubquery,
        Code::IdentityColumn,
        Code::DistributedByWrongColumn,
        Code::WrongColocationGroup,
        Code::WrongCitusTableType,
    ];

    /// Whether the code only says that the table waits for another one (a blocked table it
    /// references, a table staying plain that references it, or the blocked root it is
    /// colocated with): fixing that other table's blockers is what clears it.
    pub const fn waits_for_another_table(self) -> bool {
        matches!(
            self,
            Code::ReferencesBlockedTable
                | Code::ReferencedByBlockedTable
                | Code::ColocatedWithBlockedRoot
        )
    }

    /// The stable name (kebab-case), as JSON and human output write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::RootMissing => "root-missing",
            Code::RootWithoutColumn => "root-without-column",
            Code::ConfigUnknownTable => "config-unknown-table",
            Code::ConfigUnknownColumn => "config-unknown-column",
            Code::KeyMissingDistributionColumn => "key-missing-distribution-column",
            Code::DistributionColumnTypeMismatch => "distribution-column-type-mismatch",
            Code::DistributionColumnNotHashable => "distribution-column-not-hashable",
            Code::DistributionColumnCollation => "distribution-column-collation",
            Code::DistributionColumnGenerated => "distribution-column-generated",
            Code::NullableDistributionColumn => "nullable-distribution-column",
            Code::HasTriggers => "has-triggers",
            Code::ForeignKeyMissingDistributionColumn => "foreign-key-missing-distribution-column",
            Code::ForeignKeyActionOnDistributionColumn => {
                "foreign-key-action-on-distribution-column"
            }
            Code::LocalReferencesDistributed => "local-references-distributed",
            Code::ReferencesLocalTable => "references-local-table",
            Code::ReferencesBlockedTable => "references-blocked-table",
            Code::ReferencedByBlockedTable => "referenced-by-blocked-table",
            Code::ColocatedWithBlockedRoot => "colocated-with-blocked-root",
            Code::LocalReferencesReference => "local-references-reference",
            Code::TableInheritance => "table-inheritance",
            Code::MultiLevelPartitioning => "multi-level-partitioning",
            Code::RlsPolicySubquery => "rls-policy-subquery",
            Code::IdentityColumn => "identity-column",
            Code::DistributedByWrongColumn => "distributed-by-wrong-column",
            Code::WrongColocationGroup => "wrong-colocation-group",
            Code::WrongCitusTableType => "wrong-citus-table-type",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_code_has_its_own_stable_name() {
        let names: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "names are unique");
        for c in Code::ALL {
            // The names the codes always had: the variant name in kebab-case.
            let mut kebab = String::new();
            for (i, ch) in format!("{c:?}").chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    kebab.push('-');
                }
                kebab.push(ch.to_ascii_lowercase());
            }
            assert_eq!(c.as_str(), kebab);
            assert_eq!(c.to_string(), kebab);
            assert_eq!(c.as_str(), kebab);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{kebab}\""));
        }
        let mut sorted = Code::ALL;
        sorted.sort();
        assert_eq!(sorted, Code::ALL, "ALL lists the codes in variant order");
    }
}
