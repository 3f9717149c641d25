//! The private broker's storage: tansu's SQLite database (`tansu.db` in the data folder).
//!
//! tansu 0.6 creates its schema itself, without an index on `header`, and looks up each
//! fetched record's headers by `(topition, offset_id)`: a scan of every header ever
//! written, for every record fetched. Every PatientEvent carries headers (its trace
//! context), so the broker slowed down as the topic grew, until produce requests timed
//! out: measured with 74,000 records, tansu at 94% CPU in SQLite's table scans and
//! 52,673 events waiting in the outbox after 60 s of creates; with the index, the same
//! backlog drained in seconds and a sustained run kept its create → analytics delay
//! under a second (bench/ISSUE17.md). An index changes no result, only the plan.

use std::{path::Path, time::Duration};

use rusqlite::{Connection, OpenFlags};

/// The index `up` adds to tansu's `header` table.
pub const HEADER_INDEX: &str = "pulsetrack_header_record";

/// Whether the database has a `kind` (table, index) named `name`.
pub(crate) fn has_object(db: &Connection, kind: &str, name: &str) -> rusqlite::Result<bool> {
    db.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2)", [kind, name], |row| {
        row.get(0)
    })
}

/// Adds [`HEADER_INDEX`] unless it exists; `Ok(false)` when tansu's schema has no
/// `header` table (yet, or in another version of tansu). tansu may be running: SQLite's
/// locking orders the two writers (a busy database is waited for).
pub fn index_headers(path: &Path) -> rusqlite::Result<bool> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    db.busy_timeout(Duration::from_secs(10))?;
    // tansu creates its `header` table on start.
    if !has_object(&db, "table", "header")? {
        return Ok(false);
    }
    db.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {HEADER_INDEX} ON header (topition, offset_id)"))?;
    Ok(true)
}

/// Whether `path`'s database has [`HEADER_INDEX`].
pub fn has_header_index(path: &Path) -> rusqlite::Result<bool> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    has_object(&db, "index", HEADER_INDEX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_added_once_and_only_to_tansus_table() {
        let dir = std::env::temp_dir().join(format!("tansu-db-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tansu.db");
        let _ = std::fs::remove_file(&path);
        let db = Connection::open(&path).expect("db");
        assert!(!index_headers(&path).expect("no table yet"), "nothing to index before tansu made its schema");
        db.execute_batch("CREATE TABLE header (topition integer, offset_id integer, k blob, v blob)").expect("table");
        assert!(index_headers(&path).expect("indexed"));
        assert!(index_headers(&path).expect("again"), "idempotent");
        assert!(has_header_index(&path).expect("read"));
        drop(db);
        let db = Connection::open(&path).expect("db");
        let plan: String = db
            .query_row("EXPLAIN QUERY PLAN SELECT k FROM header WHERE topition = 1 AND offset_id = 2", [], |r| r.get(3))
            .expect("plan");
        assert!(plan.contains(HEADER_INDEX), "{plan}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
