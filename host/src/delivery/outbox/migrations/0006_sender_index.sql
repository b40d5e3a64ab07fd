-- mail.db schema 6: when a sending limit holds one email, the engine holds every queued email
-- of the same staff member and From with it (they share the mailbox); this index makes that
-- one update touch only those rows instead of scanning the table.
CREATE INDEX emails_queued_by_sender ON emails (staff_id, from_address, status, not_before);
