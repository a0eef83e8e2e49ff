//! The admin HTTP API end to end: a real gateway with `[admin_api]` on loopback, a real HTTP
//! client, the gateway's own database read back to prove what changed (and what did not).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokengate::model::{OtpMode, TokenKind};
use tokengate::radius::Code;
use tokengate::server::http::{api_key_sha256, routes};

use crate::common::*;

const KEY: &str = "tgk_helpdesk-test-key-0123456789abcdefghijklmn";
const OPS_KEY: &str = "tgk_ops-test-key-0123456789abcdefghijklmnopqrs";

fn hex(key: &str) -> String {
    api_key_sha256(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn extra() -> String {
    format!(
        r#"
[admin_api]
listen = "127.0.0.1:0"

[[admin_api.key]]
name = "helpdesk"
key_sha256 = "{}"

[[admin_api.key]]
name = "ops"
key_sha256 = "{}"

[domain.staff.pin]
min_length = 6
"#,
        hex(KEY),
        hex(OPS_KEY)
    )
}

struct Api {
    tg: TestGateway,
    base: String,
    http: reqwest::Client,
}

/// A response: status, `WWW-Authenticate`, body as JSON (`Null` when not JSON).
struct Resp {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Value,
}

impl Resp {
    fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {:?} ({})", self.body, self.status))
    }
}

impl Api {
    async fn start() -> Api {
        let tg = TestGateway::start_with(&extra()).await;
        let addr = tg.gw().admin_addr().expect("admin API is configured");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Api {
            tg,
            base: format!("http://{addr}"),
            http,
        }
    }

    /// Sends a request with the given Authorization value and raw JSON body text.
    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let www_authenticate = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            www_authenticate,
            body,
        }
    }

    async fn call_as(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {key}");
        self.send(method, path, Some(&auth), body.map(|b| b.to_string()))
            .await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_as(KEY, method, path, body).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn post_empty(&self, path: &str) -> Resp {
        self.call(Method::POST, path, None).await
    }

    /// Everything an admin call could change, as stored.
    async fn snapshot(&self) -> Value {
        let store = &self.tg.gw().store;
        json!({
            "users": store.list_users().await.unwrap(),
            "tokens": store.list_tokens().await.unwrap(),
            "audit": store.audit_since(0, 10_000).await.unwrap().len(),
        })
    }
}

fn assert_status(r: &Resp, want: StatusCode, what: &str) {
    assert_eq!(r.status, want, "{what}: body {}", r.body);
}

/// Keys no response may carry: secrets stay in the database.
fn assert_no_secrets(v: &Value) {
    let s = v.to_string();
    for k in ["seed_enc", "pin_hash", "\"seed\"", "secret="] {
        assert!(!s.contains(k), "{k} in {s}");
    }
}

#[tokio::test]
async fn admin_api_user_endpoints_happy_path() {
    let api = Api::start().await;

    let r = api.post("/api/v1/users", json!({"name": "Alice"})).await;
    assert_status(&r, StatusCode::CREATED, "add alice");
    assert_eq!(r.body["name"], "alice");
    assert_eq!(r.body["domain"], "default");
    assert_eq!(r.body["locked"], false);

    let r = api
        .post(
            "/api/v1/users",
            json!({"name": "bob", "domain": "staff", "profile": "admin"}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "add bob");
    assert_eq!(r.body["domain"], "staff");
    assert_eq!(r.body["profile"], "admin");

    let r = api.get("/api/v1/users").await;
    assert_status(&r, StatusCode::OK, "list");
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    api.tg.pin_user("carol").await;
    let r = api.get("/api/v1/users/CAROL").await;
    assert_status(&r, StatusCode::OK, "show");
    assert_eq!(r.body["user"]["name"], "carol");
    assert_eq!(r.body["tokens"][0]["serial"], "S-carol");
    assert_no_secrets(&r.body);

    let r = api.post_empty("/api/v1/users/alice/lock").await;
    assert_status(&r, StatusCode::OK, "lock");
    assert_eq!(r.body["locked"], true);
    assert!(r.body["locked_at"].is_i64());
    let stored = api.tg.gw().store.user_by_name("alice").await.unwrap();
    assert!(stored.unwrap().locked);

    let r = api.post_empty("/api/v1/users/alice/unlock").await;
    assert_status(&r, StatusCode::OK, "unlock");
    assert_eq!(r.body["locked"], false);
    let stored = api.tg.gw().store.user_by_name("alice").await.unwrap();
    assert!(!stored.unwrap().locked);

    // Shutdown is not held up by the client's idle keep-alive connection.
    tokio::time::timeout(std::time::Duration::from_secs(10), api.tg.shutdown())
        .await
        .expect("gateway shut down with the admin API running");
}

#[tokio::test]
async fn admin_api_token_endpoints_happy_path() {
    let api = Api::start().await;
    for n in ["alice", "bob"] {
        let r = api.post("/api/v1/users", json!({ "name": n })).await;
        assert_status(&r, StatusCode::CREATED, n);
    }
    let alice_id = api
        .tg
        .gw()
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    let bob_id = api
        .tg
        .gw()
        .store
        .user_by_name("bob")
        .await
        .unwrap()
        .unwrap()
        .id;

    // A TOTP PIN token with a known seed, assigned to alice.
    let r = api
        .post(
            "/api/v1/tokens",
            json!({
                "serial": "T-1",
                "user": "alice",
                "seed_base32": tokengate::otp::base32::encode(SEED),
                "pin": "4821",
            }),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "add T-1");
    let uri = r.body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains("secret="), "{uri}");
    assert_eq!(r.body["token"]["serial"], "T-1");
    assert_eq!(r.body["token"]["user_id"], alice_id);
    assert_eq!(r.body["token"]["kind"], "pin");
    assert_eq!(r.body["token"]["pin_state"], "set");
    assert_eq!(
        r.body["token"]["mode"],
        json!({"type": "totp", "period": 30})
    );
    assert!(r.body["token"].get("seed_enc").is_none());
    assert!(r.body["token"].get("pin_hash").is_none());

    // An HOTP app token with every option, unassigned, generated serial.
    let r = api
        .post(
            "/api/v1/tokens",
            json!({
                "kind": "app",
                "type": "hotp",
                "algorithm": "sha256",
                "digits": 8,
                "counter": 5,
                "expires_at": 4_102_444_800i64,
            }),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "add hotp");
    assert!(r.body["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://hotp/"));
    assert!(r.body["otpauth_uri"]
        .as_str()
        .unwrap()
        .contains("counter=5"));
    let t = &r.body["token"];
    assert!(t["serial"].as_str().unwrap().starts_with("TG"));
    assert_eq!(t["kind"], "app");
    assert_eq!(t["algorithm"], "sha256");
    assert_eq!(t["digits"], 8);
    assert_eq!(t["mode"], json!({"type": "hotp"}));
    assert_eq!(t["last_step"], 4);
    assert_eq!(t["expires_at"], 4_102_444_800i64);
    assert_eq!(t["user_id"], Value::Null);

    let r = api.get("/api/v1/tokens").await;
    assert_status(&r, StatusCode::OK, "list");
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_no_secrets(&r.body);

    let r = api.get("/api/v1/tokens/T-1").await;
    assert_status(&r, StatusCode::OK, "show");
    assert_eq!(r.body["serial"], "T-1");
    assert!(r.body.get("otpauth_uri").is_none());
    assert_no_secrets(&r.body);

    let r = api
        .post("/api/v1/tokens/T-1/assign", json!({"user": "bob"}))
        .await;
    assert_status(&r, StatusCode::OK, "assign");
    assert_eq!(r.body["user_id"], bob_id);

    let r = api.post_empty("/api/v1/tokens/T-1/unassign").await;
    assert_status(&r, StatusCode::OK, "unassign");
    assert_eq!(r.body["user_id"], Value::Null);
    let stored = api
        .tg
        .gw()
        .store
        .token_by_serial("T-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_id, None);

    // The token runs 5 steps fast: two consecutive codes from there resynchronise it.
    let s = api.tg.step();
    let r = api
        .post(
            "/api/v1/tokens/T-1/resync",
            json!({"code1": code(s + 5), "code2": code(s + 6)}),
        )
        .await;
    assert_status(&r, StatusCode::OK, "resync");
    let drift = r.body["drift"].as_i64().unwrap();
    assert!((5..=6).contains(&drift), "drift {drift}");
    assert!(r.body["last_step"].as_i64().unwrap() >= s + 6);

    let r = api.post_empty("/api/v1/tokens/T-1/pin/clear").await;
    assert_status(&r, StatusCode::OK, "pin clear");
    assert_eq!(r.body["pin_state"], "new_pin_required");
    let stored = api
        .tg
        .gw()
        .store
        .token_by_serial("T-1")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.pin_hash.is_none());

    let r = api
        .call(
            Method::PUT,
            "/api/v1/tokens/T-1/pin",
            Some(json!({"pin": "9753"})),
        )
        .await;
    assert_status(&r, StatusCode::OK, "pin set");
    assert_eq!(r.body["pin_state"], "set");
    assert_no_secrets(&r.body);
    let stored = api
        .tg
        .gw()
        .store
        .token_by_serial("T-1")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.pin_hash.is_some());
    api.tg.shutdown().await;
}

#[tokio::test]
async fn admin_api_refuses_missing_malformed_and_wrong_keys_on_every_route() {
    let api = Api::start().await;
    api.tg.pin_user("alice").await;
    let before = api.snapshot().await;
    let protected: Vec<_> = routes().into_iter().filter(|r| !r.public).collect();
    assert!(protected.len() >= 13, "{protected:?}");
    let wrong_key = format!("Bearer {}", KEY.replace("tgk_h", "tgk_x"));
    let bodies =
        json!({"name": "mallory", "user": "alice", "pin": "5555", "code1": "1", "code2": "2"});
    for route in &protected {
        let path = route
            .path
            .replace("{name}", "alice")
            .replace("{serial}", "S-alice");
        let cases: [(Option<&str>, &str); 7] = [
            (None, "missing"),
            (Some(""), "empty"),
            (Some("Basic YWRtaW46YWRtaW4="), "basic"),
            (Some("Bearer"), "bearer without key"),
            (Some("Bearer "), "bearer with blank key"),
            (Some(KEY), "key without scheme"),
            (Some(&wrong_key), "wrong key"),
        ];
        for (auth, what) in cases {
            // A body that would be valid for some routes must not get past the key check.
            let body = (route.method != Method::GET).then(|| bodies.to_string());
            let r = api.send(route.method.clone(), &path, auth, body).await;
            let ctx = format!("{} {path} ({what})", route.method);
            assert_status(&r, StatusCode::UNAUTHORIZED, &ctx);
            assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{ctx}");
            assert!(!r.error().is_empty(), "{ctx}");
            assert!(!r.body.to_string().contains(KEY), "{ctx}");
        }
    }
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused request changed something"
    );

    // The public route needs no key, and the right key opens the others.
    let r = api
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_status(&r, StatusCode::OK, "openapi");
    let r = api.get("/api/v1/users").await;
    assert_status(&r, StatusCode::OK, "right key");
    let r = api
        .send(
            Method::GET,
            "/api/v1/users",
            Some(&format!("bearer  {KEY} ")),
            None,
        )
        .await;
    assert_status(
        &r,
        StatusCode::OK,
        "scheme is case-insensitive, spaces trimmed",
    );
}

#[tokio::test]
async fn admin_api_bad_input_is_refused_with_a_message_and_changes_nothing() {
    let api = Api::start().await;
    api.tg.pin_user("alice").await;
    let r = api
        .post("/api/v1/users", json!({"name": "sam", "domain": "staff"}))
        .await;
    assert_status(&r, StatusCode::CREATED, "sam");
    let r = api
        .post("/api/v1/tokens", json!({"serial": "T-sam", "user": "sam"}))
        .await;
    assert_status(&r, StatusCode::CREATED, "T-sam");
    let app = api
        .post("/api/v1/tokens", json!({"serial": "T-app", "kind": "app"}))
        .await;
    assert_status(&app, StatusCode::CREATED, "T-app");
    let s = api.tg.step();
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));

    use StatusCode as S;
    type Case = (
        Method,
        &'static str,
        Option<String>,
        StatusCode,
        &'static str,
    );
    let j = |v: Value| Some(v.to_string());
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/v1/users",
            Some("{not json".into()),
            S::BAD_REQUEST,
            "JSON",
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some("".into()),
            S::BAD_REQUEST,
            "JSON",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({"name": "x", "admin": true})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({"name": 5})),
            S::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({})),
            S::UNPROCESSABLE_ENTITY,
            "missing field",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({"name": ""})),
            S::BAD_REQUEST,
            "user name",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({"name": "x", "domain": "nope"})),
            S::BAD_REQUEST,
            "unknown security domain",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({"name": "x", "profile": "nope"})),
            S::BAD_REQUEST,
            "unknown profile",
        ),
        (
            Method::POST,
            "/api/v1/users",
            j(json!({"name": "ALICE"})),
            S::CONFLICT,
            "already exists",
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some(big),
            S::PAYLOAD_TOO_LARGE,
            "length limit",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"digits": 7})),
            S::BAD_REQUEST,
            "digits must be 6 or 8",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"digits": 1000})),
            S::UNPROCESSABLE_ENTITY,
            "digits",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"period": 45})),
            S::BAD_REQUEST,
            "period",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"type": "hotp", "period": 30})),
            S::BAD_REQUEST,
            "TOTP tokens only",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"counter": 3})),
            S::BAD_REQUEST,
            "HOTP tokens only",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"type": "motp"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"kind": "card"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"algorithm": "md5"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"seed": "AAAA"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"seed_base32": "!!!!"})),
            S::BAD_REQUEST,
            "seed_base32",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"seed_base32": "JBSWY3DP"})),
            S::BAD_REQUEST,
            "seed too short",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"user": "nobody"})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"serial": "S-alice"})),
            S::CONFLICT,
            "already exists",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"serial": "bad serial"})),
            S::BAD_REQUEST,
            "serial",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"user": "alice", "pin": "12"})),
            S::BAD_REQUEST,
            "PIN refused",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"user": "sam", "pin": "1234"})),
            S::BAD_REQUEST,
            "PIN refused",
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            j(json!({"kind": "app", "pin": "1234"})),
            S::BAD_REQUEST,
            "no PIN",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/S-alice/pin",
            j(json!({"pin": "12"})),
            S::BAD_REQUEST,
            "PIN refused",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/T-sam/pin",
            j(json!({"pin": "4321"})),
            S::BAD_REQUEST,
            "PIN refused",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/T-app/pin",
            j(json!({"pin": "4321"})),
            S::BAD_REQUEST,
            "no PIN",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/S-alice/pin",
            j(json!({"pin": 1234})),
            S::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/NOPE/pin",
            j(json!({"pin": "4321"})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens/T-app/pin/clear",
            None,
            S::BAD_REQUEST,
            "no PIN",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/pin/clear",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens/S-alice/resync",
            j(json!({"code1": "000000", "code2": "000000"})),
            S::BAD_REQUEST,
            "",
        ),
        (
            Method::POST,
            "/api/v1/tokens/S-alice/resync",
            j(json!({"code1": code(s + 5), "code2": code(s + 9)})),
            S::BAD_REQUEST,
            "",
        ),
        (
            Method::POST,
            "/api/v1/tokens/S-alice/resync",
            j(json!({"code1": "abc"})),
            S::UNPROCESSABLE_ENTITY,
            "missing field",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/resync",
            j(json!({"code1": code(s), "code2": code(s + 1)})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/assign",
            j(json!({"user": "alice"})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens/S-alice/assign",
            j(json!({"user": "nobody"})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens/S-alice/assign",
            j(json!({"owner": "sam"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::POST,
            "/api/v1/tokens/S-alice/assign",
            None,
            S::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/unassign",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            "/api/v1/tokens/NOPE",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            "/api/v1/users/nobody",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/users/nobody/lock",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/users/nobody/unlock",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            "/api/v1/nothing",
            None,
            S::NOT_FOUND,
            "no such route",
        ),
        (
            Method::DELETE,
            "/api/v1/users",
            None,
            S::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
    ];
    let before = api.snapshot().await;
    for (method, path, body, want, needle) in cases {
        let ctx = format!("{method} {path} {body:?}");
        let ctx = ctx.chars().take(200).collect::<String>();
        let r = api
            .send(method, path, Some(&format!("Bearer {KEY}")), body)
            .await;
        assert_status(&r, want, &ctx);
        let msg = r.error();
        assert!(!msg.is_empty(), "{ctx}");
        assert!(msg.contains(needle), "{ctx}: {msg:?} lacks {needle:?}");
        assert_eq!(api.snapshot().await, before, "{ctx} changed something");
    }
}

#[tokio::test]
async fn admin_api_changes_are_audited_with_the_key_name() {
    let api = Api::start().await;
    let since = api.tg.now() - 1;
    let r = api.post("/api/v1/users", json!({"name": "alice"})).await;
    assert_status(&r, StatusCode::CREATED, "add");
    let r = api
        .call_as(OPS_KEY, Method::POST, "/api/v1/users/alice/lock", None)
        .await;
    assert_status(&r, StatusCode::OK, "lock");
    let r = api
        .post(
            "/api/v1/tokens",
            json!({"serial": "T-1", "user": "alice", "pin": "2468"}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "token");
    let r = api.post_empty("/api/v1/tokens/T-1/pin/clear").await;
    assert_status(&r, StatusCode::OK, "clear");

    let audit = api.tg.gw().store.audit_since(since, 100).await.unwrap();
    let got: Vec<(String, String, String)> = audit
        .iter()
        .map(|a| {
            (
                a.actor.clone().unwrap_or_default(),
                a.method.clone(),
                a.user_name.clone(),
            )
        })
        .collect();
    let want = [
        ("api:helpdesk", "user_add", "alice"),
        ("api:ops", "user_lock", "alice"),
        ("api:helpdesk", "token_add", "alice"),
        ("api:helpdesk", "pin_clear", "alice"),
    ]
    .map(|(a, m, u)| (a.to_string(), m.to_string(), u.to_string()));
    assert_eq!(got, want);
    assert!(audit
        .iter()
        .all(|a| a.protocol == "admin" && a.result == "ok"));
}

#[tokio::test]
async fn admin_api_lock_stops_a_radius_login_at_once() {
    let api = Api::start().await;
    api.tg
        .user_with_token(
            "alice",
            Some("1234"),
            TokenKind::Pin,
            OtpMode::Totp { period: 30 },
        )
        .await;
    let mut c = RadClient::new(api.tg.addr).await;
    let s = api.tg.step();
    // Logged in once: the gateway now holds alice in its cache.
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessAccept
    );
    let r = api.post_empty("/api/v1/users/alice/lock").await;
    assert_status(&r, StatusCode::OK, "lock");
    // A fresh, valid passcode right after the API answered.
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s + 1))).await.code,
        Code::AccessReject
    );
    let audit = api.tg.gw().store.audit_since(0, 100).await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.protocol.as_str(), last.reason.as_str()),
        ("radius", "locked")
    );

    // A PIN set through the API is the one RADIUS checks next.
    let r = api.post_empty("/api/v1/users/alice/unlock").await;
    assert_status(&r, StatusCode::OK, "unlock");
    let r = api
        .call(
            Method::PUT,
            "/api/v1/tokens/S-alice/pin",
            Some(json!({"pin": "8080"})),
        )
        .await;
    assert_status(&r, StatusCode::OK, "pin");
    let reply = c.ask("alice", &format!("8080{}", code(s + 1))).await;
    assert_eq!(reply.code, Code::AccessAccept, "{}", reply.message());
}

#[tokio::test]
async fn admin_api_openapi_document_matches_the_router() {
    let api = Api::start().await;
    let r = api
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_status(&r, StatusCode::OK, "openapi");
    let doc = r.body;
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Error"]["properties"]["error"].is_object());

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let m = method.to_uppercase();
            let public = op["security"] == json!([]);
            if !public {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{m} {path} does not document 401"
                );
            }
            documented.insert((m, path.clone(), public));
        }
    }
    let served: BTreeSet<(String, String, bool)> = routes()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_string(), r.public))
        .collect();
    assert_eq!(
        documented, served,
        "docs/openapi.json and the router disagree"
    );

    // And each route of the table really is served (not the fallback, not 405).
    for (method, path, _) in &served {
        let path = path.replace("{name}", "nobody").replace("{serial}", "NOPE");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (m != Method::GET).then(|| "{}".to_string());
        let r = api
            .send(m, &path, Some(&format!("Bearer {KEY}")), body)
            .await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if r.status == StatusCode::NOT_FOUND {
            assert_ne!(r.error(), "no such route", "{method} {path}");
        }
    }
}
