//! Inputs as they come: gzip data, recognised by its magic bytes whatever
//! the file is called, is decompressed by the host before the component
//! reads it, and every input is capped so that a gzip bomb or an oversized
//! file ends as a data-source error instead of filling memory or disk.

use std::io::{BufRead, BufReader, Read};

/// gzip magic bytes (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `raw` as the component should see it: gzip data (recognised by its magic
/// bytes, whatever the file is called) is decompressed on the fly, every
/// member of a multi-member file, and at most `RECOTEM_MAX_DECOMPRESSED_BYTES`
/// come out: past that the read fails, so a gzip bomb ends as a data-source
/// error instead of filling memory or disk. Returns the stream and the
/// compression found.
pub fn decompressing(raw: impl Read + Send + 'static) -> std::io::Result<(Box<dyn Read + Send>, Option<&'static str>)> {
    let mut raw = BufReader::with_capacity(1 << 20, raw);
    let head = loop {
        match raw.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if !head.starts_with(&GZIP_MAGIC) {
        return Ok((Box::new(raw), None));
    }
    let cap = crate::settings::get().max_decompressed_bytes;
    let decoder = flate2::bufread::MultiGzDecoder::new(raw);
    Ok((Box::new(Capped::new(decoder, cap, "RECOTEM_MAX_DECOMPRESSED_BYTES")), Some("gzip")))
}

/// A reader that fails once more than `cap` bytes come out of `inner`
/// (rather than truncating the data silently).
pub struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
    setting: &'static str,
}

impl<R> Capped<R> {
    pub fn new(inner: R, cap: u64, setting: &'static str) -> Self {
        Capped { inner, left: cap, cap, setting }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // Ask for one byte past the cap, so reaching it exactly is not a fault.
        let want = out.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut out[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "the input is larger than {} ({} bytes); raise it if the data is genuine",
                self.setting, self.cap
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_is_found_by_its_magic_and_members_are_joined() {
        let mut both = gzip(b"u,i\n1,2\n");
        both.extend(gzip(b"3,4\n"));
        let (mut r, c) = decompressing(std::io::Cursor::new(both)).unwrap();
        assert_eq!(c, Some("gzip"));
        assert_eq!(read_all(&mut r).unwrap(), b"u,i\n1,2\n3,4\n");
        let (mut r, c) = decompressing(std::io::Cursor::new(b"u,i\n".to_vec())).unwrap();
        assert_eq!((c, read_all(&mut r).unwrap()), (None, b"u,i\n".to_vec()));
    }

    #[test]
    fn caps_fail_instead_of_truncating() {
        let mut exact = Capped::new(&b"abcd"[..], 4, "X");
        assert_eq!(read_all(&mut exact).unwrap(), b"abcd");
        let mut over = Capped::new(&b"abcde"[..], 4, "X");
        let e = read_all(&mut over).unwrap_err();
        assert!(e.to_string().contains("larger than X (4 bytes)"), "{e}");
    }
}
