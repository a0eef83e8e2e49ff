//! The frame: opening a store from its URL, SQLite's connection settings, and how
//! placeholders bind on both databases.

use super::*;

#[tokio::test]
async fn open_rejects_unknown_scheme_and_accepts_memory() {
    assert!(matches!(
        Store::open("mysql://localhost/x").await,
        Err(StoreError::UnsupportedUrl { scheme }) if scheme == "mysql"
    ));
    let store = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.ping().await.unwrap();
    let user = store.create_user("mem", "d", None, 1).await.unwrap();
    // The single pooled connection keeps the in-memory database alive between calls.
    assert_eq!(store.user_by_id(user.id).await.unwrap(), Some(user));
    store.close().await;
}

#[tokio::test]
async fn sqlite_connections_are_wal_synchronous_full_with_busy_timeout() {
    let (store, _db) = fresh_sqlite_store().await;
    let mut conn = store.pool.acquire().await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync, 2, "synchronous=FULL");
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(busy, 5000);
    // 1 KiB pages: a replay-guard update rewrites a quarter of the bytes in the WAL.
    let page: i64 = sqlx::query("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(page, 1024, "page_size of a new file");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn placeholders_bind_by_number_even_repeated_or_out_of_order() {
    for (store, _db) in all_test_stores().await {
        let row = sqlx::query("SELECT $1 + $1 AS twice, $3 AS third, $2 AS second")
            .bind(20_i64)
            .bind("two")
            .bind(3_i64)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let twice: i64 = row.get("twice");
        let third: i64 = row.get("third");
        let second: String = row.get("second");
        assert_eq!(
            (twice, third, second.as_str()),
            (40, 3, "two"),
            "{:?}",
            store.backend()
        );
    }
}

#[tokio::test]
async fn open_creates_a_missing_file_from_a_plain_sqlite_path_url() {
    let (_store, db) = fresh_sqlite_store().await;
    // `sqlite:<path>` without `//` and without `mode=rwc`: the store adds the mode.
    let path = db
        .url()
        .trim_start_matches("sqlite://")
        .replace("?mode=rwc", "");
    let path = path.replace("tokengate.db", "second.db");
    let store = Store::open(&format!("sqlite:{path}")).await.unwrap();
    store.create_user("uma", "d", None, 1).await.unwrap();
    store.close().await;
    assert!(std::path::Path::new(&path).exists());
}
