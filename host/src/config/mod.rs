//! Configuration: where the home is and how its files are written ([`home`], [`files`]), and one
//! module per file of it: System Configuration ([`settings`]), Staff Maintenance ([`staff`]) and
//! the secret store ([`secrets`]); [`time`] is the clock every layer reads.

pub mod files;
pub mod home;
pub mod secrets;
pub mod settings;
pub mod staff;
pub mod time;
