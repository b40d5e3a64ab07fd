//! The front doors: the command line ([`cli`] parses, [`commands`] runs), the always-on service
//! and its listeners ([`serve`]), the SMTP relay ([`smtp`]) and the demo ([`demo`]);
//! [`terminal`] makes outside text safe to print. Each door is thin: it checks its input and
//! calls the delivery engine.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod http;
pub mod sendmail;
pub mod serve;
pub mod smtp;
pub mod terminal;
