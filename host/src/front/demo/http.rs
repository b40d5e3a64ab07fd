//! A tiny HTTP/1.1 GET for the emulator's admin API on loopback (`http://127.0.0.1:PORT`), so
//! the host needs no HTTP client library for its demo.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one admin request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `path` from the loopback server at `base_url` and parses the body as JSON.
///
/// # Errors
/// The URL is not plain `http://` loopback, the connection or read failed, the status is not
/// 2xx, or the body is not JSON; the text names the URL.
pub(crate) fn get_json(base_url: &str, path: &str) -> Result<serde_json::Value, String> {
    let url = format!("{base_url}{path}");
    let fail = |what: String| format!("cannot GET {url} from the emulator: {what}");
    let authority = base_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| a.starts_with("127.") || a.starts_with("localhost") || a.starts_with("[::1]"))
        .ok_or_else(|| fail("only http:// on loopback is supported".into()))?;
    let mut stream = TcpStream::connect(authority).map_err(|e| fail(e.to_string()))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| fail(e.to_string()))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fail("the response has no header end".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| fail("the response has no status".into()))?;
    if head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| fail("a chunked body is malformed".into()))?;
    }
    if !(200..300).contains(&status) {
        return Err(fail(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(|e| fail(format!("the body is not JSON: {e}")))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    #[test]
    fn only_loopback_is_accepted() {
        let error = get_json("http://example.com", "/x").unwrap_err();
        assert!(error.contains("loopback"), "{error}");
    }
}
