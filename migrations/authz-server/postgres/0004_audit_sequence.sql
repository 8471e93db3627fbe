-- Audit events get an insertion sequence: events in the same second keep the order in
-- which they happened (random ids could not break that tie).
ALTER TABLE audit_events ADD COLUMN seq BIGSERIAL;
DROP INDEX audit_events_at;
CREATE INDEX audit_events_at ON audit_events(at, seq);
