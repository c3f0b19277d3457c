-- R17: what a held change depends on besides its object (the groups it names, the accounts it
-- adds to a group, the role it assigns), each with its name and version at submission: a JSON
-- array of {resourceType, id, name, version}. Completion fails if any version moved. Requests
-- held before this migration froze nothing.
ALTER TABLE requests ADD COLUMN dependencies TEXT NOT NULL DEFAULT '[]';
