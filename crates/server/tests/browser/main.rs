//! The web admin center in a real headless Chromium, driven through WebDriver (Debian's
//! chromedriver). Without a chromedriver on PATH each test prints one `skipped:` line, except
//! under `COUNTERSIGN_REQUIRE_ALL_TESTS=1`, where that is a failure. Screenshots go to
//! `docs/screenshots/` only under `COUNTERSIGN_UPDATE_SCREENSHOTS=1` (see `Browser::screenshot`).

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;

mod flows;
#[allow(dead_code)] // the e2e tests use all of it
#[path = "../oidc/idp.rs"]
mod idp;
mod passkeys;
mod sso;

use countersign_store::testing::skip;
use fantoccini::{Client, ClientBuilder, Locator};
use harness::{Setup, TestApp, PASSWORD};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver child process, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver_path() -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| format!("{dir}/chromedriver"))
        .find(|p| std::path::Path::new(p).exists())
}

/// Starts chromedriver, or returns `None` (after saying so) when it is not installed.
pub async fn driver() -> Option<Driver> {
    let Some(path) = chromedriver_path() else {
        skip("browser tests", "no chromedriver on PATH: apt-get install chromium chromium-driver");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await {
            if r.status().is_success() {
                return Some(driver);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// One person's browser: a fresh headless Chromium profile.
pub struct Browser {
    pub client: Client,
    pub base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn open(driver: &Driver, app: &TestApp) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a Chromium session");
        Browser { client, base: app.base.clone(), _profile: profile }
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn sign_in(&self, username: &str) {
        self.goto("/login").await;
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        self.click("#sign-in").await;
        // The sign-in page has a heading too: wait for what only a signed-in page shows.
        self.wait_for("header.topbar .who").await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    }

    pub async fn wait_for(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// Waits until the page's text contains `needle` (live updates, redirects). The page may
    /// be replaced while it is read, so a vanished element is simply read again.
    pub async fn wait_for_text(&self, needle: &str) {
        for _ in 0..150 {
            if let Ok(body) = self.client.find(Locator::Css("body")).await {
                if body.text().await.is_ok_and(|text| text.contains(needle)) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed {needle:?}: {}", self.body().await);
    }

    /// Saves a screenshot: under `docs/screenshots/` for the README when
    /// `COUNTERSIGN_UPDATE_SCREENSHOTS=1`, otherwise under the target directory (where the last
    /// run's can be looked at), so that a test run leaves the tree clean.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = if std::env::var("COUNTERSIGN_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
        } else {
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A fresh tenant on SQLite (the browser tests are about the pages; the database paths are
/// covered by the HTTP suite on every backend).
pub async fn tenant(setup: Setup) -> TestApp {
    TestApp::start(countersign_store::testing::TestBackend::Sqlite, &setup).await
}
