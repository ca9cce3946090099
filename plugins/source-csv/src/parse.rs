//! A streaming delimited-text parser, written for the data as it comes:
//! any single-byte delimiter, `"` quoting (with `""` for a quote inside),
//! LF or CRLF line ends, fields padded with spaces, a trailing delimiter,
//! blank lines. Records are parsed in place inside one growing read buffer:
//! nothing is allocated per row.
//!
//! Faults name the line (1-based, physical lines of the file) and the column
//! (1-based) where they are.

use std::io::Read;

/// Bytes read from the input per refill.
const READ_BYTES: usize = 1 << 20;
/// Longest record accepted: a file without line ends (or a runaway quote)
/// fails here instead of growing the buffer without bound.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// One field of the current record: `buf[start..end]`, with `escaped` set
/// when it was quoted and holds `""` pairs that stand for one quote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Field {
    pub start: u32,
    pub end: u32,
    pub escaped: bool,
}

/// A parse failure.
#[derive(Debug, PartialEq)]
pub enum Fault {
    /// Reading the input failed.
    Io(String),
    /// A malformed record: line, column (both 1-based) and what is wrong.
    Malformed { line: u64, column: usize, what: String },
    /// A record longer than [`MAX_RECORD_BYTES`].
    TooLong { line: u64 },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Io(m) => write!(f, "reading the input failed: {m}"),
            Fault::Malformed { line, column, what } => write!(f, "line {line}, column {column}: {what}"),
            Fault::TooLong { line } => write!(
                f,
                "line {line}: a record longer than {} MiB (is the delimiter right, or a quote left open?)",
                MAX_RECORD_BYTES >> 20
            ),
        }
    }
}

/// Splits a byte stream into records.
pub struct Parser<R> {
    input: R,
    buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    pos: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    eof: bool,
    delimiter: u8,
    /// Bytes trimmed around fields: space, and tab unless it delimits.
    pad_tab: bool,
    /// Physical line of the next record (1-based).
    line: u64,
    /// Fields of the last record returned.
    pub fields: Vec<Field>,
    /// Line the last record returned started on.
    pub record_line: u64,
    /// Set once a UTF-8 byte order mark was skipped (or the start checked).
    bom_checked: bool,
    /// True when the last record parsed had a quoted field.
    last_was_quoted: bool,
    /// Per byte: [`STOP`] for the delimiter and the line feed.
    class: [u8; 256],
}

/// Byte classes of the unquoted-field scanner.
const PLAIN: u8 = 0;
const STOP: u8 = 1;

impl<R: Read> Parser<R> {
    /// A parser over `input` splitting fields at `delimiter`.
    pub fn new(input: R, delimiter: u8) -> Self {
        Parser {
            input,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            delimiter,
            pad_tab: delimiter != b'\t',
            line: 1,
            fields: Vec::with_capacity(16),
            record_line: 0,
            bom_checked: false,
            last_was_quoted: false,
            class: {
                let mut class = [PLAIN; 256];
                class[delimiter as usize] = STOP;
                class[b'\n' as usize] = STOP;
                class
            },
        }
    }

    /// Read more input after `end`, moving the unparsed tail to the front
    /// first. Returns false at the end of the input.
    fn refill(&mut self) -> Result<bool, Fault> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.end < READ_BYTES {
            if self.end >= MAX_RECORD_BYTES {
                return Err(Fault::TooLong { line: self.line });
            }
            // Grow geometrically: a long record is re-scanned once per growth.
            let want = (self.end + READ_BYTES).max(self.buf.len() * 2).min(MAX_RECORD_BYTES + READ_BYTES);
            self.buf.resize(want, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fault::Io(e.to_string())),
            }
        }
    }

    /// The next record with at least one non-blank byte, its fields in
    /// [`Parser::fields`]; `false` at the end of the input.
    pub fn next_record(&mut self) -> Result<bool, Fault> {
        if !self.bom_checked {
            while self.end - self.pos < 3 && self.refill()? {}
            if self.buf[self.pos..self.end].starts_with(b"\xEF\xBB\xBF") {
                self.pos += 3;
            }
            self.bom_checked = true;
        }
        loop {
            if self.pos == self.end && !self.refill()? {
                return Ok(false);
            }
            match self.parse_at(self.pos)? {
                Some((next, lines)) => {
                    self.record_line = self.line;
                    self.line += lines;
                    self.pos = next;
                    let blank = self.fields.len() == 1 && self.fields[0].start == self.fields[0].end && !self.fields[0].escaped;
                    if blank && !self.last_was_quoted {
                        continue;
                    }
                    return Ok(true);
                }
                None => {
                    // The record runs past the buffered bytes: read more
                    // (at the end of the input, the record ends there).
                    self.refill()?;
                }
            }
        }
    }
}

impl<R> Parser<R> {
    /// The bytes of the current record's field `f`, without quotes (with
    /// `""` pairs still in place when `f.escaped`).
    pub fn raw(&self, f: Field) -> &[u8] {
        &self.buf[f.start as usize..f.end as usize]
    }

    /// Parse one record starting at `start`. `Some((next, lines))`: the
    /// record ends before `next` and spans `lines` line ends; `None`: more
    /// input is needed (never at the end of the input).
    fn parse_at(&mut self, start: usize) -> Result<Option<(usize, u64)>, Fault> {
        let buf = &self.buf[..self.end];
        let eof = self.eof;
        let delim = self.delimiter;
        let pad_tab = self.pad_tab;
        let is_pad = |b: u8| b == b' ' || (pad_tab && b == b'\t');
        let class = &self.class;
        self.fields.clear();
        self.last_was_quoted = false;
        let mut i = start;
        let mut lines = 0u64;
        loop {
            // One field starts at `i`.
            let column = self.fields.len() + 1;
            let mut j = i;
            while j < buf.len() && is_pad(buf[j]) {
                j += 1;
            }
            if j < buf.len() && buf[j] == b'"' {
                // Quoted: up to the closing quote; `""` is a quote.
                let open_line = self.line + lines;
                let content = j + 1;
                let mut k = content;
                let mut escaped = false;
                loop {
                    match buf[k..].iter().position(|&b| b == b'"') {
                        Some(off) => {
                            lines += buf[k..k + off].iter().filter(|&&b| b == b'\n').count() as u64;
                            k += off;
                            if k + 1 < buf.len() && buf[k + 1] == b'"' {
                                escaped = true;
                                k += 2;
                                continue;
                            }
                            if k + 1 == buf.len() && !eof {
                                return Ok(None);
                            }
                            break;
                        }
                        None if eof => {
                            return Err(Fault::Malformed {
                                line: open_line,
                                column,
                                what: "a quoted field is never closed (a \" without its closing \")".into(),
                            });
                        }
                        None => return Ok(None),
                    }
                }
                self.fields.push(Field { start: content as u32, end: k as u32, escaped });
                self.last_was_quoted = true;
                // After the closing quote: padding, then a delimiter or a line end.
                let mut m = k + 1;
                while m < buf.len() && (is_pad(buf[m]) || buf[m] == b'\r') {
                    m += 1;
                }
                if m == buf.len() {
                    if !eof {
                        return Ok(None);
                    }
                    return Ok(Some((m, lines)));
                }
                match buf[m] {
                    b if b == delim => i = m + 1,
                    b'\n' => return Ok(Some((m + 1, lines + 1))),
                    _ => {
                        return Err(Fault::Malformed {
                            line: self.line + lines,
                            column,
                            what: "unexpected text after a closing quote (a quote inside a quoted field is written \"\")"
                                .into(),
                        });
                    }
                }
                if i == buf.len() && !eof {
                    return Ok(None);
                }
                continue;
            }
            // Unquoted: up to the delimiter or the line end.
            let mut k = j;
            while k < buf.len() && class[buf[k] as usize] == PLAIN {
                k += 1;
            }
            if k == buf.len() && !eof {
                return Ok(None);
            }
            let mut e = k;
            while e > j && (is_pad(buf[e - 1]) || buf[e - 1] == b'\r') {
                e -= 1;
            }
            if self.fields.len() as u32 >= u32::MAX / 2 || k > u32::MAX as usize {
                return Err(Fault::TooLong { line: self.line });
            }
            self.fields.push(Field { start: j as u32, end: e as u32, escaped: false });
            if k == buf.len() {
                return Ok(Some((k, lines)));
            }
            if buf[k] == b'\n' {
                return Ok(Some((k + 1, lines + 1)));
            }
            i = k + 1; // past the delimiter
            if i == buf.len() {
                if !eof {
                    return Ok(None);
                }
                // A delimiter right before the end: one more, empty field.
                self.fields.push(Field { start: i as u32, end: i as u32, escaped: false });
                return Ok(Some((i, lines)));
            }
        }
    }
}

/// Remove the `""` escapes of a quoted field into `out`.
pub fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        out.push(raw[i]);
        i += if raw[i] == b'"' && raw.get(i + 1) == Some(&b'"') { 2 } else { 1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[u8], delimiter: u8) -> Result<Vec<Vec<String>>, Fault> {
        // A tiny reader that returns 3 bytes at a time, to cross every
        // buffer boundary.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = out.len().min(3).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut p = Parser::new(Trickle(text), delimiter);
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        while p.next_record()? {
            let mut row = Vec::new();
            for f in p.fields.clone() {
                let raw = p.raw(f);
                let bytes = if f.escaped {
                    unescape(raw, &mut scratch);
                    scratch.clone()
                } else {
                    raw.to_vec()
                };
                row.push(String::from_utf8(bytes).unwrap());
            }
            out.push(row);
        }
        Ok(out)
    }

    fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn plain_crlf_blank_lines_and_padding() {
        let got = records(b"a,b\r\n 1 , 2\r\n\r\n\n3,4", b',').unwrap();
        assert_eq!(got, rows(&[&["a", "b"], &["1", "2"], &["3", "4"]]));
    }

    #[test]
    fn quotes_escapes_and_embedded_line_ends() {
        let got = records(b"x,\"a,\"\"b\"\"\nc\" , y\n\"\",z\n", b',').unwrap();
        assert_eq!(got, rows(&[&["x", "a,\"b\"\nc", "y"], &["", "z"]]));
    }

    #[test]
    fn tab_and_other_delimiters_keep_tabs_inside_fields() {
        assert_eq!(records(b"1\t2\t3\n", b'\t').unwrap(), rows(&[&["1", "2", "3"]]));
        assert_eq!(records(b"1;2 ;\n", b';').unwrap(), rows(&[&["1", "2", ""]]));
        assert_eq!(records(b"1|2|", b'|').unwrap(), rows(&[&["1", "2", ""]]));
    }

    #[test]
    fn line_numbers_count_quoted_line_ends() {
        let mut p = Parser::new(&b"a\n\"x\ny\"\nb\n"[..], b',');
        let mut lines = Vec::new();
        while p.next_record().unwrap() {
            lines.push(p.record_line);
        }
        assert_eq!(lines, vec![1, 2, 4]);
    }

    #[test]
    fn faults_name_line_and_column() {
        let e = records(b"a,b\n1,\"open\n2,3\n", b',').unwrap_err();
        assert_eq!(e, Fault::Malformed { line: 2, column: 2, what: e_what(&e) });
        let e = records(b"a,b\n1,\"x\"y\n", b',').unwrap_err();
        assert!(matches!(e, Fault::Malformed { line: 2, column: 2, .. }), "{e:?}");
    }

    fn e_what(e: &Fault) -> String {
        match e {
            Fault::Malformed { what, .. } => what.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn bom_is_skipped() {
        assert_eq!(records(b"\xEF\xBB\xBFa,b\n", b',').unwrap(), rows(&[&["a", "b"]]));
    }

    #[test]
    fn runaway_records_stop_at_the_cap() {
        struct Zeros;
        impl Read for Zeros {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                out.fill(b'0');
                Ok(out.len())
            }
        }
        let mut p = Parser::new(Zeros, b',');
        assert_eq!(p.next_record().unwrap_err(), Fault::TooLong { line: 1 });
    }
}
