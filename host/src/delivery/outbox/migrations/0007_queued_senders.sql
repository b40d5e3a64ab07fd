-- mail.db schema 7: the scheduler keeps, in memory, which senders (staff member and From) have
-- queued email and when each may send next, and looks at the table only to refresh that
-- picture and to take the head of one sender's queue. This partial index holds just the
-- queued emails, in the order they go (not_before, then created_at, then the rowid every
-- index ends with), the status first so that the refresh needs no row of the table. The
-- refresh reads the queue, never the history of sent emails, and a head is one index entry
-- however long the queue behind it.
CREATE INDEX emails_queued_senders
    ON emails (status, staff_id, from_address, not_before, created_at)
    WHERE status = 'queued';

-- The index of schema 6 served an update that held every queued email of a sender at once;
-- the scheduler holds them in memory now, and the index above answers what it did.
DROP INDEX emails_queued_by_sender;

-- Admission sums a mailbox's recipients over 24 hours: with the recipients in the index, the
-- sum reads the index alone.
DROP INDEX send_ledger_by_mailbox;
CREATE INDEX send_ledger_by_mailbox ON send_ledger (mailbox, at, recipients);
