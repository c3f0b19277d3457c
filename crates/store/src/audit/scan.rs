//! Reading the whole chain for verification (R13), at close to the speed of hashing it.
//!
//! Verification reads every entry once, in `seq` order, from one snapshot, so the head it
//! compares the last entry with is the head of the entries it read, however busy the server is.
//! sqlx's `Any` driver copies every value of every row into owned values, which for a million
//! entries costs more than checking them (countersign-bench, audit-verify); so each backend
//! hands over its rows in one byte format, PostgreSQL's binary `COPY` tuples, which [`Tuples`]
//! reads in place:
//! - PostgreSQL: `COPY (SELECT …) TO STDOUT (FORMAT binary)` on a connection of its own, in a
//!   read-only repeatable-read transaction. The database builds the rows in its own process
//!   while this one checks them.
//! - SQLite: a read-only connection of its own (rusqlite: it lends each value in place, where
//!   sqlx copies it), stepping the rows in a blocking thread and handing them over in chunks,
//!   so reading and checking run on two cores.

use crate::{Backend, Result, StoreError};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// What every scan reads, in this order: the binary tuple of each row has these five fields.
pub(super) const SCAN_COLUMNS: &str = "seq, hash, key_id, link, entry";
const FIELDS: i16 = 5;
/// Bytes of tuples a SQLite chunk holds before it is handed over.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks a SQLite reader may be ahead of the checker.
const CHUNKS_AHEAD: usize = 4;
/// How much of the database file the reading connection maps: more than any audit log here.
const MMAP_BYTES: i64 = 1 << 40;
/// The binary COPY signature, then flags and a header extension length (both 32-bit, zero).
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
const HEADER_LEN: usize = SIGNATURE.len() + 8;

/// One stored entry as the scan hands it over; `None` for a NULL column.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScanRow<'a> {
    pub seq: i64,
    pub hash: Option<&'a [u8]>,
    pub key_id: Option<&'a [u8]>,
    pub link: Option<&'a [u8]>,
    /// The canonical bytes; `None` for entries written before the chain was keyed.
    pub entry: Option<&'a [u8]>,
}

/// Binary COPY tuples as they arrive, read in place. A tuple cut off at the end of what has
/// arrived waits for the next bytes.
#[derive(Debug, Default)]
pub(super) struct Tuples {
    buf: Vec<u8>,
    /// Where the first tuple not yet read starts.
    read: usize,
    header: bool,
    ended: bool,
}

impl Tuples {
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.read > 0 {
            self.buf.drain(..self.read);
            self.read = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Like [`extend`](Self::extend), taking `bytes` as the buffer when nothing is waiting,
    /// which saves copying a chunk that ends where a tuple ends.
    pub fn extend_owned(&mut self, bytes: Vec<u8>) {
        if self.buffered() == 0 {
            self.buf = bytes;
            self.read = 0;
        } else {
            self.extend(&bytes);
        }
    }

    /// Bytes waiting to be read.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.read
    }

    /// Whether the trailer that ends the rows has been read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The complete tuples that arrived since the last call, in the order they were sent.
    pub fn rows(&mut self) -> std::result::Result<Vec<ScanRow<'_>>, String> {
        let Tuples { buf, read, header, ended } = self;
        if !*header {
            if buf.len() < HEADER_LEN {
                return Ok(Vec::new());
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err("the scan does not start with the binary COPY signature".into());
            }
            let extension = i32_at(buf, SIGNATURE.len() + 4);
            let extension = usize::try_from(extension).map_err(|_| "a negative header extension".to_owned())?;
            if buf.len() < HEADER_LEN + extension {
                return Ok(Vec::new());
            }
            *read = HEADER_LEN + extension;
            *header = true;
        }
        let buf = &buf[..];
        let mut rows = Vec::with_capacity(buf.len().saturating_sub(*read) / 400 + 1);
        let mut at = *read;
        while !*ended {
            match tuple(buf, at)? {
                Tuple::Row(row, next) => {
                    rows.push(row);
                    at = next;
                }
                Tuple::End(next) => {
                    *ended = true;
                    at = next;
                }
                Tuple::Incomplete => break,
            }
        }
        *read = at;
        Ok(rows)
    }
}

enum Tuple<'a> {
    Row(ScanRow<'a>, usize),
    End(usize),
    Incomplete,
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(bytes)
}

/// The tuple starting at `at`.
fn tuple(buf: &[u8], at: usize) -> std::result::Result<Tuple<'_>, String> {
    let Some(count) = buf.get(at..at + 2) else { return Ok(Tuple::Incomplete) };
    let count = i16::from_be_bytes([count[0], count[1]]);
    if count == -1 {
        return Ok(Tuple::End(at + 2));
    }
    if count != FIELDS {
        return Err(format!("a scanned row has {count} fields, not {FIELDS}"));
    }
    let mut fields: [Option<&[u8]>; FIELDS as usize] = [None; FIELDS as usize];
    let mut next = at + 2;
    for field in &mut fields {
        if buf.len() < next + 4 {
            return Ok(Tuple::Incomplete);
        }
        let len = i32_at(buf, next);
        next += 4;
        if len >= 0 {
            let end = next + len as usize;
            let Some(bytes) = buf.get(next..end) else { return Ok(Tuple::Incomplete) };
            *field = Some(bytes);
            next = end;
        }
    }
    let [seq, hash, key_id, link, entry] = fields;
    // The column is a non-null integer on both backends; anything else was written around the
    // server, and the checker reports the entry where it expected it.
    let seq = seq.and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map_or(i64::MIN, i64::from_be_bytes);
    Ok(Tuple::Row(ScanRow { seq, hash, key_id, link, entry }, next))
}

/// One field of a binary tuple: its length (-1 for NULL), then its bytes.
fn put_field(chunk: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => chunk.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(bytes) => {
            // A value over 2 GiB is cut, and then cannot match its hash.
            let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
            chunk.extend_from_slice(&len.to_be_bytes());
            chunk.extend_from_slice(&bytes[..len as usize]);
        }
    }
}

/// The order a scan reads the rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// On SQLite, as they are stored (by rowid), which is `seq` order there (one process
    /// appends, in `seq` order), and reads without walking the `seq` index
    /// (countersign-bench, audit-verify): a chain that checks out read this way came in `seq`
    /// order. PostgreSQL places concurrent appends from several replicas on several pages, so
    /// it always reads by `seq`.
    AsStored,
    /// By `seq`, for the verdict on a chain that did not check out as stored: rows stored out of
    /// order are not by themselves a break.
    BySeq,
}

/// The SQL that reads the chain: the scan's columns, in `order`.
pub(super) fn scan_sql(backend: Backend, order: Order) -> String {
    let order = match (order, backend) {
        (Order::AsStored, Backend::Sqlite) => "rowid",
        _ => "seq",
    };
    format!("SELECT {SCAN_COLUMNS} FROM audit_log ORDER BY {order}")
}

/// What a SQLite reader hands over: first the stored head, then chunks of tuples.
pub(super) enum Part {
    Head(i64),
    Tuples(Vec<u8>),
}

/// Starts reading the SQLite database at `path` in a blocking thread of its own.
pub(super) fn scan_sqlite(path: PathBuf, order: Order) -> mpsc::Receiver<Result<Part>> {
    let (parts, receiver) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = read_sqlite(&path, order, &parts) {
            let _ = parts.blocking_send(Err(StoreError::Unavailable(format!("reading the audit log: {e}"))));
        }
    });
    receiver
}

/// Reads the head and every entry in one read transaction. Stops quietly when the checker
/// stops listening (it found a break).
fn read_sqlite(path: &std::path::Path, order: Order, parts: &mpsc::Sender<Result<Part>>) -> rusqlite::Result<()> {
    use rusqlite::types::ValueRef;
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    // Pages read through a memory map, not copied out of the page cache one read at a time
    // (a third of the reading thread's time, countersign-bench). Only this connection maps.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A deferred transaction's snapshot starts at its first read, and holds for both.
    let tx = conn.unchecked_transaction()?;
    let head: i64 = tx.query_row("SELECT seq FROM audit_head WHERE id = 1", [], |row| row.get(0))?;
    if parts.blocking_send(Ok(Part::Head(head))).is_err() {
        return Ok(());
    }
    let mut statement = tx.prepare(&scan_sql(Backend::Sqlite, order))?;
    let mut rows = statement.query([])?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + (CHUNK_BYTES >> 4));
    chunk.extend_from_slice(SIGNATURE);
    chunk.extend_from_slice(&[0; 8]);
    while let Some(row) = rows.next()? {
        chunk.extend_from_slice(&FIELDS.to_be_bytes());
        for column in 0..FIELDS as usize {
            match (column, row.get_ref(column)?) {
                (_, ValueRef::Null) => put_field(&mut chunk, None),
                (0, ValueRef::Integer(seq)) => put_field(&mut chunk, Some(&seq.to_be_bytes())),
                // A seq that is not an integer: the parser reads it as no seq at all.
                (0, _) => put_field(&mut chunk, Some(&[])),
                (_, ValueRef::Text(bytes) | ValueRef::Blob(bytes)) => put_field(&mut chunk, Some(bytes)),
                // A number where text belongs was written around the server: hashed as its
                // text, it cannot match.
                (_, ValueRef::Integer(n)) => put_field(&mut chunk, Some(n.to_string().as_bytes())),
                (_, ValueRef::Real(n)) => put_field(&mut chunk, Some(n.to_string().as_bytes())),
            }
        }
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + (CHUNK_BYTES >> 4)));
            if parts.blocking_send(Ok(Part::Tuples(full))).is_err() {
                return Ok(());
            }
        }
    }
    chunk.extend_from_slice(&(-1i16).to_be_bytes());
    let _ = parts.blocking_send(Ok(Part::Tuples(chunk)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(rows: &[(i64, Option<&str>)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&[0; 8]);
        for &(seq, entry) in rows {
            out.extend_from_slice(&FIELDS.to_be_bytes());
            put_field(&mut out, Some(&seq.to_be_bytes()));
            put_field(&mut out, Some(b"hash"));
            put_field(&mut out, None);
            put_field(&mut out, None);
            put_field(&mut out, entry.map(str::as_bytes));
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn tuples_cut_anywhere_read_as_the_same_rows() {
        let bytes = encoded(&[(1, Some("[1,\"a\"]")), (2, None), (3, Some("[3]"))]);
        for cut in 0..bytes.len() {
            let mut tuples = Tuples::default();
            let mut seen = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                tuples.extend(part);
                let rows = tuples.rows().unwrap();
                seen.extend(rows.iter().map(|row| (row.seq, row.entry.map(<[u8]>::to_vec))));
            }
            assert!(tuples.ended(), "cut at {cut}");
            assert_eq!(tuples.buffered(), 0, "cut at {cut}");
            assert_eq!(
                seen,
                vec![(1, Some(b"[1,\"a\"]".to_vec())), (2, None), (3, Some(b"[3]".to_vec()))],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_stream_that_is_not_binary_copy_is_refused() {
        let mut tuples = Tuples::default();
        tuples.extend(b"1\thash\t\\N\t\\N\t[1]\n0123456789");
        assert!(tuples.rows().is_err());
        let mut tuples = Tuples::default();
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&3i16.to_be_bytes());
        tuples.extend(&bytes);
        assert!(tuples.rows().unwrap_err().contains("3 fields"));
    }
}
