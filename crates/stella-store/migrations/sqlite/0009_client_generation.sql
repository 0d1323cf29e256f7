-- Stella service schema (SQLite): a generation counter for the `clients`
-- table. Every UPDATE or DELETE of a client (a revoke) bumps it in the same
-- transaction, so a server that caches client rows can tell, by reading
-- this one row now and then, whether any cached row may be stale.

CREATE TABLE client_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO client_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER client_generation_on_update AFTER UPDATE ON clients
BEGIN
    UPDATE client_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER client_generation_on_delete AFTER DELETE ON clients
BEGIN
    UPDATE client_generation SET generation = generation + 1 WHERE id = 1;
END;
