//! The headquarters dashboard: static files from `cloud/web/`, embedded in the binary.
//!
//! Plain ES modules, CSS and SVG drawn by hand-written helpers — no build step, no Node for
//! `cargo build`, nothing fetched from elsewhere at run time (no CDN, no map tiles): the page's
//! Content-Security-Policy allows only this origin, so an accidental external reference fails
//! loudly in development instead of silently in a store without internet. The page reads its data
//! from the API with the token it was opened with (`/?token=…` or `/#token=…`, kept in
//! `sessionStorage`); `cloud/web/README.md` documents every endpoint it calls and the JSON it
//! expects.
//!
//! `GET /` is the page; `GET /assets/{path}` the files it loads. Assets are revalidated on every
//! load (`Cache-Control: no-cache` with an `ETag`), so an upgraded binary never serves a stale mix.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::ApiState;

/// `(path under cloud/web/, bytes)` of every embedded file.
macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)))),*]
    };
}

/// Every file the dashboard serves (`dashboard::tests` checks this against `cloud/web/`).
pub const ASSETS: &[(&str, &[u8])] = assets![
    "index.html",
    "app.css",
    "favicon.svg",
    "js/main.js",
    "js/api.js",
    "js/format.js",
    "js/ui.js",
    "js/charts.js",
    "js/floorplan.js",
    "js/sankey.js",
    "js/map.js",
    "js/pages/overview.js",
    "js/pages/store.js",
    "js/pages/campaigns.js",
    "js/pages/expansion.js",
    "js/pages/gateways.js",
];

/// Files under `cloud/web/` that are documentation, not served.
pub const NOT_SERVED: &[&str] = &["README.md"];

/// The page allows scripts, styles, images and requests from its own origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /` and `GET /assets/{*path}`.
pub fn routes() -> axum::Router<Arc<ApiState>> {
    axum::Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { asset("index.html", &h) }),
        )
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>, h: HeaderMap| async move { asset(&path, &h) }),
        )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// FNV-1a of the bytes and the crate version: changes when the file (or the build) does.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes.iter().chain(env!("CARGO_PKG_VERSION").as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn asset(path: &str, request: &HeaderMap) -> Response {
    let Some((_, bytes)) = ASSETS.iter().find(|(p, _)| *p == path) else {
        return crate::api::ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            format!("the dashboard has no file {path:?}"),
        )
        .into_response();
    };
    let tag = etag(bytes);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type(path))], *bytes).into_response()
    };
    let h = response.headers_mut();
    // A valid tag is hex in quotes, always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        // The token may be in the page's URL: never send it on as a Referer.
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_files(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                web_files(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }

    #[test]
    fn every_web_file_is_embedded() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = Vec::new();
        web_files(&base, &base, &mut on_disk);
        on_disk.retain(|p| !NOT_SERVED.contains(&p.as_str()));
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "add new files under cloud/web/ to dashboard::ASSETS"
        );
    }

    #[test]
    fn no_asset_reaches_outside_this_origin() {
        for (path, bytes) in ASSETS {
            let text = String::from_utf8_lossy(bytes);
            for needle in ["http://", "https://", "//cdn", "@import url("] {
                // SVG namespaces are identifiers, not fetches.
                let hits = text
                    .match_indices(needle)
                    .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/"))
                    .count();
                assert_eq!(hits, 0, "{path} references {needle}");
            }
        }
    }

    #[test]
    fn etags_differ_by_content() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(content_type("js/main.js"), "text/javascript; charset=utf-8");
    }
}
