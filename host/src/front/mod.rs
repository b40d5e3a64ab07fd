//! The front doors: the command line ([`cli`] parses, [`commands`] runs), the demo ([`demo`])
//! and the SMTP relay ([`smtp`]). Each door is thin: it checks its input and calls the
//! delivery layer.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod smtp;
