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

[domain.default.offline]
allowed = true
emergency_codes = true
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

/// A response: status, `WWW-Authenticate`, body as JSON (`Null` when not JSON), and as sent.
struct Resp {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Value,
    headers: reqwest::header::HeaderMap,
    text: String,
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
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            www_authenticate,
            body,
            headers,
            text,
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

    async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Everything an admin call could change, as stored: users and tokens with their emergency
    /// access, fixed passcodes and offline codes (hashes and ciphertexts, so a replaced code
    /// shows), and the number of audit records.
    async fn snapshot(&self) -> Value {
        let store = &self.tg.gw().store;
        let users = store.list_users().await.unwrap();
        let tokens = store.list_tokens().await.unwrap();
        let mut per_user = Vec::new();
        for u in &users {
            per_user.push(json!({
                "fixed_passcode": store.fixed_passcode(u.id).await.unwrap(),
                "offline": store.offline_code_of_user(u.id).await.unwrap(),
            }));
        }
        let mut per_token = Vec::new();
        for t in &tokens {
            per_token.push(json!({
                "emergency": store.emergency_of(t.id).await.unwrap(),
                "offline": store.offline_code_of_token(t.id).await.unwrap(),
            }));
        }
        json!({
            "users": users,
            "tokens": tokens,
            "per_user": per_user,
            "per_token": per_token,
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
    assert!(protected.len() >= 24, "{protected:?}");
    for must in [
        "/api/v1/tokens/{serial}/emergency",
        "/api/v1/tokens/{serial}/emergency/export",
        "/api/v1/users/{name}/fixed-passcode",
        "/api/v1/tokens/{serial}/offline-code",
        "/api/v1/tokens/{serial}/offline-code/reset",
        "/api/v1/tokens/{serial}/offline-code/online",
        "/api/v1/users/{name}/offline-passcode",
        "/api/v1/users/{name}/offline-passcode/reset",
    ] {
        assert!(
            protected.iter().any(|r| r.path == must),
            "{must} not covered"
        );
    }
    let wrong_key = format!("Bearer {}", KEY.replace("tgk_h", "tgk_x"));
    // A body that would be accepted with the right key, so only the key check stands between
    // each request and a change.
    let body_for = |path: &str| -> Value {
        match path.rsplit('/').next().unwrap_or_default() {
            "users" => json!({"name": "mallory"}),
            "tokens" => json!({"serial": "T-mallory"}),
            "assign" => json!({"user": "alice"}),
            "resync" => json!({"code1": code(1), "code2": code(2)}),
            "pin" => json!({"pin": "5555"}),
            "emergency" => json!({"kind": "ott", "count": 3}),
            "export" => json!({"count": 3}),
            "fixed-passcode" => json!({"passcode": "Fixed2Pass", "confirm": "Fixed2Pass"}),
            "online" => json!({"online": true}),
            _ => json!({}),
        }
    };
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
            let body = (route.method != Method::GET).then(|| body_for(route.path).to_string());
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

// ---------------------------------------------------------------------------------------------
// Emergency access (SPEC §6–§8) through the API, checked through RADIUS
// ---------------------------------------------------------------------------------------------

const DAY: i64 = 86_400;

fn codes_of(r: &Resp) -> Vec<String> {
    r.body["codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no codes in {}", r.body))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn admin_api_emergency_tft_and_ott_work_through_radius_at_once_and_delete_stops_them() {
    let api = Api::start().await;
    let serial = api.tg.pin_user("alice").await;
    let path = format!("/api/v1/tokens/{serial}/emergency");
    let mut c = RadClient::new(api.tg.addr).await;
    // Logged in once: the gateway holds alice in its cache, so what follows proves the
    // API invalidates it (no waiting for the change feed anywhere below).
    let s = api.tg.step();
    assert_eq!(
        c.ask("alice", &format!("1234{}", code(s))).await.code,
        Code::AccessAccept
    );

    let r = api.get(&path).await;
    assert_status(&r, StatusCode::NOT_FOUND, "none yet");
    assert_eq!(r.error(), format!("token {serial} has no emergency access"));

    // A TFT: PIN + code, reusable.
    let now = api.tg.now();
    let r = api.post(&path, json!({"kind": "tft"})).await;
    assert_status(&r, StatusCode::CREATED, "tft");
    assert_eq!(
        r.headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    assert_eq!(r.body["serial"], serial.as_str());
    assert_eq!(r.body["kind"], "tft");
    assert_eq!(r.body["mode"], "unavailable");
    assert_eq!(r.body["with_pin"], true);
    let exp = r.body["expires_at"].as_i64().unwrap();
    assert!((exp - now - 3 * DAY).abs() < 60, "unavailable lifetime");
    let tft = codes_of(&r);
    assert_eq!(tft.len(), 1);
    for _ in 0..2 {
        let reply = c.ask("alice", &format!("1234{}", tft[0])).await;
        assert_eq!(reply.code, Code::AccessAccept, "{}", reply.message());
    }
    let r = api.get(&path).await;
    assert_status(&r, StatusCode::OK, "show tft");
    assert_eq!(r.body["kind"], "tft");
    assert_eq!(r.body["active"], true);
    assert_eq!(
        (r.body["total"].as_u64(), r.body["used"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(r.body.get("codes").is_none() && !r.text.contains(&tft[0]));

    // An OTT set of 3 for a lost token replaces the TFT; each code works once.
    let r = api
        .post(&path, json!({"kind": "ott", "mode": "lost", "count": 3}))
        .await;
    assert_status(&r, StatusCode::CREATED, "ott");
    assert_eq!(r.body["kind"], "ott");
    assert_eq!(r.body["mode"], "lost");
    assert_eq!(r.body["rule"], "deny");
    let ott = codes_of(&r);
    assert_eq!(ott.len(), 3);
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft[0])).await.code,
        Code::AccessReject,
        "the TFT was replaced"
    );
    for code in &ott {
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessAccept,
            "{code}"
        );
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessReject,
            "{code} twice"
        );
    }
    let r = api.get(&path).await;
    assert_status(&r, StatusCode::OK, "show ott");
    assert_eq!(
        (r.body["total"].as_u64(), r.body["used"].as_u64()),
        (Some(3), Some(3))
    );

    // DELETE: the codes of a fresh set fail at once.
    let r = api
        .post(
            &path,
            json!({"kind": "ott", "count": 2, "expires_at": api.tg.now() + DAY}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "ott 2");
    let fresh = codes_of(&r);
    let r = api.delete(&path).await;
    assert_status(&r, StatusCode::OK, "delete");
    assert_eq!(r.body, json!({"serial": serial, "cleared": true}));
    for code in &fresh {
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessReject,
            "{code} after delete"
        );
    }
    let r = api.delete(&path).await;
    assert_status(&r, StatusCode::OK, "delete again");
    assert_eq!(r.body, json!({"serial": serial, "cleared": false}));
    let r = api.get(&path).await;
    assert_status(&r, StatusCode::NOT_FOUND, "gone");
    // The real token works again.
    let reply = c
        .ask("alice", &format!("1234{}", code(api.tg.step() + 1)))
        .await;
    assert_eq!(reply.code, Code::AccessAccept, "{}", reply.message());
}

#[tokio::test]
async fn admin_api_emergency_for_an_app_token_is_the_code_alone() {
    let api = Api::start().await;
    let serial = api
        .tg
        .user_with_token("dave", None, TokenKind::App, OtpMode::Totp { period: 30 })
        .await;
    let r = api
        .post(
            &format!("/api/v1/tokens/{serial}/emergency"),
            json!({"kind": "tft"}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "tft");
    assert_eq!(r.body["with_pin"], false);
    let tft = codes_of(&r);
    let mut c = RadClient::new(api.tg.addr).await;
    assert_eq!(c.ask("dave", &tft[0]).await.code, Code::AccessAccept);
}

#[tokio::test]
async fn admin_api_export_returns_the_e5_file_whose_codes_work_once_each() {
    let api = Api::start().await;
    let serial = api.tg.pin_user("alice").await;
    let expires = api.tg.now() + 2 * DAY;
    let r = api
        .post(
            &format!("/api/v1/tokens/{serial}/emergency/export"),
            json!({"count": 4, "expires_at": expires}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "export");
    let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        h("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        h("content-disposition"),
        Some(format!("attachment; filename=\"{serial}-ott.txt\""))
    );
    assert_eq!(h("cache-control").as_deref(), Some("no-store"));
    let text = &r.text;
    let header: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        header.contains(&format!("# Token serial: {serial}").as_str()),
        "{text}"
    );
    assert!(header.contains(&"# Codes: 4"), "{text}");
    let want_expiry = format!("# Expires: {}", tokengate::clock::format_utc(expires));
    assert!(want_expiry.ends_with('Z'));
    assert!(header.contains(&want_expiry.as_str()), "{text}");
    assert!(!text.contains("1234"), "never the PIN");
    let codes: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(codes.len(), 4, "{text}");

    let v = api.get(&format!("/api/v1/tokens/{serial}/emergency")).await;
    assert_status(&v, StatusCode::OK, "show");
    assert_eq!(v.body["kind"], "ott");
    assert_eq!(v.body["expires_at"], expires);
    assert_eq!(v.body["total"], 4);

    let mut c = RadClient::new(api.tg.addr).await;
    for code in &codes {
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessAccept,
            "{code}"
        );
        assert_eq!(
            c.ask("alice", &format!("1234{code}")).await.code,
            Code::AccessReject,
            "{code} twice"
        );
    }
}

#[tokio::test]
async fn admin_api_fixed_passcode_logs_in_alone_not_after_a_pin_and_delete_stops_it() {
    let api = Api::start().await;
    api.tg.pin_user("alice").await;
    let mut c = RadClient::new(api.tg.addr).await;
    // Cached as "no fixed passcode" before the change.
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessReject);

    let path = "/api/v1/users/ALICE/fixed-passcode";
    let r = api
        .put(
            path,
            json!({"passcode": "Fixed2Pass", "confirm": "Fixed2Pass"}),
        )
        .await;
    assert_status(&r, StatusCode::OK, "set");
    assert_eq!(r.body["user"], "alice");
    assert_eq!(r.body["allowed"], true);
    assert!(!r.text.contains("Fixed2Pass"), "{}", r.text);
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessAccept);
    assert_eq!(
        c.ask("alice", "1234Fixed2Pass").await.code,
        Code::AccessReject
    );
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessAccept);

    let r = api.delete(path).await;
    assert_status(&r, StatusCode::OK, "clear");
    assert_eq!(r.body, json!({"user": "alice", "cleared": true}));
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessReject);
    let r = api.delete(path).await;
    assert_status(&r, StatusCode::OK, "clear again");
    assert_eq!(r.body, json!({"user": "alice", "cleared": false}));
}

#[tokio::test]
async fn admin_api_offline_codes_online_only_when_flagged_and_reset_replaces_them() {
    let api = Api::start().await;
    let serial = api.tg.pin_user("alice").await;
    let path = format!("/api/v1/tokens/{serial}/offline-code");
    let mut c = RadClient::new(api.tg.addr).await;
    let now = api.tg.now();

    let r = api.get(&path).await;
    assert_status(&r, StatusCode::OK, "show");
    assert_eq!(
        r.headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    assert_eq!(r.body["serial"], serial.as_str());
    assert_eq!(r.body["online"], false);
    assert_eq!(r.body["reset"], false);
    assert!((r.body["expires_at"].as_i64().unwrap() - now - 30 * DAY).abs() < 60);
    let first = r.body["code"].as_str().unwrap().to_string();
    let r = api.get(&path).await;
    assert_eq!(r.body["code"], first.as_str(), "shown again: the same code");

    assert_eq!(
        c.ask("alice", &format!("1234{first}")).await.code,
        Code::AccessReject,
        "not accepted online yet"
    );
    let r = api
        .put(&format!("{path}/online"), json!({"online": true}))
        .await;
    assert_status(&r, StatusCode::OK, "online on");
    assert_eq!(r.body["online"], true);
    assert_eq!(r.body["code"], first.as_str());
    let reply = c.ask("alice", &format!("1234{first}")).await;
    assert_eq!(reply.code, Code::AccessAccept, "{}", reply.message());
    assert_eq!(
        c.ask("alice", &first).await.code,
        Code::AccessReject,
        "PIN required"
    );

    let r = api.post_empty(&format!("{path}/reset")).await;
    assert_status(&r, StatusCode::OK, "reset");
    let second = r.body["code"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(r.body["reset"], true);
    assert_eq!(r.body["online"], true, "the online flag survives a reset");
    assert_eq!(
        c.ask("alice", &format!("1234{first}")).await.code,
        Code::AccessReject,
        "the old code stopped"
    );
    assert_eq!(
        c.ask("alice", &format!("1234{second}")).await.code,
        Code::AccessAccept
    );
    let r = api
        .put(&format!("{path}/online"), json!({"online": false}))
        .await;
    assert_status(&r, StatusCode::OK, "online off");
    assert_eq!(r.body["online"], false);
    assert_eq!(
        c.ask("alice", &format!("1234{second}")).await.code,
        Code::AccessReject
    );

    // The user's offline emergency passcode: shown, the same again, reset to a new one; never
    // valid online.
    let upath = "/api/v1/users/alice/offline-passcode";
    let r = api.get(upath).await;
    assert_status(&r, StatusCode::OK, "passcode");
    assert_eq!(r.body["user"], "alice");
    assert_eq!(r.body["serial"], Value::Null);
    let pc = r.body["code"].as_str().unwrap().to_string();
    assert_eq!(api.get(upath).await.body["code"], pc.as_str());
    let r = api.post_empty(&format!("{upath}/reset")).await;
    assert_status(&r, StatusCode::OK, "passcode reset");
    assert_eq!(r.body["reset"], true);
    let pc2 = r.body["code"].as_str().unwrap().to_string();
    assert_ne!(pc2, pc);
    assert_eq!(api.get(upath).await.body["code"], pc2.as_str());
    assert_eq!(c.ask("alice", &pc2).await.code, Code::AccessReject);
}

#[tokio::test]
async fn admin_api_emergency_bad_input_is_refused_with_a_message_and_changes_nothing() {
    let api = Api::start().await;
    let serial = api.tg.pin_user("alice").await;
    // Things a refused request could wrongly replace: a TFT, a fixed passcode, offline codes.
    let r = api
        .post(
            &format!("/api/v1/tokens/{serial}/emergency"),
            json!({"kind": "tft"}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "tft");
    let tft = codes_of(&r);
    let r = api
        .put(
            "/api/v1/users/alice/fixed-passcode",
            json!({"passcode": "Fixed2Pass", "confirm": "Fixed2Pass"}),
        )
        .await;
    assert_status(&r, StatusCode::OK, "fixed");
    assert_status(
        &api.get(&format!("/api/v1/tokens/{serial}/offline-code"))
            .await,
        StatusCode::OK,
        "offline code",
    );
    assert_status(
        &api.get("/api/v1/users/alice/offline-passcode").await,
        StatusCode::OK,
        "offline passcode",
    );
    // bob has a token without emergency access (so GET shows 404); sam is in a domain whose
    // offline policy forbids offline codes; T-free has no owner.
    let bob = api.tg.pin_user("bob").await;
    let r = api
        .post("/api/v1/users", json!({"name": "sam", "domain": "staff"}))
        .await;
    assert_status(&r, StatusCode::CREATED, "sam");
    let r = api
        .post("/api/v1/tokens", json!({"serial": "T-sam", "user": "sam"}))
        .await;
    assert_status(&r, StatusCode::CREATED, "T-sam");
    let r = api
        .post("/api/v1/tokens", json!({"serial": "T-free"}))
        .await;
    assert_status(&r, StatusCode::CREATED, "T-free");

    let now = api.tg.now();
    let em = format!("/api/v1/tokens/{serial}/emergency");
    let ex = format!("/api/v1/tokens/{serial}/emergency/export");
    let online = format!("/api/v1/tokens/{serial}/offline-code/online");
    let bob_em = format!("/api/v1/tokens/{bob}/emergency");
    use StatusCode as S;
    let j = |v: Value| Some(v.to_string());
    let cases: Vec<(Method, &str, Option<String>, StatusCode, &str)> = vec![
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "sms"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "ott", "count": 0})),
            S::BAD_REQUEST,
            "1 to 100",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "ott", "count": 101})),
            S::BAD_REQUEST,
            "1 to 100",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "ott", "count": -1})),
            S::UNPROCESSABLE_ENTITY,
            "invalid value",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "tft", "count": 2})),
            S::BAD_REQUEST,
            "OTT sets only",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "tft", "expires_at": now - 60})),
            S::BAD_REQUEST,
            "in the future",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "ott", "expires_at": now + 31 * DAY})),
            S::BAD_REQUEST,
            "global maximum",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "tft", "mode": "stolen"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown variant",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"kind": "tft", "pin": "1234"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::POST,
            em.as_str(),
            j(json!({"count": 3})),
            S::UNPROCESSABLE_ENTITY,
            "missing field",
        ),
        (
            Method::POST,
            em.as_str(),
            None,
            S::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            Method::POST,
            "/api/v1/tokens/T-free/emergency",
            j(json!({"kind": "tft"})),
            S::BAD_REQUEST,
            "not assigned",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/emergency",
            j(json!({"kind": "tft"})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            ex.as_str(),
            j(json!({"count": 0})),
            S::BAD_REQUEST,
            "1 to 100",
        ),
        (
            Method::POST,
            ex.as_str(),
            j(json!({"count": 101})),
            S::BAD_REQUEST,
            "1 to 100",
        ),
        (
            Method::POST,
            ex.as_str(),
            j(json!({"expires_at": now - 60})),
            S::BAD_REQUEST,
            "in the future",
        ),
        (
            Method::POST,
            ex.as_str(),
            j(json!({"expires_at": now + 31 * DAY})),
            S::BAD_REQUEST,
            "global maximum",
        ),
        (
            Method::POST,
            ex.as_str(),
            j(json!({"kind": "tft"})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::POST,
            "/api/v1/tokens/T-free/emergency/export",
            j(json!({})),
            S::BAD_REQUEST,
            "not assigned",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/emergency/export",
            j(json!({})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            bob_em.as_str(),
            None,
            S::NOT_FOUND,
            "has no emergency access",
        ),
        (
            Method::GET,
            "/api/v1/tokens/NOPE/emergency",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/NOPE/emergency",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::PUT,
            "/api/v1/users/alice/fixed-passcode",
            j(json!({"passcode": "Other2Pass", "confirm": "Other2Pazz"})),
            S::BAD_REQUEST,
            "do not match",
        ),
        (
            Method::PUT,
            "/api/v1/users/alice/fixed-passcode",
            j(json!({"passcode": "short", "confirm": "short"})),
            S::BAD_REQUEST,
            "8 to 32",
        ),
        (
            Method::PUT,
            "/api/v1/users/alice/fixed-passcode",
            j(json!({"passcode": "Other2Pass"})),
            S::UNPROCESSABLE_ENTITY,
            "missing field",
        ),
        (
            Method::PUT,
            "/api/v1/users/alice/fixed-passcode",
            j(json!({"passcode": "Other2Pass", "confirm": "Other2Pass", "allowed": false})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::PUT,
            "/api/v1/users/nobody/fixed-passcode",
            j(json!({"passcode": "Other2Pass", "confirm": "Other2Pass"})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::DELETE,
            "/api/v1/users/nobody/fixed-passcode",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            "/api/v1/tokens/T-sam/offline-code",
            None,
            S::BAD_REQUEST,
            "offline policy",
        ),
        (
            Method::POST,
            "/api/v1/tokens/T-sam/offline-code/reset",
            None,
            S::BAD_REQUEST,
            "offline policy",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/T-sam/offline-code/online",
            j(json!({"online": true})),
            S::BAD_REQUEST,
            "offline policy",
        ),
        (
            Method::GET,
            "/api/v1/users/sam/offline-passcode",
            None,
            S::BAD_REQUEST,
            "offline policy",
        ),
        (
            Method::POST,
            "/api/v1/users/sam/offline-passcode/reset",
            None,
            S::BAD_REQUEST,
            "offline policy",
        ),
        (
            Method::GET,
            "/api/v1/tokens/T-free/offline-code",
            None,
            S::BAD_REQUEST,
            "not assigned",
        ),
        (
            Method::PUT,
            online.as_str(),
            j(json!({"online": "yes"})),
            S::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            Method::PUT,
            online.as_str(),
            j(json!({"on": true})),
            S::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            Method::GET,
            "/api/v1/tokens/NOPE/offline-code",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/tokens/NOPE/offline-code/reset",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::PUT,
            "/api/v1/tokens/NOPE/offline-code/online",
            j(json!({"online": true})),
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            "/api/v1/users/nobody/offline-passcode",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/api/v1/users/nobody/offline-passcode/reset",
            None,
            S::NOT_FOUND,
            "not found",
        ),
        (
            Method::PATCH,
            "/api/v1/users/alice/fixed-passcode",
            None,
            S::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
    ];
    let before = api.snapshot().await;
    for (method, path, body, want, needle) in cases {
        let ctx = format!("{method} {path} {body:?}");
        let r = api
            .send(method, path, Some(&format!("Bearer {KEY}")), body)
            .await;
        assert_status(&r, want, &ctx);
        let msg = r.error();
        assert!(msg.contains(needle), "{ctx}: {msg:?} lacks {needle:?}");
        assert_eq!(api.snapshot().await, before, "{ctx} changed something");
    }
    // And the gateway still takes what was there before.
    let mut c = RadClient::new(api.tg.addr).await;
    assert_eq!(
        c.ask("alice", &format!("1234{}", tft[0])).await.code,
        Code::AccessAccept
    );
    assert_eq!(c.ask("alice", "Fixed2Pass").await.code, Code::AccessAccept);
}

#[tokio::test]
async fn admin_api_emergency_changes_are_audited_with_the_key_name() {
    let api = Api::start().await;
    let serial = api.tg.pin_user("alice").await;
    let since = api.tg.now() - 1;
    let t = format!("/api/v1/tokens/{serial}");
    let calls: Vec<(&str, Method, String, Option<Value>)> = vec![
        (
            KEY,
            Method::POST,
            format!("{t}/emergency"),
            Some(json!({"kind": "tft"})),
        ),
        (
            OPS_KEY,
            Method::POST,
            format!("{t}/emergency"),
            Some(json!({"kind": "ott", "count": 2})),
        ),
        (
            KEY,
            Method::POST,
            format!("{t}/emergency/export"),
            Some(json!({"count": 2})),
        ),
        (KEY, Method::GET, format!("{t}/emergency"), None),
        (OPS_KEY, Method::DELETE, format!("{t}/emergency"), None),
        (
            KEY,
            Method::PUT,
            "/api/v1/users/alice/fixed-passcode".into(),
            Some(json!({"passcode": "Fixed2Pass", "confirm": "Fixed2Pass"})),
        ),
        (
            OPS_KEY,
            Method::DELETE,
            "/api/v1/users/alice/fixed-passcode".into(),
            None,
        ),
        (KEY, Method::GET, format!("{t}/offline-code"), None),
        (KEY, Method::POST, format!("{t}/offline-code/reset"), None),
        (
            OPS_KEY,
            Method::PUT,
            format!("{t}/offline-code/online"),
            Some(json!({"online": true})),
        ),
        (
            KEY,
            Method::GET,
            "/api/v1/users/alice/offline-passcode".into(),
            None,
        ),
        (
            OPS_KEY,
            Method::POST,
            "/api/v1/users/alice/offline-passcode/reset".into(),
            None,
        ),
    ];
    for (key, method, path, body) in calls {
        let r = api.call_as(key, method.clone(), &path, body).await;
        assert!(
            r.status.is_success(),
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
    }
    let audit = api.tg.gw().store.audit_since(since, 100).await.unwrap();
    let got: Vec<(String, String, String)> = audit
        .iter()
        .filter(|a| a.actor.as_deref().is_some_and(|x| x.starts_with("api:")))
        .map(|a| {
            (
                a.actor.clone().unwrap_or_default(),
                a.method.clone(),
                a.user_name.clone(),
            )
        })
        .collect();
    let want = [
        ("api:helpdesk", "emergency_tft_issue"),
        ("api:ops", "emergency_ott_issue"),
        ("api:helpdesk", "emergency_ott_issue"),
        ("api:helpdesk", "emergency_ott_export"),
        ("api:ops", "emergency_clear"),
        ("api:helpdesk", "fixed_passcode_set"),
        ("api:ops", "fixed_passcode_clear"),
        ("api:helpdesk", "offline_code_show"),
        ("api:helpdesk", "offline_code_reset"),
        // Turning the online flag on shows (and audits) the code it applies to.
        ("api:ops", "offline_code_show"),
        ("api:ops", "offline_code_online_on"),
        ("api:helpdesk", "offline_passcode_show"),
        ("api:ops", "offline_passcode_reset"),
    ]
    .map(|(a, m)| (a.to_string(), m.to_string(), "alice".to_string()));
    assert_eq!(got, want);
    assert!(audit.iter().all(|a| a.result == "ok"));
}
