-- A sample application database for `docker compose up`: the application's _nice_binary table (before the first
-- migration: no sha2 column) with a few hundred large objects, a few invalid rows, and the batch job the pre-flight
-- checks (inactive). Runs once, when the postgres volume is first initialised.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- The same definition as @lo-migrate/postgres's createNiceBinaryTable({ sha2Column: false }): libs/postgres/test/
-- testing.test.ts compares the two in the catalog.
CREATE TABLE _nice_binary (
  hash      char(40)     NOT NULL PRIMARY KEY,
  size      bigint       NOT NULL,
  mime_type varchar(255) NOT NULL,
  data      oid
);

CREATE TABLE nice_batch_job (
  id     varchar(255) NOT NULL PRIMARY KEY,
  active boolean      NOT NULL
);
INSERT INTO nice_batch_job (id, active) VALUES ('nice2.dms.DeleteUnreferencedBinariesBatchJob', false);

-- 300 objects from 0 B to about 6 MiB (mostly small, six large ones).
INSERT INTO _nice_binary (hash, size, mime_type, data)
SELECT encode(digest(content, 'sha1'), 'hex'), length(content),
       (ARRAY['application/pdf', 'image/png', 'text/plain', 'application/octet-stream'])[1 + i % 4],
       lo_from_bytea(0, content)
FROM (
  SELECT i, CASE WHEN i = 0 THEN ''::bytea ELSE gen_random_bytes(1) || decode(repeat(md5(i::text), CASE WHEN i % 50 = 7 THEN 400000 ELSE (i * 37) % 4000 + 1 END), 'hex') END AS content
  FROM generate_series(0, 299) AS i
) AS generated;

-- Invalid rows: they are reported (see --report) and skipped, and make the exit code 1.
INSERT INTO _nice_binary (hash, size, mime_type, data) VALUES
  ('392007d934dd54600110b683f5e52aeeedb1', 5, 'text/plain', lo_from_bytea(0, 'short')),               -- malformed hash
  ('0000000042b415eaf546865acf6287fc8ac1f0e5', 5, 'text/plain', lo_from_bytea(0, 'wrong')),           -- SHA-1 mismatch
  ('d0706a2d42b415eaf546865acf6287fc8ac1f0e6', 10, 'text/plain', NULL);                                -- NULL oid
