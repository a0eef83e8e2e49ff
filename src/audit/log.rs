//! Audit log lines: one `tracing` event per committed record (what the group-commit writer may
//! call after a commit; nothing here reads or writes the database).

use crate::engine::WriteOp;
use crate::model::AuditRecord;

/// The `tracing` target of audit log lines.
pub const TARGET: &str = "tokengate::audit";

/// Logs one audit record (call after it is durable).
pub fn emit(r: &AuditRecord) {
    tracing::info!(
        target: TARGET,
        at = r.at,
        actor = r.actor.as_deref(),
        user = %r.user_name,
        client = r.client.as_deref(),
        protocol = %r.protocol,
        method = %r.method,
        result = %r.result,
        reason = %r.reason,
        "audit"
    );
}

/// Logs the audit records of the groups whose result is `true` (committed with all their ops).
/// Called by the writer once a batch has committed and its submitters have been answered.
pub fn emit_committed(groups: &[Vec<WriteOp>], committed: &[bool]) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    for (group, ok) in groups.iter().zip(committed) {
        if !ok {
            continue;
        }
        for op in group {
            if let WriteOp::Audit(r) = op {
                emit(r);
            }
        }
    }
}
