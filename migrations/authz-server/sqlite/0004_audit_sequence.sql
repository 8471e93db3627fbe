-- Audit events get an insertion sequence: events in the same second keep the order in
-- which they happened (random ids could not break that tie).
CREATE TABLE audit_events_seq (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    user_id   TEXT,
    client_id TEXT,
    detail    TEXT NOT NULL
);
INSERT INTO audit_events_seq (id, at, kind, user_id, client_id, detail)
    SELECT id, at, kind, user_id, client_id, detail FROM audit_events ORDER BY at, rowid;
DROP TABLE audit_events;
ALTER TABLE audit_events_seq RENAME TO audit_events;
CREATE INDEX audit_events_at ON audit_events(at, seq);
