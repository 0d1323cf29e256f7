//! The tenant a request acts for, as established by authentication.

/// Who is acting, for which tenant. Built by the service's authentication
/// layer from a verified token (or by an admin command for its own
/// operations); every tenant-owned query takes one, and the repository adds
/// `tenant_id = ?` from it. There is deliberately no way to get a
/// `TenantContext` from an HTTP request other than through that layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantContext {
    tenant: String,
    subject: String,
}

impl TenantContext {
    /// For the authentication layer: `tenant` and `subject` must come from a
    /// verified token, never from request input.
    pub fn from_verified_identity(tenant: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            subject: subject.into(),
        }
    }
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
}
