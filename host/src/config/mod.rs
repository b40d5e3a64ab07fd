//! Configuration: where the home is and how its files are written ([`home`], [`files`], with
//! the start-up check of their modes in [`permissions`]), and one module per file of it: System
//! Configuration ([`settings`]), Staff Maintenance ([`staff`]), the secret store and its backends
//! ([`secrets`]) and the audit trail ([`audit`]); [`time`] is the clock every layer reads.

pub mod audit;
pub mod files;
pub mod home;
pub mod permissions;
pub mod secrets;
pub mod settings;
pub mod staff;
pub mod time;
