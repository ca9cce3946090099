//! `std::io::Read` over the host-provided input stream.

use crate::source::Input;

/// How many bytes one host call asks for.
const CHUNK: u32 = 256 * 1024;

/// Reads the stream the host opened for this plugin.
///
/// Wrap it in a `std::io::BufReader` only if you read in tiny pieces: every
/// `read` already asks the host for up to 256 KiB and serves small reads from
/// what it got.
pub struct InputReader {
    input: Input,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl InputReader {
    /// Wrap a stream.
    pub fn new(input: Input) -> Self {
        InputReader { input, buf: Vec::new(), pos: 0, eof: false }
    }

    /// Total size in bytes, when the host knows it.
    pub fn size_hint(&self) -> Option<u64> {
        self.input.size_hint()
    }

    /// Read up to `max_bytes` bytes at `offset` without moving the position
    /// `read` continues from. Inputs the host can only stream forward
    /// answer with an error that says so.
    pub fn read_at(&self, offset: u64, max_bytes: u32) -> std::io::Result<Vec<u8>> {
        self.input.read_at(offset, max_bytes).map_err(std::io::Error::other)
    }
}

impl std::io::Read for InputReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.buf.len() {
            if self.eof {
                return Ok(0);
            }
            self.buf = self.input.read(CHUNK).map_err(std::io::Error::other)?;
            self.pos = 0;
            if self.buf.is_empty() {
                self.eof = true;
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
