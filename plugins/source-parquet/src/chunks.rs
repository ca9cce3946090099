//! Random access to the input for the Parquet reader: the footer and page
//! headers through `read-at`, and each projected column chunk of the current
//! row group fetched whole, once, so its pages are served from memory.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use parquet::errors::{ParquetError, Result};
use parquet::file::reader::{ChunkReader, Length};

/// Bytes asked of the source per `read-at` call (the host may answer with
/// fewer; it also caps the chunk itself).
const CHUNK: u32 = 1 << 20;
/// Bytes asked per call when a page header is read piecewise.
const HEADER_CHUNK: u32 = 8 * 1024;

/// Positional reads of a source of known size.
pub trait At: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Up to `max` bytes at `offset` (fewer only at the end).
    fn read_at(&self, offset: u64, max: u32) -> std::io::Result<Vec<u8>>;
}

/// In-memory bytes (the unit tests).
impl At for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, max: u32) -> std::io::Result<Vec<u8>> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let end = start.saturating_add(max as usize).min(self.len());
        Ok(self[start..end].to_vec())
    }
}

/// A [`ChunkReader`] over [`At`], with the prefetched column chunks. Clones
/// share the source and the cache (the file reader keeps one, the batch
/// reader prefetches through another).
pub struct Chunks<A> {
    src: Arc<A>,
    /// Column chunks of the current row group: (file offset, bytes).
    cached: Arc<Mutex<Vec<(u64, Bytes)>>>,
}

impl<A> Clone for Chunks<A> {
    fn clone(&self) -> Self {
        Chunks { src: Arc::clone(&self.src), cached: Arc::clone(&self.cached) }
    }
}

impl<A: At> Chunks<A> {
    pub fn new(src: A) -> Self {
        Chunks { src: Arc::new(src), cached: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Read `[start, start + len)` into memory, forgetting earlier chunks
    /// when `replace` (a new row group begins).
    pub fn prefetch(&self, start: u64, len: u64, replace: bool) -> Result<()> {
        let len = usize::try_from(len).map_err(|_| ParquetError::General("column chunk larger than memory".into()))?;
        let bytes = read_exact(&*self.src, start, len)?;
        let mut cached = self.cached.lock().map_err(|_| ParquetError::General("chunk cache poisoned".into()))?;
        if replace {
            cached.clear();
        }
        cached.push((start, bytes));
        Ok(())
    }

    /// The cached bytes covering `[start, start + len)`, if any.
    fn cached(&self, start: u64, len: usize) -> Option<Bytes> {
        let cached = self.cached.lock().ok()?;
        cached.iter().find_map(|(at, bytes)| {
            let from = usize::try_from(start.checked_sub(*at)?).ok()?;
            (from.checked_add(len)? <= bytes.len()).then(|| bytes.slice(from..from + len))
        })
    }
}

/// Exactly `len` bytes at `start`, or an error naming the short read.
fn read_exact<A: At + ?Sized>(src: &A, start: u64, len: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| ParquetError::General(format!("cannot allocate {len} bytes")))?;
    while out.len() < len {
        let at = start + out.len() as u64;
        let want = u32::try_from(len - out.len()).unwrap_or(u32::MAX).min(CHUNK);
        let got = src.read_at(at, want).map_err(|e| ParquetError::External(Box::new(e)))?;
        if got.is_empty() {
            return Err(ParquetError::EOF(format!(
                "the file ends at byte {at}, but {len} bytes from byte {start} were expected (truncated file?)"
            )));
        }
        out.extend_from_slice(&got[..got.len().min(len - out.len())]);
    }
    Ok(Bytes::from(out))
}

impl<A: At> Length for Chunks<A> {
    fn len(&self) -> u64 {
        self.src.size()
    }
}

impl<A: At + 'static> ChunkReader for Chunks<A> {
    type T = Reader<A>;

    fn get_read(&self, start: u64) -> Result<Reader<A>> {
        // Served from the column chunk when it is cached (the page headers).
        let cached = self.cached.lock().map_err(|_| ParquetError::General("chunk cache poisoned".into()))?;
        for (at, bytes) in cached.iter() {
            if let Some(from) = start.checked_sub(*at).and_then(|f| usize::try_from(f).ok()) {
                if from < bytes.len() {
                    return Ok(Reader::Memory(bytes.slice(from..).reader()));
                }
            }
        }
        Ok(Reader::Remote { src: Arc::clone(&self.src), pos: start, buf: Bytes::new() })
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        match self.cached(start, length) {
            Some(bytes) => Ok(bytes),
            None => read_exact(&*self.src, start, length),
        }
    }
}

/// A forward reader from an offset.
pub enum Reader<A> {
    /// Inside a cached column chunk.
    Memory(bytes::buf::Reader<Bytes>),
    /// Straight from the source, in small pieces.
    Remote { src: Arc<A>, pos: u64, buf: Bytes },
}

impl<A: At> Read for Reader<A> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Reader::Memory(r) => r.read(out),
            Reader::Remote { src, pos, buf } => {
                if buf.is_empty() {
                    *buf = Bytes::from(src.read_at(*pos, HEADER_CHUNK)?);
                    *pos += buf.len() as u64;
                }
                let n = out.len().min(buf.len());
                buf.copy_to_slice(&mut out[..n]);
                Ok(n)
            }
        }
    }
}
