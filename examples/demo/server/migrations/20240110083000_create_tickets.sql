-- migrate:up
CREATE TABLE ticket_statuses (
    status_id int PRIMARY KEY,
    label text NOT NULL
);
INSERT INTO ticket_statuses VALUES (1, 'open'), (2, 'waiting; on customer'), (3, 'closed');

CREATE TABLE tickets (
    tenant uuid NOT NULL REFERENCES tenants (tenant),
    ticket_id bigint GENERATED ALWAYS AS IDENTITY,
    title text NOT NULL,
    status_id int NOT NULL REFERENCES ticket_statuses (status_id),
    PRIMARY KEY (tenant, ticket_id)
);

-- A function body with semicolons inside dollar quotes: split as one statement.
CREATE FUNCTION ticket_title_not_blank() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF btrim(NEW.title) = '' THEN
        RAISE EXCEPTION 'ticket title must not be blank';
    END IF;
    RETURN NEW;
END;
$fn$;

-- migrate:down
DROP TABLE tickets;
DROP TABLE ticket_statuses;
DROP FUNCTION ticket_title_not_blank();
