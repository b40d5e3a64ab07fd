//! The front doors by which email comes in over the network. Each is a thin layer over the
//! delivery engine: it parses, checks who is sending, and hands over a complete email.

pub mod smtp;
