//! The front doors: the command line ([`cli`] parses, [`commands`] runs) and the demo
//! ([`demo`]); [`terminal`] makes outside text safe to print. Each door is thin: it checks its input and calls the delivery layer.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod terminal;
