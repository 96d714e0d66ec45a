//! End-to-end test of the web dashboard (`docs/dashboard.md`) in a real browser: Debian's
//! headless `chromium`, driven over WebDriver by `chromedriver` (Debian `chromium-driver`),
//! against the real `edgewhisk serve` binary. The WebDriver protocol is plain HTTP and JSON, so
//! the test speaks it with reqwest and needs no browser-automation crate.
//!
//! Steps: sign in (a wrong key first), create an action in the editor (Tab indents), invoke it
//! with parameters and see the result, create and invoke a failing action, see both appear in
//! the live activation list (a third activation made meanwhile over REST shows up without a
//! reload) with logs and the failed one marked failed, filter by status, a package, trigger
//! and rule listed and the rule's facts shown, then the charts and pool screens, a bench result file picked and shown, every input labelled, and no horizontal
//! overflow at a phone's width.
//!
//! With `DASHBOARD_SCREENSHOTS=DIR` set, the screens are saved there as PNG (the pictures of
//! `docs/dashboard.md` come from `DASHBOARD_SCREENSHOTS=docs/dashboard`).
//!
//! Without chromium or chromedriver the test is skipped with a printed reason, except in CI
//! (`CI=true`), where it fails.

mod support;

use base64::Engine as _;
use edgewhisk_testkit::services::{free_port, in_ci};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{GUEST_KEY, ServerGuard, spawn_server};

/// The whole test's bound.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// How long one awaited condition in the page may take.
const WAIT: Duration = Duration::from_secs(30);

/// The WebDriver key code of Tab.
const TAB: &str = "\u{E004}";

/// The key the WebDriver protocol names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const GREET: &str = "function main(p) {\nconsole.log('greeting ' + (p.name || 'nobody'));\n\
                     return {payload: 'Hello, ' + p.name + '!'};\n}\n";

const BROKEN: &str = "function main() {\nthrow new Error('boom');\n}\n";

/// `chromium` and `chromedriver` on PATH, or why not.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let find = |name: &str| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{name} is not on PATH (Debian: chromium chromium-driver)"))
    };
    Ok((find("chromium")?, find("chromedriver")?))
}

/// Process ids of every descendant of `pid`, from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // The parent id is the second field after the parenthesised command name.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, pp)| *pp == parent) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

/// A chromedriver (and, once a session is open, the chromium it started) with a temporary
/// profile; dropping it kills both by process id.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    url: String,
    session: String,
    profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pids = descendants(self.driver.id());
        for pid in pids {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless chromium session with a 1280x800 window.
    async fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let port = free_port().expect("a free port for chromedriver");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("edgewhisk-chromium-")
            .tempdir()
            .expect("a temporary chromium profile");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let mut browser = Self {
            driver,
            http,
            url: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = browser
                .http
                .get(format!("{}/status", browser.url))
                .send()
                .await;
            if let Ok(r) = ready {
                let body: Value = r.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = browser.profile.path().display().to_string();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--hide-scrollbars", "--force-device-scale-factor=1",
                         format!("--user-data-dir={profile}"), "--window-size=1280,800"],
            },
        }}});
        let r = browser.raw("POST", "/session", Some(caps)).await;
        browser.session = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        browser.viewport(1280, 800).await;
        browser
    }

    /// One WebDriver command; its `value`, panicking on a WebDriver error.
    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let res = req.send().await.expect("chromedriver answers");
        let status = res.status();
        let v: Value = res.json().await.expect("a JSON WebDriver answer");
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    /// A command of this session.
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// Sizes the window so that the page itself gets `width` x `height` pixels.
    async fn viewport(&self, width: i64, height: i64) {
        let chrome = self
            .js(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
                json!([]),
            )
            .await;
        let (dw, dh) = (
            chrome[0].as_i64().unwrap_or(0),
            chrome[1].as_i64().unwrap_or(0),
        );
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width + dw, "height": height + dh})),
        )
        .await;
    }

    async fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body) in the page with `args`; its return value.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The element `css` selects.
    async fn find(&self, css: &str) -> String {
        self.wait_for(
            &format!("`{css}` to exist"),
            "return !!document.querySelector(arguments[0]);",
            json!([css]),
        )
        .await;
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element reference for {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    /// Clears the field `css` selects and types `text` into it as keystrokes.
    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd("POST", &format!("/element/{id}/clear"), None)
            .await;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Waits until `script` returns true; panics after [`WAIT`] naming `what`.
    async fn wait_for(&self, what: &str, script: &str, args: Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.js(script, args.clone()).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText;", json!([])).await;
                panic!("waited in vain for {what}; the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The text of the first element `css` selects.
    async fn text(&self, css: &str) -> String {
        self.find(css).await;
        self.js(
            "return document.querySelector(arguments[0]).innerText;",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Saves the viewport as `DIR/name.png` when `DASHBOARD_SCREENSHOTS=DIR` is set.
    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("DASHBOARD_SCREENSHOTS") else {
            return;
        };
        // Let the last poll settle, and show the top of the screen.
        self.js("window.scrollTo(0, 0);", json!([])).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let data = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64 PNG"))
            .expect("a PNG");
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write a screenshot");
    }

    /// Every input, select and textarea on the page has a label.
    async fn assert_labelled(&self, screen: &str) {
        let unlabelled = self
            .js(
                "return [...document.querySelectorAll('input,select,textarea')]
                   .filter(e => e.type !== 'hidden' && e.labels.length === 0)
                   .map(e => e.id || e.name || e.outerHTML);",
                json!([]),
            )
            .await;
        assert_eq!(unlabelled, json!([]), "{screen}: inputs without a label");
    }

    async fn quit(&self) {
        self.cmd("DELETE", "", None).await;
    }
}

/// Creates an action in the editor (the name typed, the code typed with Tab for indents).
async fn create_action(b: &Browser, name: &str, code: &str) {
    b.go_hash("#/new").await;
    b.type_into("#action-name", name).await;
    let kind = b
        .js(
            "return document.getElementById('action-kind').value;",
            json!([]),
        )
        .await;
    assert!(
        kind.as_str().is_some_and(|k| k.starts_with("nodejs")),
        "a Node.js kind is preselected, got {kind}"
    );
    // The body's lines are typed after a Tab, which the editor turns into an indent instead
    // of moving the focus.
    let lines: Vec<&str> = code.lines().collect();
    let typed: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let body = i > 0 && i + 1 < lines.len();
            format!("{}{l}\n", if body { TAB } else { "" })
        })
        .collect();
    b.type_into("#action-code", &typed).await;
    let value = b
        .js(
            "return document.getElementById('action-code').value;",
            json!([]),
        )
        .await;
    let value = value.as_str().unwrap_or_default();
    assert!(value.contains("{\n  "), "Tab indented the code: {value:?}");
    b.click("#save-action").await;
    b.wait_for(
        &format!("the page of {name} after saving"),
        "return location.hash === '#/actions/' + arguments[0] && !!document.getElementById('invoke');",
        json!([name]),
    )
    .await;
}

/// Invokes the action whose page is open with `params`; the result panel's status.
async fn invoke(b: &Browser, params: &str) -> String {
    b.type_into("#invoke-params", params).await;
    b.click("#invoke").await;
    b.wait_for(
        "the invoke result",
        "return !!document.querySelector('#invoke-result .activation-detail');",
        json!([]),
    )
    .await;
    b.js(
        "return document.querySelector('#invoke-result .activation-detail').dataset.status;",
        json!([]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

impl Browser {
    /// Moves to a screen of the page already loaded.
    async fn go_hash(&self, hash: &str) {
        self.js("location.hash = arguments[0];", json!([hash]))
            .await;
    }
}

/// `GET /` answers browsers the page, with a strict policy, and every other client the JSON.
async fn content_negotiation(s: &ServerGuard) {
    let http = reqwest::Client::new();
    let page = http
        .get(s.url("/"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("GET / as a browser");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().await.expect("a page").contains("<main"));
    for accept in [None, Some("*/*"), Some("application/json")] {
        let mut req = http.get(s.url("/"));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let res = req.send().await.expect("GET / as a client");
        let body: Value = res.json().await.expect("the deployment JSON");
        assert_eq!(body["description"], "OpenWhisk", "Accept {accept:?}");
    }
    let css = http
        .get(s.url("/dashboard/app.css"))
        .send()
        .await
        .expect("GET the style sheet");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

async fn drive(s: &ServerGuard, b: &Browser) {
    content_negotiation(s).await;

    // Sign in: a wrong key is refused in the page (no browser prompt), the right one opens
    // the actions.
    b.go(&s.url("/")).await;
    b.find("#key").await;
    b.assert_labelled("sign-in").await;
    let chrome = b
        .js(
            "return [document.getElementById('nav'), document.getElementById('signout')]
               .map(e => e.getClientRects().length);",
            json!([]),
        )
        .await;
    assert_eq!(chrome, json!([0, 0]), "no navigation before signing in");
    b.screenshot("signin").await;
    let (uuid, _) = GUEST_KEY.split_once(':').expect("uuid:key");
    b.type_into("#key", &format!("{uuid}:wrong-secret-wrong-secret"))
        .await;
    b.click("#signin button[type=submit]").await;
    b.wait_for(
        "the refusal of a wrong key",
        "return document.getElementById('signin-error').innerText.includes('not accepted');",
        json!([]),
    )
    .await;
    b.type_into("#key", GUEST_KEY).await;
    b.click("#signin button[type=submit]").await;
    b.find("#new-action").await;
    let storage = b
        .js(
            "return {session: sessionStorage.getItem('edgewhisk.key'), local: localStorage.length, cookie: document.cookie};",
            json!([]),
        )
        .await;
    assert_eq!(
        storage,
        json!({"session": GUEST_KEY, "local": 0, "cookie": ""}),
        "the key is kept in sessionStorage only"
    );

    // Create and invoke a greeting action, then a failing one.
    create_action(b, "greet", GREET).await;
    b.assert_labelled("action editor").await;
    let status = invoke(b, r#"{"name": "Edge"}"#).await;
    assert_eq!(status, "success");
    let shown = b.text("#invoke-result").await;
    assert!(shown.contains("Hello, Edge!"), "{shown}");
    assert!(shown.contains("greeting Edge"), "logs shown: {shown}");
    b.screenshot("action-editor").await;
    create_action(b, "broken", BROKEN).await;
    assert_eq!(invoke(b, "{}").await, "failed");
    let shown = b.text("#invoke-result").await;
    assert!(shown.contains("boom"), "{shown}");

    b.go_hash("#/actions").await;
    b.wait_for(
        "both actions listed",
        "return document.querySelectorAll('main table a').length === 2;",
        json!([]),
    )
    .await;
    b.screenshot("actions").await;

    // The live list: both activations, then one made over REST meanwhile, without a reload.
    b.go_hash("#/activations").await;
    b.assert_labelled("activations").await;
    let count = |action: &str, status: &str| {
        format!(
            "return document.querySelectorAll('#activation-list li[data-action=\"{action}\"][data-status=\"{status}\"]').length"
        )
    };
    b.wait_for(
        "the greet activation, succeeded",
        &format!("{} === 1;", count("greet", "success")),
        json!([]),
    )
    .await;
    b.wait_for(
        "the broken activation, failed",
        &format!("{} === 1;", count("broken", "failed")),
        json!([]),
    )
    .await;
    let invoked = reqwest::Client::new()
        .post(s.ns_url("actions/greet?blocking=true"))
        .basic_auth(uuid, GUEST_KEY.split_once(':').map(|(_, k)| k))
        .json(&json!({"name": "REST"}))
        .send()
        .await
        .expect("invoke over REST");
    assert_eq!(invoked.status(), 200);
    b.wait_for(
        "the REST activation in the live list",
        &format!("{} === 2;", count("greet", "success")),
        json!([]),
    )
    .await;
    // The newest is on top; opening it shows its result and logs.
    b.click("#activation-list li:first-child summary").await;
    let top = b.text("#activation-list li:first-child").await;
    assert!(
        top.contains("Hello, REST!") && top.contains("greeting REST"),
        "{top}"
    );
    assert!(
        top.contains("warm") || top.contains("cold"),
        "cold or warm shown: {top}"
    );
    b.screenshot("activations").await;

    // Filtering by status keeps the failed one only.
    b.js(
        "const s = document.getElementById('filter-status'); s.value = 'failed';
         s.dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    b.wait_for(
        "only failed activations",
        "const items = document.querySelectorAll('#activation-list li');
         return items.length === 1 && items[0].dataset.status === 'failed';",
        json!([]),
    )
    .await;

    // Packages, triggers and rules made over REST are listed, with a rule's facts.
    let http = reqwest::Client::new();
    let secret = GUEST_KEY.split_once(':').map(|(_, k)| k);
    for (path, body) in [
        ("packages/tools", json!({})),
        ("triggers/tick", json!({})),
        (
            "rules/on-tick",
            json!({"trigger": "/_/tick", "action": "/_/greet"}),
        ),
    ] {
        let r = http
            .put(s.ns_url(path))
            .basic_auth(uuid, secret)
            .json(&body)
            .send()
            .await
            .expect("create over REST");
        assert_eq!(r.status(), 200, "PUT {path}");
    }
    for (hash, name) in [
        ("#/packages", "tools"),
        ("#/triggers", "tick"),
        ("#/rules", "on-tick"),
    ] {
        b.go_hash(hash).await;
        b.wait_for(
            &format!("{name} listed"),
            "return [...document.querySelectorAll('main table a')].some(a => a.innerText === arguments[0]);",
            json!([name]),
        )
        .await;
    }
    b.click("main table a").await;
    b.wait_for(
        "the rule's facts",
        "const t = document.querySelector('main dl.facts')?.innerText || '';
         return t.includes('active') && t.includes('tick') && t.includes('greet');",
        json!([]),
    )
    .await;

    // Charts from the stored records, and the pool.
    b.go_hash("#/charts").await;
    b.wait_for(
        "a latency chart per action and the error chart",
        "return document.querySelectorAll('svg.chart').length === 3;",
        json!([]),
    )
    .await;
    let table = b.text("main table").await;
    assert!(
        table.contains("greet") && table.contains("100.0%"),
        "{table}"
    );
    b.screenshot("charts").await;
    b.go_hash("#/pool").await;
    b.wait_for(
        "the pool counts",
        "return !!document.querySelector('#pool-cards [data-state=\"idle\"]');",
        json!([]),
    )
    .await;
    b.screenshot("pool").await;

    // Bench results: none until a file `edgewhisk bench --out` wrote is picked.
    b.go_hash("#/bench").await;
    b.wait_for(
        "no bench results",
        "return document.getElementById('bench-results').innerText.includes('No bench results');",
        json!([]),
    )
    .await;
    b.assert_labelled("bench").await;
    let result = s.dir().join("coldstart.json");
    let doc = json!({"experiment": "coldstart", "settings": {},
                     "machine": {"cores": 2, "cpu_model": "Test CPU", "arch": "x86_64"},
                     "rows": [{"kind": "nodejs:20", "cold_ms": 41.5}]});
    std::fs::write(&result, doc.to_string()).expect("write a bench result");
    let input = b.find("#bench-files").await;
    b.cmd(
        "POST",
        &format!("/element/{input}/value"),
        Some(json!({"text": result.display().to_string()})),
    )
    .await;
    b.wait_for(
        "the bench table",
        "const t = document.getElementById('bench-results').innerText;
         return t.includes('coldstart') && t.includes('41.5') && t.includes('Test CPU');",
        json!([]),
    )
    .await;

    // A phone's width: nothing wider than the screen.
    b.viewport(360, 760).await;
    for hash in ["#/activations", "#/actions/greet", "#/charts"] {
        b.go_hash(hash).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let wide = b
            .js(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                json!([]),
            )
            .await;
        assert_eq!(wide, json!(0), "{hash} overflows a 360 px screen");
        if hash == "#/actions/greet" {
            b.screenshot("phone").await;
        }
    }
    b.quit().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dashboard_in_a_real_browser() {
        let (chromium, chromedriver) = match browser_tools() {
            Ok(tools) => tools,
            Err(why) if !in_ci() => {
                eprintln!("skipped: {why}");
                return;
            }
            Err(why) => panic!("CI must have the browser: {why}"),
        };
        let server = spawn_server(None);
        let browser = Browser::start(&chromium, &chromedriver).await;
        tokio::time::timeout(TEST_TIMEOUT, drive(&server, &browser))
            .await
            .unwrap_or_else(|_| panic!("the browser test took longer than {TEST_TIMEOUT:?}"));
    }
}
