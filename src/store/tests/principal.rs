//! What a login loads: a user's tokens, and the whole principal record with its emergency rows.

use super::*;

#[tokio::test]
async fn load_principal_returns_only_the_users_tokens() {
    for (store, _db) in all_test_stores().await {
        let (gina, gina_token) = user_with_token(&store, "gina").await;
        let (_hank, _) = user_with_token(&store, "hank").await;
        let second = store
            .create_token(&new_token("G2", Some(gina.id)), 5)
            .await
            .unwrap();
        store
            .create_token(&new_token("FREE", None), 5)
            .await
            .unwrap();

        let (user, tokens) = store.load_principal("gina").await.unwrap().unwrap();
        assert_eq!(user, gina);
        assert_eq!(tokens, vec![gina_token, second]);
        assert_eq!(store.load_principal("nobody").await.unwrap(), None);
    }
}

#[tokio::test]
async fn load_principal_record_returns_only_this_users_rows() {
    for (store, _db) in all_test_stores().await {
        let (sue, sue_t1) = user_with_token(&store, "sue").await;
        let sue_t2 = store
            .create_token(&new_token("S2", Some(sue.id)), 5)
            .await
            .unwrap();
        let sue_t3 = store
            .create_token(&new_token("S3", Some(sue.id)), 5)
            .await
            .unwrap();
        let (tom, tom_t) = user_with_token(&store, "tom").await;
        let free = store
            .create_token(&new_token("FREE", None), 5)
            .await
            .unwrap();

        // Issued out of token order, to check the ordering by token id.
        let e2 = store
            .issue_emergency(&tft(sue_t2.id, "S2T"), 10)
            .await
            .unwrap();
        let e1 = store
            .issue_emergency(&ott(sue_t1.id, "S1-", 3), 10)
            .await
            .unwrap();
        store
            .issue_emergency(&ott(tom_t.id, "TOM", 2), 10)
            .await
            .unwrap();
        store
            .issue_emergency(&ott(free.id, "FREE", 2), 10)
            .await
            .unwrap();
        store
            .apply_batch(&[vec![consume(e1.codes[1].id, 77)]])
            .await
            .unwrap();
        let mut e1 = e1;
        e1.codes[1].used_at = Some(77);

        let sue_code = offline_of_user(sue.id, 1);
        let sue_t3_code = offline_of_token(sue_t3.id, 2);
        let sue_t1_code = offline_of_token(sue_t1.id, 3);
        for c in [
            &sue_t3_code,
            &offline_of_user(tom.id, 4),
            &offline_of_token(tom_t.id, 5),
            &offline_of_token(free.id, 6),
            &sue_code,
            &sue_t1_code,
        ] {
            store.set_offline_code(c, 10).await.unwrap();
        }
        let sue_fp = fixed(sue.id, Some("fp"));
        store.set_fixed_passcode(&sue_fp, 10).await.unwrap();
        store
            .set_fixed_passcode(&fixed(tom.id, Some("other")), 10)
            .await
            .unwrap();

        let record = store.load_principal_record("sue").await.unwrap().unwrap();
        let expected = PrincipalRecord {
            user: sue.clone(),
            tokens: vec![sue_t1.clone(), sue_t2, sue_t3],
            emergency: vec![e1, e2],
            offline: vec![sue_t3_code, sue_code, sue_t1_code],
            fixed_passcode: Some(sue_fp),
        };
        assert_eq!(record, expected, "{:?}", store.backend());
        // The existing loader still agrees on user and tokens.
        let (user, tokens) = store.load_principal("sue").await.unwrap().unwrap();
        assert_eq!((user, tokens), (expected.user, expected.tokens));

        assert_eq!(store.load_principal_record("nobody").await.unwrap(), None);
        let vic = store.create_user("vic", "d", None, 1).await.unwrap();
        assert_eq!(
            store.load_principal_record("vic").await.unwrap(),
            Some(PrincipalRecord {
                user: vic,
                tokens: vec![],
                emergency: vec![],
                offline: vec![],
                fixed_passcode: None,
            })
        );

        // Today's behaviour: a token moved to another user keeps its emergency and offline rows
        // (`assign_token` does not clear them), so they follow the token to its new owner.
        // Whether reassignment should clear them is the admin layer's call.
        store.assign_token(sue_t1.id, Some(tom.id)).await.unwrap();
        let record = store.load_principal_record("sue").await.unwrap().unwrap();
        assert!(record.emergency.iter().all(|a| a.token_id != sue_t1.id));
        assert!(record.offline.iter().all(|o| o.token_id != Some(sue_t1.id)));
        let tom_record = store.load_principal_record("tom").await.unwrap().unwrap();
        assert_eq!(
            tom_record
                .emergency
                .iter()
                .map(|a| a.token_id)
                .collect::<Vec<_>>(),
            [sue_t1.id, tom_t.id]
        );
    }
}

/// SPEC E-1, O-4, FP-1 at a first login: the loader reads emergency access, offline codes and
/// fixed passcodes only for users its first read says have them, so a user with exactly one of
/// them (each kind alone, an offline code held by the user or by one of their tokens) must
/// still get it.
#[tokio::test]
async fn e1_o4_fp1_load_principal_record_finds_each_kind_of_emergency_row_alone() {
    for (store, _db) in all_test_stores().await {
        let (_, em_t) = user_with_token(&store, "only_emergency").await;
        let access = store
            .issue_emergency(&tft(em_t.id, "OE"), 10)
            .await
            .unwrap();
        let (off_u, _) = user_with_token(&store, "only_user_offline").await;
        let user_code = offline_of_user(off_u.id, 1);
        store.set_offline_code(&user_code, 10).await.unwrap();
        let (_, off_t) = user_with_token(&store, "only_token_offline").await;
        let token_code = offline_of_token(off_t.id, 2);
        store.set_offline_code(&token_code, 10).await.unwrap();
        let (fp_u, _) = user_with_token(&store, "only_fixed").await;
        let fp = fixed(fp_u.id, Some("fp"));
        store.set_fixed_passcode(&fp, 10).await.unwrap();
        let (_, _) = user_with_token(&store, "plain").await;

        let load = |name: &'static str| {
            let store = store.clone();
            async move { store.load_principal_record(name).await.unwrap().unwrap() }
        };
        let r = load("only_emergency").await;
        assert_eq!(r.emergency, vec![access], "{:?}", store.backend());
        assert!(r.offline.is_empty() && r.fixed_passcode.is_none());
        let r = load("only_user_offline").await;
        assert_eq!(r.offline, vec![user_code], "{:?}", store.backend());
        assert!(r.emergency.is_empty() && r.fixed_passcode.is_none());
        let r = load("only_token_offline").await;
        assert_eq!(r.offline, vec![token_code], "{:?}", store.backend());
        assert!(r.emergency.is_empty() && r.fixed_passcode.is_none());
        let r = load("only_fixed").await;
        assert_eq!(r.fixed_passcode, Some(fp), "{:?}", store.backend());
        assert!(r.emergency.is_empty() && r.offline.is_empty());
        let r = load("plain").await;
        assert_eq!(r.tokens.len(), 1);
        assert!(r.emergency.is_empty() && r.offline.is_empty() && r.fixed_passcode.is_none());
    }
}
