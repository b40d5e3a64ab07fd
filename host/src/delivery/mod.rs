//! Delivery: the email store (`mail.db`, [`outbox`]), turning input into a provider
//! [`Message`](mailhost_plugin_api::Message) ([`compose`]), routing a staff member's email to its
//! provider ([`dispatch`]), the spool of accepted emails' files ([`spool`]), the sending limits
//! ([`limits`]), whole RFC 5322 messages ([`mime`]) and the one engine that sends every email
//! ([`engine`]); [`batch`] reads `send-batch` files into it; [`retention`] purges what the
//! home's policy no longer keeps.

pub mod batch;
pub mod compose;
pub mod dispatch;
pub mod engine;
pub mod limits;
pub mod mime;
pub mod outbox;
pub mod retention;
pub mod spool;
