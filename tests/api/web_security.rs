//! The web's classic attacks, over plain HTTP: session fixation, cookie
//! flags, security headers on every answer, open redirects through `next=`,
//! script injected through any input, and requests that try to make the
//! server call an address of their choosing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{action_body, enc, new_key, send, Reply, Session, TestApp, ADMIN_PASSWORD};

const SESSION_COOKIE: &str = "tms_session";

/// A script tag, and how it reads once HTML-escaped.
const SCRIPT: &str = "<script>alert(1)</script>";
const SCRIPT_ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";
/// Breaks out of a quoted attribute when not escaped.
const ATTRIBUTE: &str = "\"><img src=x onerror=alert(2)>";

/// Every `Set-Cookie` of `reply` for `name`, whole (value and attributes).
fn set_cookies(reply: &Reply, name: &str) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect()
}

/// The value of the one `Set-Cookie` of `reply` for `name`.
fn cookie_value(reply: &Reply, name: &str) -> String {
    let cookies = set_cookies(reply, name);
    assert_eq!(cookies.len(), 1, "one {name} cookie: {cookies:?}");
    let pair = cookies[0].split(';').next().unwrap_or_default();
    pair[name.len() + 1..].to_owned()
}

/// The attributes of a `Set-Cookie` value, lower-cased and trimmed.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// `GET /api/v1/me` with only `cookie`.
async fn me_with_cookie(app: &TestApp, cookie: &str) -> Reply {
    send(
        app.anonymous()
            .request(Method::GET, "/api/v1/me")
            .header("cookie", cookie.to_owned()),
    )
    .await
}

/// `POST /login` with the form's anti-CSRF pair and `extra_cookie`.
async fn form_login(app: &TestApp, body: &str, extra_cookie: &str) -> Reply {
    let cookie = if extra_cookie.is_empty() {
        "tms_login=T0KEN".to_owned()
    } else {
        format!("tms_login=T0KEN; {extra_cookie}")
    };
    send(
        app.anonymous()
            .request(Method::POST, "/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(format!("{body}&login_token=T0KEN")),
    )
    .await
}

fn admin_form(next: &str) -> String {
    format!(
        "username=admin&password={}&next={}",
        enc(ADMIN_PASSWORD),
        enc(next)
    )
}

#[tokio::test]
async fn a_forged_session_cookie_is_never_adopted_by_a_login() {
    // Arrange: the attacker plants a session id of their choosing.
    let app = TestApp::spawn().await;
    let forged = "f0rged-session-id-chosen-by-the-attacker";
    let planted = format!("{SESSION_COOKIE}={forged}");

    // Act: the victim logs in through the API and through the form.
    let api = send(
        app.anonymous()
            .request(Method::POST, "/api/v1/session")
            .header("cookie", planted.clone())
            .header("content-type", "application/json")
            .body(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string()),
    )
    .await;
    let form = form_login(&app, &admin_form("/"), &planted).await;

    // Assert: each login issued a fresh id; the planted one opens nothing.
    api.assert_status(200);
    assert_eq!(form.status, 303, "{}", form.text());
    let from_api = cookie_value(&api, SESSION_COOKIE);
    let from_form = cookie_value(&form, SESSION_COOKIE);
    assert_ne!(from_api, forged);
    assert_ne!(from_form, forged);
    assert_ne!(from_api, from_form);
    me_with_cookie(&app, &planted)
        .await
        .expect_problem(401, "unauthenticated");
    me_with_cookie(&app, &format!("{SESSION_COOKIE}={from_api}"))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_session_held_before_an_api_login_is_ended_by_it() {
    // Arrange: the attacker's own valid session, planted in the victim's browser.
    let app = TestApp::spawn().await;
    let attacker = app.create_user("operator").await;
    let before = app
        .try_login(
            &attacker.username,
            &crate::helpers::password_of(&attacker.username),
        )
        .await;
    let planted = format!("{SESSION_COOKIE}={}", cookie_value(&before, SESSION_COOKIE));
    me_with_cookie(&app, &planted).await.assert_status(200);

    // Act: the victim logs in as admin with that cookie in the jar.
    let login = send(
        app.anonymous()
            .request(Method::POST, "/api/v1/session")
            .header("cookie", planted.clone())
            .header("content-type", "application/json")
            .body(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string()),
    )
    .await;

    // Assert: a new id for the new login; the planted session is over.
    login.assert_status(200);
    let after = format!("{SESSION_COOKIE}={}", cookie_value(&login, SESSION_COOKIE));
    assert_ne!(after, planted);
    me_with_cookie(&app, &planted).await.assert_status(401);
    let me = me_with_cookie(&app, &after).await.expect(200);
    assert_eq!(me["user"]["username"], "admin");
}

#[tokio::test]
async fn cookies_are_http_only_strict_scoped_and_not_secure_by_default() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let api = app.try_login("admin", ADMIN_PASSWORD).await;
    let session = app.admin().await;
    let logout = session.delete("/api/v1/session").await;
    let login_page = app.get("/login").await;
    let form = form_login(&app, &admin_form("/"), "").await;

    // Assert
    for (what, reply, name, path) in [
        ("API login", &api, SESSION_COOKIE, "/"),
        ("form login", &form, SESSION_COOKIE, "/"),
        ("logout", &logout, SESSION_COOKIE, "/"),
        ("login form", &login_page, "tms_login", "/login"),
    ] {
        let cookies = set_cookies(reply, name);
        assert!(!cookies.is_empty(), "{what}: no {name} cookie");
        for cookie in cookies {
            let attributes = attributes(&cookie);
            assert!(attributes.contains(&"httponly".into()), "{what}: {cookie}");
            assert!(
                attributes.contains(&"samesite=strict".into()),
                "{what}: {cookie}"
            );
            assert!(
                attributes.contains(&format!("path={path}")),
                "{what}: {cookie}"
            );
            assert!(!attributes.contains(&"secure".into()), "{what}: {cookie}");
            assert!(
                !attributes.iter().any(|a| a.starts_with("domain=")),
                "{what}: a cookie for this host only: {cookie}"
            );
        }
    }
    let removal = set_cookies(&logout, SESSION_COOKIE).join(" ");
    assert!(
        removal.to_ascii_lowercase().contains("max-age=0"),
        "logout removes the cookie: {removal}"
    );
}

#[tokio::test]
async fn with_secure_cookies_every_cookie_is_secure() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.secure_cookies = true).await;

    // Act
    let api = app.try_login("admin", ADMIN_PASSWORD).await;
    let login_page = app.get("/login").await;
    let form = form_login(&app, &admin_form("/"), "").await;
    let logout = app.admin().await.delete("/api/v1/session").await;

    // Assert
    for (what, reply, name) in [
        ("API login", &api, SESSION_COOKIE),
        ("form login", &form, SESSION_COOKIE),
        ("logout", &logout, SESSION_COOKIE),
        ("login form", &login_page, "tms_login"),
    ] {
        let cookies = set_cookies(reply, name);
        assert!(!cookies.is_empty(), "{what}: no {name} cookie");
        for cookie in cookies {
            let attributes = attributes(&cookie);
            assert!(attributes.contains(&"secure".into()), "{what}: {cookie}");
            assert!(attributes.contains(&"httponly".into()), "{what}: {cookie}");
            assert!(
                attributes.contains(&"samesite=strict".into()),
                "{what}: {cookie}"
            );
        }
    }
}

/// Asserts the headers every answer carries, HTML or not.
fn assert_security_headers(what: &str, reply: &Reply) {
    let csp = reply
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("base-uri 'none'"), "{what}: {csp}");
    assert_eq!(
        reply.header("x-frame-options").as_deref(),
        Some("DENY"),
        "{what}"
    );
    assert_eq!(
        reply.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        reply.header("referrer-policy").as_deref(),
        Some("same-origin"),
        "{what}"
    );
}

#[tokio::test]
async fn every_page_and_api_answer_carries_the_security_headers_logged_in_or_out() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let job = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(["C7001"])))
        .await
        .expect(201)["job"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (token_id, _) = admin.create_token("headers").await;
    let job_page = format!("/jobs/{job}");
    let job_api = format!("/api/v1/jobs/{job}");
    let pages = [
        "/login",
        "/",
        "/jobs",
        "/jobs?status=failed&cid=C1",
        job_page.as_str(),
        "/jobs/not-a-job",
        "/audit/duplicates",
        "/admin/users",
        "/account",
        "/no-such-page",
        "/static/app.css",
        "/static/customer-set.js",
    ];
    let api = [
        "/api/v1/me",
        "/api/v1/catalog",
        "/api/v1/jobs",
        "/api/v1/jobs?limit=0",
        job_api.as_str(),
        "/api/v1/jobs/export?format=csv",
        "/api/v1/jobs/export?format=ndjson",
        "/api/v1/audit/duplicates",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/openapi.json",
        "/api/v1/no-such-thing",
        "/healthz",
        "/readyz",
        "/metrics",
        "/sandbox/api/v1/_stats",
    ];

    // Act + Assert: GET as admin, as nobody, and HTML asked for by a browser.
    for path in pages.iter().chain(api.iter()) {
        for (who, session) in [("admin", &admin), ("anonymous", &app.anonymous())] {
            let reply = session.get(path).await;
            assert_security_headers(&format!("GET {path} as {who} ({})", reply.status), &reply);
            let html = send(
                session
                    .request(Method::GET, path)
                    .header("accept", "text/html,application/xhtml+xml"),
            )
            .await;
            assert_security_headers(&format!("GET {path} as a {who} browser"), &html);
        }
    }
    // Unsafe methods, their errors and their successes.
    let posts = [
        app.try_login("admin", "wrong-password-0").await,
        app.post_json("/api/v1/actions", &json!({})).await,
        admin
            .set_action(&new_key(), &action_body("Trans-Begin", json!(["bad!"])))
            .await,
        admin
            .without_csrf()
            .post_json("/api/v1/tokens", &json!({"name": "x"}))
            .await,
        admin
            .post_json("/api/v1/tokens", &json!({"name": "y"}))
            .await,
        admin
            .patch_json("/api/v1/users/admin", &json!({"role": "admin"}))
            .await,
        admin.delete(&format!("/api/v1/tokens/{token_id}")).await,
        send(
            admin
                .request(Method::POST, "/api/v1/tokens")
                .header("content-type", "application/json")
                .body(vec![b' '; 300 * 1024]),
        )
        .await,
        form_login(&app, &admin_form("/jobs"), "").await,
        form_login(&app, "username=admin&password=wrong-password-0", "").await,
        admin.delete("/api/v1/session").await,
    ];
    for (i, reply) in posts.iter().enumerate() {
        assert_security_headers(&format!("unsafe request #{i} ({})", reply.status), reply);
    }
}

/// Whether `location`, followed from a page of `base`, stays on `base`'s site.
fn stays_on_site(base: &str, location: &str) -> bool {
    let base = reqwest::Url::parse(&format!("{base}/login")).expect("base URL");
    base.join(location).is_ok_and(|target| {
        target.scheme() == base.scheme()
            && target.host_str() == base.host_str()
            && target.port_or_known_default() == base.port_or_known_default()
    })
}

/// `next` values that try to lead off the site, as a browser would send them.
const FOREIGN_NEXTS: [&str; 16] = [
    "https://evil.example/",
    "http:evil.example",
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    " //evil.example",
    "/ /evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "evil.example",
];

#[tokio::test]
async fn a_next_parameter_never_redirects_off_the_site() {
    // Arrange
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    for next in FOREIGN_NEXTS {
        // Act: the login form's hidden field, a form login, and an already
        // logged-in visit to the login page.
        let page = app.get(&format!("/login?next={}", enc(next))).await;
        let login = form_login(&app, &admin_form(next), "").await;
        let visit = admin.get(&format!("/login?next={}", enc(next))).await;

        // Assert
        assert_eq!(page.status, 200, "{next:?}");
        let html = page.text();
        let field = html
            .split("name=\"next\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no next field for {next:?}: {html}"));
        assert!(
            field == "/" || (field.starts_with('/') && !field.starts_with("//")),
            "{next:?} became the field {field:?}"
        );
        for (what, reply) in [("form login", &login), ("logged-in visit", &visit)] {
            assert_eq!(reply.status, 303, "{what} with {next:?}: {}", reply.text());
            let location = reply.header("location").expect("location");
            assert!(
                stays_on_site(&app.address, &location),
                "{what} with next={next:?} redirects to {location:?}"
            );
        }
    }

    // An on-site path is kept, with its query.
    let login = form_login(&app, &admin_form("/jobs?status=failed"), "").await;
    assert_eq!(
        login.header("location").as_deref(),
        Some("/jobs?status=failed")
    );
}

/// Asserts that neither payload appears unescaped in `reply`.
fn assert_not_reflected(what: &str, reply: &Reply) {
    let body = reply.text();
    assert!(!body.contains(SCRIPT), "{what} reflects {SCRIPT:?}");
    assert!(
        !body.contains("<img src=x onerror"),
        "{what} reflects {ATTRIBUTE:?}"
    );
    assert!(!body.contains("<script"), "{what} holds a script element");
}

/// A request whose body is an HTML form, with the session's CSRF token.
async fn post_form(session: &Session, path: &str, body: &str) -> Reply {
    let csrf = session.csrf_token.clone().expect("a cookie session");
    send(
        session
            .request(Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf_token={}&{body}", enc(&csrf))),
    )
    .await
}

#[tokio::test]
async fn script_sent_through_any_input_is_shown_escaped_never_raw() {
    // Arrange: a pattern that lets angle brackets through, so the payload
    // reaches the store as a CID (the default pattern refuses it).
    let app = TestApp::spawn_with(|c| c.cid_pattern = r"^[^\s,]{1,64}$".into()).await;
    let admin = app.admin().await;
    let body = json!({"cluster": "sandbox", "action": "Trans-Begin",
        "cids": [SCRIPT, "C1"], "reason": SCRIPT});
    let job = admin.set_action(&new_key(), &body).await.expect(201)["job"].clone();
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    let (_, _) = admin.create_token(SCRIPT).await;
    admin.create_token(ATTRIBUTE).await;

    // Act + Assert: where the payload is shown, it is escaped.
    let job_page = admin.get(&format!("/jobs/{job_id}")).await;
    assert_eq!(job_page.status, 200);
    let html = job_page.text();
    assert!(
        html.contains(SCRIPT_ESCAPED),
        "the CID and reason, escaped: {html}"
    );
    assert_not_reflected("the job page", &job_page);
    let account = admin.get("/account").await;
    assert!(
        account.text().contains(SCRIPT_ESCAPED),
        "the token name, escaped"
    );
    assert_not_reflected("the account page", &account);
    let jobs = admin.get("/jobs").await;
    assert_not_reflected("the jobs page", &jobs);

    // Filters in the query string, each shown back in its field or a link.
    for filter in [
        "user", "action", "cluster", "status", "cid", "reason", "since", "until", "limit",
        "cursor", "retried",
    ] {
        for payload in [SCRIPT, ATTRIBUTE] {
            let path = format!("/jobs?{filter}={}", enc(payload));
            let reply = admin.get(&path).await;
            assert_not_reflected(&path, &reply);
        }
    }
    let filtered = admin.get(&format!("/jobs?cid={}", enc(SCRIPT))).await;
    assert!(
        filtered.text().contains(SCRIPT_ESCAPED),
        "the CID filter, escaped"
    );
    for path in [
        format!("/audit/duplicates?window_s={}", enc(SCRIPT)),
        format!("/audit/duplicates?since={}", enc(ATTRIBUTE)),
        format!("/jobs/{}", enc(SCRIPT)),
        format!("/{}", enc(SCRIPT)),
        format!("/login?next=/{}", enc(ATTRIBUTE)),
        format!("/login?next=/{}", enc(SCRIPT)),
    ] {
        for session in [&admin, &app.anonymous()] {
            let reply = send(
                session
                    .request(Method::GET, &path)
                    .header("accept", "text/html"),
            )
            .await;
            assert_not_reflected(&path, &reply);
        }
    }

    // Forms that show what was typed after a refusal.
    let wrong_login = form_login(
        &app,
        &format!("username={}&password=wrong-password-0", enc(ATTRIBUTE)),
        "",
    )
    .await;
    assert_not_reflected("a refused login", &wrong_login);
    let wrong_login = form_login(
        &app,
        &format!("username={}&password=wrong-password-0", enc(SCRIPT)),
        "",
    )
    .await;
    assert_not_reflected("a refused login", &wrong_login);
    assert!(
        wrong_login.text().contains(SCRIPT_ESCAPED),
        "the username, escaped"
    );
    for payload in [SCRIPT, ATTRIBUTE] {
        let new_user = post_form(
            &admin,
            "/admin/users",
            &format!(
                "username={}&role=operator&password=long-enough-pw-1",
                enc(payload)
            ),
        )
        .await;
        assert_not_reflected("a refused new user", &new_user);
        let token = post_form(&admin, "/account/tokens", &format!("name={}", enc(payload))).await;
        assert_not_reflected("a new token", &token);
        let role = post_form(
            &admin,
            &format!("/admin/users/{}/role", enc(payload)),
            "role=admin",
        )
        .await;
        assert_not_reflected("a role change for an unknown user", &role);
        let api = admin
            .post_json(
                "/api/v1/users",
                &json!({"username": payload, "password": "long-enough-pw-1", "role": "operator"}),
            )
            .await;
        assert!(api.status == 400 || api.status == 422, "{}", api.text());
    }
    let users = admin.get("/admin/users").await;
    assert_not_reflected("the users page", &users);
}

#[tokio::test]
async fn a_raw_script_in_the_request_line_is_not_reflected() {
    // Arrange: bytes a browser would encode, sent as they are.
    let app = TestApp::spawn().await;
    let address = app.address.trim_start_matches("http://").to_owned();

    for path in [
        format!("/{SCRIPT}"),
        format!("/jobs/{SCRIPT}"),
        format!("/login?next=/{SCRIPT}"),
        format!("/jobs?cid={SCRIPT}"),
    ] {
        // Act
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("an answer")
            .unwrap();

        // Assert
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        assert!(!answer.contains("<script>alert"), "{path}: {answer}");
    }
}

/// A TCP listener that only counts the connections it gets.
struct Bystander {
    address: String,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Bystander {
    async fn start() -> Bystander {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Bystander {
            address,
            connections,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn no_request_field_makes_the_server_call_another_address() {
    // Arrange: a pattern that lets URL-like CIDs through, and a listener
    // nobody configured.
    let app = TestApp::spawn_with(|c| c.cid_pattern = r"^[^\s,]{1,200}$".into()).await;
    let admin = app.admin().await;
    let bystander = Bystander::start().await;
    let other = bystander.address.clone();
    let before = app.sandbox_requests().await;

    // Act + Assert: a cluster given as a URL or host is an unknown cluster.
    for cluster in [
        format!("http://{other}/"),
        format!("http://{other}/sandbox"),
        other.clone(),
        format!("//{other}"),
        format!("sandbox@{other}"),
        format!("{other}/sandbox"),
        "sandbox/../..".to_owned(),
        "sandbox ".to_owned(),
        "SANDBOX".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        let body = json!({"cluster": cluster, "action": "Trans-Begin", "cids": ["C1"],
            "token": "t"});
        admin
            .set_action(&new_key(), &body)
            .await
            .expect_problem(422, "unknown_cluster");
    }

    // CIDs that look like paths or hosts go in the body, to the configured URL.
    let cids = [
        format!("C1@{other}"),
        format!("../../..//{other}/x"),
        format!("http://{other}/"),
        "%2e%2e%2f%2e%2e%2f".to_owned(),
        "C2/../../_stats?".to_owned(),
    ];
    let job = admin
        .set_action(&new_key(), &action_body("Trans-Begin", json!(cids)))
        .await
        .expect(201)["job"]
        .clone();
    assert_eq!(job["cids"], json!(cids));

    // Headers that name hosts change nothing either.
    let forwarded = send(
        admin
            .request(Method::POST, "/api/v1/actions")
            .header("idempotency-key", new_key())
            .header("x-forwarded-host", other.clone())
            .header("forwarded", format!("host={other}"))
            .header("x-original-url", format!("http://{other}/"))
            .header("content-type", "application/json")
            .body(action_body("Trans-End", json!(["C3"])).to_string()),
    )
    .await;
    forwarded.assert_status(201);

    // The sandbox got exactly the two runs; the bystander nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.sandbox_requests().await, before + 2);
    assert_eq!(bystander.connections(), 0, "the server called {other}");
}
