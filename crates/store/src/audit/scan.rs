//! Reading the whole chain for verification (R13), at close to the speed of hashing it.
//!
//! Verification reads every entry once, from one snapshot, so the head it compares the last
//! entry with is the head of the entries it read, however busy the server is. Each core has a
//! reader: a connection of its own, read and walked on a thread of its own. The chain is cut
//! into a few segments a reader, which the readers take in turn, so that they finish together
//! when something else on the machine slows one of them; the walks are joined in order
//! afterwards ([`ChainVerifier::join`]), which gives exactly the verdict of one walk
//! (countersign-bench, audit-verify). Rows are read first in
//! the order they are stored, which is `seq` order unless several writers interleaved them, and
//! walked again by `seq` when that walk finds anything, so rows stored out of order are never
//! by themselves a break.
//! - PostgreSQL: every connection imports the first one's snapshot (`pg_export_snapshot`) in
//!   a read-only repeatable-read transaction and sends each segment it takes with `COPY (SELECT
//!   …) TO STDOUT (FORMAT binary)`, which [`Tuples`] reads in place; each reader's thread drives
//!   its connection on a runtime of its own and checks what it received, while the database
//!   builds the rows in processes of its own.
//! - SQLite: read-only connections of its own (rusqlite: it lends each value in place, where
//!   sqlx's `Any` driver copies every value of every row), each beginning its read transaction
//!   while another connection holds the write lock, so no commit can land between them; the
//!   segments a connection takes are all read in that transaction.

use super::{chain_entry, Legacy, SegmentWalk};
use crate::{Result, StoreError};
use countersign_core::audit::ChainVerifier;
use std::path::Path;

/// What every scan reads, in this order: the binary tuple of each row has these five fields.
pub(super) const SCAN_COLUMNS: &str = "seq, hash, key_id, link, entry";
/// The same on SQLite, as blobs: SQLite lends a blob in place, where it copies text to end it
/// with a NUL (a fifth of the reading thread, countersign-bench); a number a writer stored
/// where text belongs comes as its text, which cannot match.
const SQLITE_SCAN_COLUMNS: &str =
    "seq, CAST(hash AS BLOB), CAST(key_id AS BLOB), CAST(link AS BLOB), CAST(entry AS BLOB)";
const FIELDS: i16 = 5;
/// Bytes of PostgreSQL tuples a reader gathers before walking them.
const CHUNK_BYTES: usize = 1 << 20;
/// How much of the database file each reading connection maps: more than any audit log here.
const MMAP_BYTES: i64 = 1 << 40;
/// Entries below which a reader of its own is not worth a connection and a thread (the
/// store's tests read their few thousand entries with three readers on any machine).
const READER_MIN_ENTRIES: i64 = if cfg!(test) { 1 << 10 } else { 1 << 15 };
/// How long SQLite readers wait for the write lock to begin side by side.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Readers at most, whatever the core count.
const READERS_MAX: usize = 8;
/// Segments each reader takes in turn, when there is more than one reader: a reader slowed
/// by anything else on the machine takes fewer, so the readers finish together (the two
/// segments of two readers ended up to a sixth apart, countersign-bench).
const SEGMENTS_PER_READER: usize = 4;
/// The binary COPY signature, then flags and a header extension length (both 32-bit, zero).
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
const HEADER_LEN: usize = SIGNATURE.len() + 8;

/// The order a scan reads the rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// As they are stored (SQLite's rowid, PostgreSQL's heap pages), which reads without
    /// walking the `seq` index: a chain that checks out read this way came in `seq` order.
    AsStored,
    /// By `seq`, for the verdict on a chain that did not check out as stored.
    BySeq,
}

/// Readers for this machine: one per core, as long as each reads enough entries.
fn readers_for(entries: i64) -> usize {
    let cores = match cfg!(test) {
        true => 3,
        false => std::thread::available_parallelism().map_or(1, |n| n.get()).min(READERS_MAX),
    };
    usize::try_from(entries / READER_MIN_ENTRIES).unwrap_or(usize::MAX).clamp(1, cores)
}

/// Segments for `readers`: one reader reads the chain in one.
fn segments_for(readers: usize) -> usize {
    if readers > 1 {
        readers * SEGMENTS_PER_READER
    } else {
        1
    }
}

/// `[first, last]` cut into `parts` consecutive inclusive ranges.
fn split(first: i64, last: i64, parts: usize) -> Vec<(i64, i64)> {
    let parts = parts.max(1) as i128;
    let (first, span) = (i128::from(first), i128::from(last) - i128::from(first) + 1);
    (0..parts)
        .map(|i| (first + span * i / parts, first + span * (i + 1) / parts - 1))
        .filter(|(lo, hi)| lo <= hi)
        .map(|(lo, hi)| (lo as i64, hi as i64))
        .collect()
}

/// For each segment ending at `ends[i]` (written by `value`), a condition on `column` that
/// holds for its rows, such that every row is in exactly one segment whatever `column` holds:
/// the first segment takes everything up to its end (NULL too where `column` may hold it, as
/// a SQLite `seq` written around the server may), the last everything after the one before it
/// (text too), and ordering by `column` within each keeps the order of one scan.
fn segment_conditions(column: &str, ends: &[i64], value: impl Fn(i64) -> String, nullable: bool) -> Vec<String> {
    let last = ends.len().saturating_sub(1);
    (0..ends.len())
        .map(|i| match (i, i == last) {
            (0, true) => "TRUE".to_owned(),
            (0, false) if nullable => format!("({column} > {}) IS NOT TRUE", value(ends[0])),
            (0, false) => format!("{column} <= {}", value(ends[0])),
            (_, true) => format!("{column} > {}", value(ends[i - 1])),
            (_, false) => format!("{column} > {} AND {column} <= {}", value(ends[i - 1]), value(ends[i])),
        })
        .collect()
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("reading the audit log: {e}"))
}

/// The walks of every segment, in chain order, and the head of the snapshot they read.
pub(super) struct Walks<'k> {
    pub head: i64,
    pub segments: Vec<SegmentWalk<'k>>,
}

/// Walks the SQLite database at `path`, with a thread of its own for each reader.
pub(super) fn walk_sqlite<'k>(
    path: &Path,
    order: Order,
    base: &ChainVerifier<'k>,
    legacy: &Legacy<'_>,
) -> Result<Walks<'k>> {
    use rusqlite::{Connection, OpenFlags};
    let open = || -> rusqlite::Result<Connection> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    };
    let reader = || -> rusqlite::Result<(Connection, i64)> {
        let conn = open()?;
        conn.pragma_update(None, "query_only", true)?;
        // Pages read through a memory map, not copied out of the page cache one read at a time.
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        // A deferred transaction's snapshot starts at its first read, and holds to the end.
        conn.execute_batch("BEGIN")?;
        let head = conn.query_row("SELECT seq FROM audit_head WHERE id = 1", [], |row| row.get(0))?;
        Ok((conn, head))
    };
    let column = match order {
        Order::AsStored => "rowid",
        Order::BySeq => "seq",
    };
    let (first, head) = reader().map_err(unavailable)?;
    let (low, high): (Option<i64>, Option<i64>) =
        first.query_row(sqlite_bounds(order), [], |row| Ok((row.get(0)?, row.get(1)?))).map_err(unavailable)?;
    let (low, high) = (low.unwrap_or(0), high.unwrap_or(-1));
    let mut readers = vec![first];
    let wanted = readers_for(high.saturating_sub(low));
    if wanted > 1 {
        // The other readers begin while this connection holds the write lock, so they read the
        // first one's snapshot: nothing can commit in between. Without the lock, one reader.
        let lock = open().map_err(unavailable)?;
        // Not worth waiting long for a writer: one reader is slower, not wrong.
        lock.busy_timeout(LOCK_WAIT).map_err(unavailable)?;
        if lock.execute_batch("BEGIN IMMEDIATE").is_ok() {
            let started: Vec<(Connection, i64)> =
                (1..wanted).map(|_| reader()).collect::<rusqlite::Result<_>>().map_err(unavailable)?;
            let _ = lock.execute_batch("ROLLBACK");
            // A commit between the first reader and the lock shows in the head: one reader then.
            if started.iter().all(|(_, same)| *same == head) {
                readers.extend(started.into_iter().map(|(conn, _)| conn));
            }
        }
    }
    let ranges = split(low, high, segments_for(readers.len()));
    let ranges = if ranges.is_empty() { vec![(low, high)] } else { ranges };
    let ends: Vec<i64> = ranges.iter().map(|&(_, end)| end).collect();
    let statements: Vec<String> = segment_conditions(column, &ends, |end| end.to_string(), order == Order::BySeq)
        .into_iter()
        .map(|condition| format!("SELECT {SQLITE_SCAN_COLUMNS} FROM audit_log WHERE {condition} ORDER BY {column}"))
        .collect();
    let segments = side_by_side(
        readers,
        &statements,
        base,
        |conn, sql, walk| read_sqlite_segment(conn, sql, walk, legacy),
        close_aside,
    )?;
    Ok(Walks { head, segments })
}

/// The first and last value of the column a SQLite scan is cut by. One subquery each: SQLite
/// finds a lone min() or max() at an end of the index, but scans the whole table for both in
/// one query (70 ms a million entries, countersign-bench).
fn sqlite_bounds(order: Order) -> &'static str {
    match order {
        Order::AsStored => "SELECT (SELECT min(rowid) FROM audit_log), (SELECT max(rowid) FROM audit_log)",
        Order::BySeq => {
            "SELECT (SELECT min(seq) FROM audit_log WHERE typeof(seq) = 'integer'), \
                    (SELECT max(seq) FROM audit_log WHERE typeof(seq) = 'integer')"
        }
    }
}

/// Closes a reader on a thread of its own: closing unmaps the database file, tens of
/// milliseconds for a large log, which the verdict need not wait for. Where no thread can be
/// started it closes here.
fn close_aside(conn: rusqlite::Connection) {
    let _ = std::thread::Builder::new().name("audit-reader-close".into()).spawn(move || drop(conn));
}

/// Reads one segment's rows and walks them, until the walk finds something.
fn read_sqlite_segment<'k>(
    conn: &rusqlite::Connection,
    sql: &str,
    mut walk: SegmentWalk<'k>,
    legacy: &Legacy<'_>,
) -> Result<SegmentWalk<'k>> {
    use rusqlite::types::ValueRef;
    let mut statement = conn.prepare(sql).map_err(unavailable)?;
    let mut rows = statement.query([]).map_err(unavailable)?;
    let mut held = legacy.holder();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let values: [ValueRef<'_>; FIELDS as usize] = [
            row.get_ref(0).map_err(unavailable)?,
            row.get_ref(1).map_err(unavailable)?,
            row.get_ref(2).map_err(unavailable)?,
            row.get_ref(3).map_err(unavailable)?,
            row.get_ref(4).map_err(unavailable)?,
        ];
        let field = |i: usize| match values[i] {
            ValueRef::Null => None,
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(bytes),
            // Cast to blobs, the columns hold nothing else.
            ValueRef::Integer(_) | ValueRef::Real(_) => Some(&b""[..]),
        };
        let scanned = ScanRow {
            // A seq that is not an integer was written around the server: no seq at all.
            seq: match values[0] {
                ValueRef::Integer(seq) => seq,
                _ => i64::MIN,
            },
            hash: field(1),
            key_id: field(2),
            link: field(3),
            entry: field(4),
        };
        let entry = chain_entry(&scanned, &mut held)?;
        if !walk.push(entry) {
            break;
        }
    }
    Ok(walk)
}

/// A connection reading segments, with the runtime that drives it. Each reader's thread
/// drives its own connection, so the bytes it receives are checked on the thread, and in the
/// cache, that received them: 0.34–0.43 of raw HMAC-SHA-256 where a task handing chunks to
/// the checking thread gave 0.31–0.34 (countersign-bench).
struct PostgresReader {
    // Dropped before its runtime.
    conn: sqlx::postgres::PgConnection,
    runtime: tokio::runtime::Runtime,
    /// Whether every `COPY` it began has ended: one left mid-way cannot be closed politely,
    /// as the server reads nothing until it has sent everything.
    between_copies: bool,
}

impl PostgresReader {
    /// Ends the connection: politely between copies (the transaction only read), by dropping
    /// it mid-way through one.
    fn close(self) {
        let PostgresReader { conn, runtime, between_copies } = self;
        match between_copies {
            true => {
                let _ = runtime.block_on(sqlx::Connection::close(conn));
            }
            false => drop(conn),
        }
    }
}

/// Walks the PostgreSQL database `options` names, with a thread of its own for each reader.
pub(super) fn walk_postgres<'k>(
    options: &sqlx::postgres::PgConnectOptions,
    order: Order,
    base: &ChainVerifier<'k>,
    legacy: &Legacy<'_>,
) -> Result<Walks<'k>> {
    let (head, readers, statements) = open_postgres(options, order)?;
    let segments = side_by_side(
        readers,
        &statements,
        base,
        |reader, sql, walk| read_postgres_segment(reader, sql, walk, legacy),
        PostgresReader::close,
    )?;
    Ok(Walks { head, segments })
}

/// Opens the connections that read the chain from one snapshot, and the statement of each
/// segment: the first connection exports its snapshot and the others import it before any
/// segment is read.
fn open_postgres(
    options: &sqlx::postgres::PgConnectOptions,
    order: Order,
) -> Result<(i64, Vec<PostgresReader>, Vec<String>)> {
    use sqlx::{Connection, Executor};
    let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    let runtime = reader_runtime()?;
    let mut first = runtime.block_on(sqlx::postgres::PgConnection::connect_with(options))?;
    let (head, snapshot, statements) = runtime.block_on(async {
        first.execute(begin).await?;
        let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(&mut first).await?;
        let (low, high): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT min(seq), max(seq) FROM audit_log").fetch_one(&mut first).await?;
        let (low, high) = (low.unwrap_or(0), high.unwrap_or(-1));
        // A standby cannot export its snapshot: one connection reads everything there.
        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut first).await?;
        let wanted = readers_for(high.saturating_sub(low));
        let mut snapshot = None;
        if !standby && wanted > 1 {
            let exported: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut first).await?;
            // A snapshot id is hex digits and dashes; anything else is not imported.
            snapshot = exported.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-').then_some(exported);
        }
        let readers = if snapshot.is_some() { wanted } else { 1 };
        let segments = segments_for(readers);
        let (conditions, order_by) = match order {
            Order::AsStored => {
                // Heap pages, split evenly; the last segment also reads any page added since. A
                // segment ends after the last tuple of its last page.
                let pages: i64 = sqlx::query_scalar(
                    "SELECT (pg_relation_size('audit_log') / current_setting('block_size')::bigint)::bigint",
                )
                .fetch_one(&mut first)
                .await?;
                let ends: Vec<i64> = split(0, pages.max(1) - 1, segments).iter().map(|&(_, end)| end).collect();
                (segment_conditions("ctid", &ends, |page| format!("'({page},65535)'::tid"), false), "")
            }
            Order::BySeq => {
                let ends: Vec<i64> = split(low, high, segments).iter().map(|&(_, end)| end).collect();
                (segment_conditions("seq", &ends, |seq| seq.to_string(), false), " ORDER BY seq")
            }
        };
        let conditions = if conditions.is_empty() { vec!["TRUE".to_owned()] } else { conditions };
        let statements: Vec<String> = conditions
            .into_iter()
            .map(|condition| {
                format!(
                    "COPY (SELECT {SCAN_COLUMNS} FROM audit_log WHERE {condition}{order_by}) TO STDOUT (FORMAT binary)"
                )
            })
            .collect();
        Ok::<_, StoreError>((head, snapshot.map(|snapshot| (snapshot, readers)), statements))
    })?;
    let mut readers = vec![PostgresReader { conn: first, runtime, between_copies: true }];
    if let Some((snapshot, wanted)) = snapshot {
        for _ in 1..wanted {
            let runtime = reader_runtime()?;
            let conn = runtime.block_on(async {
                let mut conn = sqlx::postgres::PgConnection::connect_with(options).await?;
                conn.execute(begin).await?;
                conn.execute(format!("SET TRANSACTION SNAPSHOT '{snapshot}'").as_str()).await?;
                Ok::<_, StoreError>(conn)
            })?;
            readers.push(PostgresReader { conn, runtime, between_copies: true });
        }
    }
    Ok((head, readers, statements))
}

/// A runtime of one thread, for one reader's connection.
fn reader_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(unavailable)
}

/// Reads one segment's `COPY` data and walks its rows as they arrive, until the walk finds
/// something; then the `COPY` is left where it is.
fn read_postgres_segment<'k>(
    reader: &mut PostgresReader,
    sql: &str,
    mut walk: SegmentWalk<'k>,
    legacy: &Legacy<'_>,
) -> Result<SegmentWalk<'k>> {
    use futures::StreamExt;
    let PostgresReader { conn, runtime, between_copies } = reader;
    let mut held = legacy.holder();
    *between_copies = false;
    let mut copy = runtime.block_on(conn.copy_out_raw(sql))?;
    let mut tuples = Tuples::default();
    loop {
        // A chunk is received inside the runtime and walked outside it, where fetching an
        // entry written before keying may wait for the store's own runtime.
        let chunk = runtime.block_on(async {
            let mut chunk = Vec::with_capacity(CHUNK_BYTES + (CHUNK_BYTES >> 4));
            while chunk.len() < CHUNK_BYTES {
                match copy.next().await {
                    Some(data) => chunk.extend_from_slice(&data?),
                    None => break,
                }
            }
            Ok::<_, StoreError>(chunk)
        })?;
        if chunk.is_empty() {
            break;
        }
        tuples.extend_owned(chunk);
        let rows = tuples.rows().map_err(|reason| StoreError::Corrupt(format!("the audit log scan: {reason}")))?;
        for row in &rows {
            if !walk.push(chain_entry(row, &mut held)?) {
                return Ok(walk);
            }
        }
    }
    if !tuples.ended() {
        return Err(StoreError::Unavailable("the audit log scan ended early".into()));
    }
    drop(copy);
    *between_copies = true;
    Ok(walk)
}

/// Walks `segments`, in chain order, on a thread for each reader: each thread takes the next
/// segment no thread has taken, walking the first from the chain's start and each later one
/// after its first row, and closes its reader with `close` when no segment is left. No thread
/// takes a segment after one that found something, which cannot change the verdict; the walks
/// come back in chain order, up to and including the first that found something.
fn side_by_side<'k, R: Send, Q: Sync>(
    readers: Vec<R>,
    segments: &[Q],
    base: &ChainVerifier<'k>,
    walk: impl Fn(&mut R, &Q, SegmentWalk<'k>) -> Result<SegmentWalk<'k>> + Sync,
    close: impl Fn(R) + Sync,
) -> Result<Vec<SegmentWalk<'k>>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let found_in = AtomicUsize::new(usize::MAX);
    let taken: Vec<(usize, SegmentWalk<'k>)> = std::thread::scope(|scope| {
        let (walk, close, next, found_in) = (&walk, &close, &next, &found_in);
        let running: Vec<_> = readers
            .into_iter()
            .map(|mut reader| {
                scope.spawn(move || {
                    let mut walked = Vec::new();
                    let ended = loop {
                        // Segments are taken in order, so every one before a segment that
                        // found something has been taken, and is walked to its end.
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(segment) = segments.get(i).filter(|_| i <= found_in.load(Ordering::Relaxed)) else {
                            break Ok(());
                        };
                        let start =
                            if i == 0 { SegmentWalk::first(base.clone()) } else { SegmentWalk::later(base.clone()) };
                        let segment_walk = match walk(&mut reader, segment, start) {
                            Ok(segment_walk) => segment_walk,
                            Err(e) => break Err(e),
                        };
                        let found = segment_walk.found.is_err();
                        walked.push((i, segment_walk));
                        if found {
                            found_in.fetch_min(i, Ordering::Relaxed);
                            break Ok(());
                        }
                    };
                    close(reader);
                    ended.map(|()| walked)
                })
            })
            .collect();
        let mut taken = Vec::new();
        for thread in running {
            taken.extend(thread.join().unwrap_or_else(|_| Err(unavailable("a verifying thread stopped")))?);
        }
        Ok::<_, StoreError>(taken)
    })?;
    in_chain_order(taken, segments.len())
}

/// The walks of the segments numbered `0..segments`, in chain order, up to and including the
/// first that found something; every segment before that one must have been walked.
fn in_chain_order<'k>(mut taken: Vec<(usize, SegmentWalk<'k>)>, segments: usize) -> Result<Vec<SegmentWalk<'k>>> {
    taken.sort_unstable_by_key(|(i, _)| *i);
    let mut walks = Vec::with_capacity(taken.len());
    for (expected, (i, walk)) in taken.into_iter().enumerate() {
        if i != expected {
            break;
        }
        let found = walk.found.is_err();
        walks.push(walk);
        if found {
            return Ok(walks);
        }
    }
    match walks.len() == segments {
        true => Ok(walks),
        false => Err(unavailable(format!("segment {} of the audit log was not walked", walks.len() + 1))),
    }
}

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

#[cfg(test)]
mod tests {
    use super::super::Walked;
    use super::*;
    use countersign_core::audit::{
        chain_entries, AuditKey, AuditKeys, AuditRecord, BreakKind, ChainEntry, ChainHead, Evidence,
    };

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

    /// A keyed chain of `entries` after the head `(0, zeros)`, and that head.
    fn chain(keys: &AuditKeys, entries: i64) -> (ChainHead, Vec<AuditRecord>, Vec<Vec<u8>>) {
        let start = ChainHead { seq: 0, hash: "0".repeat(64), key_id: None };
        let mut records: Vec<AuditRecord> = (0..entries)
            .map(|i| AuditRecord {
                seq: 0,
                id: format!("entry-{i}"),
                at: i,
                actor_id: None,
                actor_name: "system".into(),
                category: "request".into(),
                action: "approved".into(),
                target_type: None,
                target_id: None,
                details: String::new(),
                prev_hash: String::new(),
                hash: String::new(),
                link: None,
                key_id: None,
            })
            .collect();
        chain_entries(&mut start.clone(), Some(keys), &mut records).unwrap();
        let canonical = records.iter().map(AuditRecord::canonical_bytes).collect();
        (start, records, canonical)
    }

    /// The chain's entries in `segments` consecutive slices, walked side by side by `readers`
    /// threads, each of which yields for a while now and then, so they take segments out of
    /// turn.
    fn walk_side_by_side(
        keys: &AuditKeys,
        (start, records, canonical): &(ChainHead, Vec<AuditRecord>, Vec<Vec<u8>>),
        readers: usize,
        segments: usize,
    ) -> (Walked, Vec<usize>) {
        let base = ChainVerifier::resume(Evidence { keys: Some(keys), ..Evidence::default() }, start).unwrap();
        let slices: Vec<(usize, std::ops::Range<usize>)> = split(0, records.len() as i64 - 1, segments)
            .into_iter()
            .enumerate()
            .map(|(i, (first, last))| (i, first as usize..last as usize + 1))
            .collect();
        let taken = std::sync::Mutex::new(Vec::new());
        let walks = side_by_side(
            (0..readers).collect(),
            &slices,
            &base,
            |reader: &mut usize, (i, rows): &(usize, std::ops::Range<usize>), mut walk| {
                taken.lock().unwrap().push(*i);
                if (*i + *reader).is_multiple_of(3) {
                    (0..1000).for_each(|_| std::thread::yield_now());
                }
                for at in rows.clone() {
                    let record = &records[at];
                    let entry = ChainEntry {
                        seq: record.seq,
                        canonical: &canonical[at],
                        hash: record.hash.as_bytes(),
                        link: record.link.as_deref().map(str::as_bytes),
                        key_id: record.key_id.as_deref(),
                    };
                    if !walk.push(Ok(entry)) {
                        break;
                    }
                }
                Ok(walk)
            },
            drop,
        )
        .unwrap();
        let head = records.len() as i64;
        (Walked::joined(Walks { head, segments: walks }), taken.into_inner().unwrap())
    }

    #[test]
    fn readers_taking_segments_in_turn_check_the_chain_as_one_walk_does() {
        let keys = AuditKeys::new(vec![AuditKey::new(&[7; 32])]).unwrap();
        let chain = chain(&keys, 300);
        for (readers, segments) in [(1, 1), (1, 5), (2, 8), (3, 12), (4, 3), (3, 300)] {
            let (walked, mut taken) = walk_side_by_side(&keys, &chain, readers, segments);
            assert_eq!(walked.verdict, Ok(()), "{readers} readers, {segments} segments");
            assert_eq!(walked.checked, 300, "{readers} readers, {segments} segments");
            taken.sort_unstable();
            assert_eq!(taken, (0..segments).collect::<Vec<_>>(), "each segment is walked once");
        }
    }

    #[test]
    fn the_first_change_in_chain_order_is_the_verdict_however_readers_take_segments() {
        let keys = AuditKeys::new(vec![AuditKey::new(&[7; 32])]).unwrap();
        for changed in [1, 2, 37, 38, 150, 299, 300] {
            let mut chain = chain(&keys, 300);
            let reject = |bytes: &mut Vec<u8>| {
                *bytes = String::from_utf8_lossy(bytes).replace("approved", "rejected").into_bytes();
            };
            reject(&mut chain.2[changed as usize - 1]);
            // A later change too, which must not hide the first.
            reject(&mut chain.2[(changed as usize + 100).min(299)]);
            for (readers, segments) in [(1, 1), (2, 8), (3, 12), (3, 300)] {
                let (walked, _) = walk_side_by_side(&keys, &chain, readers, segments);
                let broken = walked.verdict.unwrap_err();
                assert_eq!(broken.seq, changed, "{readers} readers, {segments} segments");
                assert_eq!(broken.kind, BreakKind::Changed, "{readers} readers, {segments} segments");
            }
        }
    }

    #[test]
    fn walks_missing_before_the_first_finding_are_an_error_not_a_verdict() {
        let keys = AuditKeys::new(vec![AuditKey::new(&[7; 32])]).unwrap();
        let base = ChainVerifier::new(Evidence { keys: Some(&keys), ..Evidence::default() }).unwrap();
        let walked = |i: usize| (i, SegmentWalk::later(base.clone()));
        assert_eq!(in_chain_order(vec![walked(1), walked(0), walked(2)], 3).unwrap().len(), 3);
        assert!(in_chain_order(vec![walked(0), walked(2)], 3).is_err(), "a gap");
        assert!(in_chain_order(vec![walked(0), walked(1)], 3).is_err(), "a missing end");
        assert!(in_chain_order(Vec::new(), 1).is_err(), "nothing walked");
    }

    #[test]
    fn segments_cover_every_value_once_in_order() {
        for (first, last) in [(1, 1), (1, 2), (0, 99), (5, 1_000_003), (-3, 3), (i64::MAX - 2, i64::MAX)] {
            for parts in 1..6 {
                let ranges = split(first, last, parts);
                assert!(!ranges.is_empty() && ranges.len() <= parts);
                assert_eq!(ranges.first().map(|r| r.0), Some(first), "{first}..={last} in {parts}");
                assert_eq!(ranges.last().map(|r| r.1), Some(last), "{first}..={last} in {parts}");
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].1 + 1, pair[1].0, "{first}..={last} in {parts}: {ranges:?}");
                }
            }
        }
        assert!(split(1, 0, 3).is_empty(), "an empty log has no segment");
    }

    // Whatever a writer around the server stores as a SQLite `seq`, the row is in exactly one
    // segment, so no row escapes the walk.
    #[test]
    fn every_row_is_in_exactly_one_segment_whatever_its_seq_holds() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE audit_log (seq BIGINT PRIMARY KEY)").unwrap();
        conn.execute_batch(
            "INSERT INTO audit_log VALUES (NULL), (-5), (1), (2.5), (3), (50), (51), (99), ('five'), (x'00')",
        )
        .unwrap();
        for parts in 1..5 {
            let ends: Vec<i64> = split(1, 99, parts).iter().map(|&(_, end)| end).collect();
            let mut seen = 0;
            for condition in segment_conditions("seq", &ends, |end| end.to_string(), true) {
                let sql = format!("SELECT count(*) FROM audit_log WHERE {condition}");
                seen += conn.query_row(&sql, [], |row| row.get::<_, i64>(0)).unwrap();
            }
            assert_eq!(seen, 10, "in {parts} segments");
        }
    }

    // The bounds are found at the ends of the rowid and `seq` b-trees, not by reading every row,
    // and whatever a writer stored as `seq`, only integers bound it.
    #[test]
    fn segment_bounds_are_read_at_the_ends_of_the_index() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, entry TEXT)").unwrap();
        conn.execute_batch(
            "INSERT INTO audit_log VALUES (7, 'a'), (NULL, 'b'), (-5, 'c'), (2.5, 'd'), (99, 'e'), ('nine', 'f')",
        )
        .unwrap();
        for (order, expected) in [(Order::AsStored, (1, 6)), (Order::BySeq, (-5, 99))] {
            let sql = sqlite_bounds(order);
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(plan.iter().all(|step| !step.starts_with("SCAN audit_log")), "{order:?} scans the table: {plan:?}");
            let bounds: (i64, i64) = conn.query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
            assert_eq!(bounds, expected, "{order:?}");
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
