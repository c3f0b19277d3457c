//! Seeding a long history fast: requests spread over statuses, types, requesters and half a
//! year, and a valid audit chain, written in large multi-row statements.

use crate::raw::{RawPool, Step, Val};
use crate::tenant::{needs_security_approvers, Tenant};
use anyhow::Result;
use countersign_core::audit::{chain_entries, AuditRecord};
use countersign_core::profile::ProfileType;
use countersign_core::{Millis, MILLIS_PER_DAY};
use uuid::{NoContext, Timestamp, Uuid};

/// Rows written per transaction.
const BATCH: usize = 20_000;
/// How far back the history reaches.
const SPAN: Millis = 180 * MILLIS_PER_DAY;

/// A cheap, repeatable pseudo-random number for row `i` (SplitMix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A UUIDv7 for an instant in the past, as the store would have made then.
fn id_at(at: Millis, i: u64) -> String {
    let seconds = (at / 1000) as u64;
    let nanos = ((at % 1000) as u32) * 1_000_000 + (i % 1_000_000) as u32;
    Uuid::new_v7(Timestamp::from_unix(NoContext, seconds, nanos)).to_string()
}

/// Row `i` of `rows`' moment: evenly spread over the span, oldest first.
fn moment(now: Millis, i: usize, rows: usize) -> Millis {
    now - SPAN + (SPAN as f64 * i as f64 / rows.max(1) as f64) as Millis
}

const KINDS: [(&str, &str, ProfileType); 10] = [
    ("app", "update", ProfileType::App),
    ("app", "assign", ProfileType::App),
    ("script", "update", ProfileType::Script),
    ("compliancePolicy", "update", ProfileType::CompliancePolicy),
    ("configurationPolicy", "update", ProfileType::ConfigurationPolicy),
    ("device", "wipe", ProfileType::DeviceWipe),
    ("device", "retire", ProfileType::DeviceRetire),
    ("role", "update", ProfileType::Role),
    ("accessPolicy", "update", ProfileType::OperationApprovalPolicy),
    ("deviceCategory", "update", ProfileType::TenantConfiguration),
];

/// Terminal statuses by weight; open ones only within the last 30 days (older would have expired).
fn status(h: u64, age: Millis) -> &'static str {
    let roll = h % 100;
    if age < 30 * MILLIS_PER_DAY && roll < 15 {
        return if roll < 10 { "needsApproval" } else { "approved" };
    }
    match roll % 20 {
        0 => "rejected",
        1 => "cancelled",
        2 => "expired",
        3 => "failed",
        _ => "completed",
    }
}

const REQUEST_COLUMNS: [&str; 23] = [
    "id",
    "resource_type",
    "object_id",
    "object_name",
    "operation",
    "profile_type",
    "policy_id",
    "status",
    "justification",
    "requested_by",
    "requested_by_name",
    "requested_at",
    "last_modified_at",
    "expires_at",
    "ttl_ms",
    "required_approvals",
    "completion",
    "completed_at",
    "failure_reason",
    "before_state",
    "before_version",
    "after_state",
    "secret",
];

/// Writes `rows` requests with their approver groups and decisions. Returns some of their ids,
/// spread over the whole history, for look-ups.
pub async fn seed_requests(pool: &RawPool, tenant: &Tenant, rows: usize, now: Millis) -> Result<Vec<String>> {
    let mut samples = Vec::new();
    let sample_every = (rows / 1000).max(1);
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH).min(rows);
        let (mut requests, mut groups, mut approvals) = (Vec::new(), Vec::new(), Vec::new());
        for i in start..end {
            let h = mix(i as u64);
            let at = moment(now, i, rows);
            let id = id_at(at, i as u64);
            if i % sample_every == 0 {
                samples.push(id.clone());
            }
            let (resource_type, operation, profile_type) = KINDS[(h % KINDS.len() as u64) as usize];
            let status = status(h >> 8, now - at);
            let open = matches!(status, "needsApproval" | "approved");
            // R4: one open request per object; closed ones share a pool of objects.
            let object_id = if open { format!("object-open-{i}") } else { format!("object-{}", (h >> 20) % 5000) };
            let requester = &tenant.requesters[((h >> 32) % tenant.requesters.len() as u64) as usize];
            let decided_at = at + ((h >> 40) % (2 * MILLIS_PER_DAY as u64)) as Millis;
            let last_modified = if status == "needsApproval" { at } else { decided_at.min(now) };
            let before =
                format!(r#"{{"name":"{object_id}","description":"","document":{{"version":"{}.0"}}}}"#, h % 50);
            let after =
                format!(r#"{{"name":"{object_id}","description":"","document":{{"version":"{}.0"}}}}"#, h % 50 + 1);
            requests.push(vec![
                Val::Text(id.clone()),
                Val::Text(resource_type.into()),
                Val::Text(object_id.clone()),
                Val::Text(object_id),
                Val::Text(operation.into()),
                Val::Text(profile_type.as_str().into()),
                Val::Text(tenant.policy_for(profile_type).to_owned()),
                Val::Text(status.into()),
                Val::Text(format!("Change ticket CHG{:07}", h % 10_000_000)),
                Val::Text(requester.id.clone()),
                Val::Text(requester.name.clone()),
                Val::Int(at),
                Val::Int(last_modified),
                Val::Int(at + 30 * MILLIS_PER_DAY),
                Val::Int(30 * MILLIS_PER_DAY),
                Val::Int(1),
                Val::Text("requester".into()),
                Val::OptInt((status == "completed").then_some(last_modified)),
                Val::OptText((status == "failed").then(|| "Nothing was applied: the object changed".into())),
                Val::Text(before),
                Val::Int(1),
                Val::Text(after),
                Val::OptText(None),
            ]);
            let group =
                if needs_security_approvers(profile_type) { &tenant.security_group } else { &tenant.approvers_group };
            groups.push(vec![Val::Text(id.clone()), Val::Text(group.clone())]);
            if matches!(status, "approved" | "completed" | "rejected" | "failed") {
                let approver = &tenant.approvers[(h % tenant.approvers.len() as u64) as usize];
                let decision = if status == "rejected" { "reject" } else { "approve" };
                approvals.push(vec![
                    Val::Text(id),
                    Val::Text(approver.id.clone()),
                    Val::Text(approver.name.clone()),
                    Val::Text(decision.into()),
                    Val::OptText(None),
                    Val::Int(last_modified),
                ]);
            }
        }
        pool.write(&Step::Insert { table: "requests", columns: &REQUEST_COLUMNS, rows: &requests }).await?;
        pool.write(&Step::Insert {
            table: "request_approver_groups",
            columns: &["request_id", "group_id"],
            rows: &groups,
        })
        .await?;
        pool.write(&Step::Insert {
            table: "approvals",
            columns: &["request_id", "approver_id", "approver_name", "decision", "notes", "at"],
            rows: &approvals,
        })
        .await?;
        start = end;
    }
    Ok(samples)
}

pub const AUDIT_COLUMNS: [&str; 15] = [
    "seq",
    "id",
    "at",
    "actor_id",
    "actor_name",
    "category",
    "action",
    "target_type",
    "target_id",
    "details",
    "prev_hash",
    "hash",
    "entry",
    "link",
    "key_id",
];

/// A chained entry's `AUDIT_COLUMNS`.
pub fn audit_values(record: &AuditRecord) -> Vec<Val> {
    vec![
        Val::Int(record.seq),
        Val::Text(record.id.clone()),
        Val::Int(record.at),
        Val::OptText(record.actor_id.clone()),
        Val::Text(record.actor_name.clone()),
        Val::Text(record.category.clone()),
        Val::Text(record.action.clone()),
        Val::OptText(record.target_type.clone()),
        Val::OptText(record.target_id.clone()),
        // The details live in the entry's bytes only (store migration 0013).
        Val::Text(String::new()),
        Val::Text(record.prev_hash.clone()),
        Val::Text(record.hash.clone()),
        Val::Text(String::from_utf8_lossy(&record.canonical_bytes()).into_owned()),
        Val::OptText(record.link.clone()),
        Val::OptText(record.key_id.clone()),
    ]
}

/// Appends `rows` entries to the audit chain after its current head, so the whole chain stays
/// valid. `each` sees every entry written (the audit-verify scenario keeps their bytes).
pub async fn seed_audit(
    pool: &RawPool,
    tenant: &Tenant,
    rows: usize,
    now: Millis,
    mut each: impl FnMut(&AuditRecord),
) -> Result<()> {
    let mut head = pool.head().await?;
    let keys = crate::audit_keys();
    let actors: Vec<_> = tenant.requesters.iter().chain(&tenant.approvers).collect();
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH).min(rows);
        let mut batch = Vec::with_capacity(end - start);
        for i in start..end {
            let h = mix((i as u64) << 1 | 1);
            let at = moment(now, i, rows);
            let actor = actors[(h % actors.len() as u64) as usize];
            let target = format!("{:08x}-0000-7000-8000-{:012x}", h >> 32, h & 0xffff_ffff_ffff);
            let (category, action, target_type) = match h % 20 {
                0..=11 => {
                    ("request", ["created", "approved", "completed", "rejected"][(h >> 8) as usize % 4], "request")
                }
                12..=15 => ("change", "applied", "app"),
                16 => ("directory", "applied", "account"),
                _ => ("auth", "signIn", "account"),
            };
            let record = AuditRecord {
                seq: 0,
                id: id_at(at, i as u64),
                at,
                actor_id: Some(actor.id.clone()),
                actor_name: actor.name.clone(),
                category: category.into(),
                action: action.into(),
                target_type: Some(target_type.into()),
                target_id: Some(target),
                details: format!(
                    r#"{{"objectName":"Object {}","operation":"update","notes":null,"ticket":"CHG{:07}"}}"#,
                    h % 5000,
                    h % 10_000_000
                ),
                prev_hash: String::new(),
                hash: String::new(),
                link: None,
                key_id: None,
            };
            batch.push(record);
        }
        chain_entries(&mut head, Some(&keys), &mut batch)?;
        for record in &batch {
            each(record);
        }
        let batch: Vec<Vec<Val>> = batch.iter().map(audit_values).collect();
        pool.write(&Step::Insert { table: "audit_log", columns: &AUDIT_COLUMNS, rows: &batch }).await?;
        start = end;
    }
    pool.set_head(&head).await
}
