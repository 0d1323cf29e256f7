-- Stella service schema, version 5 (SQLite): what the last successful run of
-- a provider saw of an image (its manifest digest and referrers listings),
-- so an unchanged image is skipped after a few cheap registry requests.
-- '' means nothing remembered (the next run discovers again).
ALTER TABLE vex_provider_runs ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
