//! Headless Chromium driven over WebDriver (chromedriver), for the console's
//! end-to-end tests. A missing browser fails the test at once, with the one
//! message of `helpers::require`: these tests are never skipped.
//! `scripts/test.sh` installs Debian's `chromium` and `chromium-driver` when
//! they are missing.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{free_port, require, Needs, CHROMIUM, INSTALL_HINT};

/// Where every browser test leaves its screenshots (docs/guarantees.md names it).
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// One browser at a time in this process (`cargo test` runs tests as
/// threads; nextest runs each in its own process and serialises the
/// `pages::` group through `.config/nextest.toml`).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a wait for the page may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A desktop or phone-sized Chromium on the app at `base`.
pub struct Browser {
    pub client: Client,
    pub base: String,
    test: String,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the browser it started share its process group.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// A 1280×900 window.
    pub async fn desktop(base: &str, test: &str) -> Browser {
        Browser::launch(base, test, 1280, 900).await
    }

    /// A 390×844 window, the size of a phone.
    pub async fn phone(base: &str, test: &str) -> Browser {
        Browser::launch(base, test, 390, 844).await
    }

    async fn launch(base: &str, test: &str, width: u32, height: u32) -> Browser {
        require(Needs::Browser);
        let turn = TURN.lock().await;
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver could not start ({e}). {INSTALL_HINT}"));
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--no-first-run".into(),
            "--disable-sync".into(),
            "--disable-component-update".into(),
            "--disable-quic".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "Chromium did not start through chromedriver: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            test: test.to_owned(),
            driver,
            _profile: profile,
            _turn: turn,
        }
    }

    /// Ends the WebDriver session (the browser closes).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("could not open {path}: {e}"));
    }

    /// The path and query of the current page.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits (bounded) for the element and returns it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
    }

    /// Every element matching `css` now (no wait).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
    }

    /// True when an element matches `css` now.
    pub async fn exists(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("could not click {css}: {e}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("send_keys");
    }

    /// Runs a script and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until the text of `css` contains `needle`, and returns it.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if text.contains(needle) {
                        return text;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{css} never said {needle:?}; it says {text:?}"
                    );
                }
            }
            assert!(Instant::now() < deadline, "{css} never appeared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the current path starts with `prefix`.
    pub async fn wait_for_path(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {prefix}; still on {path}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) until the page's path and query are exactly `expected`
    /// (a prefix would match any page for `/`).
    pub async fn wait_for_exact_path(&self, expected: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let path = self.path().await;
            if path == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {expected}; still on {path}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the script returns `true`.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        while self.js(script).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "never true: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real double click (two presses of the mouse button) on the element.
    pub async fn double_click(&self, css: &str) {
        let element = self.find(css).await;
        let mouse = MouseActions::new("mouse".to_owned())
            .then(PointerAction::MoveToElement {
                element,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client
            .perform_actions(mouse)
            .await
            .expect("double click");
        self.client.release_actions().await.expect("release");
    }

    /// Saves a PNG of the window as `target/screenshots/<test>-<page>.png`.
    pub async fn screenshot(&self, page: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{}-{page}.png", self.test)), png).expect("write png");
    }

    /// Scrolls `css` into view, then takes the screenshot.
    pub async fn screenshot_at(&self, css: &str, page: &str) {
        let script = format!(
            "document.querySelector({}).scrollIntoView({{block: 'start'}}); return true;",
            serde_json::to_string(css).expect("json")
        );
        self.js(&script).await;
        self.screenshot(page).await;
    }

    /// Logs in through the form and waits to leave the login page.
    pub async fn login(&self, username: &str, password: &str) {
        self.goto("/login").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("#login").await;
        let deadline = Instant::now() + WAIT;
        while self.path().await.starts_with("/login") {
            assert!(Instant::now() < deadline, "login as {username} failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fills the Customer Set form (sandbox cluster) without submitting it.
    pub async fn fill_customer_set(&self, action: &str, cids: &str) {
        self.goto("/").await;
        self.find("#set-form[data-ready='true']").await;
        self.find("#cluster")
            .await
            .select_by_value("sandbox")
            .await
            .expect("cluster");
        self.find("#action")
            .await
            .select_by_value(action)
            .await
            .expect("action");
        self.type_into("#cids", cids).await;
    }

    /// Waits for the result panel to show, and returns its kind
    /// (`success`, `failure`, `timeout`, `notice`) and text.
    pub async fn result(&self) -> (String, String) {
        self.wait_until(
            "the result panel shows an answer",
            "const r = document.getElementById('result'); return !r.hidden && !document.getElementById('set-action').disabled;",
        )
        .await;
        let kind = self
            .find("#result")
            .await
            .attr("data-kind")
            .await
            .expect("attr")
            .unwrap_or_default();
        (kind, self.text("#result").await)
    }
}
