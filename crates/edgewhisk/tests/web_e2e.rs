//! End-to-end tests of web actions against the real `edgewhisk serve` binary: actions created
//! with the CLI's `--web` and `--web-secure`, called anonymously over raw HTTP (OpenWhisk
//! `docs/webactions.md`; `docs/compat.md`).

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use support::api::{annotation, http, send, send_raw};
use support::cli::{guest_props, wsk_with};
use support::{ServerGuard, spawn_server};

/// Answers by `__ow_path`: `/img` a PNG-typed binary body, `/fail` an application error that
/// carries an HTTP response, anything else a description of the request.
const PAGE: &str = r#"function main(p) {
  if (p.__ow_path === '/img') {
    return {statusCode: 201, headers: {'content-type': 'image/png', 'x-many': ['a', 'b']},
            body: Buffer.from([1, 2, 3]).toString('base64')};
  }
  if (p.__ow_path === '/fail') {
    return {error: {statusCode: 409, body: 'conflict for ' + p.name}};
  }
  return {body: 'hello ' + (p.name || 'world'), method: p.__ow_method, path: p.__ow_path,
          user: p.__ow_user || null, q: p.q || null, trace: p.__ow_headers['x-trace'] || null};
}
"#;

/// Returns what a raw HTTP action receives.
const RAW: &str = "function main(p) { return {query: p.__ow_query, body: p.__ow_body}; }\n";

/// The CLI, configured for the guest against `s`.
struct Cli {
    props: PathBuf,
    dir: PathBuf,
}

impl Cli {
    fn new(s: &ServerGuard) -> Self {
        Self {
            props: guest_props(s),
            dir: s.dir().to_path_buf(),
        }
    }

    /// Writes `code` to `file` in the server's directory and returns its path.
    fn file(&self, file: &str, code: &str) -> String {
        let path = self.dir.join(file);
        std::fs::write(&path, code).expect("write the action file");
        path.to_string_lossy().into_owned()
    }

    /// Runs the CLI; (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        wsk_with(&self.props, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    }
}

/// A raw HTTP answer: status, headers, bytes.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn raw(req: reqwest::RequestBuilder) -> Raw {
    let resp = req.send().await.expect("send the request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("read the body").to_vec();
    Raw {
        status,
        headers,
        body,
    }
}

fn web(s: &ServerGuard, rest: &str) -> String {
    s.url(&format!("/api/v1/web/guest/default/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn web_actions_answer_every_extension_with_the_right_content_type() {
        let s = spawn_server(None);
        let cli = Cli::new(&s);
        let file = cli.file("page.js", PAGE);
        cli.ok(&["action", "create", "page", &file, "--web", "true"]);

        let cases = [
            ("page.html", "text/html; charset=UTF-8", "hello world"),
            ("page.svg", "image/svg+xml", "hello world"),
            ("page.text", "text/plain; charset=UTF-8", "hello world"),
            ("page.http", "text/html; charset=UTF-8", "hello world"),
            ("page", "text/html; charset=UTF-8", "hello world"),
        ];
        for (rest, ct, body) in cases {
            let r = raw(http().get(web(&s, rest))).await;
            assert_eq!(r.status, 200, "{rest}: {}", r.text());
            assert_eq!(r.header("content-type"), ct, "{rest}");
            assert_eq!(r.text(), body, "{rest}");
            assert_eq!(r.header("access-control-allow-origin"), "*", "{rest}");
            assert_eq!(r.header("x-openwhisk-activation-id").len(), 32, "{rest}");
        }

        let r = raw(http()
            .post(web(&s, "page.json/deep/path?q=query"))
            .header("x-trace", "t-1")
            .json(&json!({"name": "edge"})))
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.json(),
            json!({"body": "hello edge", "method": "post", "path": "/deep/path",
                   "user": null, "q": "query", "trace": "t-1"})
        );
        // An authenticated caller is named in __ow_user.
        let r = send(http().get(web(&s, "page.json"))).await;
        assert_eq!(r.body["user"], json!("guest"));

        let r = raw(http().get(web(&s, "page.http/img"))).await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("content-type"), "image/png");
        assert_eq!(r.body, [1, 2, 3]);
        let many: Vec<_> = r.headers.get_all("x-many").iter().collect();
        assert_eq!(many, ["a", "b"]);

        let r = raw(http().get(web(&s, "page.http/fail?name=x"))).await;
        assert_eq!((r.status, r.text().as_str()), (409, "conflict for x"));

        // `final` (set by --web true) protects the action's parameters.
        cli.ok(&["action", "update", "page", "-p", "name", "fixed"]);
        let r = send_raw(http().get(web(&s, "page.json?name=other"))).await;
        r.expect_status(400, "override a final parameter");
        assert_eq!(
            r.expect_error_body("override a final parameter"),
            "Request defines parameters that are not allowed (e.g., reserved properties)."
        );
        let r = raw(http().get(web(&s, "page.text"))).await;
        assert_eq!(r.text(), "hello fixed");

        let r = raw(http().request(reqwest::Method::OPTIONS, web(&s, "page.json"))).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("access-control-allow-methods"),
            "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
        );

        let url = cli.ok(&["action", "get", "page", "--url"]);
        assert!(
            url.trim_end()
                .ends_with(&format!("{}/api/v1/web/guest/default/page", s.base())),
            "{url}"
        );
    }

    #[tokio::test]
    async fn require_whisk_auth_refuses_a_missing_secret_and_raw_http_sees_the_raw_request() {
        let s = spawn_server(None);
        let cli = Cli::new(&s);
        let page = cli.file("page.js", PAGE);
        let raw_file = cli.file("raw.js", RAW);
        let (code, _, stderr) = cli.run(&["action", "create", "nope", &page, "--web-secure", "x"]);
        assert_ne!(code, 0);
        assert!(
            stderr.contains(
                "The --web-secure option is only valid when the --web option is enabled."
            ),
            "{stderr}"
        );
        cli.ok(&[
            "action",
            "create",
            "secure",
            &page,
            "--web",
            "true",
            "--web-secure",
            "s3cret",
        ]);
        let r = send_raw(http().get(web(&s, "secure.json"))).await;
        r.expect_status(401, "no secret");
        r.expect_error_body("no secret");
        let r = send_raw(
            http()
                .get(web(&s, "secure.json"))
                .header("X-Require-Whisk-Auth", "wrong"),
        )
        .await;
        r.expect_status(401, "wrong secret");
        let r = send_raw(
            http()
                .get(web(&s, "secure.json"))
                .header("X-Require-Whisk-Auth", "s3cret"),
        )
        .await;
        r.expect_status(200, "right secret");
        assert_eq!(r.body["body"], json!("hello world"));

        // A generated secret is a number the caller must send.
        cli.ok(&["action", "update", "secure", "--web-secure", "true"]);
        let got = send(http().get(s.ns_url("actions/secure"))).await;
        let secret = annotation(&got.body, "require-whisk-auth")
            .and_then(Value::as_u64)
            .expect("a generated numeric secret");
        send_raw(http().get(web(&s, "secure.json")))
            .await
            .expect_status(401, "no generated secret");
        send_raw(
            http()
                .get(web(&s, "secure.json"))
                .header("X-Require-Whisk-Auth", secret.to_string()),
        )
        .await
        .expect_status(200, "generated secret");
        cli.ok(&["action", "update", "secure", "--web-secure", "false"]);
        send_raw(http().get(web(&s, "secure.json")))
            .await
            .expect_status(200, "secret removed");

        cli.ok(&["action", "create", "raw", &raw_file, "--web", "raw"]);
        let r = raw(http()
            .post(web(&s, "raw.json?a=1&b=two"))
            .header("content-type", "text/plain")
            .body("some text"))
        .await;
        assert_eq!(r.json(), json!({"query": "a=1&b=two", "body": "some text"}));

        cli.ok(&["action", "create", "private", &page]);
        for rest in ["private.json", "missing.json"] {
            let r = send_raw(http().get(web(&s, rest))).await;
            r.expect_status(404, rest);
        }
        let r = send_raw(http().get(s.url("/api/v1/web/nobody/default/page.json"))).await;
        r.expect_status(404, "unknown namespace");

        let big = "x".repeat(1024 * 1024 + 1);
        let r = send_raw(
            http()
                .post(web(&s, "raw.json"))
                .header("content-type", "text/plain")
                .body(big),
        )
        .await;
        r.expect_status(413, "body over 1 MB");
    }
}
