//! The front doors: the command line ([`cli`] parses, [`commands`] runs), the always-on service
//! and its listeners ([`serve`]) and the demo ([`demo`]); [`terminal`] makes outside text safe to
//! print. Each door is thin: it checks its input
//! and calls the delivery engine.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod serve;
pub mod terminal;
