-- The schema every client suite starts from (clients/run.sh loads it into each database):
-- a no-code database builder's fields, ten in table 12 of application 7, five in table 13.
CREATE EXTENSION lockhier;
CREATE TABLE database_field (
    id bigint PRIMARY KEY,
    table_id bigint NOT NULL,
    name text NOT NULL
);
INSERT INTO database_field
SELECT id, 12, 'field ' || id FROM generate_series(95, 104) AS id
UNION ALL
SELECT id, 13, 'field ' || id FROM generate_series(200, 204) AS id;
