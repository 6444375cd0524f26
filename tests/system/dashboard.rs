//! The dashboard in a real browser: headless Chromium (Debian's `chromium`), driven over the
//! W3C WebDriver protocol by `chromedriver`, against a real `artel up`. Sign in with a key,
//! ask for a service in the chat box, watch the progress and the live URL appear, check the
//! tree panel (this chat's session node, with its mailbox and what it serves), and save a
//! screenshot as a test artifact.

use crate::new::Home;
use crate::support::{Artel, free_port};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const JOB: Duration = Duration::from_secs(120);

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    profile: PathBuf,
}

impl Browser {
    async fn start() -> Self {
        for tool in ["chromium", "chromedriver"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "`{tool}` is not installed: `apt-get install chromium chromium-driver` \
                 (`.ci/services.sh` does it)"
            );
        }
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("artel-chromium-{}", uuid::Uuid::new_v4()));
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--disable-quic", "--window-size=1400,1000",
                        format!("--user-data-dir={}", profile.display()),
                    ]
                }
            }}
        });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("create a browser session")
            .json()
            .await
            .expect("a JSON answer");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Self {
            driver,
            base,
            session,
            http,
            profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
            .json()
            .await
            .expect("JSON");
        if answer["value"]["error"].is_string() {
            panic!("{method} {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// Runs `script` in the page and answers its result.
    async fn eval(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + JOB;
        loop {
            let value = self.eval(script).await;
            if !value.is_null() && value != json!(false) && value != json!("") {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn screenshot(&self, path: &std::path::Path) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 PNG"))
            .expect("a PNG");
        std::fs::write(path, bytes).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_builds_a_service_from_the_chat_box_and_shows_it_live() {
    let home = Home::new("dashboard").await;
    let env = home.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let artel = Artel::up(&env);
    let browser = Browser::start().await;

    browser.open(&format!("{}/", artel.url)).await;
    browser.type_into("#api-key", &artel.key).await;
    browser.click("#sign-in").await;
    browser
        .wait_for(
            "the signed-in view",
            "return !document.getElementById('app').hidden",
        )
        .await;
    browser
        .wait_for(
            "the tree panel with the sessions node",
            "return document.getElementById('tree').textContent.includes('sessions')",
        )
        .await;
    browser
        .wait_for(
            "the event stream",
            "return document.getElementById('stream-state').textContent === 'live'",
        )
        .await;

    browser
        .type_into("#chat-input", "A URL shortener with a REST API")
        .await;
    browser.click("#chat-send").await;
    browser
        .wait_for(
            "the ProductOwner's answer",
            "return document.getElementById('chat-log').textContent.includes('artel:')",
        )
        .await;
    browser
        .wait_for(
            "the tree's node of this chat's session, with what it serves and holds",
            "const label = document.querySelector('#tree .label-session'); \
             return label && label.textContent === 'this chat' && \
               label.parentElement.parentElement.textContent.includes('mailbox ')",
        )
        .await;
    browser
        .wait_for(
            "the task's progress",
            "return document.getElementById('log').textContent.includes('scaffold')",
        )
        .await;
    let url = browser
        .wait_for(
            "the live URL",
            "const a = document.getElementById('live-url'); \
             return a.href.startsWith('http://127.0.0.1:') ? a.href : ''",
        )
        .await;
    let url = url.as_str().unwrap().trim_end_matches('/').to_owned();
    let links = reqwest::get(format!("{url}/api/links"))
        .await
        .expect("the service answers");
    assert_eq!(links.status().as_u16(), 200);
    browser
        .wait_for(
            "the project in the projects panel",
            "return document.getElementById('projects').textContent.includes('url-shortener')",
        )
        .await;
    browser
        .wait_for(
            "the project's model usage (the offline agent calls no model)",
            "const u = document.querySelector('#projects [id^=usage-]'); \
             return u && u.textContent.startsWith('model usage: 0 calls') && \
               u.textContent.endsWith('$0.0000')",
        )
        .await;

    let answers: Value = browser
        .eval("return document.getElementById('chat-log').textContent")
        .await;
    let answers = answers.as_str().unwrap_or_default();
    assert_eq!(
        answers.matches("I'm building").count(),
        1,
        "each answer is shown once: {answers}"
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("dashboard.png");
    browser.screenshot(&shot).await;
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(size > 10_000, "a real screenshot, {size} bytes");
    eprintln!("dashboard screenshot: {}", shot.display());
    drop(browser);
    artel.terminate();
}
