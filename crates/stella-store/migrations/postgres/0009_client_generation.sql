-- Stella service schema (Postgres): a generation counter for the `clients`
-- table. Every UPDATE or DELETE of clients (a revoke) bumps it in the same
-- transaction, so a server that caches client rows can tell, by reading
-- this one row now and then, whether any cached row may be stale. Operator
-- data like `clients`: no tenant, no policy. The trigger function runs as
-- its owner (SECURITY DEFINER), so the service role may read the counter
-- but not change it.

CREATE TABLE client_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO client_generation (id, generation) VALUES (1, 0);
GRANT SELECT ON client_generation TO stella_app;

CREATE FUNCTION client_generation_bump() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('UPDATE %I.client_generation SET generation = generation + 1 WHERE id = 1',
                   TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION client_generation_bump() FROM PUBLIC;

CREATE TRIGGER client_generation_on_change
    AFTER UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION client_generation_bump();
