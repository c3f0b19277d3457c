-- Found by countersign-bench's history scenario (1,000,000 requests).
-- Lists filtered by status read the newest requests in that status straight from this index,
-- instead of scanning the newest requests of every status until a page fills.
CREATE INDEX requests_status ON requests (status, id);
-- The expiry sweep and the reminder look up open requests by status and expiry time. This
-- replaces the partial index, which the planner passed over for `requests_status` once that
-- existed (scanning every open request, then sorting).
CREATE INDEX requests_status_expiry ON requests (status, expires_at);
DROP INDEX requests_open_expiry;
