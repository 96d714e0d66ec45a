//! The web dashboard: a page and its scripts and style sheet, embedded in the binary and served
//! by the API router (`docs/dashboard.md`).
//!
//! `GET /` answers the page to a request whose `Accept` prefers `text/html` (a browser) and the
//! deployment JSON to everything else (the CLI, the npm client, curl); [`wants_html`] decides.
//! The assets are under `/dashboard/`. The page runs in the browser only: it signs in with a
//! namespace key kept in `sessionStorage` and calls the REST API of the same origin, so the
//! server has no dashboard state and no endpoint of its own beyond these files. Every answer
//! carries a strict Content-Security-Policy (scripts and styles from this origin only, no
//! inline script) and an `ETag` for revalidation.

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// An embedded file of `crates/controller/dashboard/` and its type.
macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself.
const PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything under `/dashboard/`, by file name.
const ASSETS: &[Asset] = &[
    PAGE,
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("editor.js", JS),
    asset!("charts.js", JS),
    asset!("views.js", JS),
];

/// Scripts, styles and API calls from this origin only; no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's own routes: the assets under `/dashboard/`, and the page at `/dashboard/`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/{file}", get(asset))
}

/// Whether `Accept` prefers `text/html` to JSON: `text/html` is named with a non-zero quality
/// at least that of `application/json`. A bare `*/*` (curl) or no header (most clients) is
/// not a browser asking for a page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut html, mut json) = (None, None);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().ok())?
            })
            .next()
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" => html = Some(quality),
            "application/json" => json = Some(quality),
            _ => {}
        }
    }
    match (html, json) {
        (Some(h), Some(j)) => h > 0.0 && h >= j,
        (Some(h), None) => h > 0.0,
        _ => false,
    }
}

/// The page (`GET /` from a browser, `GET /dashboard/`).
pub async fn page(headers: HeaderMap) -> Response {
    serve(&PAGE, &headers)
}

/// `GET /dashboard/{file}`: an embedded asset, 404 for any other name.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => serve(a, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `asset` with its type, the security headers and an `ETag`; 304 when `If-None-Match` names
/// it. Browsers revalidate on every load (`no-cache`), so a new binary's files are seen at once.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(asset.body.as_bytes()));
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(VARY, HeaderValue::from_static("Accept"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    res
}

/// 64-bit FNV-1a: a stable content hash for the `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_the_page_and_clients_the_json() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&accept(chromium)));
        assert!(wants_html(&accept(firefox)));
        assert!(wants_html(&accept("TEXT/HTML")));
        assert!(!wants_html(&HeaderMap::new()));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("application/json, text/html;q=0.5")));
        assert!(!wants_html(&accept("text/html;q=0")));
        assert!(wants_html(&accept("application/json;q=0.5, text/html")));
    }

    #[test]
    fn every_script_the_page_imports_is_served() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let file = line
                    .rsplit_once("'./")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(f, _)| f)
                    .unwrap_or_else(|| panic!("{}: unexpected import {line}", a.name));
                assert!(
                    ASSETS.iter().any(|b| b.name == file),
                    "{} imports {file}, which is not embedded",
                    a.name
                );
            }
        }
        assert!(PAGE.body.contains("src=\"/dashboard/app.js\""));
        assert!(!PAGE.body.contains("<script>"), "no inline script");
    }

    #[tokio::test]
    async fn assets_carry_type_csp_and_revalidate_by_etag() {
        let res = asset(Path("app.js".to_owned()), HeaderMap::new()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(
            res.headers()[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let etag = res.headers()[ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(IF_NONE_MATCH, etag);
        let res = asset(Path("app.js".to_owned()), again).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        let res = asset(Path("secret.txt".to_owned()), HeaderMap::new()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
