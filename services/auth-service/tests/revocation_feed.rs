//! The revocation feed against a real database: revocations commit in the feed's order,
//! so a follower never passes one that is still to commit; expired ones are not served.

mod support;

use std::time::Duration;

use auth_service::{
    Application,
    repository::{EndReason, REVOCATION_LOCK, Revocations, Sessions, UserRepository},
};
use pulsetrack_common::testing::TestDatabase;
use sqlx::PgPool;
use uuid::Uuid;

async fn migrated() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create("auth-feed").await;
    let config = support::config(db.url(), &"k".repeat(64));
    let _server = Application::build(config).await.expect("auth-service migrates");
    let pool = PgPool::connect(db.url()).await.expect("connects");
    (db, pool)
}

const REVOKE: &str = "INSERT INTO revocations (session_id, until) VALUES ($1, now() + interval '10 minutes')";

fn sessions_of(feed: &pulsetrack_common::revocation::RevocationFeed) -> Vec<Uuid> {
    feed.revocations.iter().map(|r| r.session_id).collect()
}

/// A session of a new account, as a login makes it.
async fn session(pool: &PgPool, sessions: &Sessions) -> Uuid {
    let user = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email, username, password_hash, role) VALUES ($1, $2, 'u', 'x', 'USER')")
        .bind(user)
        .bind(format!("{user}@example.com"))
        .execute(pool)
        .await
        .expect("an account");
    let user = UserRepository::new(pool.clone()).find(user).await.expect("read").expect("the account");
    let session = sessions.start(&user, Duration::from_secs(600), None, user.id.as_bytes()).await.expect("a session");
    session.expect("an unchanged account").id
}

/// A transaction that writes revocations holds the lock to its commit, so the next one
/// waits: the feed's rows commit in `seq` order, and a follower that read a row has
/// read every row before it.
#[tokio::test]
async fn revocations_commit_in_feed_order_so_none_is_skipped() {
    let (_db, pool) = migrated().await;
    let (feed, sessions) = (Revocations::new(pool.clone()), Sessions::new(pool.clone(), Duration::from_secs(620)));
    let start = feed.after(0, 100).await.expect("feed");
    assert!(start.revocations.is_empty());
    let (early, late) = (Uuid::now_v7(), session(&pool, &sessions).await);

    // A slow revoking transaction: the lock, its row, and no commit yet.
    let mut slow = pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(REVOCATION_LOCK).execute(&mut *slow).await.expect("lock");
    sqlx::query(REVOKE).bind(early).execute(&mut *slow).await.expect("early revocation");
    let ending = tokio::spawn({
        let sessions = sessions.clone();
        async move { sessions.end(late, EndReason::Logout).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ending.is_finished(), "a logout waits for the revocation before it");
    let page = feed.after(start.cursor, 100).await.expect("feed");
    assert!(page.revocations.is_empty(), "nothing committed yet: {page:?}");
    slow.commit().await.expect("commit");
    assert!(ending.await.expect("task").expect("ended"));
    let page = feed.after(page.cursor, 100).await.expect("feed");
    assert_eq!(sessions_of(&page), [early, late]);
    let next = feed.after(page.cursor, 100).await.expect("feed");
    assert!(next.revocations.is_empty() && next.cursor == page.cursor, "{next:?}");
    // A follower whose cursor is ahead of this database is told to start again.
    let ahead = feed.after(next.cursor + 1_000, 100).await.expect("feed");
    assert!(ahead.cursor < next.cursor + 1_000);
}

#[tokio::test]
async fn expired_revocations_are_not_served_and_are_pruned() {
    let (_db, pool) = migrated().await;
    let feed = Revocations::new(pool.clone());
    sqlx::query("INSERT INTO revocations (session_id, until) VALUES ($1, now() - interval '1 second')")
        .bind(Uuid::now_v7())
        .execute(&pool)
        .await
        .expect("expired");
    let live = Uuid::now_v7();
    sqlx::query(REVOKE).bind(live).execute(&pool).await.expect("live");
    assert_eq!(sessions_of(&feed.after(0, 100).await.expect("feed")), [live]);
    // (auth-service's own pruning may have got there first.)
    feed.prune().await.expect("prune");
    let left: Vec<Uuid> =
        sqlx::query_scalar("SELECT session_id FROM revocations").fetch_all(&pool).await.expect("rows");
    assert_eq!(left, [live]);
}
