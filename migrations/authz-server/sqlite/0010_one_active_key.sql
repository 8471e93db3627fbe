-- At most one signing key is active. Two instances started together on a new database could
-- each create one; the newest stays active, any other is retired now (and stays published
-- until its tokens expire).
UPDATE signing_keys SET retired_at = CAST(strftime('%s', 'now') AS INTEGER)
 WHERE retired_at IS NULL
   AND kid <> (SELECT kid FROM signing_keys WHERE retired_at IS NULL
                ORDER BY created_at DESC, kid DESC LIMIT 1);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL))
 WHERE retired_at IS NULL;
