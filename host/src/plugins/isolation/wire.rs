//! The byte encoding of the values that cross the isolation protocol: the plugin API's own
//! types (requests, receipts, errors, descriptions) and the protocol's messages.
//!
//! Compact and allocation-light on purpose (a send's request and reply are encoded once each
//! way per call): integers little-endian, strings and lists prefixed with their length as a
//! `u32`, options with a byte. Decoding never trusts a length: it is checked against what is
//! left of the frame before anything is allocated.

use abi_stable::std_types::{ROption, RString, RVec};
use mailhost_plugin_api::{
    Attachment, DiagnoseRequest, ErrorKind, Finding, FindingLevel, Header, LimitKind, LimitSpec,
    Mailbox, Message, MimeSendRequest, ProviderError, ProviderInfo, Receipt, ReconcileOutcome,
    ReconcileRequest, ReconcileState, SendRequest, Setting, SettingKind, SettingSpec,
    SignInRequest, StaffMember,
};

/// A frame that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the provider process sent a malformed message ({0})")]
pub struct WireError(pub &'static str);

/// Reads values from one frame's bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// One byte.
    ///
    /// # Errors
    /// The frame ended.
    pub fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        // Every item takes at least `min_item` bytes: a length longer than the rest is a lie.
        if n.saturating_mul(min_item.max(1)) > self.bytes.len() {
            return Err(WireError("length past the end"));
        }
        Ok(n)
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A value that crosses the protocol.
pub trait Wire: Sized {
    /// Appends the value's bytes to `out`.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads a value.
    ///
    /// # Errors
    /// The bytes are not a value of this type.
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

impl Wire for u8 {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.byte()
    }
}

impl Wire for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError("bad boolean")),
        }
    }
}

impl Wire for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self::from_le_bytes(r.array()?))
    }
}

impl Wire for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self::from_le_bytes(r.array()?))
    }
}

impl Wire for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self::from_le_bytes(r.array()?))
    }
}

fn put_len(n: usize, out: &mut Vec<u8>) {
    u32::try_from(n).unwrap_or(u32::MAX).put(out);
}

impl Wire for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = r.len(1)?;
        let bytes = r.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| WireError("text is not UTF-8"))
    }
}

/// Appends a string (what [`String`]'s and [`RString`]'s encodings share).
pub fn put_str(s: &str, out: &mut Vec<u8>) {
    // A string longer than u32::MAX bytes is cut; nothing the host sends is near that.
    let bytes = &s.as_bytes()[..s.len().min(u32::MAX as usize)];
    put_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

impl Wire for RString {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self.as_str(), out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        String::get(r).map(Self::from)
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.byte()? {
            0 => Ok(None),
            1 => T::get(r).map(Some),
            _ => Err(WireError("bad option")),
        }
    }
}

impl<T: Wire + Clone> Wire for ROption<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.clone().into_option().put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Option::<T>::get(r).map(Self::from)
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        put_len(self.len(), out);
        self.iter().for_each(|v| v.put(out));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = r.len(1)?;
        (0..n).map(|_| T::get(r)).collect()
    }
}

impl<T: Wire> Wire for RVec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        put_len(self.len(), out);
        self.iter().for_each(|v| v.put(out));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Vec::<T>::get(r).map(Self::from)
    }
}

/// Encodes a struct as its fields in order.
macro_rules! wire_struct {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        impl Wire for $ty {
            fn put(&self, out: &mut Vec<u8>) {
                $( self.$field.put(out); )*
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(Self { $( $field: Wire::get(r)?, )* })
            }
        }
    )*};
}

/// Encodes a byte newtype through its `as_u8`/`from_u8`.
macro_rules! wire_byte {
    ($($ty:ident)*) => {$(
        impl Wire for $ty {
            fn put(&self, out: &mut Vec<u8>) {
                out.push(self.as_u8());
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
                r.byte().map(Self::from_u8)
            }
        }
    )*};
}

wire_byte!(ErrorKind SettingKind LimitKind ReconcileState FindingLevel);

wire_struct! {
    Setting { key, value, secret }
    StaffMember { id, email, display_name, username, password, fields }
    Mailbox { address, name }
    Attachment { path, name, content_type, size }
    Header { name, value }
    Message { id, from, to, cc, bcc, reply_to, subject, body, html, attachments, headers }
    SendRequest { settings, staff, message }
    SignInRequest { settings, staff }
    Receipt { message_id, request_id, detail }
    ProviderError { kind, code, message, retry_after_ms }
    SettingSpec { key, kind, required, default, secret, help }
    ProviderInfo { name, display_name, version, description, settings, staff_fields, capabilities }
    LimitSpec { kind, setting, window_seconds }
    MimeSendRequest { request, mime_path, mime_size, envelope_from, recipients }
    ReconcileRequest { request, internet_message_id, first_attempt_unix }
    ReconcileOutcome { state, detail, receipt }
    Finding { id, level, staff, message, fix }
    DiagnoseRequest { settings, staff, send_test_to }
}

/// Decodes a whole frame as one `T`.
///
/// # Errors
/// The bytes are not exactly one `T`.
pub fn decode<T: Wire>(bytes: &[u8]) -> Result<T, WireError> {
    let mut r = Reader::new(bytes);
    let value = T::get(&mut r)?;
    if r.is_empty() {
        Ok(value)
    } else {
        Err(WireError("trailing bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SendRequest {
        SendRequest {
            settings: vec![Setting {
                key: "Token".into(),
                value: "s3cret".into(),
                secret: true,
            }]
            .into(),
            staff: StaffMember {
                id: "adele".into(),
                email: "adele@contoso.com".into(),
                display_name: "Adele Vance ✉".into(),
                username: "adele".into(),
                password: ROption::RSome("pw".into()),
                fields: RVec::new(),
            },
            message: Message {
                id: "m1".into(),
                to: vec![Mailbox::new("b@x.com", "B")].into(),
                subject: "Grüße".into(),
                attachments: vec![Attachment {
                    path: "/a".into(),
                    name: "a.pdf".into(),
                    content_type: "application/pdf".into(),
                    size: 42,
                }]
                .into(),
                ..Message::default()
            },
        }
    }

    #[test]
    fn requests_round_trip() {
        let mut out = Vec::new();
        request().put(&mut out);
        let back: SendRequest = decode(&out).unwrap();
        assert_eq!(format!("{back:?}"), format!("{:?}", request()));
        assert_eq!(
            back.staff.password.as_ref().map(|p| p.as_str()),
            ROption::RSome("pw")
        );
        assert_eq!(back.settings[0].value.as_str(), "s3cret");
    }

    #[test]
    fn errors_round_trip_with_unknown_kinds() {
        let error = ProviderError::new(ErrorKind::from_u8(200), "odd")
            .with_code("X1")
            .with_retry_after(std::time::Duration::from_millis(1500));
        let mut out = Vec::new();
        error.put(&mut out);
        assert_eq!(decode::<ProviderError>(&out).unwrap(), error);
    }

    #[test]
    fn lying_lengths_and_truncation_are_refused() {
        let mut out = Vec::new();
        request().put(&mut out);
        for cut in [0, 1, 5, out.len() / 2, out.len() - 1] {
            assert!(decode::<SendRequest>(&out[..cut]).is_err(), "cut at {cut}");
        }
        // A list claiming four billion items in a ten-byte frame.
        let lie = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0];
        assert!(decode::<Vec<String>>(&lie).is_err());
        out.push(0);
        assert_eq!(
            decode::<SendRequest>(&out).unwrap_err(),
            WireError("trailing bytes")
        );
    }
}
