//! `GET /admin`: the admin web page (one self-contained HTML file; it logs in
//! with the admin token and calls the admin API).

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("admin_page.html");

/// The page, with headers that keep it from being framed or loading anything
/// but itself.
pub(super) async fn admin_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}
