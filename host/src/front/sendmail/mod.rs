//! `mailhost sendmail` (and `sendmail`, through a symlink): an RFC 5322 message on standard
//! input, sent through the delivery engine like every other email, with sendmail's flags and
//! exit statuses.

pub mod args;
pub mod input;
pub mod plan;
