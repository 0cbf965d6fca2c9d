//! A hand-rolled Server-Sent Events splitter: bytes in (any chunking), the `data` payload of each
//! complete event out. Only `data:` lines matter for chat completions; comments and other fields
//! are skipped. Bytes are buffered until a full line is seen, so a UTF-8 character or an event split
//! across network chunks is never cut.

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseSplitter {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// `data` lines of the current event, joined by `\n` per the SSE spec.
    data: Option<String>,
    /// A `\r` ended the previous chunk: a following `\n` belongs to the same line break.
    after_cr: bool,
}

impl SseSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the data of every event completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// End of the byte stream: an event not terminated by a blank line is still delivered.
    pub fn finish(&mut self) -> Option<String> {
        if !self.line.is_empty() {
            let mut out = Vec::new();
            self.end_line(&mut out);
        }
        self.data.take()
    }

    fn end_line(&mut self, out: &mut Vec<String>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            // A blank line dispatches the event (if it had any data).
            if let Some(d) = self.data.take() {
                out.push(d);
            }
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        // Lines starting with ':' are comments (field ""), other fields are irrelevant here.
        if field == "data" {
            match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = SseSplitter::new();
        let mut out: Vec<String> = chunks.iter().flat_map(|c| s.push(c)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn events_comments_and_fields() {
        let raw = b": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\nid: 3\ndata: [DONE]\n\n";
        assert_eq!(all(&[raw]), vec!["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn crlf_multiline_and_unterminated_tail() {
        let raw = b"data: a\r\ndata:b\r\n\r\ndata: tail";
        assert_eq!(all(&[raw]), vec!["a\nb", "tail"]);
        assert_eq!(all(&[b"data: x\r", b"\n\r", b"\n"]), vec!["x"]);
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let event = prop_oneof![
            "[a-z{}\":,0-9 é€]{0,20}".prop_map(|d| format!("data: {d}\n\n")),
            "[a-z ]{0,10}".prop_map(|c| format!(":{c}\n")),
            Just("data: [DONE]\r\n\r\n".to_string()),
            Just("data: one\ndata: two\n\n".to_string()),
            Just("event: ping\n\n".to_string()),
        ];
        prop::collection::vec(event, 0..12).prop_map(|v| v.concat().into_bytes())
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_events(bytes in stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
            let whole = all(&[&bytes]);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&bytes[prev..p]);
                prev = p;
            }
            chunks.push(&bytes[prev..]);
            prop_assert_eq!(all(&chunks), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = all(&[&bytes]);
        }
    }
}
