//! The web UI: Trunk's build output (`frontend/dist`) embedded in the binary, so one file is
//! the whole product. Paths that are not files serve `index.html` (client-side routes).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../frontend/dist"]
#[allow_missing = true]
struct Assets;

/// True when this binary carries a built UI (false for a build made before `scripts/build-ui.sh`).
pub fn is_embedded() -> bool {
    Assets::get("index.html").is_some()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(serve));
}

async fn serve(req: HttpRequest) -> HttpResponse {
    if !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish();
    }
    let path = req.path().trim_start_matches('/');
    if !path.is_empty() {
        if let Some(file) = Assets::get(path) {
            // Trunk puts a content hash in asset names, so they never change under one name.
            let cache = if path == "index.html" {
                "no-cache"
            } else {
                "public, max-age=31536000, immutable"
            };
            return file_response(&req, file, cache);
        }
        let last = path.rsplit('/').next().unwrap_or(path);
        if last.contains('.') {
            return HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body(format!("no such file: /{path}\n"));
        }
    }
    match Assets::get("index.html") {
        Some(index) => file_response(&req, index, "no-cache"),
        None => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(not_built_page()),
    }
}

fn file_response(req: &HttpRequest, file: rust_embed::EmbeddedFile, cache: &str) -> HttpResponse {
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache));
    if fresh {
        return res.finish();
    }
    let mime = HeaderValue::from_str(file.metadata.mimetype())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    res.insert_header((header::CONTENT_TYPE, mime))
        .body(file.data.into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_built_page() -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Updraft</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1f2937}}code{{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}}</style>
</head><body>
<h1>Updraft {version}</h1>
<p>The server is running, but this binary was built before the web UI was, so it has no UI to show.</p>
<p>Build the UI and then the binary again: <code>scripts/build-ui.sh &amp;&amp; cargo build --release -p updraft</code>,
or start everything with <code>scripts/run.sh</code>.</p>
<p>The REST API works meanwhile: <a href="/api/v2/version">/api/v2/version</a>,
<a href="/api/v2/monitor/health">/api/v2/monitor/health</a>.</p>
</body></html>
"#,
        version = crate::VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_without_ui_says_how_to_build_it() {
        let page = not_built_page();
        assert!(page.contains(crate::VERSION));
        assert!(page.contains("scripts/build-ui.sh"));
        assert!(page.contains("/api/v2/monitor/health"));
    }
}
