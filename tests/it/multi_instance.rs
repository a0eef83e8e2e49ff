//! Two gateway instances sharing one database (PostgreSQL when `TEST_DATABASE_URL` is set, as in
//! CI; otherwise one SQLite file): R-1 holds across instances because the replay guard is a
//! compare-and-set in the database, not only in a cache.

use tokengate::radius::Code;

use crate::common::*;

/// A fresh database URL: a new PostgreSQL database on the server named by TEST_DATABASE_URL,
/// or None (callers then use a shared SQLite file).
pub async fn fresh_pg_url() -> Option<(String, String)> {
    use sqlx::Connection;
    let base = std::env::var("TEST_DATABASE_URL").ok()?;
    let name = format!("tg_it_{}", rand::random::<u32>());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("TEST_DATABASE_URL has no database part"),
    };
    Some((url, name))
}

pub async fn drop_pg(name: &str) {
    use sqlx::Connection;
    if let Ok(base) = std::env::var("TEST_DATABASE_URL") {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// Two gateways on one database (with one master key); the PostgreSQL database name to drop.
async fn two_instances(extra: &str) -> (TestGateway, TestGateway, Option<String>) {
    let pg = fresh_pg_url().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let shared_sqlite = format!("sqlite://{}", dir_a.path().join("shared.db").display());
    let url = pg.as_ref().map(|p| p.0.clone()).unwrap_or(shared_sqlite);
    let path_a = write_config(dir_a.path(), Some(&url), extra);
    let path_b = write_config(dir_b.path(), Some(&url), extra);
    let a = TestGateway::start_at(dir_a, &path_a).await;
    // Both instances need the same master key (seeds and PINs are protected with it).
    std::fs::create_dir_all(dir_b.path().join("data")).unwrap();
    std::fs::copy(
        &a.config.master_key_file,
        dir_b.path().join("data/master.key"),
    )
    .unwrap();
    let b = TestGateway::start_at(dir_b, &path_b).await;
    (a, b, pg.map(|p| p.1))
}

#[tokio::test]
async fn r1_code_accepted_by_one_instance_is_refused_by_the_other() {
    let (a, b, pg) = two_instances("").await;
    a.pin_user("alice").await;
    let s = a.step();
    let mut ca = RadClient::new(a.addr).await;
    let mut cb = RadClient::new(b.addr).await;
    // Warm B's cache first so it holds the pre-login state.
    assert_eq!(cb.ask("alice", "1234000000").await.code, Code::AccessReject);
    assert_eq!(
        ca.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        cb.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessReject
    );
    // And the other way round with the next code.
    assert_eq!(
        cb.ask("alice", &format!("1234{}", code(s + 1))).await.code,
        Code::AccessAccept
    );
    assert_eq!(
        ca.ask("alice", &format!("1234{}", code(s + 1))).await.code,
        Code::AccessReject
    );
    assert!(b.stat("replays") >= 1);
    a.shutdown().await;
    b.shutdown().await;
    if let Some(name) = pg {
        drop_pg(&name).await;
    }
}

#[tokio::test]
async fn e4_tft_cleared_by_one_instance_is_refused_by_the_other_despite_its_cache() {
    use tokengate::admin::IssueOptions;
    use tokengate::model::EmergencyKind;
    let (a, b, pg) =
        two_instances("[domain.default.emergency]\non_token_available = \"allow_and_disable\"\n")
            .await;
    let serial = a.pin_user("alice").await;
    let tft = a
        .admin()
        .issue_emergency(
            &serial,
            IssueOptions {
                kind: Some(EmergencyKind::Tft),
                ..Default::default()
            },
            a.now(),
        )
        .await
        .unwrap();
    let pc = format!("1234{}", tft.codes[0]);
    let mut ca = RadClient::new(a.addr).await;
    let mut cb = RadClient::new(b.addr).await;
    // B caches alice with her TFT.
    assert_eq!(cb.ask("alice", &pc).await.code, Code::AccessAccept);
    // On A the real token turns up: allow_and_disable deletes the codes on the packet path,
    // which writes no change-feed entry; B still has the TFT in its cache.
    assert_eq!(
        ca.ask("alice", &format!("1234{}", code(a.step())))
            .await
            .code,
        Code::AccessAccept
    );
    assert_eq!(cb.ask("alice", &pc).await.code, Code::AccessReject);
    a.shutdown().await;
    b.shutdown().await;
    if let Some(name) = pg {
        drop_pg(&name).await;
    }
}

/// L-4 and "bad input gets a clear answer": a User-Name with a NUL (no user can have one: admin
/// names exclude control characters) is answered like any unknown user, and its audit row is
/// stored, with the NUL replaced. PostgreSQL cannot store a NUL in text: the lookup and the audit
/// row used to fail there, so the request got no answer at all, and every batch holding one
/// failed and was retried group by group.
#[tokio::test]
async fn l4_user_name_with_a_nul_is_rejected_like_an_unknown_user_on_every_backend() {
    let pg = fresh_pg_url().await;
    let dir = tempfile::tempdir().unwrap();
    let url = pg.as_ref().map(|p| p.0.clone());
    let path = write_config(dir.path(), url.as_deref(), "");
    let tg = TestGateway::start_at(dir, &path).await;
    tg.pin_user("alice").await;
    let mut c = RadClient::new(tg.addr).await;
    let nul = c.request("mal\u{0}lory", "1234000000", None).await;
    let unknown = c.ask("mallory", "1234000000").await;
    let nul = nul.expect("the NUL user name is answered");
    assert_eq!(nul.code, Code::AccessReject);
    assert_eq!(nul.attrs.len(), unknown.attrs.len());
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(tg.step())))
            .await
            .code,
        Code::AccessAccept
    );
    assert_eq!(
        radius_audit_names(&tg.gw().store).await,
        ["mal\u{FFFD}lory", "mallory", "alice"]
    );
    tg.shutdown().await;
    if let Some((_, name)) = pg {
        drop_pg(&name).await;
    }
}
