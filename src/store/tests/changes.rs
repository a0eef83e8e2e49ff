//! The change feed: every admin mutation appends its user; packet-path writes do not.

use super::*;

#[tokio::test]
async fn change_feed_records_every_admin_mutation_of_a_user() {
    for (store, _db) in all_test_stores().await {
        assert_eq!(store.latest_change().await.unwrap(), 0);
        assert!(store.changes_since(0).await.unwrap().is_empty());

        let nina = store.create_user("nina", "d", None, 10).await.unwrap();
        let omar = store.create_user("omar", "d", None, 10).await.unwrap();
        let owned = store
            .create_token(&new_token("N1", Some(nina.id)), 11)
            .await
            .unwrap();
        let free = store
            .create_token(&new_token("F1", None), 11)
            .await
            .unwrap();
        store.set_user_locked(omar.id, true, 12).await.unwrap();
        store.assign_token(owned.id, Some(omar.id)).await.unwrap();
        store
            .set_pin(owned.id, Some("p"), PinState::Set)
            .await
            .unwrap();
        store.set_sync(owned.id, 5, 0).await.unwrap();
        // Unowned tokens notify nobody.
        store
            .set_pin(free.id, Some("p"), PinState::Set)
            .await
            .unwrap();
        // Packet-path writes do not touch the feed.
        store
            .apply_batch(&[vec![
                advance(owned.id, 9),
                WriteOp::SetPin {
                    token_id: owned.id,
                    pin_hash: "q".to_owned(),
                    pin_state: PinState::Set,
                },
            ]])
            .await
            .unwrap();

        let t = store.token_by_serial("N1").await.unwrap().unwrap();
        assert_eq!((t.pin_hash.as_deref(), t.last_step), (Some("q"), 9));

        let feed = store.changes_since(0).await.unwrap();
        let users: Vec<UserId> = feed.iter().map(|(_, u)| *u).collect();
        assert_eq!(
            users,
            [nina.id, omar.id, nina.id, omar.id, nina.id, omar.id, omar.id, omar.id],
            "{:?}",
            store.backend()
        );
        assert!(feed.windows(2).all(|w| w[0].0 < w[1].0), "ascending seq");
        let latest = store.latest_change().await.unwrap();
        assert_eq!(latest, feed.last().unwrap().0);
        let tail = store.changes_since(feed[5].0).await.unwrap();
        assert_eq!(tail, feed[6..].to_vec());

        // Purging old entries never lets a seq be reused.
        assert_eq!(store.purge_changes_before(12).await.unwrap(), 3);
        assert_eq!(store.changes_since(0).await.unwrap(), feed[3..].to_vec());
        let purged = store.purge_changes_before(i64::MAX).await.unwrap();
        assert_eq!(purged, 5);
        store.set_user_locked(nina.id, true, 20).await.unwrap();
        let next = store.changes_since(latest).await.unwrap();
        assert_eq!(next.len(), 1);
        assert!(next[0].0 > latest);
    }
}

#[tokio::test]
async fn change_feed_records_every_emergency_offline_and_fixed_passcode_mutation() {
    for (store, _db) in all_test_stores().await {
        let (uma, token) = user_with_token(&store, "uma").await;
        let wes = store.create_user("wes", "d", None, 1).await.unwrap();
        let free = store
            .create_token(&new_token("FREE", None), 1)
            .await
            .unwrap();
        let start = store.latest_change().await.unwrap();

        store
            .issue_emergency(&ott(token.id, "C", 2), 20)
            .await
            .unwrap();
        store.clear_emergency(token.id, 21).await.unwrap();
        // Nothing deleted: no entry.
        store.clear_emergency(token.id, 22).await.unwrap();
        store
            .set_offline_code(&offline_of_token(token.id, 1), 23)
            .await
            .unwrap();
        store.set_offline_online(token.id, true, 24).await.unwrap();
        store
            .set_offline_code(&offline_of_user(wes.id, 1), 25)
            .await
            .unwrap();
        store
            .set_fixed_passcode(&fixed(wes.id, Some("h")), 26)
            .await
            .unwrap();
        store.clear_fixed_passcode(wes.id, 27).await.unwrap();
        // Nothing deleted: no entry.
        store.clear_fixed_passcode(wes.id, 28).await.unwrap();
        // An unassigned token notifies nobody.
        store.issue_emergency(&tft(free.id, "F"), 29).await.unwrap();
        store
            .set_offline_code(&offline_of_token(free.id, 1), 29)
            .await
            .unwrap();
        store.set_offline_online(free.id, true, 29).await.unwrap();
        store.clear_emergency(free.id, 29).await.unwrap();

        let feed = store.changes_since(start).await.unwrap();
        let entries: Vec<UserId> = feed.iter().map(|(_, u)| *u).collect();
        assert_eq!(
            entries,
            [uma.id, uma.id, uma.id, uma.id, wes.id, wes.id, wes.id],
            "{:?}",
            store.backend()
        );
        let at: Vec<i64> = sqlx::query("SELECT at FROM changes WHERE seq > $1 ORDER BY seq")
            .bind(start)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("at"))
            .collect();
        assert_eq!(
            at,
            [20, 21, 23, 24, 25, 26, 27],
            "the `now` given is recorded"
        );
    }
}
