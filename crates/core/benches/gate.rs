//! Micro-benchmarks of the MAA gate (R1, R9) and of approver eligibility (R2, R14).
//!
//! Fixtures: 100 access policies and 10,000 accounts, built once outside the timed loops.
//!
//! The product allows at most one access policy per profile type, so a real tenant has at most
//! 10. The 100 policies here are built directly as domain values, bypassing that rule, to give
//! the linear scans of `gate` a worst case far beyond any real tenant; several share a profile
//! type, and the one that matches is placed last so that every lookup scans the whole list.
//!
//! Run with `cargo bench -p countersign-core --bench gate` (add `-- --quick` for a short run).

use countersign_core::control::ControlGraph;
use countersign_core::eligibility::{ensure_satisfiable, ineligibility, AccountKind, Candidate};
use countersign_core::gate::{gate, Gate, Subject};
use countersign_core::permission::{PermissionSet, BUILT_IN_ROLES};
use countersign_core::policy::{AccessPolicy, Completion, DEFAULT_REQUEST_TTL};
use countersign_core::profile::{ProfileType, ResourceType};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

const POLICIES: usize = 100;
const ACCOUNTS: usize = 10_000;
/// Groups named as approvers by some policy; each account is in exactly one of them.
const APPROVER_GROUPS: usize = 20;

/// The profile types of the first 99 policies, in turn. Neither `tenantConfiguration` (the last
/// policy's type) nor `operationApprovalPolicy` (whose presence short-cuts R9) is among them.
const CYCLE: [ProfileType; 8] = [
    ProfileType::App,
    ProfileType::Script,
    ProfileType::CompliancePolicy,
    ProfileType::ConfigurationPolicy,
    ProfileType::DeviceWipe,
    ProfileType::DeviceRetire,
    ProfileType::DeviceDelete,
    ProfileType::Role,
];

fn approver_group(n: usize) -> String {
    format!("approvers-{:02}", n % APPROVER_GROUPS)
}

fn policy(i: usize, profile_type: ProfileType) -> AccessPolicy {
    AccessPolicy {
        id: format!("policy-{i:03}"),
        display_name: format!("Policy {i}"),
        description: String::new(),
        profile_type,
        approver_group_ids: vec![approver_group(i), approver_group(i + 7), approver_group(i + 13)],
        required_approvals: 1 + (i % 3) as i64,
        completion: Completion::Requester,
        request_ttl_ms: DEFAULT_REQUEST_TTL,
        protect_assigned_groups: true,
        step_up: countersign_core::step_up::StepUp::None,
    }
}

/// 100 policies, none for `operationApprovalPolicy`; only the last is for `tenantConfiguration`.
fn policies() -> Vec<AccessPolicy> {
    (0..POLICIES)
        .map(|i| policy(i, if i == POLICIES - 1 { ProfileType::TenantConfiguration } else { CYCLE[i % CYCLE.len()] }))
        .collect()
}

fn role_permissions(display_name: &str) -> PermissionSet {
    let role = BUILT_IN_ROLES.iter().find(|r| r.display_name == display_name).expect("a built-in role");
    (role.permissions)().into_iter().collect()
}

/// 10,000 accounts, each in one approver group and one department group. Most hold the
/// Approver role; about 8% may not approve (service accounts, disabled, or read-only).
fn accounts() -> Vec<(Candidate, String)> {
    let approver = role_permissions("Approver");
    let read_only = role_permissions("Read Only Operator");
    (0..ACCOUNTS)
        .map(|j| {
            let candidate = Candidate {
                id: format!("00000000-0000-7000-8000-{j:012}"),
                kind: if j % 50 == 0 { AccountKind::Service } else { AccountKind::Human },
                enabled: j % 40 != 1,
                password_change_required: false,
                group_ids: vec![approver_group(j), format!("department-{:03}", j % 100)],
                permissions: if j % 25 == 2 { read_only.clone() } else { approver.clone() },
            };
            (candidate, format!("user{j:05}"))
        })
        .collect()
}

fn held(decision: Gate) -> bool {
    matches!(decision, Gate::Hold(_))
}

fn bench_gate(c: &mut Criterion) {
    let policies = policies();
    let with_oap: Vec<AccessPolicy> = {
        let mut p = policies.clone();
        p.push(policy(POLICIES, ProfileType::OperationApprovalPolicy));
        p
    };
    let existing = &policies[0];
    let mut edited = existing.clone();
    edited.approver_group_ids = vec!["puppets".into()];
    let first_oap = policy(POLICIES, ProfileType::OperationApprovalPolicy);
    let account_groups = vec!["department-042".to_string(), approver_group(5)];

    // What each case decides, checked once so the figures measure what their names say.
    let tenant = Subject::Protectable(ProfileType::TenantConfiguration);
    assert!(held(gate(tenant, &policies)), "the last of 100 policies protects tenantConfiguration");
    assert_eq!(gate(tenant, &policies[..POLICIES - 1]), Gate::Apply, "none of the first 99 does");
    let named_by_15 =
        Subject::GroupMembership { group_id: "approvers-05", is_role_member_group: false, assigned_to: &[] };
    assert!(matches!(gate(named_by_15, &policies), Gate::Hold(g) if g.policy_id.is_none()), "R9 by all 15 at once");
    let first_oap_subject = Subject::AccessPolicy { existing: None, proposed: Some(&first_oap) };
    assert!(
        matches!(gate(first_oap_subject, &policies), Gate::Hold(g) if g.approver_group_ids.len() == APPROVER_GROUPS),
        "R9 by the union of every policy's approver groups"
    );

    let mut group = c.benchmark_group("gate");
    group.bench_function("protected/match_is_last_of_100", |b| {
        b.iter(|| gate(black_box(Subject::Protectable(ProfileType::TenantConfiguration)), black_box(&policies)))
    });
    group.bench_function("protected/match_is_first_of_100", |b| {
        b.iter(|| gate(black_box(Subject::Protectable(ProfileType::App)), black_box(&policies)))
    });
    group.bench_function("unprotected/no_match_in_99", |b| {
        b.iter(|| {
            gate(
                black_box(Subject::Protectable(ProfileType::TenantConfiguration)),
                black_box(&policies[..POLICIES - 1]),
            )
        })
    });
    group.bench_function("r9/update_policy/no_oap_policy", |b| {
        b.iter(|| {
            gate(black_box(Subject::AccessPolicy { existing: Some(existing), proposed: Some(&edited) }), &policies)
        })
    });
    group.bench_function("r9/update_policy/oap_policy_is_last_of_101", |b| {
        b.iter(|| {
            gate(black_box(Subject::AccessPolicy { existing: Some(existing), proposed: Some(&edited) }), &with_oap)
        })
    });
    group.bench_function("r9/create_first_oap_policy/union_of_100", |b| {
        b.iter(|| gate(black_box(Subject::AccessPolicy { existing: None, proposed: Some(&first_oap) }), &policies))
    });
    group.bench_function("r9/approver_group_membership/named_by_15", |b| {
        let subject =
            Subject::GroupMembership { group_id: "approvers-05", is_role_member_group: false, assigned_to: &[] };
        b.iter(|| gate(black_box(subject), black_box(&policies)))
    });
    group.bench_function("r9/other_group_membership/named_by_none", |b| {
        let subject =
            Subject::GroupMembership { group_id: "department-042", is_role_member_group: false, assigned_to: &[] };
        b.iter(|| gate(black_box(subject), black_box(&policies)))
    });
    group.bench_function("r9/account_identity/in_2_groups", |b| {
        let subject = Subject::AccountIdentity { account_group_ids: &account_groups };
        b.iter(|| gate(black_box(subject), black_box(&policies)))
    });
    group.finish();
}

fn bench_eligibility(c: &mut Criterion) {
    let policies = policies();
    let accounts = accounts();
    let policy = &policies[0];
    let resource_type = policy.profile_type.resource_type();
    // The realistic case: the members of one policy's three approver groups (1,500 accounts).
    let members: Vec<(Candidate, String)> = accounts
        .iter()
        .filter(|(c, _)| c.group_ids.iter().any(|g| policy.approver_group_ids.contains(g)))
        .cloned()
        .collect();
    // The extreme case: a policy naming every approver group holds all 10,000 accounts.
    let every_group: Vec<String> = (0..APPROVER_GROUPS).map(approver_group).collect();

    let eligible = &members[1].0;
    let mut hopeless = eligible.clone();
    hopeless.kind = AccountKind::Service;
    hopeless.enabled = false;
    hopeless.group_ids = vec!["department-042".into()];
    hopeless.permissions = PermissionSet::default();
    assert!(ineligibility(eligible, &policy.approver_group_ids, resource_type).is_empty());
    assert_eq!(ineligibility(&hopeless, &policy.approver_group_ids, resource_type).len(), 5);

    let mut group = c.benchmark_group("eligibility");
    group.bench_function("ineligibility/eligible", |b| {
        b.iter(|| ineligibility(black_box(eligible), black_box(&policy.approver_group_ids), black_box(resource_type)))
    });
    group.bench_function("ineligibility/all_5_reasons", |b| {
        b.iter(|| ineligibility(black_box(&hopeless), black_box(&policy.approver_group_ids), black_box(resource_type)))
    });

    for (members, groups) in [(&members, &policy.approver_group_ids), (&accounts, &every_group)] {
        let saver = &members[0].0.id;
        let eligible_count = members.iter().filter(|(c, _)| ineligibility(c, groups, resource_type).is_empty()).count();
        assert!(eligible_count * 5 > members.len() * 4, "{eligible_count} of {}", members.len());
        assert!(ensure_satisfiable(
            saver,
            members,
            &ControlGraph::default(),
            groups,
            ResourceType::App,
            policy.required_approvals
        )
        .is_ok());

        group.throughput(Throughput::Elements(members.len() as u64));
        // Who is eligible now: the approvers a request's notifications go to.
        group.bench_with_input(BenchmarkId::new("eligible_approvers", members.len()), members, |b, members| {
            b.iter(|| {
                members
                    .iter()
                    .filter(|(c, _)| ineligibility(c, black_box(groups), black_box(resource_type)).is_empty())
                    .count()
            })
        });
        // R14 when a policy is saved: also explains every member that does not count.
        group.bench_with_input(BenchmarkId::new("ensure_satisfiable", members.len()), members, |b, members| {
            b.iter(|| {
                ensure_satisfiable(
                    black_box(saver),
                    black_box(members),
                    black_box(&ControlGraph::default()),
                    black_box(groups),
                    black_box(resource_type),
                    black_box(policy.required_approvals),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gate, bench_eligibility);
criterion_main!(benches);
