//! The web UI in a real headless Chromium (Debian's chromium + chromium-driver), driven over
//! WebDriver with fantoccini.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::helpers::*;

/// A chromedriver process for one test, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver not found: install chromium and chromium-driver (scripts/setup.sh)");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,800",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a session: {last:?}");
}

/// Waits until the element's text is non-empty and returns it.
async fn text_of(client: &Client, css: &str) -> String {
    for _ in 0..150 {
        if let Ok(el) = client.find(Locator::Css(css)).await {
            if let Ok(text) = el.text().await {
                if !text.trim().is_empty() && text != "Loading…" {
                    return text;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let html = client.source().await.unwrap_or_default();
    panic!("no text at {css} after 15 s; page:\n{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_shows_version_and_health_fetched_from_the_api() {
    assert!(
        updraft::ui::is_embedded(),
        "the UI is not embedded in this build: run scripts/build-ui.sh before the tests (scripts/test.sh does)"
    );
    let app = spawn_app(Backend::Sqlite).await;
    let (_driver, client) = browser().await;

    client.goto(&app.base_url).await.unwrap();
    assert_eq!(
        text_of(&client, "[data-testid=version]").await,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        text_of(&client, "[data-testid=header-version]").await,
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    // innerText follows CSS, which upper-cases the card titles.
    let health = text_of(&client, "[data-testid=health]")
        .await
        .to_lowercase();
    assert!(health.contains("metadata database\nhealthy"), "{health}");
    // `serve` runs the scheduler, whose heartbeat makes it healthy.
    assert!(health.contains("scheduler\nhealthy"), "{health}");
    // The layout later views fill: header, navigation, content.
    for css in ["header.topbar", "nav.sidebar", "main.content"] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} missing"));
    }
    if let Ok(dir) = std::env::var("UPDRAFT_TEST_SCREENSHOTS") {
        let png = client.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/shell.png"), png).unwrap();
    }

    // Client-side navigation, and a deep link served by the index.html fallback.
    client
        .find(Locator::LinkText("Health"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_of(&client, "main.content h1").await, "Health");
    assert_eq!(client.current_url().await.unwrap().path(), "/health");
    client.goto(&app.url("/no/such/view")).await.unwrap();
    assert_eq!(text_of(&client, "main.content h1").await, "Page not found");

    client.close().await.unwrap();
}
