-- Countersign schema. Ids are TEXT UUIDv7, times BIGINT Unix milliseconds, JSON TEXT, flags
-- BIGINT 0/1, so that one SQL text serves SQLite and PostgreSQL (DESIGN §5).

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    email TEXT,
    password_hash TEXT,
    enabled BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX accounts_username ON accounts (username) WHERE deleted_at IS NULL;

CREATE TABLE directory_groups (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES directory_groups (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX group_members_account ON group_members (account_id);

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,
    built_in BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles (id),
    group_ids TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Apps, scripts, compliance and configuration policies, device categories and devices.
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    document TEXT NOT NULL,
    assigned_group_ids TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX resources_type ON resources (type, id);

CREATE TABLE access_policies (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    profile_type TEXT NOT NULL,
    approver_group_ids TEXT NOT NULL,
    required_approvals BIGINT NOT NULL,
    completion TEXT NOT NULL,
    request_ttl_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX access_policies_profile_type ON access_policies (profile_type);

CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    resource_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    object_name TEXT NOT NULL,
    operation TEXT NOT NULL,
    profile_type TEXT NOT NULL,
    policy_id TEXT,
    status TEXT NOT NULL,
    justification TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_name TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ttl_ms BIGINT NOT NULL,
    required_approvals BIGINT NOT NULL,
    completion TEXT NOT NULL,
    completed_at BIGINT,
    failure_reason TEXT,
    before_state TEXT NOT NULL,
    before_version BIGINT NOT NULL,
    after_state TEXT NOT NULL,
    secret TEXT
);
-- R4: one open request per object, enforced by the database.
CREATE UNIQUE INDEX requests_one_open_per_object ON requests (resource_type, object_id)
    WHERE status IN ('needsApproval', 'approved');
CREATE INDEX requests_requested_by ON requests (requested_by, id);
CREATE INDEX requests_open_expiry ON requests (expires_at) WHERE status IN ('needsApproval', 'approved');
CREATE INDEX requests_last_modified ON requests (last_modified_at);

-- Which groups may see a request in "Received requests"; refreshed when its policy changes.
CREATE TABLE request_approver_groups (
    request_id TEXT NOT NULL REFERENCES requests (id),
    group_id TEXT NOT NULL,
    PRIMARY KEY (request_id, group_id)
);
CREATE INDEX request_approver_groups_group ON request_approver_groups (group_id, request_id);

-- R7: the primary key makes each approver count once.
CREATE TABLE approvals (
    request_id TEXT NOT NULL REFERENCES requests (id),
    approver_id TEXT NOT NULL,
    approver_name TEXT NOT NULL,
    decision TEXT NOT NULL,
    notes TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);

-- R13: append-only, hash-chained.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_name TEXT NOT NULL,
    category TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_category ON audit_log (category, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- The chain head: the one row every append locks, so appends form one chain.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    display_name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE login_failures (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_address ON login_failures (address, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
