//! The device authorization grant (RFC 8628 as Entra ID implements it): codes, polling with
//! `authorization_pending` / `slow_down`, approval, decline and expiry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng as _;

use crate::identity::error::AadError;
use crate::tokens::random_token;

/// Where a device code stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceState {
    Pending,
    Approved { user: String },
    Declined,
    Redeemed,
}

/// One device code.
#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) expires_at: Instant,
    pub(crate) interval: Duration,
    pub(crate) last_poll: Option<Instant>,
    pub(crate) state: DeviceState,
}

/// The outcome of a successful poll: the user who approved, and the requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Approved {
    pub(crate) user: String,
    pub(crate) scope: String,
}

/// All device codes.
#[derive(Debug, Default)]
pub(crate) struct DeviceCodes {
    codes: HashMap<String, DeviceCode>,
}

const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

impl DeviceCodes {
    /// Starts a device flow.
    pub(crate) fn start(
        &mut self,
        client_id: &str,
        scope: &str,
        lifetime: Duration,
        interval: Duration,
        now: Instant,
    ) -> DeviceCode {
        self.codes
            .retain(|_, c| c.expires_at + Duration::from_secs(3600) > now);
        let mut rng = rand::rng();
        let user_code: String = (0..9)
            .map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char)
            .collect();
        let code = DeviceCode {
            device_code: random_token("DAQABIQEAAAB", 96),
            user_code,
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            expires_at: now + lifetime,
            interval,
            last_poll: None,
            state: DeviceState::Pending,
        };
        self.codes.insert(code.device_code.clone(), code.clone());
        code
    }

    /// Polls the token endpoint with `device_code` for `client_id`.
    pub(crate) fn poll(
        &mut self,
        device_code: &str,
        client_id: &str,
        now: Instant,
    ) -> Result<Approved, AadError> {
        let Some(code) = self.codes.get_mut(device_code) else {
            return Err(AadError::bad_verification_code());
        };
        if !code.client_id.eq_ignore_ascii_case(client_id) {
            return Err(AadError::bad_verification_code());
        }
        if code.state == DeviceState::Redeemed {
            return Err(AadError::bad_verification_code());
        }
        if now >= code.expires_at {
            return Err(AadError::device_code_expired());
        }
        let previous = code.last_poll.replace(now);
        match &code.state {
            DeviceState::Declined => Err(AadError::authorization_declined()),
            DeviceState::Approved { user } => {
                let approved = Approved {
                    user: user.clone(),
                    scope: code.scope.clone(),
                };
                code.state = DeviceState::Redeemed;
                Ok(approved)
            }
            DeviceState::Pending | DeviceState::Redeemed => {
                // Polling faster than the interval (with half a second of slack) → slow_down.
                let slack = Duration::from_millis(500).min(code.interval / 2);
                if previous.is_some_and(|p| now.duration_since(p) + slack < code.interval) {
                    Err(AadError::slow_down())
                } else {
                    Err(AadError::authorization_pending())
                }
            }
        }
    }

    fn by_user_code(&mut self, user_code: &str, now: Instant) -> Option<&mut DeviceCode> {
        let wanted: String = user_code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        self.codes.values_mut().find(|c| {
            c.user_code.eq_ignore_ascii_case(&wanted)
                && c.state == DeviceState::Pending
                && now < c.expires_at
        })
    }

    /// The user signs in with `user_code` and consents. Returns false when no pending code
    /// matches.
    pub(crate) fn approve(&mut self, user_code: &str, user: &str, now: Instant) -> bool {
        match self.by_user_code(user_code, now) {
            Some(code) => {
                code.state = DeviceState::Approved {
                    user: user.to_ascii_lowercase(),
                };
                true
            }
            None => false,
        }
    }

    /// The user declines. Returns false when no pending code matches.
    pub(crate) fn decline(&mut self, user_code: &str, now: Instant) -> bool {
        match self.by_user_code(user_code, now) {
            Some(code) => {
                code.state = DeviceState::Declined;
                true
            }
            None => false,
        }
    }

    /// Pending (not yet approved, declined or expired) codes.
    pub(crate) fn pending(&self, now: Instant) -> Vec<&DeviceCode> {
        let mut pending: Vec<&DeviceCode> = self
            .codes
            .values()
            .filter(|c| c.state == DeviceState::Pending && now < c.expires_at)
            .collect();
        pending.sort_by_key(|c| c.expires_at);
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(codes: &mut DeviceCodes, now: Instant) -> DeviceCode {
        codes.start(
            "client",
            "Mail.Send",
            Duration::from_secs(900),
            Duration::from_secs(5),
            now,
        )
    }

    #[test]
    fn pending_then_approved_then_redeemed() {
        let mut codes = DeviceCodes::default();
        let t0 = Instant::now();
        let code = start(&mut codes, t0);
        assert_eq!(code.user_code.len(), 9);
        assert_eq!(
            codes
                .poll(&code.device_code, "client", t0)
                .unwrap_err()
                .error,
            "authorization_pending"
        );
        assert_eq!(codes.pending(t0).len(), 1);
        assert!(codes.approve(&code.user_code.to_lowercase(), "Alex@X", t0));
        assert!(codes.pending(t0).is_empty());
        let ok = codes
            .poll(&code.device_code, "client", t0 + Duration::from_secs(5))
            .unwrap();
        assert_eq!(ok.user, "alex@x");
        let again = codes
            .poll(&code.device_code, "client", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(again.error, "bad_verification_code");
    }

    #[test]
    fn slow_down_when_polled_too_fast() {
        let mut codes = DeviceCodes::default();
        let t0 = Instant::now();
        let code = start(&mut codes, t0);
        assert_eq!(
            codes
                .poll(&code.device_code, "client", t0)
                .unwrap_err()
                .error,
            "authorization_pending"
        );
        let fast = codes
            .poll(&code.device_code, "client", t0 + Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(fast.error, "slow_down");
        let ok = codes
            .poll(&code.device_code, "client", t0 + Duration::from_secs(7))
            .unwrap_err();
        assert_eq!(ok.error, "authorization_pending");
    }

    #[test]
    fn declined_expired_unknown_and_wrong_client() {
        let mut codes = DeviceCodes::default();
        let t0 = Instant::now();
        let declined = start(&mut codes, t0);
        assert!(codes.decline(&declined.user_code, t0));
        assert_eq!(
            codes
                .poll(&declined.device_code, "client", t0)
                .unwrap_err()
                .error,
            "authorization_declined"
        );
        let expired = start(&mut codes, t0);
        let late = t0 + Duration::from_secs(901);
        assert_eq!(
            codes
                .poll(&expired.device_code, "client", late)
                .unwrap_err()
                .error,
            "expired_token"
        );
        assert!(!codes.approve(&expired.user_code, "alex@x", late));
        assert_eq!(
            codes.poll("nope", "client", t0).unwrap_err().error,
            "bad_verification_code"
        );
        let other = start(&mut codes, t0);
        assert_eq!(
            codes
                .poll(&other.device_code, "other", t0)
                .unwrap_err()
                .error,
            "bad_verification_code"
        );
    }
}
