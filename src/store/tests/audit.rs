//! The audit log's table: reading since a time, export pages, bounded deletion, and text with
//! a NUL through every write path.

use super::*;

#[tokio::test]
async fn audit_since_filters_orders_and_limits() {
    for (store, _db) in all_test_stores().await {
        let mut admin = audit(50, "pat", "ok");
        admin.actor = Some("cli:root".to_owned());
        admin.client = None;
        store
            .insert_audit(&audit(10, "pat", "first"))
            .await
            .unwrap();
        store.insert_audit(&admin).await.unwrap();
        store
            .insert_audit(&audit(30, "pat", "third"))
            .await
            .unwrap();
        let since_20 = store.audit_since(20, 10).await.unwrap();
        assert_eq!(since_20, vec![admin.clone(), audit(30, "pat", "third")]);
        assert_eq!(
            store.audit_since(0, 1).await.unwrap(),
            vec![audit(10, "pat", "first")]
        );
    }
}

#[tokio::test]
async fn audit_pages_follow_at_then_id_and_stop_at_until() {
    for (store, _db) in all_test_stores().await {
        // Inserted out of time order; three share at = 20.
        for (at, name) in [
            (20, "b"),
            (10, "a"),
            (20, "c"),
            (40, "e"),
            (20, "d"),
            (5, "z"),
        ] {
            store.insert_audit(&audit(at, name, "ok")).await.unwrap();
        }
        let mut cursor = AuditCursor::start(10);
        let mut seen = Vec::new();
        loop {
            let page = store.audit_page(cursor, 40, 2).await.unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|(_, r)| r.user_name.clone()));
            match page.last() {
                Some((c, _)) if page.len() == 2 => cursor = *c,
                _ => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d"], "{:?}", store.backend());
    }
}

#[tokio::test]
async fn audit_delete_before_is_bounded_and_spares_newer_rows() {
    for (store, _db) in all_test_stores().await {
        for at in [1, 2, 3, 4, 5, 100, 101] {
            store.insert_audit(&audit(at, "old", "ok")).await.unwrap();
        }
        assert_eq!(store.delete_audit_before(100, 3).await.unwrap(), 3);
        assert_eq!(store.delete_audit_before(100, 3).await.unwrap(), 2);
        assert_eq!(store.delete_audit_before(100, 3).await.unwrap(), 0);
        let left: Vec<i64> = store
            .audit_since(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.at)
            .collect();
        assert_eq!(left, [100, 101], "{:?}", store.backend());
    }
}

/// A NUL in an audit text (a NAS's user name, a TACACS+ accounting attribute) is stored as
/// U+FFFD on both databases, through every write path (the writer's batches, PostgreSQL's single
/// statement, a lone insert). PostgreSQL cannot hold a NUL in text: the statement used to fail,
/// and with it every other group of its batch until the writer retried them one by one.
/// Lookups by a name or a State with a NUL find nothing instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_text_with_a_nul_is_stored_with_a_replacement_on_every_backend() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "nul").await;
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 256);
        let mut tasks = Vec::new();
        for i in 0..40_i64 {
            let writer = writer.clone();
            let group = match i {
                20 => vec![WriteOp::Audit(audit(i, "bad\u{0}name", "why\u{0}"))],
                10 => vec![
                    advance(token.id, 10),
                    WriteOp::SetUserFailures {
                        user_id: user.id,
                        fail_count: 0,
                        fail_window_start: 0,
                        locked: false,
                        locked_at: None,
                    },
                    WriteOp::Audit(audit(i, "nul", "ok")),
                ],
                _ => vec![WriteOp::Audit(audit(i, "other", "ok"))],
            };
            assert!(crate::store::batch::postgres::plan(std::slice::from_ref(&group)).is_some());
            tasks.push(tokio::spawn(async move { (i, writer.submit(group).await) }));
        }
        for t in tasks {
            let (i, result) = t.await.unwrap();
            assert!(result.unwrap(), "group {i}");
        }
        drop(writer);
        task.await.unwrap();
        // The general path (a challenge forces it) and a lone insert.
        store
            .apply_batch(&[
                vec![WriteOp::InsertChallenge(challenge("S1", user.id, None, 9))],
                vec![WriteOp::Audit(audit(41, "general\u{0}", "ok"))],
            ])
            .await
            .unwrap();
        store
            .insert_audit(&audit(42, "lone\u{0}", "ok"))
            .await
            .unwrap();
        let rows = store.audit_since(0, 100).await.unwrap();
        assert_eq!(rows.len(), 42, "{:?}", store.backend());
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r.user_name.as_str())
            .filter(|n| n.contains('\u{FFFD}'))
            .collect();
        assert_eq!(
            names,
            ["bad\u{FFFD}name", "general\u{FFFD}", "lone\u{FFFD}"],
            "{:?}",
            store.backend()
        );
        assert!(rows.iter().any(|r| r.reason == "why\u{FFFD}"));
        assert_eq!(
            last_step(&store, "T-nul").await,
            10,
            "{:?}",
            store.backend()
        );
        assert_eq!(store.user_by_name("n\u{0}ul").await.unwrap(), None);
        assert_eq!(store.load_principal_record("n\u{0}ul").await.unwrap(), None);
        assert_eq!(store.challenge("S\u{0}1").await.unwrap(), None);
    }
}
