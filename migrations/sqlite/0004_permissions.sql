-- Permissions and organizations: the lookups the snapshot, organization deletion and the
-- paginated lists need.
CREATE INDEX permissions_scope ON permissions (scope_type, scope_id);
CREATE INDEX memberships_org_page ON memberships (organization_id, created_at, user_id);
CREATE INDEX organizations_page ON organizations (created_at, id);
