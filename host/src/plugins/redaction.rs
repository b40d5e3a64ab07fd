//! Secret redaction for everything plugins log through the host: every value in the secret
//! store (staff passwords, secret settings, providers' cached tokens) is replaced by
//! `[REDACTED]` wherever it appears in a record, whichever crate inside the plugin wrote it,
//! also encoded the ways HTTP libraries print it:
//!
//! - as is, hex (lower and upper case), base64 (standard and URL-safe, with and without
//!   padding, at any of the three alignments it can have inside a longer base64 text, as in a
//!   `Basic` authorization header) and percent-encoded (`%2F` and `%2f`, and `+` for spaces);
//! - split across the rows of a hex dump (`0000: 41 75 74 68 ...  |Auth|`): the rows' bytes
//!   are joined, searched, and every byte of a secret is masked in both columns.
//!
//! One Aho-Corasick automaton over every variant of every secret does the search, so the cost
//! per record does not grow with the number of secrets. It is rebuilt when the store changes
//! (its file's size or modification time, or a write through this process).

use std::sync::{Arc, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::config::secrets::SecretStore;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted (they would mask ordinary words).
pub const MIN_SECRET_CHARS: usize = 4;

/// Encoded variants shorter than this are not searched for.
const MIN_VARIANT_LEN: usize = 6;

/// The automata for one set of secrets.
#[derive(Debug, Default)]
pub struct Patterns {
    /// Every variant of every secret, for text.
    text: Option<AhoCorasick>,
    /// The raw bytes of every secret, for the joined bytes of a hex dump.
    bytes: Option<AhoCorasick>,
}

impl Patterns {
    /// The automata for `secrets` (values shorter than [`MIN_SECRET_CHARS`] are skipped).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut variants: Vec<String> = Vec::new();
        let mut raw: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            if secret.chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            raw.push(secret.as_bytes().to_vec());
            variants.push(secret.to_string());
            variants.extend(
                encodings(secret.as_bytes())
                    .into_iter()
                    .filter(|v| v.len() >= MIN_VARIANT_LEN),
            );
        }
        variants.sort();
        variants.dedup();
        let build = |patterns: &[Vec<u8>]| {
            if patterns.is_empty() {
                return None;
            }
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(patterns)
                .map_err(|e| log::warn!("cannot build the secret redactor: {e}"))
                .ok()
        };
        let variants: Vec<Vec<u8>> = variants.into_iter().map(String::into_bytes).collect();
        Self {
            text: build(&variants),
            bytes: build(&raw),
        }
    }

    /// `text` with every secret masked; `None` when it holds none.
    pub fn redact(&self, text: &str) -> Option<String> {
        let mut changed = None;
        if let Some(ac) = &self.text
            && ac.is_match(text)
        {
            changed = Some(ac.replace_all(text, &vec![MASK; ac.patterns_len()]));
        }
        if let Some(ac) = &self.bytes {
            let current = changed.as_deref().unwrap_or(text);
            if current.contains('%')
                && let Some(masked) = mask_percent_encoded(current, ac)
            {
                changed = Some(masked);
            }
            let current = changed.as_deref().unwrap_or(text);
            if current.contains('\n')
                && let Some(masked) = mask_hex_dump(current, ac)
            {
                changed = Some(masked);
            }
        }
        changed
    }

    /// Whether `text` holds a secret in any of the forms [`Patterns::redact`] masks.
    pub fn finds(&self, text: &str) -> bool {
        self.redact(text).is_some()
    }
}

/// The encodings of `secret` a log may hold.
fn encodings(secret: &[u8]) -> Vec<String> {
    let mut out = vec![hex::encode(secret), hex::encode_upper(secret)];
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(secret));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        // At offset k inside a longer text, only the characters made of the secret's bits
        // alone are fixed: skip those mixed with what comes before and after.
        for k in 0..3usize {
            let mut padded = vec![0u8; k];
            padded.extend_from_slice(secret);
            let encoded = engine.encode(&padded);
            let skip = [0, 2, 3][k];
            let total = k + secret.len();
            let keep_end = if total.is_multiple_of(3) {
                encoded.len()
            } else {
                encoded.len().saturating_sub(1)
            };
            if keep_end > skip {
                out.push(encoded[skip..keep_end].to_string());
            }
        }
    }
    for (upper, plus) in [(true, false), (false, false), (true, true)] {
        out.push(percent_encode(secret, upper, plus));
    }
    out
}

fn percent_encode(bytes: &[u8], upper: bool, plus_for_space: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' && plus_for_space {
            out.push('+');
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Masks every secret found in `text` once percent-decoded, however the encoder chose which
/// characters to escape (`%2D` or `-`, `%20` or `+`): each secret's encoded span becomes
/// [`MASK`].
fn mask_percent_encoded(text: &str, raw: &AhoCorasick) -> Option<String> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for plus_is_space in [false, true] {
        // The decoded bytes, each with the span of `text` it came from.
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut from = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        decoded.push(u8::try_from(h * 16 + l).unwrap_or(0));
                        from.push((i, i + 3));
                        i += 3;
                        continue;
                    }
                    _ => {
                        decoded.push(b'%');
                        from.push((i, i + 1));
                    }
                },
                b'+' if plus_is_space => {
                    decoded.push(b' ');
                    from.push((i, i + 1));
                }
                b => {
                    decoded.push(b);
                    from.push((i, i + 1));
                }
            }
            i += 1;
        }
        for found in raw.find_iter(&decoded) {
            let start = from[found.start()].0;
            let end = from[found.end() - 1].1;
            spans.push((start, end));
        }
    }
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        if end <= at || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        out.push_str(&text[at..start.max(at)]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// One byte of a hex-dump row: where its two hex digits are in the text, and its character
/// in the row's text column, if the row has one.
#[derive(Debug, Clone, Copy)]
struct DumpByte {
    value: u8,
    hex_at: usize,
    text_at: Option<usize>,
}

/// The bytes of `line` (starting at `offset` in the whole text) if it is a hex-dump row: an
/// optional offset, byte tokens (`41` or grouped `4175`), then an optional text column. A
/// run of rows starts with one of at least four bytes.
fn dump_row(line: &str, offset: usize) -> Option<Vec<DumpByte>> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in line
        .char_indices()
        .chain(std::iter::once((line.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                tokens.push((s, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    let is_hex = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit());
    let mut index = 0;
    if let Some((_, first)) = tokens.first()
        && (first.ends_with(':') && is_hex(first.trim_end_matches(':'))
            || (first.len() >= 6 && is_hex(first)))
    {
        index = 1;
    }
    let mut bytes = Vec::new();
    let mut last_end = 0;
    for (at, token) in &tokens[index..] {
        if !(is_hex(token) && (token.len() == 2 || token.len() == 4)) {
            break;
        }
        for pair in 0..token.len() / 2 {
            let digits = &token[pair * 2..pair * 2 + 2];
            let value = u8::from_str_radix(digits, 16).ok()?;
            bytes.push(DumpByte {
                value,
                hex_at: offset + at + pair * 2,
                text_at: None,
            });
        }
        last_end = at + token.len();
    }
    if bytes.is_empty() {
        return None;
    }
    // The text column: what follows the bytes, without `|` delimiters, one character a byte.
    let rest = &line[last_end..];
    let trimmed = rest.trim_start();
    let lead = last_end + (rest.len() - trimmed.len());
    let column = trimmed
        .strip_prefix('|')
        .map_or((lead, trimmed), |t| (lead + 1, t));
    let chars: Vec<(usize, char)> = column.1.char_indices().collect();
    if chars.len() >= bytes.len() && chars.iter().take(bytes.len()).all(|(_, c)| c.is_ascii()) {
        for (byte, (at, _)) in bytes.iter_mut().zip(&chars) {
            byte.text_at = Some(offset + column.0 + at);
        }
    }
    Some(bytes)
}

/// Masks every secret found in the joined bytes of the hex-dump rows of `text` (consecutive
/// rows form one stream): its hex digits become `**` and its text-column characters `*`.
fn mask_hex_dump(text: &str, raw: &AhoCorasick) -> Option<String> {
    let mut runs: Vec<Vec<DumpByte>> = Vec::new();
    let mut current: Vec<DumpByte> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        match dump_row(line.trim_end_matches(['\r', '\n']), offset) {
            Some(bytes) if bytes.len() >= 4 || !current.is_empty() => current.extend(bytes),
            _ if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            _ => {}
        }
        offset += line.len();
    }
    if !current.is_empty() {
        runs.push(current);
    }
    let mut out: Option<Vec<u8>> = None;
    for run in &runs {
        let stream: Vec<u8> = run.iter().map(|b| b.value).collect();
        for found in raw.find_iter(&stream) {
            let bytes = out.get_or_insert_with(|| text.as_bytes().to_vec());
            for byte in &run[found.start()..found.end()] {
                bytes[byte.hex_at] = b'*';
                bytes[byte.hex_at + 1] = b'*';
                if let Some(at) = byte.text_at {
                    bytes[at] = b'*';
                }
            }
        }
    }
    // Only ASCII hex digits and ASCII column characters were replaced by ASCII.
    out.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The redactor of a home's secret store, rebuilt when the store changes.
#[derive(Debug)]
pub struct Redactor {
    store: Arc<SecretStore>,
    compiled: Mutex<Option<(u64, Arc<Patterns>)>>,
}

impl Redactor {
    /// A redactor over every value in `store`.
    pub fn new(store: Arc<SecretStore>) -> Self {
        Self {
            store,
            compiled: Mutex::new(None),
        }
    }

    /// The patterns of the store as it is now.
    pub fn patterns(&self) -> Arc<Patterns> {
        let stamp = self.store.stamp();
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, patterns)) = compiled.as_ref()
            && *at == stamp
        {
            return patterns.clone();
        }
        let values = self.store.values().unwrap_or_else(|e| {
            log::debug!("cannot read the secret store to redact logs: {e}");
            Vec::new()
        });
        let patterns = Arc::new(Patterns::new(values.iter().map(|s| s.expose())));
        *compiled = Some((stamp, patterns.clone()));
        patterns
    }

    /// `text` with every secret of the store masked.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match self.patterns().redact(text) {
            Some(masked) => std::borrow::Cow::Owned(masked),
            None => std::borrow::Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-Tok/en+with spaces=and:more";

    fn patterns() -> Patterns {
        Patterns::new([SECRET, "abc"])
    }

    fn assert_masked(text: &str) {
        let masked = patterns()
            .redact(text)
            .unwrap_or_else(|| panic!("not found in {text}"));
        assert!(!masked.contains(SECRET), "{masked}");
    }

    #[test]
    fn raw_hex_base64_and_percent_forms_are_masked() {
        let p = patterns();
        assert_eq!(
            p.redact(&format!("Authorization: Bearer {SECRET}"))
                .as_deref(),
            Some("Authorization: Bearer [REDACTED]")
        );
        for form in [
            hex::encode(SECRET),
            hex::encode_upper(SECRET),
            STANDARD.encode(SECRET),
            URL_SAFE_NO_PAD.encode(SECRET),
            percent_encode(SECRET.as_bytes(), true, false),
            percent_encode(SECRET.as_bytes(), false, false),
            percent_encode(SECRET.as_bytes(), true, true),
        ] {
            let line = format!("x={form}&y=1");
            let masked = p
                .redact(&line)
                .unwrap_or_else(|| panic!("{form} not found"));
            assert!(!masked.contains(&form), "{masked}");
        }
        // Inside a longer base64 text, at every alignment (Basic auth: user:password).
        for user in ["u", "us", "use"] {
            let basic = STANDARD.encode(format!("{user}:{SECRET}"));
            let masked = p.redact(&format!("Authorization: Basic {basic}")).unwrap();
            assert!(masked.contains(MASK), "{user}: {masked}");
            let rest = masked.rsplit(MASK).next().unwrap_or("");
            assert!(rest.len() <= 4, "{user}: {masked}");
        }
        // However the encoder chose what to escape.
        let every: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
        assert!(
            !p.redact(&format!("t={every}&x=1"))
                .unwrap()
                .contains(&every)
        );
        let spaced = SECRET
            .replace('+', "%2B")
            .replace(' ', "+")
            .replace('/', "%2f");
        assert!(!p.redact(&format!("t={spaced}")).unwrap().contains(&spaced));
        // Short values are not secrets worth masking; text without secrets is left alone.
        assert_eq!(p.redact("abc def"), None);
        assert_eq!(p.redact("nothing here"), None);
    }

    #[test]
    fn a_secret_split_across_hex_dump_rows_is_masked() {
        let request = format!("POST /v1 HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\n\r\n");
        let mut dump = String::from("request bytes:\n");
        for (row, chunk) in request.as_bytes().chunks(16).enumerate() {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let text: String = chunk
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '.'
                    }
                })
                .collect();
            dump.push_str(&format!(
                "{:08x}  {:<48}  |{text}|\n",
                row * 16,
                hex.join(" ")
            ));
        }
        let masked = patterns().redact(&dump).expect("found");
        let hex_of_secret = hex::encode(SECRET);
        let digits: String = masked
            .lines()
            .flat_map(|l| l.split_whitespace().skip(1).take_while(|t| t.len() == 2))
            .collect();
        assert!(!digits.contains(&hex_of_secret[..8]), "{masked}");
        let column: String = masked.lines().filter_map(|l| l.split('|').nth(1)).collect();
        assert!(!column.contains("s3cr3t"), "{masked}");
        assert!(column.contains("Authorization:.Bearer.*"), "{masked}");
        // xxd's grouped layout too.
        let xxd: String = SECRET
            .as_bytes()
            .chunks(8)
            .enumerate()
            .map(|(i, c)| {
                let groups: Vec<String> = c.chunks(2).map(hex::encode).collect();
                format!("{:08x}: {}\n", i * 8, groups.join(" "))
            })
            .collect();
        assert_masked(&xxd);
    }

    #[test]
    fn the_store_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SecretStore::at(&dir.path().join("s.toml")).unwrap());
        let redactor = Redactor::new(store.clone());
        assert_eq!(
            redactor.redact("token tok-0123456789"),
            "token tok-0123456789"
        );
        store.put("plugin.x.token", "tok-0123456789").unwrap();
        assert_eq!(redactor.redact("token tok-0123456789"), "token [REDACTED]");
        store.delete("plugin.x.token").unwrap();
        assert_eq!(
            redactor.redact("token tok-0123456789"),
            "token tok-0123456789"
        );
    }
}
