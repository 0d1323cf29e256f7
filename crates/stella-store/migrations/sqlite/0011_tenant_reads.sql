-- Stella service schema (SQLite): nothing to do. The Postgres migration of
-- the same number adds one-statement tenant read functions; SQLite has no
-- row-level security and no round trips, so its reads need no equivalent.
-- The file keeps the two version sets equal.
SELECT 1;
