//! Accounts, groups, roles and role assignments: reads, permissions and approver facts.

use crate::rows::{int, json, opt_text, text};
use crate::{placeholders, Backend, Result, Row, Store, StoreError};
use countersign_core::eligibility::{AccountKind, Candidate};
use countersign_core::permission::{PermissionSet, BUILT_IN_ROLES};
use countersign_core::Millis;
use serde::Serialize;
use sqlx::AnyConnection;

/// Who is acting: the caller of every store operation that changes something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    /// The display name, as the audit log and requests record it.
    pub name: String,
    /// R20: the immutable username, shown beside the display name wherever the actor is named.
    pub username: String,
    pub kind: AccountKind,
    /// R16: the accounts that control the credential this actor acts through (empty: only the
    /// actor). A credential the actor makes carries them on.
    pub via: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub email: Option<String>,
    pub enabled: bool,
    pub version: i64,
    pub created_at: Millis,
    /// R16: still on a password another account set; must replace it before anything else.
    pub password_change_required: bool,
    /// R20: why this account's display name, kept from before names were checked, is too like
    /// another's (or hides characters); its next change must give it a new one. `None`: fine.
    pub display_name_flag: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
}

impl AccountRecord {
    /// The account acting through a credential nobody else controls (see [`Actor::via`]).
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id.clone(),
            name: self.display_name.clone(),
            username: self.username.clone(),
            kind: self.kind,
            via: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub version: i64,
    pub member_count: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub built_in: bool,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentRecord {
    pub id: String,
    pub display_name: String,
    pub role_id: String,
    pub group_ids: Vec<String>,
    pub version: i64,
}

/// One approver-group member and whether they could approve (R2, R14).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EligibilityRow {
    pub account_id: String,
    pub username: String,
    pub display_name: String,
    pub group_id: String,
    pub eligible: bool,
    pub reasons: Vec<String>,
}

pub(crate) const ACCOUNT_COLUMNS: &str =
    "id, username, display_name, kind, email, password_hash, enabled, version, created_at, must_change_password, \
     display_name_flag";

pub(crate) fn account(row: &Row) -> Result<AccountRecord> {
    let kind = text(row, "kind")?;
    Ok(AccountRecord {
        id: text(row, "id")?,
        username: text(row, "username")?,
        display_name: text(row, "display_name")?,
        kind: AccountKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        email: opt_text(row, "email")?,
        enabled: int(row, "enabled")? != 0,
        version: int(row, "version")?,
        created_at: int(row, "created_at")?,
        password_change_required: int(row, "must_change_password")? != 0,
        display_name_flag: opt_text(row, "display_name_flag")?,
        password_hash: opt_text(row, "password_hash")?,
    })
}

pub(crate) fn role(row: &Row) -> Result<RoleRecord> {
    Ok(RoleRecord {
        id: text(row, "id")?,
        display_name: text(row, "display_name")?,
        description: text(row, "description")?,
        permissions: json(row, "permissions")?,
        built_in: int(row, "built_in")? != 0,
        version: int(row, "version")?,
    })
}

pub(crate) fn role_assignment(row: &Row) -> Result<RoleAssignmentRecord> {
    Ok(RoleAssignmentRecord {
        id: text(row, "id")?,
        display_name: text(row, "display_name")?,
        role_id: text(row, "role_id")?,
        group_ids: json(row, "group_ids")?,
        version: int(row, "version")?,
    })
}

pub(crate) async fn account_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<AccountRecord>> {
    let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND deleted_at IS NULL"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(account).transpose()
}

pub(crate) async fn group_ids_of(conn: &mut AnyConnection, account_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT group_id FROM group_members WHERE account_id = $1 ORDER BY group_id")
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| text(r, "group_id")).collect()
}

/// An account's groups, and the union of the permissions of the roles assigned to them, in one
/// statement (R2's facts, read at decision time).
pub(crate) async fn groups_and_permissions_of(
    conn: &mut AnyConnection,
    account_id: &str,
) -> Result<(Vec<String>, PermissionSet)> {
    let rows = sqlx::query(
        "SELECT m.group_id AS group_id, NULL AS permissions, NULL AS assigned FROM group_members m \
         WHERE m.account_id = $1 \
         UNION ALL SELECT NULL, r.permissions, a.group_ids FROM role_assignments a JOIN roles r ON r.id = a.role_id",
    )
    .bind(account_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut groups = Vec::new();
    let mut assignments = Vec::new();
    for row in &rows {
        match opt_text(row, "group_id")? {
            Some(group) => groups.push(group),
            None => assignments.push((json(row, "permissions")?, json(row, "assigned")?)),
        }
    }
    groups.sort();
    let permissions = granted(&groups, assignments);
    Ok((groups, permissions))
}

/// The permissions of every role assignment, given as (permissions, member groups), that names
/// one of `groups`.
fn granted(groups: &[String], assignments: Vec<(Vec<String>, Vec<String>)>) -> PermissionSet {
    let mut permissions = PermissionSet::default();
    for (role_permissions, assigned) in assignments {
        if assigned.iter().any(|g| groups.contains(g)) {
            permissions.extend(role_permissions);
        }
    }
    permissions
}

/// An account, with the groups it is in and the permissions they grant: what every
/// authenticated call needs, read with the credential in one statement.
#[derive(Debug, Clone)]
pub struct AccountAccess {
    pub account: AccountRecord,
    pub group_ids: Vec<String>,
    pub permissions: PermissionSet,
    /// R16: who controls the credential (session or token) this access was read through.
    pub via: Vec<String>,
}

/// Columns `access_groups` and `access_roles`, for a query that names the account `a`: its
/// groups, and every role assignment as (permissions, member groups), as JSON. With them a
/// credential check is one round trip, not three (countersign-bench, lifecycle profile).
pub(crate) fn access_columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "(SELECT COALESCE(json_agg(m.group_id ORDER BY m.group_id), '[]'::json)::text \
             FROM group_members m WHERE m.account_id = a.id) AS access_groups, \
             (SELECT COALESCE(json_agg(json_build_array(r.permissions, ra.group_ids)), '[]'::json)::text \
             FROM role_assignments ra JOIN roles r ON r.id = ra.role_id) AS access_roles"
        }
        Backend::Sqlite => {
            "(SELECT COALESCE(json_group_array(m.group_id ORDER BY m.group_id), '[]') \
             FROM group_members m WHERE m.account_id = a.id) AS access_groups, \
             (SELECT COALESCE(json_group_array(json_array(r.permissions, ra.group_ids)), '[]') \
             FROM role_assignments ra JOIN roles r ON r.id = ra.role_id) AS access_roles"
        }
    }
}

/// The account and its access from a row with [`access_columns`].
pub(crate) fn account_access(row: &Row) -> Result<AccountAccess> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("access: {e}"));
    let group_ids: Vec<String> = serde_json::from_str(&text(row, "access_groups")?).map_err(corrupt)?;
    let roles: Vec<(String, String)> = serde_json::from_str(&text(row, "access_roles")?).map_err(corrupt)?;
    let assignments = roles
        .iter()
        .map(|(permissions, assigned)| {
            Ok((serde_json::from_str(permissions).map_err(corrupt)?, serde_json::from_str(assigned).map_err(corrupt)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let permissions = granted(&group_ids, assignments);
    Ok(AccountAccess { account: account(row)?, group_ids, permissions, via: vec![] })
}

/// R2's facts about one account, read at decision time.
pub(crate) async fn candidate(conn: &mut AnyConnection, account: &AccountRecord) -> Result<Candidate> {
    let (group_ids, permissions) = groups_and_permissions_of(conn, &account.id).await?;
    Ok(Candidate {
        id: account.id.clone(),
        kind: account.kind,
        enabled: account.enabled,
        password_change_required: account.password_change_required,
        group_ids,
        permissions,
    })
}

/// Members of `group_ids` with their R2 facts and usernames, sorted by username.
pub(crate) async fn members_as_candidates(
    conn: &mut AnyConnection,
    group_ids: &[String],
) -> Result<Vec<(Candidate, AccountRecord, String)>> {
    if group_ids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT m.group_id AS member_of, {} FROM group_members m JOIN accounts a ON a.id = m.account_id \
         WHERE a.deleted_at IS NULL AND m.group_id IN ({}) ORDER BY a.username, m.group_id",
        ACCOUNT_COLUMNS.split(", ").map(|c| format!("a.{c} AS {c}")).collect::<Vec<_>>().join(", "),
        placeholders(1, group_ids.len())
    );
    let mut query = sqlx::query(&sql);
    for g in group_ids {
        query = query.bind(g);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut out = Vec::new();
    for row in &rows {
        let record = account(row)?;
        let member_of = text(row, "member_of")?;
        let candidate = candidate(conn, &record).await?;
        out.push((candidate, record, member_of));
    }
    Ok(out)
}

impl Store {
    pub async fn account(&self, id: &str) -> Result<Option<AccountRecord>> {
        let mut conn = self.pool().acquire().await?;
        account_by_id(&mut conn, id).await
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Option<AccountRecord>> {
        let row =
            sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1 AND deleted_at IS NULL"))
                .bind(username)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(account).transpose()
    }

    pub async fn accounts(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<AccountRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account).collect()
    }

    /// R20: the usernames of the accounts `ids`, by id, deleted accounts included (their rows
    /// stay, so history keeps naming them). Unknown ids are left out.
    pub async fn usernames(&self, ids: &[String]) -> Result<std::collections::HashMap<String, String>> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let sql = format!("SELECT id, username FROM accounts WHERE id IN ({})", placeholders(1, unique.len()));
        let mut query = sqlx::query(&sql);
        for id in unique {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((text(r, "id")?, text(r, "username")?))).collect()
    }

    pub async fn account_count(&self) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE deleted_at IS NULL").fetch_one(self.pool()).await?;
        int(&row, "n")
    }

    pub async fn group_ids_of(&self, account_id: &str) -> Result<Vec<String>> {
        let mut conn = self.pool().acquire().await?;
        group_ids_of(&mut conn, account_id).await
    }

    pub async fn group(&self, id: &str) -> Result<Option<GroupRecord>> {
        let row = sqlx::query(
            "SELECT g.id AS id, g.display_name AS display_name, g.description AS description, g.version AS version, \
             (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count \
             FROM directory_groups g WHERE g.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(group).transpose()
    }

    pub async fn groups(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<GroupRecord>> {
        let rows = sqlx::query(
            "SELECT g.id AS id, g.display_name AS display_name, g.description AS description, g.version AS version, \
             (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count \
             FROM directory_groups g WHERE g.id > $1 ORDER BY g.id LIMIT $2",
        )
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(group).collect()
    }

    pub async fn group_members(&self, group_id: &str) -> Result<Vec<AccountRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM group_members m JOIN accounts a ON a.id = m.account_id \
             WHERE m.group_id = $1 AND a.deleted_at IS NULL ORDER BY a.username",
            ACCOUNT_COLUMNS.split(", ").map(|c| format!("a.{c} AS {c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(group_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account).collect()
    }

    pub async fn roles(&self) -> Result<Vec<RoleRecord>> {
        let rows = sqlx::query(
            "SELECT id, display_name, description, permissions, built_in, version FROM roles ORDER BY built_in DESC, display_name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(role).collect()
    }

    pub async fn role(&self, id: &str) -> Result<Option<RoleRecord>> {
        let row = sqlx::query(
            "SELECT id, display_name, description, permissions, built_in, version FROM roles WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(role).transpose()
    }

    pub async fn role_assignments(&self) -> Result<Vec<RoleAssignmentRecord>> {
        let rows = sqlx::query(
            "SELECT id, display_name, role_id, group_ids, version FROM role_assignments ORDER BY display_name, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(role_assignment).collect()
    }

    pub async fn role_assignment(&self, id: &str) -> Result<Option<RoleAssignmentRecord>> {
        let row =
            sqlx::query("SELECT id, display_name, role_id, group_ids, version FROM role_assignments WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(role_assignment).transpose()
    }

    /// Every member of `group_ids` and whether they could decide requests on
    /// `resource_type` (R2), with the reasons when not.
    pub async fn approver_eligibility(
        &self,
        group_ids: &[String],
        resource_type: countersign_core::profile::ResourceType,
    ) -> Result<Vec<EligibilityRow>> {
        let mut conn = self.pool().acquire().await?;
        let members = members_as_candidates(&mut conn, group_ids).await?;
        Ok(members
            .into_iter()
            .map(|(candidate, record, member_of)| {
                let reasons = countersign_core::eligibility::ineligibility(&candidate, group_ids, resource_type);
                EligibilityRow {
                    account_id: record.id,
                    username: record.username,
                    display_name: record.display_name,
                    group_id: member_of,
                    eligible: reasons.is_empty(),
                    reasons: reasons.iter().map(ToString::to_string).collect(),
                }
            })
            .collect())
    }

    /// Inserts or refreshes the built-in roles; run at every start so new permissions reach them.
    pub async fn seed_built_in_roles(&self, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        tx.serialise_on_chain_head().await?;
        for built_in in BUILT_IN_ROLES {
            let permissions =
                serde_json::to_string(&(built_in.permissions)()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let existing = sqlx::query("SELECT permissions FROM roles WHERE id = $1")
                .bind(built_in.id)
                .fetch_optional(tx.conn())
                .await?;
            match existing {
                None => {
                    sqlx::query(
                        "INSERT INTO roles (id, display_name, description, permissions, built_in, version, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 1, 1, $5, $5)",
                    )
                    .bind(built_in.id)
                    .bind(built_in.display_name)
                    .bind(built_in.description)
                    .bind(&permissions)
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
                }
                Some(row) if text(&row, "permissions")? != permissions => {
                    sqlx::query(
                        "UPDATE roles SET permissions = $1, version = version + 1, updated_at = $2 WHERE id = $3",
                    )
                    .bind(&permissions)
                    .bind(now)
                    .bind(built_in.id)
                    .execute(tx.conn())
                    .await?;
                }
                Some(_) => {}
            }
        }
        tx.commit().await
    }
}

fn group(row: &Row) -> Result<GroupRecord> {
    Ok(GroupRecord {
        id: text(row, "id")?,
        display_name: text(row, "display_name")?,
        description: text(row, "description")?,
        version: int(row, "version")?,
        member_count: int(row, "member_count")?,
    })
}
