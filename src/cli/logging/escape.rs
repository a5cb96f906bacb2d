//! Text log lines carry request data (an upstream's error text, a provider name from the path).
//! Every control character in a line is escaped before it is written, so a request can neither
//! forge a log line (a newline followed by a fake timestamp) nor drive the operator's terminal
//! (escape sequences). JSON logs need none of this: serde escapes control characters.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Wraps a writer maker so that each event's line is escaped; the formatter writes one event
/// per `write` call, its final newline included.
#[derive(Clone)]
pub struct EscapeControls<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for EscapeControls<M> {
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping(self.0.make_writer())
    }
}

pub struct Escaping<W>(W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `line` with every C0 control character but tab, DEL and every C1 control character written
/// as `\xNN`; a final newline is kept.
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, newline) = match line.split_last() {
        Some((b'\n', body)) => (body, true),
        _ => (line, false),
    };
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut bytes = body.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\t' => out.push(byte),
            0x00..=0x1f | 0x7f => push_escaped(&mut out, byte),
            // U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8.
            0xc2 if bytes.peek().is_some_and(|next| (0x80..=0x9f).contains(next)) => {
                if let Some(next) = bytes.next() {
                    push_escaped(&mut out, next);
                }
            }
            _ => out.push(byte),
        }
    }
    if newline {
        out.push(b'\n');
    }
    out
}

fn push_escaped(out: &mut Vec<u8>, byte: u8) {
    out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::escape_line;

    #[test]
    fn control_characters_are_escaped_and_the_final_newline_kept() {
        let escaped = escape_line("a\nb\r\x1b[31mc\td\u{85}é\n".as_bytes());
        assert_eq!(String::from_utf8(escaped).unwrap(), "a\\x0ab\\x0d\\x1b[31mc\td\\x85é\n");
        assert_eq!(escape_line(b"no newline\x07"), b"no newline\\x07");
    }
}
