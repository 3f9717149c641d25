//! The revocation feed against a real database: a revocation whose transaction commits
//! after a later one's is still served (the cursor is a transaction id, and rows wait
//! until every older transaction has ended).

use auth_service::{
    Application,
    config::{Config, JwtConfig, SigningKeySource},
    repository::Revocations,
};
use pulsetrack_common::{config::ListenConfig, db::DatabaseConfig, testing::TestDatabase};
use sqlx::PgPool;
use uuid::Uuid;

async fn migrated() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create("auth-feed").await;
    let config = Config {
        listen: ListenConfig::new("127.0.0.1", 0),
        database: DatabaseConfig::with_url(db.url()),
        jwt: JwtConfig {
            issuer: "pulsetrack-auth".into(),
            audience: "pulsetrack".into(),
            ttl_seconds: 600,
            key: SigningKeySource::secret("k".repeat(64)).expect("secret"),
        },
        admin: None,
        signup_mode: Default::default(),
        password_policy: Default::default(),
        sessions: Default::default(),
        mfa: Default::default(),
        login_throttle: Default::default(),
    };
    let _server = Application::build(config).await.expect("auth-service migrates");
    let pool = PgPool::connect(db.url()).await.expect("connects");
    (db, pool)
}

const REVOKE: &str = "INSERT INTO revocations (session_id, until) VALUES ($1, now() + interval '10 minutes')";

fn sessions(feed: &pulsetrack_common::revocation::RevocationFeed) -> Vec<Uuid> {
    feed.revocations.iter().map(|r| r.session_id).collect()
}

#[tokio::test]
async fn a_revocation_that_commits_late_is_not_skipped() {
    let (_db, pool) = migrated().await;
    let feed = Revocations::new(pool.clone());
    let start = feed.after(0, 100).await.expect("feed");
    assert!(start.revocations.is_empty());

    let (early, late) = (Uuid::now_v7(), Uuid::now_v7());
    // The early transaction writes first (the older transaction id) and stays open.
    let mut slow = pool.begin().await.expect("begin");
    sqlx::query(REVOKE).bind(early).execute(&mut *slow).await.expect("early revocation");
    sqlx::query(REVOKE).bind(late).execute(&pool).await.expect("late revocation, committed");
    let page = feed.after(start.cursor, 100).await.expect("feed");
    assert_eq!(sessions(&page), [] as [Uuid; 0], "held back while an older transaction runs");
    slow.commit().await.expect("commit");
    let page = feed.after(page.cursor, 100).await.expect("feed");
    assert_eq!(sessions(&page), [early, late]);
    let next = feed.after(page.cursor, 100).await.expect("feed");
    assert!(next.revocations.is_empty() && next.cursor >= page.cursor, "{next:?}");
    // A follower whose cursor is ahead of this database is told to start again.
    let ahead = feed.after(next.cursor + 1_000_000, 100).await.expect("feed");
    assert!(ahead.cursor < next.cursor + 1_000_000);
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
    assert_eq!(sessions(&feed.after(0, 100).await.expect("feed")), [live]);
    // (auth-service's own pruning may have got there first.)
    feed.prune().await.expect("prune");
    let left: Vec<Uuid> =
        sqlx::query_scalar("SELECT session_id FROM revocations").fetch_all(&pool).await.expect("rows");
    assert_eq!(left, [live]);
}
