//! Splitting a byte stream into JSON texts.
//!
//! OVSDB sends JSON-RPC messages back to back with no delimiter or length prefix (RFC 7047
//! section 4), and a read can end anywhere inside one. The framer tracks bracket depth and
//! string state so each byte is scanned once, and parses a text only when it is complete.

use serde_json::Value;

/// The stream is not a sequence of JSON objects and arrays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("expected '{{' or '[' to start a JSON text, found byte 0x{0:02x}")]
    UnexpectedByte(u8),
    #[error("malformed JSON text: {0}")]
    Malformed(String),
}

/// Accumulates bytes and returns each complete top-level JSON object or array.
#[derive(Debug, Default)]
pub(crate) struct JsonFramer {
    buffer: Vec<u8>,
    /// Bytes before this offset have been scanned already.
    scanned: usize,
    /// Bracket depth at `scanned`; 0 between texts.
    depth: usize,
    in_string: bool,
    after_backslash: bool,
}

impl JsonFramer {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Returns the next complete JSON text, or `None` until more bytes arrive.
    pub(crate) fn next_text(&mut self) -> Result<Option<Value>, FrameError> {
        if self.depth == 0 {
            self.skip_whitespace()?;
        }
        while self.scanned < self.buffer.len() {
            let byte = self.buffer[self.scanned];
            self.scanned += 1;
            if self.scan(byte) {
                return self.take_text().map(Some);
            }
        }
        Ok(None)
    }

    /// Drops whitespace between texts and checks that the next text starts with a bracket.
    fn skip_whitespace(&mut self) -> Result<(), FrameError> {
        let start = self
            .buffer
            .iter()
            .position(|byte| !byte.is_ascii_whitespace());
        match start {
            None => self.buffer.clear(),
            Some(start) => {
                self.buffer.drain(..start);
                let first = self.buffer[0];
                if first != b'{' && first != b'[' {
                    return Err(FrameError::UnexpectedByte(first));
                }
            }
        }
        Ok(())
    }

    /// Updates the state for one byte; returns true when it closes the top-level text.
    fn scan(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.after_backslash {
                self.after_backslash = false;
            } else if byte == b'\\' {
                self.after_backslash = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            return false;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }

    fn take_text(&mut self) -> Result<Value, FrameError> {
        let text: Vec<u8> = self.buffer.drain(..self.scanned).collect();
        self.scanned = 0;
        serde_json::from_slice(&text).map_err(|error| FrameError::Malformed(error.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn all_texts(framer: &mut JsonFramer) -> Vec<Value> {
        let mut texts = Vec::new();
        while let Some(text) = framer.next_text().unwrap() {
            texts.push(text);
        }
        texts
    }

    #[test]
    fn back_to_back_texts() {
        let mut framer = JsonFramer::default();
        framer.push(br#"{"id":1,"result":[]}{"id":2,"result":{}} [1,2]"#);
        let texts = all_texts(&mut framer);
        assert_eq!(
            texts,
            vec![
                json!({"id":1,"result":[]}),
                json!({"id":2,"result":{}}),
                json!([1, 2])
            ]
        );
    }

    #[test]
    fn text_split_at_every_byte() {
        let message = br#"{"id":7,"result":[{"rows":[{"name":"a}]\"{b"}]}],"error":null}"#;
        let mut framer = JsonFramer::default();
        for (offset, byte) in message.iter().enumerate() {
            assert_eq!(
                framer.next_text().unwrap(),
                None,
                "complete too early at byte {offset}"
            );
            framer.push(&[*byte]);
        }
        let text = framer.next_text().unwrap().unwrap();
        assert_eq!(text["result"][0]["rows"][0]["name"], "a}]\"{b");
        assert_eq!(framer.next_text().unwrap(), None);
    }

    #[test]
    fn split_inside_multibyte_character() {
        let message = "{\"name\":\"caf\u{e9}\"}".as_bytes();
        let (head, tail) = message.split_at(message.len() - 3);
        let mut framer = JsonFramer::default();
        framer.push(head);
        assert_eq!(framer.next_text().unwrap(), None);
        framer.push(tail);
        assert_eq!(
            framer.next_text().unwrap(),
            Some(json!({"name": "caf\u{e9}"}))
        );
    }

    #[test]
    fn escaped_backslash_before_quote_ends_string() {
        let mut framer = JsonFramer::default();
        framer.push(br#"{"path":"C:\\"}{"next":1}"#);
        let texts = all_texts(&mut framer);
        assert_eq!(texts, vec![json!({"path": "C:\\"}), json!({"next": 1})]);
    }

    #[test]
    fn second_text_arrives_with_tail_of_first() {
        let mut framer = JsonFramer::default();
        framer.push(br#"{"id":1,"res"#);
        assert_eq!(framer.next_text().unwrap(), None);
        framer.push(br#"ult":null}{"id":2"#);
        assert_eq!(
            framer.next_text().unwrap(),
            Some(json!({"id": 1, "result": null}))
        );
        assert_eq!(framer.next_text().unwrap(), None);
        framer.push(b"}\n");
        assert_eq!(framer.next_text().unwrap(), Some(json!({"id": 2})));
    }

    #[test]
    fn garbage_between_texts_rejected() {
        let mut framer = JsonFramer::default();
        framer.push(br#"{"id":1} x"#);
        assert!(framer.next_text().unwrap().is_some());
        assert_eq!(framer.next_text(), Err(FrameError::UnexpectedByte(b'x')));
    }

    #[test]
    fn mismatched_brackets_rejected() {
        let mut framer = JsonFramer::default();
        framer.push(b"{\"a\":1]}");
        assert!(matches!(framer.next_text(), Err(FrameError::Malformed(_))));
    }
}
