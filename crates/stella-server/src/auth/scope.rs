//! The scopes a token can carry.

use std::fmt;

/// OAuth scopes of the Stella API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    VexRead,
    VexAdmin,
    EvidenceRead,
    EvidenceWrite,
    ExportRead,
    ExportAdmin,
    Admin,
    PolicyRead,
    PolicyWrite,
    ScannerReports,
}

impl Scope {
    pub const ALL: [Scope; 10] = [
        Scope::VexRead,
        Scope::VexAdmin,
        Scope::EvidenceRead,
        Scope::EvidenceWrite,
        Scope::ExportRead,
        Scope::ExportAdmin,
        Scope::Admin,
        Scope::PolicyRead,
        Scope::PolicyWrite,
        Scope::ScannerReports,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::VexRead => "vex.read",
            Scope::VexAdmin => "vex.admin",
            Scope::EvidenceRead => "evidence.read",
            Scope::EvidenceWrite => "evidence.write",
            Scope::ExportRead => "export.read",
            Scope::ExportAdmin => "export.admin",
            Scope::Admin => "admin",
            Scope::PolicyRead => "policy.read",
            Scope::PolicyWrite => "policy.write",
            Scope::ScannerReports => "scanner.reports",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a comma- or space-separated scope list; unknown names are an
/// error naming them. The result is sorted and without duplicates.
pub fn parse_list(list: &str) -> Result<Vec<Scope>, String> {
    let mut out = Vec::new();
    for name in list
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let scope = Scope::parse(name).ok_or_else(|| {
            let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown scope `{name}` (known: {})", known.join(", "))
        })?;
        out.push(scope);
    }
    out.sort();
    out.dedup();
    Ok(out)
}
