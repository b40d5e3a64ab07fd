//! Test certificates made on demand: the fixture key (`certificates/key.pem`) with a new
//! self-signed certificate that expires a given number of days from now, for tests of
//! certificate expiry (doctor warns within 30 days).

use crate::seed;

/// A certificate for the fixture key, valid from yesterday until `days` days from now
/// (negative: already expired). Returns `(certificate PEM, certificate + key PEM)`; upload the
/// first with `Emulator::add_app_certificate`, give the second to the provider.
///
/// # Errors
/// The fixture key cannot be read, or signing fails.
pub fn certificate_expiring_in(days: i64) -> Result<(String, String), String> {
    let key_pem = std::fs::read_to_string(seed::certificate_fixture("key.pem"))
        .map_err(|e| format!("certificates/key.pem: {e}"))?;
    let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("mailhost test certificate expiring in {days} days"),
    );
    let now = i64::try_from(crate::time::now_unix()).unwrap_or(0);
    let ymd = |unix: i64| {
        let text = crate::time::iso8601(u64::try_from(unix).unwrap_or(0));
        let year: i32 = text[0..4].parse().unwrap_or(2000);
        let month: u8 = text[5..7].parse().unwrap_or(1);
        let day: u8 = text[8..10].parse().unwrap_or(1);
        rcgen::date_time_ymd(year, month, day)
    };
    params.not_before = ymd(now - 2 * 86_400 - days.min(0).abs() * 86_400);
    // date_time_ymd is midnight: one more day so "in N days" holds for the whole of today.
    params.not_after = ymd(now + days * 86_400 + 86_400);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let cert_pem = cert.pem();
    Ok((cert_pem.clone(), format!("{cert_pem}{key_pem}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::assertion::RegisteredCertificate;

    #[test]
    fn certificates_expire_when_asked() {
        let now = i64::try_from(crate::time::now_unix()).unwrap();
        let (cert, both) = certificate_expiring_in(10).unwrap();
        let parsed = RegisteredCertificate::parse(&cert).unwrap();
        let left = parsed.not_after - now;
        assert!((10 * 86_400..12 * 86_400).contains(&left), "{left}");
        assert!(both.contains("BEGIN PRIVATE KEY"));
        let (cert, _) = certificate_expiring_in(-3).unwrap();
        assert!(RegisteredCertificate::parse(&cert).unwrap().not_after < now);
    }
}
