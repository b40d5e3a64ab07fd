//! Browsing many emails a page at a time, newest first: by status, by words of the subject and
//! of the people (sender, recipients), paged by key so the thousandth page costs what the first
//! does. Schema 4 (`migrations/0004_browse.sql`) holds the index and the full-text table.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value;

use super::query::{COLUMNS, RawRow};
use super::record::{EmailRecord, Status};
use super::{Outbox, OutboxError};

/// The most emails one page holds.
pub const MAX_PAGE: usize = 500;
/// The most words of a search that are used; more are ignored.
const MAX_WORDS: usize = 8;

/// A place in the newest-first order: an email's creation time and rowid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    created_at: i64,
    rowid: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at, self.rowid)
    }
}

/// A cursor that is not `CREATED.ROWID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a page position: follow the page's Older and Newer links")]
pub struct BadCursor(pub String);

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadCursor(text.chars().take(40).collect());
        let (created, rowid) = text.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            created_at: created.parse().map_err(|_| bad())?,
            rowid: rowid.parse().map_err(|_| bad())?,
        })
    }
}

/// Which page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PageAt {
    /// The newest emails.
    #[default]
    Newest,
    /// The emails just older than the cursor.
    Before(Cursor),
    /// The emails just newer than the cursor.
    After(Cursor),
}

/// What to browse.
#[derive(Debug, Clone, Default)]
pub struct Browse {
    /// Only emails with this status.
    pub status: Option<Status>,
    /// Only emails whose subject or people contain words starting with each of these words.
    pub search: Option<String>,
    /// Which page.
    pub at: PageAt,
    /// How many emails a page holds (1 to [`MAX_PAGE`]).
    pub limit: usize,
}

/// One page, newest first, with the positions of the pages either side (none at an end).
#[derive(Debug, Clone, Default)]
pub struct BrowsePage {
    /// The emails.
    pub emails: Vec<EmailRecord>,
    /// Where the older page starts.
    pub older: Option<Cursor>,
    /// Where the newer page starts.
    pub newer: Option<Cursor>,
}

/// An FTS5 query for `text`: each word (letters and digits) as a quoted prefix, all required.
/// `None` when there is no word in it.
pub(super) fn match_expression(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl Outbox {
    /// One page of emails as `browse` asks. A search with no word in it finds nothing.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn browse(&self, browse: &Browse) -> Result<BrowsePage, OutboxError> {
        let limit = browse.limit.clamp(1, MAX_PAGE);
        let mut conditions: Vec<&str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(status) = browse.status {
            conditions.push("status = ?");
            params.push(Value::Text(status.as_str().into()));
        }
        if let Some(search) = browse.search.as_deref().map(str::trim)
            && !search.is_empty()
        {
            let Some(expression) = match_expression(search) else {
                return Ok(BrowsePage::default());
            };
            conditions
                .push("rowid IN (SELECT rowid FROM emails_search WHERE emails_search MATCH ?)");
            params.push(Value::Text(expression));
        }
        let (order, newest_first) = match browse.at {
            PageAt::Newest => ("DESC", true),
            PageAt::Before(cursor) => {
                conditions.push("(created_at, rowid) < (?, ?)");
                params.push(Value::Integer(cursor.created_at));
                params.push(Value::Integer(cursor.rowid));
                ("DESC", true)
            }
            PageAt::After(cursor) => {
                conditions.push("(created_at, rowid) > (?, ?)");
                params.push(Value::Integer(cursor.created_at));
                params.push(Value::Integer(cursor.rowid));
                ("ASC", false)
            }
        };
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // One more than a page tells whether there is a page beyond.
        params.push(Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {COLUMNS}, rowid FROM emails {filter} \
             ORDER BY created_at {order}, rowid {order} LIMIT ?"
        );
        let mut rows: Vec<(RawRow, Cursor)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
            stmt.query_map(rusqlite::params_from_iter(params), |row| {
                let raw = RawRow::read(row)?;
                let cursor = Cursor {
                    created_at: row.get(23)?,
                    rowid: row.get(38)?,
                };
                Ok((raw, cursor))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?
        };
        let beyond = rows.len() > limit;
        rows.truncate(limit);
        if !newest_first {
            rows.reverse();
        }
        let first = rows.first().map(|(_, c)| *c);
        let last = rows.last().map(|(_, c)| *c);
        let (older, newer) = match browse.at {
            PageAt::Newest => (last.filter(|_| beyond), None),
            PageAt::Before(_) => (last.filter(|_| beyond), first),
            PageAt::After(cursor) => (last.or(Some(cursor)), first.filter(|_| beyond)),
        };
        let emails = rows
            .into_iter()
            .map(|(raw, _)| raw.into_record())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BrowsePage {
            emails,
            older,
            newer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::outbox::tests::new_email;

    fn store_with(subjects: &[&str]) -> (Outbox, Vec<String>) {
        let outbox = Outbox::in_memory().unwrap();
        let mut ids = Vec::new();
        for (i, subject) in subjects.iter().enumerate() {
            let id = format!("00000000-0000-4000-8000-{i:012}");
            let mut email = new_email(&id);
            email.message.subject = (*subject).into();
            outbox.accept(&email).unwrap();
            ids.push(id);
        }
        (outbox, ids)
    }

    fn ids(page: &BrowsePage) -> Vec<String> {
        page.emails.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn pages_go_newest_first_and_back_without_gaps_or_repeats() {
        let subjects: Vec<String> = (0..7).map(|i| format!("Invoice {i}")).collect();
        let refs: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let (outbox, all) = store_with(&refs);
        let mut newest_first = all.clone();
        newest_first.reverse();
        let mut seen = Vec::new();
        let mut at = PageAt::Newest;
        let mut pages = Vec::new();
        loop {
            let page = outbox
                .browse(&Browse {
                    at,
                    limit: 3,
                    ..Browse::default()
                })
                .unwrap();
            seen.extend(ids(&page));
            pages.push(page.clone());
            match page.older {
                Some(cursor) => at = PageAt::Before(cursor),
                None => break,
            }
        }
        assert_eq!(seen, newest_first);
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[0].newer, None);
        // Newer from the last page gives the middle page again.
        let back = outbox
            .browse(&Browse {
                at: PageAt::After(pages[2].newer.unwrap()),
                limit: 3,
                ..Browse::default()
            })
            .unwrap();
        assert_eq!(ids(&back), ids(&pages[1]));
        assert!(back.newer.is_some());
        let cursor: Cursor = back.older.unwrap().to_string().parse().unwrap();
        assert_eq!(Some(cursor), back.older);
    }

    #[test]
    fn search_finds_words_of_the_subject_and_of_the_people() {
        let (outbox, all) =
            store_with(&["Invoice 1001", "<script>alert(1)</script>", "Order shipped"]);
        let find = |text: &str| {
            ids(&outbox
                .browse(&Browse {
                    search: Some(text.into()),
                    limit: 10,
                    ..Browse::default()
                })
                .unwrap())
        };
        assert_eq!(find("invoice"), vec![all[0].clone()]);
        assert_eq!(find("INV"), vec![all[0].clone()]);
        assert_eq!(find("<script>"), vec![all[1].clone()]);
        assert_eq!(find("ship order"), vec![all[2].clone()]);
        assert_eq!(find("alex@contoso").len(), 3, "a recipient's address");
        assert_eq!(find("Adele Vance").len(), 3, "the sender's name");
        assert!(find("\"*()").is_empty());
        assert!(find("nothing-like-this").is_empty());
        let failed = outbox
            .browse(&Browse {
                status: Some(Status::Failed),
                limit: 10,
                ..Browse::default()
            })
            .unwrap();
        assert!(failed.emails.is_empty());
    }

    #[test]
    fn words_become_quoted_prefixes() {
        assert_eq!(
            match_expression("a\"b OR c*").as_deref(),
            Some("\"a\"* \"b\"* \"OR\"* \"c\"*")
        );
        assert_eq!(match_expression("  ** "), None);
    }
}
