//! The API's own semantic version and the rule for which plugins a host accepts.
//!
//! The version is this crate's package version; abi_stable records it in every library built
//! against the crate, so the host can read it before running any of the library's code.
//!
//! A host of API `M.n` accepts a plugin built against `M.k` for any `k <= n`: minor versions
//! only append optional functions. It refuses another major version, and a newer minor (the
//! plugin may rely on functions this host does not have).

use std::fmt;

/// This crate's version: the plugin API version a host or plugin is built against.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A parsed `major.minor.patch` version.
#[derive(Debug, Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Incompatible changes.
    pub major: u32,
    /// Appended optional functions.
    pub minor: u32,
    /// Fixes with no interface change.
    pub patch: u32,
}

impl ApiVersion {
    /// The version this crate implements.
    pub fn current() -> Self {
        // The package version is always three numbers.
        Self::parse(API_VERSION).unwrap_or(Self {
            major: 0,
            minor: 0,
            patch: 0,
        })
    }

    /// Parses `major.minor.patch`, ignoring any pre-release or build suffix.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let version = Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().unwrap_or(Some(0))?,
        };
        parts.next().is_none().then_some(version)
    }

    /// Whether a host of this version can load a plugin built against `plugin`.
    ///
    /// # Errors
    /// Says why not, in words fit for the user.
    pub fn accepts(self, plugin: Self) -> Result<(), Incompatibility> {
        if plugin.major != self.major {
            Err(Incompatibility::Major { host: self, plugin })
        } else if plugin.minor > self.minor {
            Err(Incompatibility::NewerMinor { host: self, plugin })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a host refuses a plugin's API version.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// Another major version.
    Major {
        /// The host's API version.
        host: ApiVersion,
        /// The plugin's API version.
        plugin: ApiVersion,
    },
    /// A newer minor version than the host provides.
    NewerMinor {
        /// The host's API version.
        host: ApiVersion,
        /// The plugin's API version.
        plugin: ApiVersion,
    },
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Major { host, plugin } => write!(
                f,
                "built for plugin API {}.{}; this host provides {}.{}: rebuild it against mailhost-plugin-api {}.x",
                plugin.major, plugin.minor, host.major, host.minor, host.major
            ),
            Self::NewerMinor { host, plugin } => write!(
                f,
                "built for plugin API {}.{}, newer than the {}.{} this host provides: upgrade mailhost, or rebuild the plugin against mailhost-plugin-api {}.{}",
                plugin.major, plugin.minor, host.major, host.minor, host.major, host.minor
            ),
        }
    }
}

impl std::error::Error for Incompatibility {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ApiVersion {
        ApiVersion::parse(text).expect("test version parses")
    }

    #[test]
    fn parses_versions() {
        assert_eq!(
            v("1.2.3"),
            ApiVersion {
                major: 1,
                minor: 2,
                patch: 3
            }
        );
        assert_eq!(
            v("1.2.3-beta.1"),
            ApiVersion {
                major: 1,
                minor: 2,
                patch: 3
            }
        );
        assert_eq!(
            v("2.0"),
            ApiVersion {
                major: 2,
                minor: 0,
                patch: 0
            }
        );
        assert!(ApiVersion::parse("x.1.2").is_none());
        assert!(ApiVersion::parse("1.2.3.4").is_none());
        assert_eq!(ApiVersion::current().to_string(), API_VERSION);
    }

    #[test]
    fn older_minors_load_newer_and_other_majors_do_not() {
        let host = v("1.3.0");
        assert!(host.accepts(v("1.0.0")).is_ok());
        assert!(host.accepts(v("1.3.9")).is_ok());
        let newer = host.accepts(v("1.4.0")).expect_err("newer minor");
        assert!(newer.to_string().contains("upgrade mailhost"), "{newer}");
        let major = host.accepts(v("2.0.0")).expect_err("other major");
        assert_eq!(
            major.to_string(),
            "built for plugin API 2.0; this host provides 1.3: rebuild it against mailhost-plugin-api 1.x"
        );
    }
}
