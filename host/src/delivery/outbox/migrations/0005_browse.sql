-- mail.db schema 4: browsing many emails (the Email Maintenance page).
--
-- Newest-first listing without a status walks emails_by_created; with a status, the existing
-- emails_by_status (status, created_at). Both end in the rowid, which breaks ties, so paging is
-- by key (created_at, rowid), never by OFFSET.
--
-- emails_search is a full-text index (FTS5) of each email's subject and people (sender and
-- recipients, addresses and names), keyed by the email's rowid and kept in step by triggers.
-- mailhost never runs VACUUM, so rowids do not move under it.
CREATE INDEX emails_by_created ON emails (created_at);

CREATE VIRTUAL TABLE emails_search USING fts5(
    subject,
    people,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO emails_search (rowid, subject, people)
SELECT rowid, subject,
       from_address || ' ' || from_name || ' ' ||
       (SELECT coalesce(group_concat(json_extract(value, '$.address') || ' ' ||
                                     coalesce(json_extract(value, '$.name'), ''), ' '), '')
          FROM json_each(to_json)) || ' ' ||
       (SELECT coalesce(group_concat(json_extract(value, '$.address') || ' ' ||
                                     coalesce(json_extract(value, '$.name'), ''), ' '), '')
          FROM json_each(cc_json))
  FROM emails;

CREATE TRIGGER emails_search_insert AFTER INSERT ON emails BEGIN
    INSERT INTO emails_search (rowid, subject, people)
    VALUES (new.rowid, new.subject,
        new.from_address || ' ' || new.from_name || ' ' ||
        (SELECT coalesce(group_concat(json_extract(value, '$.address') || ' ' ||
                                      coalesce(json_extract(value, '$.name'), ''), ' '), '')
           FROM json_each(new.to_json)) || ' ' ||
        (SELECT coalesce(group_concat(json_extract(value, '$.address') || ' ' ||
                                      coalesce(json_extract(value, '$.name'), ''), ' '), '')
           FROM json_each(new.cc_json)));
END;

CREATE TRIGGER emails_search_delete AFTER DELETE ON emails BEGIN
    DELETE FROM emails_search WHERE rowid = old.rowid;
END;

CREATE TRIGGER emails_search_update
AFTER UPDATE OF subject, from_address, from_name, to_json, cc_json ON emails BEGIN
    UPDATE emails_search SET subject = new.subject, people =
        new.from_address || ' ' || new.from_name || ' ' ||
        (SELECT coalesce(group_concat(json_extract(value, '$.address') || ' ' ||
                                      coalesce(json_extract(value, '$.name'), ''), ' '), '')
           FROM json_each(new.to_json)) || ' ' ||
        (SELECT coalesce(group_concat(json_extract(value, '$.address') || ' ' ||
                                      coalesce(json_extract(value, '$.name'), ''), ' '), '')
           FROM json_each(new.cc_json))
    WHERE rowid = old.rowid;
END;
