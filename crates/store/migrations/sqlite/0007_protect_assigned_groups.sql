-- R18: whether a change to the membership of a group that an object of the policy's profile
-- type is assigned to is held under the policy. Existing policies protect them, as new ones do
-- unless they opt out.
ALTER TABLE access_policies ADD COLUMN protect_assigned_groups BIGINT NOT NULL DEFAULT 1;
-- Requests keep the policy states they were proposed with, and a stored state states every
-- field: those proposed before this migration gain the switch with the value policies now have.
UPDATE requests SET before_state = json_set(before_state, '$.protectAssignedGroups', json('true'))
    WHERE resource_type = 'accessPolicy' AND before_state <> 'null';
UPDATE requests SET after_state = json_set(after_state, '$.protectAssignedGroups', json('true'))
    WHERE resource_type = 'accessPolicy' AND after_state <> 'null';
