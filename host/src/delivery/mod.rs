//! Delivery: the email store (`mail.db`, [`outbox`]), turning input into a provider
//! [`Message`](mailhost_plugin_api::Message) ([`compose`]), routing a staff member's email to its
//! provider ([`dispatch`]) and the engine that sends many under their limits ([`batch`]).

pub mod batch;
pub mod compose;
pub mod dispatch;
pub mod outbox;
