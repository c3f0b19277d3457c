//! SQLite's group commit.
//!
//! SQLite has one writer at a time, and with `synchronous=FULL` every `COMMIT` waits for the disk:
//! a few thousand commits a second at best, whatever the CPU. So concurrent writes share one
//! connection and one open transaction: each write runs inside a savepoint of it, and one
//! `COMMIT` (one wait for the disk) makes a whole group of writes durable.
//!
//! What each caller sees is unchanged. A write is answered only after the `COMMIT` that holds it,
//! so an acknowledged change still survives a power loss. A write that fails or is abandoned is
//! rolled back to its savepoint and leaves the others alone. A `COMMIT` that fails fails every
//! write in its group, none of which had been answered. Writes run one at a time, in arrival
//! order, each seeing the ones before it, exactly as under a plain writer lock.
//!
//! The group forms by itself: a separate committer task queues for the writer behind the writes
//! already waiting (the lock is fair) and commits when its turn comes. A lone write is committed
//! at once; under load, every write that queued meanwhile shares the commit.

use crate::{Result, StoreError};
use sqlx::{AnyConnection, AnyPool, Executor};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::{oneshot, Mutex, Notify, OwnedMutexGuard};

const SAVEPOINT: &str = "SAVEPOINT countersign_write";
const RELEASE: &str = "RELEASE SAVEPOINT countersign_write";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT countersign_write";

/// The outcome of a group's `COMMIT`, as each of its writes learns it.
type CommitOutcome = std::result::Result<(), String>;

/// The shared writer of one store.
pub(crate) struct GroupCommit {
    writer: Arc<Mutex<Writer>>,
    wake: Arc<Notify>,
    /// Writes waiting for the writer right now.
    queued: AtomicUsize,
    stats: Arc<Counters>,
}

/// How well writes are grouped, since the store opened.
#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

/// SQLite's writer at one moment (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes committed.
    pub writes: u64,
    /// `COMMIT`s that made them durable: fewer than `writes` when writes were grouped.
    pub commits: u64,
    /// Writes waiting for the writer.
    pub queued: usize,
}

struct Writer {
    conn: AnyConnection,
    stats: Arc<Counters>,
    /// `BEGIN IMMEDIATE` has run and the group's `COMMIT` has not.
    open: bool,
    /// A write ended without committing or rolling back (an error returned early, or its
    /// future dropped): its savepoint must be rolled back before anything else runs.
    abandoned: bool,
    /// Writes released into the open transaction, each waiting for its `COMMIT`.
    waiting: Vec<oneshot::Sender<CommitOutcome>>,
    closed: bool,
}

impl GroupCommit {
    /// Takes one connection out of `pool` for writing, and starts the committer.
    pub(crate) async fn start(pool: &AnyPool) -> Result<Arc<GroupCommit>> {
        let conn = pool.acquire().await?.detach();
        let stats = Arc::new(Counters::default());
        let writer =
            Writer { conn, stats: stats.clone(), open: false, abandoned: false, waiting: vec![], closed: false };
        let writer = Arc::new(Mutex::new(writer));
        let wake = Arc::new(Notify::new());
        tokio::spawn(commit_groups(Arc::downgrade(&writer), wake.clone()));
        Ok(Arc::new(GroupCommit { writer, wake, queued: AtomicUsize::new(0), stats }))
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            commits: self.stats.commits.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }

    /// Waits for the writer, then opens a savepoint for one write.
    pub(crate) async fn begin(&self) -> Result<GroupWrite> {
        let queued = Queued::join(&self.queued);
        let mut writer = self.writer.clone().lock_owned().await;
        drop(queued);
        if writer.closed {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        if writer.abandoned {
            writer.commit_group().await;
        }
        let opened = async {
            if !writer.open {
                writer.conn.execute("BEGIN IMMEDIATE").await?;
                writer.open = true;
            }
            writer.conn.execute(SAVEPOINT).await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(e) = opened {
            // Whatever the group holds still gets its commit.
            self.wake.notify_one();
            return Err(e);
        }
        Ok(GroupWrite { writer, wake: self.wake.clone(), finished: false })
    }

    /// Commits what is pending and refuses further writes.
    pub(crate) async fn close(&self) {
        let mut writer = self.writer.lock().await;
        writer.commit_group().await;
        writer.closed = true;
    }
}

/// One place in the writer's queue, counted while held (also when the wait is abandoned).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn join(queued: &'a AtomicUsize) -> Queued<'a> {
        queued.fetch_add(1, Ordering::Relaxed);
        Queued(queued)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Lets the committer see that the store is gone, and end.
        self.wake.notify_one();
    }
}

impl Writer {
    /// Rolls back an abandoned write, commits the open transaction, and tells every write in
    /// the group how it went.
    async fn commit_group(&mut self) {
        let mut outcome: CommitOutcome = Ok(());
        if self.abandoned {
            self.abandoned = false;
            if let Err(e) = self.discard_savepoint().await {
                outcome = Err(format!("rolling back a failed write: {e}"));
            }
        }
        if self.open {
            self.open = false;
            if outcome.is_ok() {
                outcome = self.conn.execute("COMMIT").await.map(drop).map_err(|e| e.to_string());
            }
            if outcome.is_ok() && !self.waiting.is_empty() {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.stats.writes.fetch_add(self.waiting.len() as u64, Ordering::Relaxed);
            }
            if outcome.is_err() {
                // Leave no half-open transaction behind (it may already be gone).
                let _ = self.conn.execute("ROLLBACK").await;
            }
        }
        for waiter in self.waiting.drain(..) {
            // A write whose caller went away no longer listens; nothing to tell it.
            let _ = waiter.send(outcome.clone());
        }
    }

    async fn discard_savepoint(&mut self) -> Result<()> {
        self.conn.execute(ROLLBACK_TO).await?;
        self.conn.execute(RELEASE).await?;
        Ok(())
    }
}

/// The committer: each time a write is released (or abandoned), queue for the writer and commit
/// the group. Ends when the store is dropped.
async fn commit_groups(writer: Weak<Mutex<Writer>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(writer) = writer.upgrade() else { return };
        writer.lock().await.commit_group().await;
    }
}

/// One write in progress: the writer's connection inside this write's savepoint.
pub(crate) struct GroupWrite {
    writer: OwnedMutexGuard<Writer>,
    wake: Arc<Notify>,
    finished: bool,
}

impl GroupWrite {
    /// Releases the savepoint into the group and waits for the group's `COMMIT`.
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.writer.conn.execute(RELEASE).await?;
        let (sender, outcome) = oneshot::channel();
        self.writer.waiting.push(sender);
        self.finished = true;
        self.wake.notify_one();
        // Lets the next write (and the committer) at the connection while this one waits.
        drop(self);
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Unavailable(format!("the commit failed: {reason}"))),
            Err(_) => Err(StoreError::Unavailable("the store closed before the commit".into())),
        }
    }

    /// Undoes this write alone.
    pub(crate) async fn rollback(mut self) -> Result<()> {
        self.writer.discard_savepoint().await?;
        self.finished = true;
        self.wake.notify_one();
        Ok(())
    }
}

impl Drop for GroupWrite {
    fn drop(&mut self) {
        if !self.finished {
            self.writer.abandoned = true;
            self.wake.notify_one();
        }
    }
}

impl Deref for GroupWrite {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.writer.conn
    }
}

impl DerefMut for GroupWrite {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.writer.conn
    }
}

#[cfg(test)]
mod tests {
    use crate::{Result, Store, StoreError, StoreOptions};
    use sqlx::{Connection, SqliteConnection};
    use std::time::Duration;

    struct Fixture {
        store: Store,
        url: String,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("group.db").display());
        let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
        for ddl in [
            "CREATE TABLE notes (id TEXT PRIMARY KEY)",
            "CREATE TABLE parents (id TEXT PRIMARY KEY)",
            "CREATE TABLE children (id TEXT PRIMARY KEY, parent TEXT REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED)",
        ] {
            sqlx::query(ddl).execute(store.pool()).await.unwrap();
        }
        Fixture { store, url, _dir: dir }
    }

    /// One write: a note, committed.
    async fn note(store: &Store, id: &str) -> Result<()> {
        let mut tx = store.begin_write().await?;
        sqlx::query("INSERT INTO notes (id) VALUES ($1)").bind(id).execute(tx.conn()).await?;
        tx.commit().await
    }

    /// The notes as a connection of its own sees them: only what was committed.
    async fn committed_notes(fixture: &Fixture) -> Vec<String> {
        let mut conn = SqliteConnection::connect(&fixture.url).await.unwrap();
        sqlx::query_scalar("SELECT id FROM notes ORDER BY id").fetch_all(&mut conn).await.unwrap()
    }

    /// A write of note "first", holding the writer, and a write of note "a" queued behind it.
    async fn first_and_a_behind_it(store: &Store) -> (crate::WriteTx, tokio::task::JoinHandle<Result<()>>) {
        let mut first = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO notes (id) VALUES ('first')").execute(first.conn()).await.unwrap();
        let a = tokio::spawn({
            let store = store.clone();
            async move { note(&store, "a").await }
        });
        until_queued(store, 1).await;
        (first, a)
    }

    async fn until_queued(store: &Store, writes: usize) {
        for _ in 0..10_000 {
            if store.writer_stats().unwrap().queued == writes {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{writes} writes never queued for the writer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_one_share_its_commit_and_are_answered_once_durable() {
        let fixture = fixture().await;
        let store = &fixture.store;
        let before = store.writer_stats().unwrap();
        let mut first = store.begin_write().await.unwrap();
        sqlx::query("INSERT INTO notes (id) VALUES ('first')").execute(first.conn()).await.unwrap();
        let queued: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { note(&store, &format!("queued-{i}")).await })
            })
            .collect();
        until_queued(store, 8).await;
        first.commit().await.unwrap();
        for write in queued {
            write.await.unwrap().unwrap();
        }
        // Every answered write is on disk for any other connection.
        assert_eq!(committed_notes(&fixture).await.len(), 9);
        let after = store.writer_stats().unwrap();
        assert_eq!(after.writes - before.writes, 9);
        assert_eq!(after.commits - before.commits, 1, "nine queued writes, one COMMIT");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_is_undone_alone_and_its_group_commits() {
        let fixture = fixture().await;
        let store = &fixture.store;
        let (first, a) = first_and_a_behind_it(store).await;
        let failing = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write().await?;
                sqlx::query("INSERT INTO notes (id) VALUES ('failing')").execute(tx.conn()).await?;
                // A duplicate key: the error returns early, dropping the transaction.
                sqlx::query("INSERT INTO notes (id) VALUES ('first')").execute(tx.conn()).await?;
                tx.commit().await
            }
        });
        until_queued(store, 2).await;
        let c = tokio::spawn({
            let store = store.clone();
            async move { note(&store, "c").await }
        });
        until_queued(store, 3).await;
        first.commit().await.unwrap();
        a.await.unwrap().unwrap();
        assert!(failing.await.unwrap().is_err());
        c.await.unwrap().unwrap();
        assert_eq!(committed_notes(&fixture).await, ["a", "c", "first"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_caller_goes_away_is_rolled_back() {
        let fixture = fixture().await;
        let store = fixture.store.clone();
        let (inserted, wait) = tokio::sync::oneshot::channel();
        let abandoned = tokio::spawn(async move {
            let mut tx = store.begin_write().await?;
            sqlx::query("INSERT INTO notes (id) VALUES ('abandoned')").execute(tx.conn()).await?;
            let _ = inserted.send(());
            std::future::pending::<()>().await;
            tx.commit().await
        });
        wait.await.unwrap();
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        note(&fixture.store, "kept").await.unwrap();
        assert_eq!(committed_notes(&fixture).await, ["kept"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_every_write_in_its_group_and_the_writer_recovers() {
        let fixture = fixture().await;
        let store = &fixture.store;
        let (first, a) = first_and_a_behind_it(store).await;
        // Checked only at COMMIT: the orphan fails the whole group's commit.
        let orphan = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write().await?;
                sqlx::query("INSERT INTO children (id, parent) VALUES ('orphan', 'nobody')").execute(tx.conn()).await?;
                tx.commit().await
            }
        });
        until_queued(store, 2).await;
        let first = first.commit().await;
        for outcome in [first, a.await.unwrap(), orphan.await.unwrap()] {
            assert!(
                matches!(outcome, Err(StoreError::Unavailable(ref m)) if m.contains("commit failed")),
                "{outcome:?}"
            );
        }
        assert!(committed_notes(&fixture).await.is_empty(), "nothing of a failed group is kept");
        note(store, "after").await.unwrap();
        assert_eq!(committed_notes(&fixture).await, ["after"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_store_refuses_writes() {
        let fixture = fixture().await;
        note(&fixture.store, "before").await.unwrap();
        fixture.store.close().await;
        assert!(matches!(note(&fixture.store, "after").await, Err(StoreError::Unavailable(_))));
        assert_eq!(committed_notes(&fixture).await, ["before"]);
    }
}
