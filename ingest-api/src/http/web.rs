//! The web app (`web/`, built into `web/dist` by Vite), served from `api.web_dir`:
//! `index.html` at `/` and for every page under `/app/` (the single-page app's own routes, so
//! no page path can ever shadow an API route), the hashed build output under `/assets/`.
//!
//! Caching: `index.html` is `no-cache` (a deploy is seen at once), hashed assets are
//! `immutable` for a year (their name changes with their content). Every response here carries
//! a strict Content-Security-Policy: scripts, styles and API calls from this origin only, no
//! inline script, no framing.

use std::path::{Path, PathBuf};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
};
use tower_http::services::{ServeDir, ServeFile};

/// The policy of every web app response. `style-src 'self'` still allows styles set through
/// the DOM (React's `style` prop), never inline `<style>` or `style=` markup.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// The web app's routes, or `None` (with a warning) when `dir` holds no built app.
pub fn router(dir: &Path) -> Option<Router> {
    let index = dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(
            dir = %dir.display(),
            "api.web_dir has no index.html (web app not built): not serving it"
        );
        return None;
    }
    let pages = Router::new()
        .route_service("/", ServeFile::new(&index))
        .route_service("/app", ServeFile::new(&index))
        .route_service("/app/{*page}", ServeFile::new(&index))
        .layer(middleware::from_fn(|r, n| headers(r, n, INDEX_CACHE)));
    let assets = Router::new()
        .nest_service(
            "/assets",
            // A missing asset is a 404, never the index (a stale page must not run HTML as JS).
            ServeDir::new(PathBuf::from(dir).join("assets")),
        )
        .layer(middleware::from_fn(|r, n| headers(r, n, ASSET_CACHE)));
    let root_files = Router::new()
        .route_service("/favicon.svg", ServeFile::new(dir.join("favicon.svg")))
        .layer(middleware::from_fn(|r, n| headers(r, n, INDEX_CACHE)));
    Some(pages.merge(assets).merge(root_files))
}

async fn headers(request: Request, next: Next, cache: &'static str) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if response.status().is_success() || response.status().as_u16() == 304 {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn built() -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><p>app</p>").unwrap();
        std::fs::write(dir.path().join("assets/main-abc123.js"), "console.log(1)").unwrap();
        dir
    }

    async fn get(router: &Router, path: &str) -> Response {
        router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn pages_get_the_index_uncached_and_assets_are_immutable_all_under_the_policy() {
        let dir = built();
        let router = router(dir.path()).expect("built");
        for page in ["/", "/app", "/app/appointments/42"] {
            let response = get(&router, page).await;
            assert_eq!(response.status(), 200, "{page}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], INDEX_CACHE);
            assert_eq!(
                response.headers()[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        let asset = get(&router, "/assets/main-abc123.js").await;
        assert_eq!(asset.status(), 200);
        assert_eq!(asset.headers()[header::CACHE_CONTROL], ASSET_CACHE);
        let missing = get(&router, "/assets/gone-000.js").await;
        assert_eq!(missing.status(), 404);
        assert!(missing.headers().get(header::CACHE_CONTROL).is_none());
    }

    #[test]
    fn an_unbuilt_app_is_not_served() {
        let dir = tempdir::Dir::new();
        assert!(router(dir.path()).is_none());
    }

    /// A directory removed when dropped (no extra dependency for two tests).
    mod tempdir {
        use std::path::{Path, PathBuf};

        pub struct Dir(PathBuf);

        impl Dir {
            pub fn new() -> Self {
                let path =
                    std::env::temp_dir().join(format!("citaflow-web-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }

            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
